// Statement tree → the typed Config model. Each directive is checked where it stands
// (errors come in file order, worded as nginx words them); settings are merged
// http → server → location once the whole http block has been read, as nginx does.
import { promises as dns } from 'node:dns'
import { isIP, isIPv6 } from 'node:net'
import { hostname as osHostname } from 'node:os'
import { dirname, resolve as resolvePath } from 'node:path'
import { MAX_ROUTE_LENGTH } from '../balancer/policies/sticky.js'
import { DEFAULT_POLICY, policyDefinition, type PolicyDefinition, type ServerParam } from '../balancer/registry.js'
import { resolveDirective } from './directives.js'
import { DEFAULT_EDGE, EDGE_DIRECTIVES, edgeSetting, mergeEdge, type EdgeDraft } from './edge.js'
import { ConfigError, once, onOff } from './errors.js'
import { checkSslAddresses, completeTls, TLS_DIRECTIVES, tlsSetting, type TlsDraft } from './tls.js'
import { DEFAULT_LIMITS, defineLimitZone, LIMIT_DIRECTIVES, limitSetting, mergeLimits, type LimitDraft } from './limits.js'
import { completeHealthCheck, parseHealthCheck, parseMatch, sameHealthCheck, type HealthCheckDraft } from './health-check.js'
import type {
  AccessLog,
  AdminListen,
  BalancerConfig,
  Config,
  ErrorLogConfig,
  HeaderRule,
  ListenAddress,
  Location,
  LocationModifier,
  LimitZoneConfig,
  LocationSettings,
  LogLevel,
  MatchConfig,
  NextUpstream,
  ProxyPass,
  QueueConfig,
  ReturnAction,
  RetryBudgetConfig,
  SourceRef,
  UpstreamConfig,
  UpstreamServer,
  VirtualServer,
} from './model.js'
import type { Statement } from './parser.js'
import { parseNumber, parseSize, parseTime } from './units.js'
import { COMBINED, compileLogFormat, type Escape, type LogFormat } from './log-format.js'
import { compileTemplate } from './variables.js'
import { DEFAULT_RETRY_BUDGET, parseQueue, parseRetryBudget } from './upstream-limits.js'

/** Resolves a host name to its addresses; an empty list (or a rejection) means "host not
 *  found". Injectable so tests need no DNS. */
export type HostResolver = (host: string) => Promise<readonly string[]>

export interface BuildOptions {
  /** Default: `dns.promises.lookup(host, { all: true })`, every address in resolver order. */
  readonly resolveHost?: HostResolver
}

/** Defaults of every http/server/location setting (see model.ts). */
export const DEFAULT_SETTINGS: LocationSettings = {
  proxyPass: null,
  proxySetHeaders: [],
  proxyConnectTimeout: 60_000,
  proxyReadTimeout: 60_000,
  proxySendTimeout: 60_000,
  proxyNextUpstream: {
    error: true,
    timeout: true,
    invalidHeader: false,
    statuses: new Set<number>(),
    nonIdempotent: false,
  },
  proxyNextUpstreamTries: 0,
  proxyNextUpstreamTimeout: 0,
  proxyHttpVersion: '1.0',
  clientMaxBodySize: 1024 * 1024,
  clientBodyBufferSize: 16 * 1024,
  proxyRequestBuffering: true,
  accessLog: null,
  edge: DEFAULT_EDGE,
  return: null,
  limits: DEFAULT_LIMITS,
}

const DEFAULT_SERVER_PARAMS = { weight: 1, maxFails: 1, failTimeout: 10_000, maxConns: 0, slowStart: 0, route: '', backup: false, down: false }
const DEFAULT_KEEPALIVE_TIMEOUT = 60_000
const DEFAULT_KEEPALIVE_REQUESTS = 1000
const DEFAULT_KEEPALIVE_TIME = 3_600_000
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg']
const DEBUG_LEVELS = new Set(['debug_core', 'debug_alloc', 'debug_mutex', 'debug_event', 'debug_http', 'debug_mail', 'debug_stream'])

/** Build the model from a parsed file. `file` is the absolute main config path; relative
 *  paths (pid, logs) resolve against its directory. Throws ConfigError. */
export async function buildConfig(tree: readonly Statement[], file: string, options: BuildOptions = {}): Promise<Config> {
  const b = new Builder(dirname(file), options.resolveHost ?? lookupAll)
  return b.main(tree, file)
}

async function lookupAll(host: string): Promise<readonly string[]> {
  try {
    const found = await dns.lookup(host, { all: true })
    return found.map((a) => a.address)
  } catch {
    return []
  }
}

const fail = (reason: string, stmt: Statement | SourceRef): never => {
  throw new ConfigError(reason, 'source' in stmt ? stmt.source : stmt)
}

const notSupported = (what: string, stmt: Statement): never => fail(`${what} is not supported by switchyard yet`, stmt)

/** Settings written at one level; undefined = not set here (inherit). */
interface SettingsDraft {
  proxyPass?: ProxyPass
  proxySetHeaders?: HeaderRule[]
  proxyConnectTimeout?: number
  proxyReadTimeout?: number
  proxySendTimeout?: number
  proxyNextUpstream?: Set<string>
  proxyNextUpstreamTries?: number
  proxyNextUpstreamTimeout?: number
  proxyHttpVersion?: '1.0' | '1.1'
  clientMaxBodySize?: number
  clientBodyBufferSize?: number
  proxyRequestBuffering?: boolean
  accessLog?: AccessLog | null
  edge?: EdgeDraft
  tls?: TlsDraft
  ret?: ReturnAction
  limits?: LimitDraft
}

