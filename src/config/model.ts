// The one typed config model. The nginx text is parsed and validated once into these
// shapes (see build.ts); nothing downstream of the config loader ever sees tokens.
import type { LogFormat } from './log-format.js'
import type { Template } from './variables.js'
import type { Cidr } from './cidr.js'

/** Durations are milliseconds throughout the model. */
export type Millis = number

/** Where a directive was written, for error messages and logs (`FILE:LINE`). */
export interface SourceRef {
  readonly file: string
  readonly line: number
}

export interface Config {
  /** Absolute path of the main config file. */
  readonly file: string
  readonly main: MainConfig
  readonly events: EventsConfig
  readonly http: HttpConfig
}

export type LogLevel = 'debug' | 'info' | 'notice' | 'warn' | 'error' | 'crit' | 'alert' | 'emerg'

export interface MainConfig {
  /** `worker_processes N|auto`; default 1 (nginx). */
  readonly workerProcesses: number | 'auto'
  /** `pid FILE`, absolute; null when not set (switchyard writes no pid file by default). */
  readonly pid: string | null
  /** `error_log FILE|stderr [LEVEL]`; default stderr at `notice`. */
  readonly errorLog: ErrorLogConfig
  /** `admin_listen [HOST:]PORT [token=TOKEN]` (a switchyard directive, the config form of
   *  `--admin`): the admin listener; null when not written. HOST defaults to 127.0.0.1. */
  readonly admin: AdminListen | null
}

export interface AdminListen {
  readonly host: string
  readonly port: number
  /** Bearer token required for changes through the API. */
  readonly token?: string
}

export interface ErrorLogConfig {
  /** Absolute path, or 'stderr'. */
  readonly path: string
  readonly level: LogLevel
}

export interface EventsConfig {
  /** `worker_connections N`; default 512 (nginx). */
  readonly workerConnections: number
}

export interface HttpConfig {
  /** Every upstream by name, including the implicit one-server upstreams that
   *  `proxy_pass http://HOST:PORT` creates (nginx does the same). */
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>
  /** `server { }` blocks in config order. */
  readonly servers: readonly VirtualServer[]
  /** `limit_req_zone` and `limit_conn_zone` by zone name (one namespace, as nginx's
   *  shared memory zones). */
  readonly limitZones: ReadonlyMap<string, LimitZoneConfig>
}

/** `limit_req_zone KEY zone=NAME:SIZE rate=N r/s|r/m` or `limit_conn_zone KEY zone=NAME:SIZE`. */
export type LimitZoneConfig = LimitReqZoneConfig | LimitConnZoneConfig

export interface LimitReqZoneConfig {
  readonly kind: 'req'
  readonly name: string
  readonly key: Template
  /** SIZE in bytes (at least 32k, as nginx requires); bounds the entries kept. */
  readonly size: number
  /** Requests per second × 1000, nginx's integer (`1r/m` is 16). */
  readonly rate: number
  readonly source: SourceRef
}

export interface LimitConnZoneConfig {
  readonly kind: 'conn'
  readonly name: string
  readonly key: Template
  readonly size: number
  readonly source: SourceRef
}

/** `limit_req zone=NAME [burst=N] [nodelay | delay=N]`, in milli-requests as nginx keeps them. */
export interface LimitReqRule {
  readonly zone: LimitReqZoneConfig
  /** `burst=N` × 1000; default 0. */
  readonly burst: number
  /** `delay=N` × 1000: excess up to this passes without waiting; `nodelay` = never wait. */
  readonly delay: number
}

/** `limit_conn ZONE N`. */
export interface LimitConnRule {
  readonly zone: LimitConnZoneConfig
  readonly conn: number
}

/** The log levels `limit_req_log_level` and `limit_conn_log_level` accept. */
export type LimitLogLevel = 'info' | 'notice' | 'warn' | 'error'

/** What one location limits (nginx's ngx_http_limit_req_module and limit_conn_module);
 *  each list is inherited from the outer level only when this level has none. */
export interface LimitSettings {
  readonly req: readonly LimitReqRule[]
  /** `limit_req_status`, default 503. */
  readonly reqStatus: number
  /** `limit_req_log_level`, default error (delays log one level lower). */
  readonly reqLogLevel: LimitLogLevel
  /** `limit_req_dry_run`, default off. */
  readonly reqDryRun: boolean
  readonly conn: readonly LimitConnRule[]
  /** `limit_conn_status`, default 503. */
  readonly connStatus: number
  /** `limit_conn_log_level`, default error. */
  readonly connLogLevel: LimitLogLevel
  /** `limit_conn_dry_run`, default off. */
  readonly connDryRun: boolean
}

/** A balancing method as configured: its registry name (the nginx directive, or
 *  `round_robin` for the default) and the options its registry row parsed. */
