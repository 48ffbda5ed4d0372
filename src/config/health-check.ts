// NGINX Plus's active health check directives: `health_check` in a location and
// `match NAME { … }` at http level, parsed into the model (model.ts). build.ts calls these
// and ties each check to the upstream its location proxies to.
import { ConfigError } from './errors.js'
import type { HealthCheckConfig, LocationSettings, MatchConfig, MatchHeaderTest } from './model.js'
import type { Statement } from './parser.js'
import { parseNumber, parseTime } from './units.js'
import type { RequestVariables } from './variables.js'

/** A `health_check` as written, before its `match=` is resolved and the location's
 *  settings are known. */
export interface HealthCheckDraft {
  readonly stmt: Statement
  readonly interval: number
  readonly jitter: number
  readonly fails: number
  readonly passes: number
  readonly uri: string
  readonly port: number | null
  readonly match: string | null
  readonly mandatory: boolean
  readonly persistent: boolean
}

const fail = (reason: string, stmt: Statement): never => {
  throw new ConfigError(reason, stmt.source)
}

/** NGINX Plus parameters switchyard does not do yet (gRPC checks, keep-alive probes). */
const NOT_YET = /^(type=|grpc_service=|grpc_status=|keepalive_time=)/

/** `health_check [interval=T] [jitter=T] [fails=N] [passes=N] [uri=URI] [port=N]
 *  [match=NAME] [mandatory [persistent]]`. */
export function parseHealthCheck(stmt: Statement): HealthCheckDraft {
  const d = { stmt, interval: 5000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null as number | null, match: null as string | null, mandatory: false, persistent: false }
  const invalid = (text: string): never => fail(`invalid parameter "${text}"`, stmt)
  for (const text of stmt.args) {
    const eq = text.indexOf('=')
    const key = eq === -1 ? text : text.slice(0, eq)
    const value = eq === -1 ? '' : text.slice(eq + 1)
    if (eq !== -1 && (key === 'interval' || key === 'jitter')) {
      const ms = parseTime(value)
      if (ms === null || (key === 'interval' && ms === 0)) invalid(text)
      d[key] = ms!
    } else if (eq !== -1 && (key === 'fails' || key === 'passes')) {
      const n = parseNumber(value)
      if (n === null || n === 0) invalid(text)
      d[key] = n!
    } else if (eq !== -1 && key === 'port') {
      const n = parseNumber(value)
      if (n === null || n < 1 || n > 65535) invalid(text)
      d.port = n
    } else if (eq !== -1 && key === 'uri') {
      if (value === '') invalid(text)
      d.uri = value
    } else if (eq !== -1 && key === 'match') {
      if (value === '') invalid(text)
      d.match = value
    } else if (text === 'mandatory') {
      d.mandatory = true
    } else if (text === 'persistent') {
      d.persistent = true
    } else if (NOT_YET.test(text)) {
      fail(`parameter "${text}" of the "health_check" directive is not supported by switchyard yet`, stmt)
    } else {
      invalid(text)
    }
  }
  if (d.persistent && !d.mandatory) fail('"persistent" requires "mandatory"', stmt)
  return d
}

/** `match NAME { status …; header …; body …; }`. */
export function parseMatch(stmt: Statement): MatchConfig {
  let status: MatchConfig['status'] = null
  let body: MatchConfig['body'] = null
  const headers: MatchHeaderTest[] = []
  for (const child of stmt.block!) {
    if (child.block) fail(`directive "${child.name}" is not terminated by ";"`, child)
    const args = child.args
    switch (child.name) {
      case 'status': {
        if (status !== null) fail('"status" directive is duplicate', child)
        const negate = args[0] === '!'
        const codes = negate ? args.slice(1) : args
        if (codes.length === 0) fail('invalid number of arguments in "status" directive', child)
        const ranges = codes.map((code): [number, number] => {
          const m = /^([1-9][0-9]{2})(?:-([1-9][0-9]{2}))?$/.exec(code)
          if (m === null) return fail(`invalid status "${code}"`, child)
          const low = Number(m[1])
          const high = m[2] === undefined ? low : Number(m[2])
          if (high < low) fail(`invalid status "${code}"`, child)
          return [low, high]
        })
        status = { negate, ranges }
        break
      }
      case 'header': {
        headers.push(headerTest(child))
        break
      }
      case 'body': {
        if (body !== null) fail('"body" directive is duplicate', child)
        if (args.length !== 2 || (args[0] !== '~' && args[0] !== '!~')) fail('invalid number of arguments in "body" directive', child)
        body = { negate: args[0] === '!~', regex: regex(args[1]!, child) }
        break
      }
      case 'require':
      case 'send':
      case 'expect':
        fail(`"${child.name}" directive is not supported inside "match" by switchyard yet`, child)
        break
      default:
        fail(`unknown directive "${child.name}"`, child)
    }
  }
  return { name: stmt.args[0]!, source: stmt.source, status, headers, body }
}