interface LocationDraft {
  readonly source: SourceRef
  readonly modifier: LocationModifier
  readonly path: string
  readonly settings: SettingsDraft
  healthCheck?: HealthCheckDraft
}

interface ServerDraft {
  readonly source: SourceRef
  readonly listen: ListenAddress[]
  readonly serverNames: string[]
  readonly locations: LocationDraft[]
  readonly settings: SettingsDraft
}

/** A parsed `HOST[:PORT][/URI]` (nginx's ngx_parse_url for inet addresses). */
export interface HostPort {
  /** Host as written; IPv6 keeps its brackets. */
  readonly hostText: string
  /** Host to connect to or resolve: IPv6 without brackets; '0.0.0.0' for listen `*`. */
  readonly host: string
  readonly port: number
  readonly portWritten: boolean
  /** `/uri` or `?args` after the address (proxy_pass only), null when absent. */
  readonly uri: string | null
}

class Builder {
  private readonly resolved = new Map<string, Promise<readonly string[]>>()
  /** Upstream block names by lower-cased name (nginx matches them case-insensitively). */
  private upstreamNames = new Map<string, string>()
  private readonly upstreams = new Map<string, UpstreamConfig>()
  private readonly defaultServers = new Set<string>()
  /** `log_format`s defined so far (nginx requires one before an access_log names it). */
  private readonly logFormats = new Map<string, LogFormat>([['combined', COMBINED]])
  /** `limit_req_zone` / `limit_conn_zone` by name. */
  private readonly limitZones = new Map<string, LimitZoneConfig>()

  constructor(
    private readonly dir: string,
    private readonly resolveHost: HostResolver,
  ) {}

  async main(tree: readonly Statement[], file: string): Promise<Config> {
    const seen = new Set<string>()
    let workerProcesses: number | 'auto' = 1
    let pid: string | null = null
    let errorLog: ErrorLogConfig = { path: 'stderr', level: 'notice' }
    let workerConnections = 512
    let servers: VirtualServer[] = []
    let admin: AdminListen | null = null

    for (const stmt of tree) {
      resolveDirective(stmt, 'main')
      const [arg] = stmt.args
      switch (stmt.name) {
        case 'worker_processes': {
          once(stmt, seen)
          const n = arg === 'auto' ? 'auto' : parseNumber(arg!)
          if (n === null) fail('"worker_processes" directive invalid value', stmt)
          workerProcesses = n!
          break
        }
        case 'pid':
          once(stmt, seen)
          pid = this.path(arg!)
          break
        case 'error_log':
          if (seen.has('error_log')) notSupported('more than one "error_log" directive', stmt)
          seen.add('error_log')
          errorLog = this.errorLog(stmt)
          break
        case 'events':
          once(stmt, seen)
          workerConnections = this.events(stmt)
          break
        case 'admin_listen':
          once(stmt, seen)
          admin = adminListen(stmt)
          break
        case 'http':
          once(stmt, seen)
          servers = await this.http(stmt)
          checkSslAddresses(servers)
          break
      }
    }

    return {
      file,
      main: { workerProcesses, pid, errorLog, admin },
      events: { workerConnections },
      http: { upstreams: this.upstreams, servers, limitZones: this.limitZones },
    }
  }

  private path(text: string): string {
    return resolvePath(this.dir, text)
  }

  private errorLog(stmt: Statement): ErrorLogConfig {
    const [target, ...levels] = stmt.args as [string, ...string[]]
    if (target.startsWith('syslog:') || target.startsWith('memory:')) {
      notSupported(`"error_log ${target.slice(0, 7)}"`, stmt)
    }
    let level: LogLevel | null = null
    let debugParts = false
    for (const word of levels) {
      if ((LOG_LEVELS as readonly string[]).includes(word)) {
        if (level !== null || debugParts) fail(`duplicate log level "${word}"`, stmt)
        level = word as LogLevel
      } else if (DEBUG_LEVELS.has(word) && level === null) {
        debugParts = true
      } else {
        fail(`invalid log level "${word}"`, stmt)
      }
    }
    return { path: target === 'stderr' ? 'stderr' : this.path(target), level: level ?? (debugParts ? 'debug' : 'error') }
  }

  private events(stmt: Statement): number {
    const seen = new Set<string>()
    let connections = 512
    for (const child of stmt.block!) {
      resolveDirective(child, 'events')
      // worker_connections is the only directive the events table has.
      once(child, seen)
      const n = parseNumber(child.args[0]!)
      if (n === null) fail(`invalid number "${child.args[0]}"`, child)
      connections = n!
    }
    return connections
  }

  // ---- http ---------------------------------------------------------------------------