export interface BalancerConfig {
  readonly method: string
  readonly options: unknown
  readonly source: SourceRef | null
  /** For a method that wraps another (`sticky`): the balancing method written before it in
   *  the upstream, or round robin. Absent for every other method. */
  readonly inner?: BalancerConfig
}

export interface UpstreamConfig {
  readonly name: string
  readonly source: SourceRef
  /** True for the upstream that `proxy_pass http://HOST:PORT` implies. */
  readonly implicit: boolean
  readonly balancer: BalancerConfig
  /** One entry per resolved address, in config order (a name that resolves to two
   *  addresses gives two peers, as in nginx). */
  readonly servers: readonly UpstreamServer[]
  /** `keepalive N`: idle keep-alive connections to keep per peer. null = switchyard's
   *  default (keep-alive on, see README); nginx without it closes every connection. */
  readonly keepalive: number | null
  /** `keepalive_timeout` in upstream; default 60s (nginx). */
  readonly keepaliveTimeout: Millis
  /** `keepalive_requests N` in upstream, default 1000: a pooled connection carries at most
   *  N requests, then closes. */
  readonly keepaliveRequests: number
  /** `keepalive_time T` in upstream, default 1h: a pooled connection is not given a new
   *  request once it is older than T. */
  readonly keepaliveTime: Millis
  /** The active health check (`health_check` in a location that proxies here), absent
   *  when none is written. One per upstream: locations sharing the upstream share it. */
  readonly healthCheck?: HealthCheckConfig
  /** `retry_budget ratio=R min=N` | `off` (a switchyard extension, Envoy's retry budget).
   *  Absent = the default, ratio 0.2 and min 3; null = `retry_budget off`. */
  readonly retryBudget?: RetryBudgetConfig | null
  /** `queue N [timeout=60s]` (NGINX Plus); absent = no queue. */
  readonly queue?: QueueConfig
}

/** Retries in flight for an upstream may not exceed max(min, ratio × active requests). */
export interface RetryBudgetConfig {
  /** `ratio=`, 0..1, default 0.2. */
  readonly ratio: number
  /** `min=`, default 3: retries always allowed in flight, whatever the load. */
  readonly min: number
}

/** Requests that find no eligible peer on their first pick wait for one (per worker). */
export interface QueueConfig {
  /** At most this many requests wait; one more is answered 503 (NGINX Plus: 502). */
  readonly size: number
  /** `timeout=`, default 60s: a request not given a peer by then is answered 503. */
  readonly timeout: Millis
}

/** `health_check [interval=5s] [jitter=0] [fails=1] [passes=1] [uri=/] [port=N]
 *  [match=NAME] [mandatory [persistent]]` (NGINX Plus), with what the location adds. */
export interface HealthCheckConfig {
  readonly source: SourceRef
  /** `interval=`, default 5s. */
  readonly interval: Millis
  /** `jitter=`, default 0: each probe is delayed by a random time up to this. */
  readonly jitter: Millis
  /** `fails=`, default 1: consecutive failed probes that take a peer out. */
  readonly fails: number
  /** `passes=`, default 1: consecutive passed probes that bring it back. */
  readonly passes: number
  /** `uri=`, default `/`. */
  readonly uri: string
  /** `port=`, default null (the server's own port). */
  readonly port: number | null
  /** `match=NAME`, resolved; null = any 2xx or 3xx passes. */
  readonly match: MatchConfig | null
  /** `mandatory`: a new peer takes no requests until its first probe passes. */
  readonly mandatory: boolean
  /** `persistent` (with mandatory): across a reload, a peer that was healthy stays so. */
  readonly persistent: boolean
  /** The location's `proxy_connect_timeout` and `proxy_read_timeout`. */
  readonly connectTimeout: Millis
  readonly readTimeout: Millis
  /** The probe's Host header: the location's `proxy_set_header Host` evaluated without a
   *  client request (`$host` is the server name), else `$proxy_host`. */
  readonly host: string
}

/** `match NAME { status …; header …; body …; }` at http level (NGINX Plus): every test
 *  written must hold for a probe to pass. */
export interface MatchConfig {
  readonly name: string
  readonly source: SourceRef
  /** `status [!] CODE|LOW-HIGH …`; null when not written (any status). */
  readonly status: { readonly negate: boolean; readonly ranges: ReadonlyArray<readonly [number, number]> } | null
  /** `header NAME`, `header ! NAME`, `header NAME = | != | ~ | !~ VALUE`. */
  readonly headers: readonly MatchHeaderTest[]
  /** `body ~ REGEX` / `body !~ REGEX`; null when not written. */
  readonly body: { readonly negate: boolean; readonly regex: RegExp } | null
}

