// The one typed config model. The nginx text is parsed and validated once into these
// shapes (see build.ts); nothing downstream of the config loader ever sees tokens.
import type { Template } from './variables.js'

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
  /** `access_log PATH` (absolute) or null for `off`; switchyard's default is off. */
  readonly accessLog: string | null
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