  private async http(stmt: Statement): Promise<VirtualServer[]> {
    const block = stmt.block!
    // proxy_pass may name an upstream defined further down, so learn the names first.
    this.upstreamNames = new Map()
    for (const child of block) {
      const name = child.name === 'upstream' && child.block && child.args.length === 1 ? child.args[0]! : null
      if (name !== null && !this.upstreamNames.has(name.toLowerCase())) this.upstreamNames.set(name.toLowerCase(), name)
    }

    const seen = new Set<string>()
    const settings: SettingsDraft = {}
    const drafts: ServerDraft[] = []
    const defined = new Set<string>()
    const matches = new Map<string, MatchConfig>()
    for (const child of block) {
      const resolved = resolveDirective(child, 'http')
      if (resolved.kind !== 'directive') continue
      if (child.name === 'upstream') {
        const name = child.args[0]!
        if (defined.has(name.toLowerCase())) fail(`duplicate upstream "${name}"`, child)
        defined.add(name.toLowerCase())
        this.upstreams.set(name, await this.upstream(child))
      } else if (child.name === 'server') {
        drafts.push(await this.server(child))
      } else if (child.name === 'log_format') {
        this.logFormat(child)
      } else if (child.name === 'limit_req_zone' || child.name === 'limit_conn_zone') {
        defineLimitZone(child, this.limitZones)
      } else if (child.name === 'match') {
        const name = child.args[0]!
        if (matches.has(name)) fail(`duplicate match "${name}"`, child)
        matches.set(name, parseMatch(child))
      } else {
        this.setting(child, settings, seen)
      }
    }

    const zones = this.limitZones
    const httpSettings = merge(settings, DEFAULT_SETTINGS, zones)
    const pems = new Map<string, Promise<Buffer>>()
    const tls: Array<Awaited<ReturnType<typeof completeTls>>> = []
    for (const d of drafts) tls.push(await completeTls(d.settings.tls, settings.tls, pems))
    return drafts.map((d, i) => {
      const serverSettings = merge(d.settings, httpSettings, zones)
      const locations: Location[] = d.locations.map((l) => {
        const location = {
          source: l.source,
          modifier: l.modifier,
          path: l.path,
          settings: { ...merge(l.settings, serverSettings, zones), proxyPass: l.settings.proxyPass ?? null },
        }
        if (l.healthCheck) this.attachHealthCheck(l.healthCheck, location.settings, d.serverNames[0] ?? '', matches)
        return location
      })
      return {
        source: d.source,
        listen: d.listen.length > 0 ? d.listen : [{ host: '0.0.0.0', port: 80, defaultServer: false, ssl: false, http2: false, proxyProtocol: false, source: d.source }],
        serverNames: d.serverNames.length > 0 ? d.serverNames : [''],
        locations,
        settings: serverSettings,
        tls: tls[i]!,
      }
    })
  }

  /** Give the location's upstream its active health check. Locations that proxy to the
   *  same upstream share one prober, so their checks must agree. */
  private attachHealthCheck(draft: HealthCheckDraft, settings: LocationSettings, serverName: string, matches: ReadonlyMap<string, MatchConfig>): void {
    const check = completeHealthCheck(draft, settings, serverName, matches)
    const key = settings.proxyPass!.upstream
    const upstream = this.upstreams.get(key)!
    if (upstream.healthCheck !== undefined && !sameHealthCheck(upstream.healthCheck, check)) {
      const first = upstream.healthCheck.source
      notSupported(`a second, different "health_check" for upstream "${upstream.name}" (the first is in ${first.file}:${first.line})`, draft.stmt)
    }
    if (upstream.healthCheck === undefined) this.upstreams.set(key, { ...upstream, healthCheck: check })
  }

  // ---- upstream -----------------------------------------------------------------------

  private async upstream(stmt: Statement): Promise<UpstreamConfig> {
    const seen = new Set<string>()
    let balancer: BalancerConfig | null = null
    let wrapper: BalancerConfig | null = null
    const servers: UpstreamServer[] = []
    const used: Array<{ stmt: Statement; param: ServerParam; text: string }> = []
    let keepalive: number | null = null
    let keepaliveTimeout = DEFAULT_KEEPALIVE_TIMEOUT
    let keepaliveRequests = DEFAULT_KEEPALIVE_REQUESTS
    let keepaliveTime = DEFAULT_KEEPALIVE_TIME
    let retryBudget: RetryBudgetConfig | null = DEFAULT_RETRY_BUDGET
    let queue: QueueConfig | undefined

    for (const child of stmt.block!) {
      const resolved = resolveDirective(child, 'upstream')
      if (resolved.kind === 'balancing') {
        // `sticky` wraps the method written before it; nginx forgets it (with a warning)
        // when another method follows, which switchyard refuses like any redefinition.
        if (resolved.policy.wraps) {
          if (wrapper !== null) fail(`"${child.name}" directive is duplicate`, child)
          wrapper = { method: resolved.policy.directive, options: parsePolicy(resolved.policy, child), source: child.source }
          continue
        }
        if (balancer !== null || wrapper !== null) fail('load balancing method redefined', child)
        balancer = { method: resolved.policy.directive, options: parsePolicy(resolved.policy, child), source: child.source }
        continue
      }
      switch (child.name) {
        case 'server': {
          const { params, list } = serverParams(child)
          used.push(...list)
          const url = child.args[0]!
          if (/^unix:/i.test(url)) notSupported(`a unix domain socket in upstream "${url}"`, child)
          const address = parseHostPort(url, { listen: false, uriPart: false })
          if (typeof address === 'string') fail(`${address} in upstream "${url}"`, child)
          const { host, port } = address as HostPort
          const addresses = await this.lookup(host)
          if (addresses.length === 0) fail(`host not found in upstream "${url}"`, child)
          for (const ip of addresses) servers.push({ name: url, host: ip, port, ...params, source: child.source })
          break
        }
        case 'keepalive': {
          once(child, seen)
          const n = parseNumber(child.args[0]!)
          if (n === null || n === 0) fail(`invalid value "${child.args[0]}" in "keepalive" directive`, child)
          keepalive = n
          break
        }
        case 'keepalive_timeout': {
          once(child, seen)
          keepaliveTimeout = this.time(child)
          break
        }
        case 'keepalive_requests': {
          once(child, seen)
          const n = parseNumber(child.args[0]!)
          if (n === null) fail('"keepalive_requests" directive invalid number', child)
          keepaliveRequests = n!
          break
        }
        case 'keepalive_time':
          once(child, seen)
          keepaliveTime = this.time(child)
          break
        case 'retry_budget':
          once(child, seen)
          retryBudget = parseRetryBudget(child)
          break
        case 'queue':
          once(child, seen)
          queue = parseQueue(child)
          break
        case 'hash_method':
          once(child, seen)
          if (child.args[0] !== 'crc32') fail(`invalid value "${child.args[0]}" in "hash_method" directive, it must be "crc32"`, child)
          break
      }
    }

    if (servers.length === 0) fail('no servers are inside upstream', stmt.blockEnd ?? stmt.source)
    // The method that balances decides the parameters, also under `sticky`.
    const policy = policyDefinition(balancer?.method ?? DEFAULT_POLICY)!
    for (const { stmt: server, param, text } of used) {
      if (!policy.serverParams.has(param)) fail(`balancing method does not support parameter "${text}"`, server)
    }
    const method = balancer ?? defaultBalancer()
    return {
      name: stmt.args[0]!,
      source: stmt.source,
      implicit: false,
      balancer: wrapper === null ? method : { ...wrapper, inner: method },
      servers,
      keepalive,
      keepaliveTimeout,
      keepaliveRequests,
      keepaliveTime,
      retryBudget,
      ...(queue ? { queue } : {}),
    }
  }