export interface MatchHeaderTest {
  /** Lower-cased header name. */
  readonly name: string
  readonly op: 'present' | 'absent' | '=' | '!=' | '~' | '!~'
  readonly value: string
  readonly regex: RegExp | null
}

export interface UpstreamServer {
  /** The server exactly as written in the config, e.g. `127.0.0.1:4000` or `backend:80`. */
  readonly name: string
  /** The resolved address to connect to. */
  readonly host: string
  readonly port: number
  /** `weight=N`, default 1. */
  readonly weight: number
  /** `max_fails=N`, default 1; 0 disables failure accounting. */
  readonly maxFails: number
  /** `fail_timeout=TIME`, default 10s. */
  readonly failTimeout: Millis
  /** `max_conns=N`, default 0 (unlimited). */
  readonly maxConns: number
  /** `slow_start=TIME` (NGINX Plus), default 0 (off): after the server comes back from
   *  `max_fails`, its weight climbs linearly from near zero over this time. */
  readonly slowStart: Millis
  /** `route=ID`, default '' (nginx's `sid`): what `sticky` names this server by instead
   *  of the MD5 of its address. */
  readonly route: string
  readonly backup: boolean
  readonly down: boolean
  readonly source: SourceRef
}

export interface ListenAddress {
  /** '0.0.0.0' when only a port is written (nginx's `*`); '::' for `[::]`. */
  readonly host: string
  readonly port: number
  readonly defaultServer: boolean
  /** `ssl`: TLS on this address (for every server block on it, as in nginx). */
  readonly ssl: boolean
  /** `http2` (deprecated in nginx 1.25 for `http2 on;`): HTTP/2 over ALPN on this address. */
  readonly http2: boolean
  /** `proxy_protocol`: every connection starts with a PROXY protocol header (v1 or v2). */
  readonly proxyProtocol: boolean
  readonly source: SourceRef
}

export interface VirtualServer {
  readonly source: SourceRef
  /** Defaults to `*:80` like nginx when no `listen` is written. */
  readonly listen: readonly ListenAddress[]
  /** `server_name` entries as written (exact, `*.example.com`, `example.*`, `~regex`);
   *  default `""`. */
  readonly serverNames: readonly string[]
  readonly locations: readonly Location[]
  /** The server-level settings, used when no location matches. */
  readonly settings: LocationSettings
  /** `ssl_*` and `http2`, the http level's inherited (src/config/tls.ts). */
  readonly tls: ServerTls
}

/** A server block's TLS settings; nginx's defaults. Certificates are read when the
 *  config is built, so a reload picks up new files. */
export interface ServerTls {
  /** `ssl_certificate`; null when none is written (the block then serves no TLS). */
  readonly certificate: TlsFile | null
  /** `ssl_certificate_key`. */
  readonly certificateKey: TlsFile | null
  /** `ssl_protocols`, default `TLSv1.2 TLSv1.3`. */
  readonly protocols: readonly string[]
  /** `ssl_ciphers`, an OpenSSL cipher string, default `HIGH:!aNULL:!MD5`. */
  readonly ciphers: string
  /** `ssl_session_timeout`, default 5m. */
  readonly sessionTimeout: Millis
  /** `http2 on|off`, default off: HTTP/2 over ALPN on this block's ssl addresses. */
  readonly http2: boolean
}

/** A PEM file as read at config time. */
export interface TlsFile {
  /** Absolute path. */
  readonly path: string
  readonly pem: Buffer
}

/** `location [=|^~|~|~*] PATH`; '' is a plain prefix location. */
export type LocationModifier = '' | '=' | '^~' | '~' | '~*'

export interface Location {
  readonly source: SourceRef
  readonly modifier: LocationModifier
  readonly path: string
  readonly settings: LocationSettings
}

/** Settings that nginx lets `http`, `server` and `location` each set, already merged
 *  downward (a location holds its effective values). */