function headerTest(stmt: Statement): MatchHeaderTest {
  const args = stmt.args
  const bad = (): never => fail('invalid number of arguments in "header" directive', stmt)
  if (args.length === 1) return { name: args[0]!.toLowerCase(), op: 'present', value: '', regex: null }
  if (args.length === 2) {
    if (args[0] !== '!') bad()
    return { name: args[1]!.toLowerCase(), op: 'absent', value: '', regex: null }
  }
  if (args.length !== 3) bad()
  const [name, op, value] = args as [string, string, string]
  if (op === '=' || op === '!=') return { name: name.toLowerCase(), op, value, regex: null }
  if (op === '~' || op === '!~') return { name: name.toLowerCase(), op, value, regex: regex(value, stmt) }
  return fail(`invalid operator "${op}"`, stmt)
}

function regex(text: string, stmt: Statement): RegExp {
  try {
    return new RegExp(text)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    return fail(`invalid regular expression "${text}": ${message.slice(message.lastIndexOf(': ') + 2)}`, stmt)
  }
}

/**
 * The full check for a location: `match=` resolved against the http block's `match`
 * blocks; timeouts from the location's proxy_connect_timeout / proxy_read_timeout; the
 * Host from its `proxy_set_header Host` evaluated with no client request (so `$host` is
 * the server name), else `$proxy_host`.
 */
export function completeHealthCheck(
  draft: HealthCheckDraft,
  settings: LocationSettings,
  serverName: string,
  matches: ReadonlyMap<string, MatchConfig>,
): HealthCheckConfig {
  const pass = settings.proxyPass
  if (pass === null) return fail('"health_check" requires "proxy_pass" in the same location', draft.stmt)
  let match: MatchConfig | null = null
  if (draft.match !== null) {
    match = matches.get(draft.match) ?? null
    if (match === null) fail(`match "${draft.match}" not found`, draft.stmt)
  }
  const rule = settings.proxySetHeaders.find((r) => r.key === 'host')
  let host = pass.proxyHost
  if (rule !== undefined) {
    const vars: RequestVariables = {
      req: { headers: {} } as RequestVariables['req'],
      remoteAddr: '', remotePort: 0, scheme: 'http', serverAddr: '', serverPort: 0,
      serverName, proxyHost: pass.proxyHost, proxyProtocol: null, path: draft.uri.split('?')[0]!, args: '',
    }
    let value = ''
    try {
      value = rule.value.constant ?? rule.value.evaluate(vars)
    } catch {
      // A variable that needs a client request: keep $proxy_host.
    }
    if (value !== '') host = value
  }
  const { stmt: _stmt, match: _match, ...rest } = draft
  return { ...rest, source: draft.stmt.source, match, connectTimeout: settings.proxyConnectTimeout, readTimeout: settings.proxyReadTimeout, host }
}

/** Two checks that would probe the same way (then locations may share one prober). */
export function sameHealthCheck(a: HealthCheckConfig, b: HealthCheckConfig): boolean {
  const key = (c: HealthCheckConfig): string =>
    JSON.stringify([c.interval, c.jitter, c.fails, c.passes, c.uri, c.port, c.match?.name ?? null, c.mandatory, c.persistent, c.connectTimeout, c.readTimeout, c.host])
  return key(a) === key(b)
}