  private lookup(host: string): Promise<readonly string[]> {
    if (isIP(host)) return Promise.resolve([host])
    const key = host.toLowerCase()
    let found = this.resolved.get(key)
    if (!found) {
      found = this.resolveHost(host).then(
        (list) => [...new Set(list)],
        () => [],
      )
      this.resolved.set(key, found)
    }
    return found
  }

  // ---- server -------------------------------------------------------------------------

  private async server(stmt: Statement): Promise<ServerDraft> {
    const draft: ServerDraft = { source: stmt.source, listen: [], serverNames: [], locations: [], settings: {} }
    const seen = new Set<string>()
    const locationKeys = new Set<string>()
    for (const child of stmt.block!) {
      resolveDirective(child, 'server')
      switch (child.name) {
        case 'listen':
          for (const address of await this.listen(child)) {
            const text = addressText(address.host, address.port)
            if (draft.listen.some((l) => addressText(l.host, l.port) === text)) fail(`a duplicate listen ${text}`, child)
            if (address.defaultServer) {
              if (this.defaultServers.has(text)) fail(`a duplicate default server for ${text}`, child)
              this.defaultServers.add(text)
            }
            draft.listen.push(address)
          }
          break
        case 'server_name':
          for (const name of child.args) draft.serverNames.push(serverName(name, child))
          break
        case 'location': {
          const location = await this.location(child)
          if (location.modifier !== '~' && location.modifier !== '~*') {
            const key = `${location.modifier === '=' ? '=' : ''}${location.path}`
            if (locationKeys.has(key)) fail(`duplicate location "${location.path}"`, child)
            locationKeys.add(key)
          }
          draft.locations.push(location)
          break
        }
        default:
          this.setting(child, draft.settings, seen)
      }
    }
    return draft
  }

  private async listen(stmt: Statement): Promise<ListenAddress[]> {
    const [url, ...params] = stmt.args as [string, ...string[]]
    if (/^unix:/i.test(url)) notSupported(`a unix domain socket in "${url}" of the "listen" directive`, stmt)
    const parsed = parseHostPort(url, { listen: true, uriPart: false })
    if (parsed === 'port range') notSupported(`a port range in "${url}" of the "listen" directive`, stmt)
    if (typeof parsed === 'string') fail(`${parsed} in "${url}" of the "listen" directive`, stmt)
    const { host, port } = parsed as HostPort
    const hosts = await this.lookup(host)
    if (hosts.length === 0) fail(`host not found in "${url}" of the "listen" directive`, stmt)
    let defaultServer = false
    let ssl = false
    let http2 = false
    let proxyProtocol = false
    for (const param of params) {
      if (param === 'default_server' || param === 'default') defaultServer = true
      else if (param === 'ssl') ssl = true
      else if (param === 'http2') http2 = true
      else if (param === 'proxy_protocol') proxyProtocol = true
      else if (LISTEN_PARAMS.has(param.split('=')[0]!)) notSupported(`parameter "${param}" of the "listen" directive`, stmt)
      else fail(`invalid parameter "${param}"`, stmt)
    }
    return [...new Set(hosts.map(canonicalIp))].map((h) => ({ host: h, port, defaultServer, ssl, http2, proxyProtocol, source: stmt.source }))
  }

  private async location(stmt: Statement): Promise<LocationDraft> {
    const { modifier, path } = locationName(stmt)
    const settings: SettingsDraft = {}
    const seen = new Set<string>()
    let healthCheck: HealthCheckDraft | undefined
    for (const child of stmt.block!) {
      resolveDirective(child, 'location')
      if (child.name === 'proxy_pass') {
        once(child, seen)
        settings.proxyPass = await this.proxyPass(child, modifier)
      } else if (child.name === 'health_check') {
        // One check per location (NGINX Plus allows several; switchyard runs one per upstream).
        if (seen.has('health_check')) notSupported('more than one "health_check" directive in a location', child)
        seen.add('health_check')
        healthCheck = parseHealthCheck(child)
      } else {
        this.setting(child, settings, seen)
      }
    }
    return { source: stmt.source, modifier, path, settings, ...(healthCheck ? { healthCheck } : {}) }
  }