export interface LocationSettings {
  readonly proxyPass: ProxyPass | null
  /** `proxy_set_header`: inherited from the enclosing level only when this level has none
   *  (nginx's array-directive rule). */
  readonly proxySetHeaders: readonly HeaderRule[]
  /** `proxy_connect_timeout`, default 60s. */
  readonly proxyConnectTimeout: Millis
  /** `proxy_read_timeout`, default 60s: the longest gap between two reads. */
  readonly proxyReadTimeout: Millis
  /** `proxy_send_timeout`, default 60s. */
  readonly proxySendTimeout: Millis
  readonly proxyNextUpstream: NextUpstream
  /** `proxy_next_upstream_tries`, default 0 (unlimited). */
  readonly proxyNextUpstreamTries: number
  /** `proxy_next_upstream_timeout`, default 0 (unlimited). */
  readonly proxyNextUpstreamTimeout: Millis
  /** `proxy_http_version`, default '1.0' in nginx; switchyard always speaks HTTP/1.1
   *  upstream (keep-alive), and '1.1' is what allows an Upgrade to be tunnelled. */
  readonly proxyHttpVersion: '1.0' | '1.1'
  /** `client_max_body_size` in bytes, default 1m; 0 = unlimited. */
  readonly clientMaxBodySize: number
  /** `client_body_buffer_size` in bytes, default 16k: how much of a request body is read
   *  ahead and kept for a retry (with proxy_request_buffering on). */
  readonly clientBodyBufferSize: number
  /** `proxy_request_buffering on|off`, default on: read the body (up to
   *  client_body_buffer_size) before picking a server, so it can be resent. */
  readonly proxyRequestBuffering: boolean
  /** `access_log PATH [FORMAT]`, or null for `off`; switchyard's default is off. */
  readonly accessLog: AccessLog | null
  /** Client-side limits, timeouts, access rules and real-ip (src/config/edge.ts). */
  readonly edge: EdgeSettings
  /** `limit_req` and `limit_conn` (src/config/limits.ts). */
  readonly limits: LimitSettings
  /** `return` written at this very level (server or location); never inherited, as nginx's
   *  rewrite module does not inherit its directives. null when none is written. */
  readonly return: ReturnAction | null
}

/** `return CODE [TEXT]`, `return CODE URL`, `return URL` (ngx_http_rewrite_module). */
export interface ReturnAction {
  readonly source: SourceRef
  /** 0..999; `return URL` is 302. */
  readonly code: number
  /** The text, or the redirect URL for 301, 302, 303, 307, 308; '' when not written. */
  readonly text: Template
  /** False for `return CODE;`: a code of 400 or more then answers its error page. */
  readonly hasText: boolean
}

/** What switchyard enforces on clients. Timeouts are ms. The listener-wide ones
 *  (client_header_timeout, keepalive_timeout, large_client_header_buffers) come from the
 *  default server of each listen address, as nginx reads them before the Host is known. */
export interface EdgeSettings {
  /** `client_header_timeout`, default 60s: the whole request header must arrive → 408. */
  readonly clientHeaderTimeout: Millis
  /** `client_body_timeout`, default 60s: the longest gap between two body reads → 408. */
  readonly clientBodyTimeout: Millis
  /** `send_timeout`, default 60s: the longest a client may leave a response unread. */
  readonly sendTimeout: Millis
  /** `keepalive_timeout T`, default 75s; 0 turns client keep-alive off. */
  readonly keepaliveTimeout: Millis
  /** `keepalive_requests N`, default 1000: the Nth request on a client connection is
   *  answered with `Connection: close`, and the connection closes after it. */
  readonly keepaliveRequests: number
  /** `large_client_header_buffers N SIZE`, default 4 8k: a request line over SIZE → 414,
   *  a header line over SIZE → 400, all headers over N×SIZE → 431. */
  readonly largeClientHeaderBuffers: { readonly number: number; readonly size: number }
  /** `allow` / `deny` in config order, first match wins; inherited only when a level has none. */
  readonly access: readonly AccessRule[]
  /** `set_real_ip_from` (array rule, like access), `real_ip_header` (default X-Real-IP;
   *  `proxy_protocol` takes the PROXY protocol source address), `real_ip_recursive`
   *  (default off). */
  readonly realIp: RealIp
}

export interface AccessRule {
  readonly allow: boolean
  readonly cidr: Cidr
}

export interface RealIp {
  readonly from: readonly Cidr[]
  /** Lower-cased header name, or `proxy_protocol`. */
  readonly header: string
  readonly recursive: boolean
}

/** `proxy_next_upstream`; default `error timeout`. */
export interface NextUpstream {
  readonly error: boolean
  readonly timeout: boolean
  readonly invalidHeader: boolean
  /** Status codes that move the request on: any of 500 502 503 504 403 404 429. */
  readonly statuses: ReadonlySet<number>
  readonly nonIdempotent: boolean
}

export interface ProxyPass {
  readonly source: SourceRef
  /** Key into `http.upstreams` (an explicit upstream or an implicit HOST:PORT one). */
  readonly upstream: string
  /** The URI part of `proxy_pass http://name/uri`, or null when there is none (then the
   *  client's request URI is passed unchanged). */
  readonly uri: string | null
  /** Value of `$proxy_host`: the upstream name, or HOST:PORT with `:80` left out. */
  readonly proxyHost: string
}

export interface HeaderRule {
  /** Header name as written. */
  readonly name: string
  /** Lower-cased name, for matching. */
  readonly key: string
  readonly value: Template
}

/** Where and how a location logs its requests. */
export interface AccessLog {
  /** Absolute path of the log file. */
  readonly path: string
  /** A `log_format` (default `combined`). */
  readonly format: LogFormat
}
