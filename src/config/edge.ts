// The client-facing directives (limits, timeouts, allow/deny, real-ip) read into
// EdgeSettings. build.ts hands every such statement to `edgeSetting` and merges levels
// with `mergeEdge`; the defaults are nginx's.
import { ConfigError, once, onOff } from './errors.js'
import { parseCidr, type Cidr } from './cidr.js'
import type { AccessRule, EdgeSettings } from './model.js'
import type { Statement } from './parser.js'
import { parseNumber, parseSize, parseTime } from './units.js'

export const DEFAULT_EDGE: EdgeSettings = {
  clientHeaderTimeout: 60_000,
  clientBodyTimeout: 60_000,
  sendTimeout: 60_000,
  keepaliveTimeout: 75_000,
  keepaliveRequests: 1000,
  largeClientHeaderBuffers: { number: 4, size: 8 * 1024 },
  access: [],
  realIp: { from: [], header: 'x-real-ip', recursive: false },
}

/** Edge settings written at one level; undefined = inherit. */
export interface EdgeDraft {
  clientHeaderTimeout?: number
  clientBodyTimeout?: number
  sendTimeout?: number
  keepaliveTimeout?: number
  keepaliveRequests?: number
  largeClientHeaderBuffers?: { number: number; size: number }
  access?: AccessRule[]
  realIpFrom?: Cidr[]
  realIpHeader?: string
  realIpRecursive?: boolean
}

/** Directive names this module reads (in http, server or location). */
export const EDGE_DIRECTIVES: ReadonlySet<string> = new Set([
  'client_header_timeout', 'client_body_timeout', 'send_timeout', 'keepalive_timeout', 'keepalive_requests',
  'large_client_header_buffers', 'allow', 'deny', 'set_real_ip_from', 'real_ip_header', 'real_ip_recursive',
])

const fail = (reason: string, stmt: Statement): never => {
  throw new ConfigError(reason, stmt.source)
}

function time(stmt: Statement): number {
  const ms = parseTime(stmt.args[0]!)
  if (ms === null) fail(`"${stmt.name}" directive invalid value`, stmt)
  return ms!
}

/** Read one edge directive into `draft`; `seen` gives nginx's "is duplicate" for the
 *  single-value ones. */
export function edgeSetting(stmt: Statement, draft: EdgeDraft, seen: Set<string>): void {
  const [arg] = stmt.args as [string]
  switch (stmt.name) {
    case 'allow':
    case 'deny': {
      const cidr = parseCidr(arg)
      if (typeof cidr === 'string') return fail(cidr, stmt)
      ;(draft.access ??= []).push({ allow: stmt.name === 'allow', cidr })
      return
    }
    case 'set_real_ip_from': {
      // nginx also takes `unix:` here; switchyard listens on no unix sockets.
      if (arg === 'unix:') return fail('"set_real_ip_from unix:" is not supported by switchyard yet', stmt)
      const cidr = parseCidr(arg)
      if (typeof cidr === 'string' || cidr.family === 0) return fail(`invalid parameter "${arg}"`, stmt)
      ;(draft.realIpFrom ??= []).push(cidr as Cidr)
      return
    }
  }
  once(stmt, seen)
  switch (stmt.name) {
    case 'client_header_timeout':
      draft.clientHeaderTimeout = time(stmt)
      return
    case 'client_body_timeout':
      draft.clientBodyTimeout = time(stmt)
      return
    case 'send_timeout':
      draft.sendTimeout = time(stmt)
      return
    case 'keepalive_timeout':
      // The second argument sets a `Keep-Alive: timeout=N` response header in nginx.
      if (stmt.args.length > 1) fail('the second parameter of the "keepalive_timeout" directive is not supported by switchyard yet', stmt)
      draft.keepaliveTimeout = time(stmt)
      return
    case 'keepalive_requests': {
      const n = parseNumber(arg)
      if (n === null) return fail('"keepalive_requests" directive invalid number', stmt)
      draft.keepaliveRequests = n!
      return
    }
    case 'large_client_header_buffers': {
      const number = parseNumber(arg)
      const size = parseSize(stmt.args[1]!)
      if (number === null || number === 0 || size === null || size === 0) return fail(`invalid value "${stmt.args.join(' ')}"`, stmt)
      draft.largeClientHeaderBuffers = { number: number!, size: size! }
      return
    }
    case 'real_ip_header':
      // `proxy_protocol` (exact, as nginx compares it) reads the PROXY protocol header of a
      // `listen … proxy_protocol` connection instead of a request header.
      draft.realIpHeader = arg === 'proxy_protocol' ? arg : arg.toLowerCase()
      return
    case 'real_ip_recursive':
      draft.realIpRecursive = onOff(stmt)
      return
  }
}

/** Fill what a level left unset from the enclosing one; `allow`/`deny` and
 *  `set_real_ip_from` are array directives: a level with any replaces the outer list. */
export function mergeEdge(inner: EdgeDraft | undefined, outer: EdgeSettings): EdgeSettings {
  if (inner === undefined) return outer
  return {
    clientHeaderTimeout: inner.clientHeaderTimeout ?? outer.clientHeaderTimeout,
    clientBodyTimeout: inner.clientBodyTimeout ?? outer.clientBodyTimeout,
    sendTimeout: inner.sendTimeout ?? outer.sendTimeout,
    keepaliveTimeout: inner.keepaliveTimeout ?? outer.keepaliveTimeout,
    keepaliveRequests: inner.keepaliveRequests ?? outer.keepaliveRequests,
    largeClientHeaderBuffers: inner.largeClientHeaderBuffers ?? outer.largeClientHeaderBuffers,
    access: inner.access ?? outer.access,
    realIp: {
      from: inner.realIpFrom ?? outer.realIp.from,
      header: inner.realIpHeader ?? outer.realIp.header,
      recursive: inner.realIpRecursive ?? outer.realIp.recursive,
    },
  }
}