  /** `proxy_pass http://NAME[:PORT][/URI]`: an upstream block by name, or else an address
   *  that gets its own implicit one-server upstream (shared by every `proxy_pass` to the
   *  same HOST:PORT), as nginx does. */
  private async proxyPass(stmt: Statement, modifier: LocationModifier): Promise<ProxyPass> {
    const url = stmt.args[0]!
    if (url.includes('$')) notSupported('a "proxy_pass" with variables', stmt)
    let rest: string
    if (/^http:\/\//i.test(url)) rest = url.slice(7)
    else if (/^https:\/\//i.test(url)) return notSupported('"proxy_pass https://"', stmt)
    else return fail('invalid URL prefix', stmt)
    if (/^unix:/i.test(rest)) notSupported(`"proxy_pass" to a unix domain socket`, stmt)

    const parsed = parseHostPort(rest, { listen: false, uriPart: true })
    if (typeof parsed === 'string') fail(`${parsed} in upstream "${rest}"`, stmt)
    const address = parsed as HostPort
    const uri = address.uri
    if (uri !== null && uri !== '' && (modifier === '~' || modifier === '~*')) {
      fail(
        '"proxy_pass" cannot have URI part in location given by regular expression, ' +
          'or inside named location, or inside "if" statement, or inside "limit_except" block',
        stmt,
      )
    }

    const named = this.upstreamNames.get(address.hostText.toLowerCase())
    if (named !== undefined) {
      if (address.portWritten) fail(`upstream "${address.hostText}" may not have port ${address.port}`, stmt)
      return { source: stmt.source, upstream: named, uri, proxyHost: address.hostText }
    }

    const hostPort = `${address.hostText}:${address.port}`
    const proxyHost = address.port === 80 ? address.hostText : hostPort
    const key = hostPort.toLowerCase()
    if (!this.upstreams.has(key)) {
      const addresses = await this.lookup(address.host)
      if (addresses.length === 0) fail(`host not found in upstream "${address.hostText}"`, stmt)
      const name = address.portWritten ? hostPort : address.hostText
      this.upstreams.set(key, {
        name: key,
        source: stmt.source,
        implicit: true,
        balancer: defaultBalancer(),
        servers: addresses.map((ip) => ({ name, host: ip, port: address.port, ...DEFAULT_SERVER_PARAMS, source: stmt.source })),
        keepalive: null,
        keepaliveTimeout: DEFAULT_KEEPALIVE_TIMEOUT,
        keepaliveRequests: DEFAULT_KEEPALIVE_REQUESTS,
        keepaliveTime: DEFAULT_KEEPALIVE_TIME,
      })
    }
    return { source: stmt.source, upstream: key, uri, proxyHost }
  }

  // ---- http / server / location settings -----------------------------------------------

  private setting(stmt: Statement, draft: SettingsDraft, seen: Set<string>): void {
    const [arg] = stmt.args as [string]
    if (EDGE_DIRECTIVES.has(stmt.name)) return edgeSetting(stmt, (draft.edge ??= {}), seen)
    if (TLS_DIRECTIVES.has(stmt.name)) return tlsSetting(stmt, (draft.tls ??= {}), seen, this.dir)
    if (LIMIT_DIRECTIVES.has(stmt.name)) return limitSetting(stmt, (draft.limits ??= {}), seen)
    switch (stmt.name) {
      case 'proxy_set_header': {
        let value
        try {
          value = compileTemplate(stmt.args[1]!)
        } catch (err) {
          return fail((err as Error).message, stmt)
        }
        draft.proxySetHeaders ??= []
        draft.proxySetHeaders.push({ name: arg, key: arg.toLowerCase(), value })
        return
      }
      case 'proxy_next_upstream': {
        // Several at one level add up, as in nginx (it is a bit mask, not a single value).
        const flags = draft.proxyNextUpstream ?? new Set<string>()
        const values = stmt.args.map((w) => w.toLowerCase())
        for (const [i, value] of values.entries()) {
          if (!NEXT_UPSTREAM_VALUES.has(value)) fail(`invalid value "${stmt.args[i]}"`, stmt)
          flags.add(value)
        }
        if (values.length > 1 && values.includes('off')) {
          fail('"off" cannot be combined with other values in "proxy_next_upstream" directive', stmt)
        }
        draft.proxyNextUpstream = flags
        return
      }
      case 'return':
        // Later `return`s on the same level are never reached (the first one ends the
        // rewrite phase), but nginx still checks them.
        {
          const action = returnAction(stmt)
          draft.ret ??= action
        }
        return
      case 'access_log':
        if (draft.accessLog !== undefined) notSupported('more than one "access_log" directive on one level', stmt)
        draft.accessLog = this.accessLog(stmt)
        return
    }

    once(stmt, seen)
    switch (stmt.name) {
      case 'proxy_connect_timeout':
        draft.proxyConnectTimeout = this.time(stmt)
        return
      case 'proxy_read_timeout':
        draft.proxyReadTimeout = this.time(stmt)
        return
      case 'proxy_send_timeout':
        draft.proxySendTimeout = this.time(stmt)
        return
      case 'proxy_next_upstream_timeout':
        draft.proxyNextUpstreamTimeout = this.time(stmt)
        return
      case 'proxy_next_upstream_tries': {
        const n = parseNumber(arg)
        if (n === null) fail('"proxy_next_upstream_tries" directive invalid number', stmt)
        draft.proxyNextUpstreamTries = n!
        return
      }
      case 'proxy_http_version':
        if (arg !== '1.0' && arg !== '1.1') fail(`invalid value "${arg}"`, stmt)
        draft.proxyHttpVersion = arg as '1.0' | '1.1'
        return
      case 'client_max_body_size': {
        const n = parseSize(arg)
        if (n === null) fail('"client_max_body_size" directive invalid value', stmt)
        draft.clientMaxBodySize = n!
        return
      }
      case 'client_body_buffer_size': {
        const n = parseSize(arg)
        if (n === null) fail('"client_body_buffer_size" directive invalid value', stmt)
        draft.clientBodyBufferSize = n!
        return
      }
      case 'proxy_request_buffering':
        draft.proxyRequestBuffering = onOff(stmt)
        return
    }
  }

  private time(stmt: Statement): number {
    const ms = parseTime(stmt.args[0]!)
    if (ms === null) fail(`"${stmt.name}" directive invalid value`, stmt)
    return ms!
  }

  /** `log_format NAME [escape=default|json|none] STRING…` (the strings are joined). */
  private logFormat(stmt: Statement): void {
    const [name, ...rest] = stmt.args as [string, ...string[]]
    if (this.logFormats.has(name)) fail(`duplicate "log_format" name "${name}"`, stmt)
    let escape: Escape = 'default'
    if (rest[0]?.startsWith('escape=')) {
      const value = rest.shift()!.slice('escape='.length)
      if (value !== 'default' && value !== 'json' && value !== 'none') fail(`unknown log format escaping "${value}"`, stmt)
      escape = value as Escape
    }
    if (rest.length === 0) fail('invalid number of arguments in "log_format" directive', stmt)
    try {
      this.logFormats.set(name, compileLogFormat(name, rest.join(''), escape))
    } catch (err) {
      fail((err as Error).message, stmt)
    }
  }

  private accessLog(stmt: Statement): AccessLog | null {
    const [target, format, ...params] = stmt.args as [string, ...string[]]
    if (target === 'off') {
      if (format !== undefined) fail(`invalid parameter "${format}"`, stmt)
      return null
    }
    if (target.startsWith('syslog:')) notSupported('"access_log syslog:"', stmt)
    if (target.includes('$')) notSupported('an "access_log" path with variables', stmt)
    const logFormat = this.logFormats.get(format ?? 'combined')
    if (logFormat === undefined) fail(`unknown log format "${format}"`, stmt)
    for (const param of params) {
      if (/^(buffer=|flush=|if=|gzip(=|$))/.test(param)) notSupported(`parameter "${param}" of the "access_log" directive`, stmt)
      fail(`invalid parameter "${param}"`, stmt)
    }
    return { path: this.path(target), format: logFormat! }
  }
}

function defaultBalancer(): BalancerConfig {
  return { method: DEFAULT_POLICY, options: policyDefinition(DEFAULT_POLICY)!.parse([]), source: null }
}

/** Run a registry row's argument parser; its Error becomes a ConfigError at the line. */
function parsePolicy(policy: PolicyDefinition, stmt: Statement): unknown {
  const n = stmt.args.length
  if (n < policy.minArgs || n > policy.maxArgs) fail(`invalid number of arguments in "${stmt.name}" directive`, stmt)
  try {
    return policy.parse(stmt.args)
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err), stmt)
  }
}

