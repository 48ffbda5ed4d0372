// Header hygiene on both sides of the proxy. Hop-by-hop headers (RFC 9110 §7.6.1) and
// every header the client names in `Connection` are dropped *before* the config's
// proxy_set_header rules run, so a client cannot strip a header the proxy adds.
import type { IncomingMessage } from 'node:http'
import { compileTemplate, type RequestVariables, type Template } from '../config/variables.js'
import type { HeaderRule } from '../config/model.js'
import { isHttp2 } from './http2.js'

/** Never forwarded in either direction (RFC 9110 §7.6.1, plus the legacy Proxy-Connection). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
])

/** Response headers nginx does not pass from the upstream by default (proxy_hide_header):
 *  it sends its own Date and Server. */
const HIDDEN_RESPONSE: ReadonlySet<string> = new Set(['date', 'server', 'x-pad', 'x-accel-expires',
  'x-accel-redirect', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset'])

/** The names a `Connection` header lists (lower-cased), minus close/keep-alive. */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (value === undefined) return null
  // The common values name no header.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return null
  let out: Set<string> | null = null
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase()
    if (token === '' || token === 'close' || token === 'keep-alive') continue
    ;(out ??= new Set()).add(token)
  }
  return out
}

/** A location's request-header rules compiled once: which client headers are replaced,
 *  which are added, and the Host value (default `$proxy_host`, as nginx). */
export class RequestHeaderPlan {
  private readonly host: Template
  /** Rules other than Host, in config order. */
  private readonly rules: readonly HeaderRule[]
  /** Lower-cased names the config sets (or removes with ""): the client's copies are dropped. */
  private readonly replaced: ReadonlySet<string>
  /** True when the config passes `Upgrade` (nginx's WebSocket recipe). */
  readonly passesUpgrade: boolean

  constructor(rules: readonly HeaderRule[]) {
    const hostRule = rules.find((r) => r.key === 'host')
    this.host = hostRule?.value ?? compileTemplate('$proxy_host')
    this.rules = rules.filter((r) => r.key !== 'host')
    this.replaced = new Set(rules.map((r) => r.key))
    this.passesUpgrade = rules.some((r) => r.key === 'upgrade')
  }

  /** Headers for the upstream request as a flat [name, value, …] list. With `upgrade`
   *  false, rules for Connection and Upgrade are left out: switchyard owns the upstream
   *  connection (kept alive) and tunnels upgrades on their own path. */
  build(req: IncomingMessage, vars: RequestVariables, upgrade: boolean): string[] {
    const out: string[] = []
    const host = this.host.evaluate(vars)
    if (host !== '') out.push('host', host)
    for (const rule of this.rules) {
      if (!upgrade && (rule.key === 'connection' || rule.key === 'upgrade')) continue
      const value = rule.value.evaluate(vars)
      // `proxy_set_header NAME ""` removes the header (nginx sends no empty headers).
      if (value !== '') out.push(rule.name, value)
    }
    const raw = req.rawHeaders
    const named = connectionTokens(req.headers.connection)
    const h2 = isHttp2(req)
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!
      const key = name.toLowerCase()
      if (HOP_BY_HOP.has(key) || key === 'host' || key === 'expect' || this.replaced.has(key)) continue
      if (named !== null && named.has(key)) continue
      // HTTP/2 pseudo-headers (RFC 9113 §8.3) and split cookies, joined below (§8.2.3).
      if (h2 && (key.charCodeAt(0) === 58 || key === 'cookie')) continue
      out.push(name, raw[i + 1]!)
    }
    if (h2 && req.headers.cookie !== undefined && !this.replaced.has('cookie')) out.push('cookie', req.headers.cookie)
    return out
  }
}

const enum Kind { Pass, Drop, Connection }

/** Response header names seen so far, as written, to what happens to them: saves a
 *  lower-casing and two set lookups per header on the hot path. Bounded. */
const kinds = new Map<string, Kind>()

function kindOf(name: string): Kind {
  let kind = kinds.get(name)
  if (kind === undefined) {
    const key = name.toLowerCase()
    kind = key === 'connection' ? Kind.Connection : HOP_BY_HOP.has(key) || HIDDEN_RESPONSE.has(key) ? Kind.Drop : Kind.Pass
    if (kinds.size < 2048) kinds.set(name, kind)
  }
  return kind
}

/** undici's raw response headers → a flat list for `res.writeHead`, without hop-by-hop
 *  headers, the ones the upstream's Connection names, and the ones nginx hides.
 *  Bytes are kept as latin1 so non-ASCII header values pass unchanged. */
export function responseHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = []
  let named: Set<string> | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const kind = kindOf(name)
    if (kind === Kind.Pass) out.push(name, raw[i + 1]!.toString('latin1'))
    else if (kind === Kind.Connection) named = connectionTokens(raw[i + 1]!.toString('latin1'))
  }
  if (named === null) return out
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    if (!named.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!)
  }
  return kept
}