type ServerSettings = Pick<UpstreamServer, 'weight' | 'maxFails' | 'failTimeout' | 'maxConns' | 'slowStart' | 'route' | 'backup' | 'down'>

/** Parameters nginx knows on an upstream `server` that switchyard does not do yet. */
const SERVER_PARAMS_NOT_YET = /^(service=|resolve$|drain$)/

/** `server ADDR [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N] [slow_start=TIME]
 *  [route=ID] [backup] [down]`, with nginx's `invalid parameter "weight=0"` for a bad one. Also returns which
 *  parameters were written, for the balancing method to vet after the block. */
function serverParams(stmt: Statement): {
  params: ServerSettings
  list: Array<{ stmt: Statement; param: ServerParam; text: string }>
} {
  const params = { ...DEFAULT_SERVER_PARAMS }
  const list: Array<{ stmt: Statement; param: ServerParam; text: string }> = []
  const invalid = (text: string): never => fail(`invalid parameter "${text}"`, stmt)
  for (const text of stmt.args.slice(1)) {
    const eq = text.indexOf('=')
    const key = eq === -1 ? text : text.slice(0, eq)
    const value = eq === -1 ? '' : text.slice(eq + 1)
    let param: ServerParam
    if (eq !== -1 && key === 'weight') {
      const n = parseNumber(value)
      if (n === null || n === 0) invalid(text)
      params.weight = n!
      param = 'weight'
    } else if (eq !== -1 && key === 'max_fails') {
      const n = parseNumber(value)
      if (n === null) invalid(text)
      params.maxFails = n!
      param = 'max_fails'
    } else if (eq !== -1 && key === 'max_conns') {
      const n = parseNumber(value)
      if (n === null) invalid(text)
      params.maxConns = n!
      param = 'max_conns'
    } else if (eq !== -1 && key === 'fail_timeout') {
      const ms = parseTime(value, 's')
      if (ms === null) invalid(text)
      params.failTimeout = ms!
      param = 'fail_timeout'
    } else if (eq !== -1 && key === 'slow_start') {
      const ms = parseTime(value)
      if (ms === null) invalid(text)
      params.slowStart = ms!
      param = 'slow_start'
    } else if (eq !== -1 && key === 'route') {
      // nginx takes route= with any method (sticky reads it) and checks it at once.
      if (value === '') fail('route is empty', stmt)
      if (value.length > MAX_ROUTE_LENGTH) fail(`route is longer than ${MAX_ROUTE_LENGTH}`, stmt)
      params.route = value
      continue
    } else if (text === 'backup') {
      params.backup = true
      param = 'backup'
    } else if (text === 'down') {
      params.down = true
      param = 'down'
    } else if (SERVER_PARAMS_NOT_YET.test(text)) {
      return notSupported(`parameter "${text}" of the "server" directive`, stmt)
    } else {
      return invalid(text)
    }
    list.push({ stmt, param, text })
  }
  return { params, list }
}

/** nginx `listen` parameters other than `default_server`, `ssl`, `http2` and
 *  `proxy_protocol` (not supported yet). */
const LISTEN_PARAMS = new Set([
  'quic', 'reuseport', 'bind', 'deferred', 'ipv6only', 'backlog', 'rcvbuf',
  'sndbuf', 'setfib', 'fastopen', 'accept_filter', 'so_keepalive', 'multipath',
])

const NEXT_UPSTREAM_VALUES = new Set([
  'error', 'timeout', 'invalid_header', 'non_idempotent', 'http_500', 'http_502', 'http_503', 'http_504',
  'http_403', 'http_404', 'http_429', 'updating', 'off',
])

/**
 * nginx's address syntax for `server`, `listen` and `proxy_pass`: `HOST`, `HOST:PORT`,
 * `[IPv6]:PORT`, and for `listen` a bare `PORT` or `*`. Returns nginx's error text
 * (`invalid port`, `invalid host`, `no host`, `invalid IPv6 address`), or 'port range'.
 */
export function parseHostPort(text: string, mode: { listen: boolean; uriPart: boolean }): HostPort | string {
  const portNumber = (s: string): number | null => {
    const n = parseNumber(s)
    return n !== null && n >= 1 && n <= 65535 ? n : null
  }

  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close === -1) return 'invalid host'
    let last = text.length
    let uri: string | null = null
    const slash = text.indexOf('/', close)
    if (slash !== -1) {
      if (mode.listen || !mode.uriPart) return 'invalid host'
      uri = text.slice(slash)
      last = slash
    }
    const after = text.slice(close + 1, last)
    let port = 80
    if (after !== '') {
      if (!after.startsWith(':')) return 'invalid host'
      if (mode.listen && after.includes('-')) return 'port range'
      const n = portNumber(after.slice(1))
      if (n === null) return 'invalid port'
      port = n
    }
    const inner = text.slice(1, close)
    if (inner === '') return 'no host'
    if (!isIPv6(inner)) return 'invalid IPv6 address'
    return { hostText: text.slice(0, close + 1), host: canonicalIp(inner), port, portWritten: after !== '', uri }
  }

  let last = text.length
  let colon: number | null = text.indexOf(':')
  if (colon === -1) colon = null
  let uri: string | null = null
  const slash = text.indexOf('/')
  const question = text.indexOf('?')
  let uriAt = slash
  if (question !== -1 && (slash === -1 || question < slash)) uriAt = question
  if (uriAt !== -1) {
    if (mode.listen || !mode.uriPart) return 'invalid host'
    uri = text.slice(uriAt)
    last = uriAt
    if (colon !== null && uriAt < colon) colon = null
  }

  let port = 80
  let portWritten = false
  let hostEnd = last
  if (colon !== null) {
    const portText = text.slice(colon + 1, last)
    if (mode.listen && portText.includes('-')) return 'port range'
    const n = portNumber(portText)
    if (n === null) return 'invalid port'
    port = n
    portWritten = true
    hostEnd = colon
  } else if (mode.listen && uri === null) {
    if (/^[0-9]+-[0-9]+$/.test(text)) return 'port range'
    if (parseNumber(text) !== null) {
      const n = portNumber(text)
      if (n === null) return 'invalid port'
      return { hostText: '*', host: '0.0.0.0', port: n, portWritten: true, uri: null }
    }
  }

  const hostText = text.slice(0, hostEnd)
  if (hostText === '') return 'no host'
  if (mode.listen && hostText === '*') return { hostText, host: '0.0.0.0', port, portWritten, uri }
  return { hostText, host: hostText, port, portWritten, uri }
}

/** Textual form nginx prints for an address: `0.0.0.0:80`, `[::1]:8080`. */
function addressText(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** One spelling per IPv6 address (`0:0::1` → `::1`), so duplicates are found. */
function canonicalIp(ip: string): string {
  if (!isIPv6(ip)) return ip
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    return ip
  }
}

/** `location [=|^~|~|~*] PATH`, also the glued forms nginx accepts (`=/x`, `~*\.png$`). */
function locationName(stmt: Statement): { modifier: LocationModifier; path: string } {
  let modifier: LocationModifier
  let path: string
  if (stmt.args.length === 2) {
    const [mod, name] = stmt.args as [string, string]
    if (mod !== '=' && mod !== '^~' && mod !== '~' && mod !== '~*') fail(`invalid location modifier "${mod}"`, stmt)
    modifier = mod as LocationModifier
    path = name
  } else {
    const name = stmt.args[0]!
    if (name.startsWith('=')) [modifier, path] = ['=', name.slice(1)]
    else if (name.startsWith('^~')) [modifier, path] = ['^~', name.slice(2)]
    else if (name.startsWith('~*')) [modifier, path] = ['~*', name.slice(2)]
    else if (name.startsWith('~')) [modifier, path] = ['~', name.slice(1)]
    else [modifier, path] = ['', name]
  }
  if (modifier === '' && path.startsWith('@')) notSupported(`named location "${path}"`, stmt)
  if (modifier === '~' || modifier === '~*') {
    try {
      new RegExp(path, modifier === '~*' ? 'i' : '')
    } catch (err) {
      fail(`invalid regular expression "${path}": ${regexReason(err)}`, stmt)
    }
  }
  return { modifier, path }
}

function regexReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const colon = message.lastIndexOf(': ')
  return colon === -1 ? message : message.slice(colon + 2)
}

const hostName = osHostname()

/** Validate one `server_name` entry the way nginx does; `$hostname` becomes the machine's
 *  name, everything else is kept as written. */
function serverName(name: string, stmt: Statement): string {
  if ((name.startsWith('*') && (name.length < 3 || name[1] !== '.')) || (name.startsWith('.') && name.length < 2)) {
    fail(`server name "${name}" is invalid`, stmt)
  }
  if (name.toLowerCase() === '$hostname') return hostName
  if (name.startsWith('~')) {
    if (name.length === 1) fail(`empty regex in server name "${name}"`, stmt)
    try {
      new RegExp(name.slice(1), 'i')
    } catch (err) {
      fail(`invalid regular expression "${name.slice(1)}": ${regexReason(err)}`, stmt)
    }
  }
  return name
}

/** Fill what a level left unset from the enclosing level (`proxy_set_header` as a whole
 *  list, like nginx's array directives). `proxy_pass` is never inherited. */
function merge(inner: SettingsDraft, outer: LocationSettings, zones: ReadonlyMap<string, LimitZoneConfig>): LocationSettings {
  return {
    proxyPass: null,
    proxySetHeaders: inner.proxySetHeaders ?? outer.proxySetHeaders,
    proxyConnectTimeout: inner.proxyConnectTimeout ?? outer.proxyConnectTimeout,
    proxyReadTimeout: inner.proxyReadTimeout ?? outer.proxyReadTimeout,
    proxySendTimeout: inner.proxySendTimeout ?? outer.proxySendTimeout,
    proxyNextUpstream: inner.proxyNextUpstream ? nextUpstream(inner.proxyNextUpstream) : outer.proxyNextUpstream,
    proxyNextUpstreamTries: inner.proxyNextUpstreamTries ?? outer.proxyNextUpstreamTries,
    proxyNextUpstreamTimeout: inner.proxyNextUpstreamTimeout ?? outer.proxyNextUpstreamTimeout,
    proxyHttpVersion: inner.proxyHttpVersion ?? outer.proxyHttpVersion,
    clientMaxBodySize: inner.clientMaxBodySize ?? outer.clientMaxBodySize,
    clientBodyBufferSize: inner.clientBodyBufferSize ?? outer.clientBodyBufferSize,
    proxyRequestBuffering: inner.proxyRequestBuffering ?? outer.proxyRequestBuffering,
    edge: mergeEdge(inner.edge, outer.edge),
    accessLog: inner.accessLog !== undefined ? inner.accessLog : outer.accessLog,
    return: inner.ret ?? null,
    limits: mergeLimits(inner.limits, outer.limits, zones),
  }
}

/** `return CODE [TEXT|URL]` or `return URL` as nginx's ngx_http_rewrite_return reads it:
 *  a code is decimal 0..999; a lone argument that is not one must start with `http://`,
 *  `https://` or `$scheme` and means 302. */
function returnAction(stmt: Statement): ReturnAction {
  const [first, second] = stmt.args as [string, string | undefined]
  let code = /^[0-9]+$/.test(first) ? Number(first) : -1
  let text = second
  if (code === -1) {
    if (second !== undefined || !/^(http:\/\/|https:\/\/|\$scheme)/.test(first)) fail(`invalid return code "${first}"`, stmt)
    code = 302
    text = first
  } else if (code > 999) fail(`invalid return code "${first}"`, stmt)
  try {
    return { source: stmt.source, code, text: compileTemplate(text ?? ''), hasText: text !== undefined }
  } catch (err) {
    return fail((err as Error).message, stmt)
  }
}

/** `proxy_next_upstream` values → the model; `off` anywhere on the level wins (nginx). */
function nextUpstream(flags: ReadonlySet<string>): NextUpstream {
  const off = flags.has('off')
  const statuses = new Set<number>()
  if (!off) {
    for (const flag of flags) if (flag.startsWith('http_')) statuses.add(Number(flag.slice(5)))
  }
  return {
    error: !off && flags.has('error'),
    timeout: !off && flags.has('timeout'),
    invalidHeader: !off && flags.has('invalid_header'),
    statuses,
    nonIdempotent: !off && flags.has('non_idempotent'),
  }
}


/** `admin_listen [HOST:]PORT [token=TOKEN]`. */
function adminListen(stmt: Statement): AdminListen {
  const [address, ...params] = stmt.args as [string, ...string[]]
  const m = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(address)
  const port = m ? Number(m[3]) : NaN
  if (!m || port < 1 || port > 65535) fail(`invalid value "${address}" in "admin_listen" directive, it must be [HOST:]PORT`, stmt)
  let token: string | undefined
  for (const param of params) {
    if (param.startsWith('token=') && param.length > 'token='.length) token = param.slice('token='.length)
    else fail(`invalid parameter "${param}"`, stmt)
  }
  return { host: m![1] ?? m![2] ?? '127.0.0.1', port, ...(token !== undefined ? { token } : {}) }
}
