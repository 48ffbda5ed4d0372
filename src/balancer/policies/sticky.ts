// nginx's sticky (open source since 1.29.6, ngx_http_upstream_sticky_module.c): session
// affinity layered over the balancing method written before it in the upstream (round
// robin when there is none). A request that names an eligible server goes there; any other
// request is balanced as usual. With `sticky cookie`, every response carries a cookie that
// names the server that answered, so a client whose server went away is re-bound to the
// new one on its next response.
import { createHash } from 'node:crypto'
import type { RequestVariables, Template } from '../../config/variables.js'
import { compileTemplate, variableGetter } from '../../config/variables.js'
import { parseTime } from '../../config/units.js'
import type { Peer } from '../../upstream/peer.js'
import type { Outcome, PickContext, Policy } from '../policy.js'

export interface StickyCookie {
  readonly name: string
  /** `expires=TIME` in seconds, `max`, or null (a session cookie). */
  readonly expires: number | 'max' | null
  /** `domain=` (may hold variables), or null. */
  readonly domain: Template | null
  /** `path=`, or null. */
  readonly path: string | null
  readonly httponly: boolean
  readonly secure: boolean
  /** `samesite=strict|lax|none` (may hold variables), or null. */
  readonly samesite: Template | null
}

export interface StickyOptions {
  /** `sticky cookie NAME …`: the cookie set on responses; null for `sticky route`. */
  readonly cookie: StickyCookie | null
  /** Variables (without `$`) whose first non-empty value names the server: `cookie_NAME`
   *  for `sticky cookie`, the listed ones for `sticky route $a $b …`. */
  readonly lookup: readonly string[]
}

/** The balancing method sticky wraps, as the registry built it. */
export interface WrappedPolicy {
  readonly method: string
  readonly policy: Policy
}

/** Methods that take nginx's sticky hint (they set `pc->sid`); with hash and ip_hash nginx
 *  logs "balancer does not support sticky" and sticky does nothing, so here too. */
const HINTED = new Set(['round_robin', 'least_conn', 'least_time', 'random', 'fair'])

const SAMESITE = ['strict', 'lax', 'none']
/** nginx's `expires=max`: a fixed date in 2037 and ten years of max-age. */
const MAX_EXPIRES = '; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000'
/** nginx's longest `route=` (the length of an MD5 in hex). */
export const MAX_ROUTE_LENGTH = 32

const d = (message: string): Error => new Error(`"sticky" directive ${message}`)

/**
 * `sticky cookie NAME [expires=TIME|max] [domain=D] [path=P] [httponly] [secure]
 * [samesite=strict|lax|none]` or `sticky route $VAR …`, with nginx's errors (`unknown
 * parameter "X"`, `"sticky" directive parameter "domain" is duplicate`, …). `sticky learn`
 * needs a shared session zone and is not supported yet.
 */
export function parseSticky(args: readonly string[]): StickyOptions {
  const [kind, ...rest] = args as [string, ...string[]]
  if (kind === 'cookie') return { cookie: parseCookie(rest), lookup: [`cookie_${rest[0]}`] }
  if (kind === 'route') {
    const lookup: string[] = []
    for (const word of rest) {
      if (!word.startsWith('$')) throw new Error(`invalid variable name "${word}"`)
      variableGetter(word.slice(1))
      lookup.push(word.slice(1))
    }
    return { cookie: null, lookup }
  }
  if (kind === 'learn') throw new Error('"sticky learn" is not supported by switchyard yet')
  throw new Error(`unknown parameter "${kind}"`)
}

function parseCookie(args: readonly string[]): StickyCookie {
  const [name, ...params] = args as [string, ...string[]]
  if (name === '') throw d('empty cookie name')
  let expires: number | 'max' | null = null
  let domain: Template | null = null
  let path: string | null = null
  let httponly = false
  let secure = false
  let samesite: Template | null = null
  const template = (text: string): Template => {
    try {
      return compileTemplate(text)
    } catch (err) {
      throw new Error((err as Error).message)
    }
  }
  for (const param of params) {
    if (param.startsWith('domain=')) {
      if (domain !== null) throw d('parameter "domain" is duplicate')
      if (param.length === 7) throw d('no value for "domain"')
      domain = template(param.slice(7))
    } else if (param.startsWith('path=')) {
      if (path !== null) throw d('parameter "path" is duplicate')
      if (param.length === 5) throw d('no value for "path"')
      path = param.slice(5)
    } else if (param.startsWith('expires=')) {
      if (expires !== null) throw d('parameter "expires" is duplicate')
      const value = param.slice(8)
      if (value === 'max') {
        expires = 'max'
      } else {
        const ms = parseTime(value, 's')
        if (ms === null) throw d('invalid "expires" parameter value')
        expires = Math.floor(ms / 1000)
      }
    } else if (param === 'httponly') {
      if (httponly) throw d('parameter "httponly" is duplicate')
      httponly = true
    } else if (param === 'secure') {
      if (secure) throw d('parameter "secure" is duplicate')
      secure = true
    } else if (param.startsWith('samesite=')) {
      if (samesite !== null) throw d('parameter "samesite" is duplicate')
      samesite = template(param.slice(9))
      if (samesite.constant !== null && !SAMESITE.includes(samesite.constant.toLowerCase())) {
        throw d('invalid "samesite" parameter value')
      }
    } else {
      throw new Error(`unknown parameter "${param}"`)
    }
  }
  return { name, expires, domain, path, httponly, secure, samesite }
}

/** The id sticky names a server by (nginx's `sid`): its `route=`, or the MD5 in hex of its
 *  printable address (`127.0.0.1:4000`, `[::1]:80`). */
export function serverId(peer: Peer): string {
  return peer.server.route !== '' ? peer.server.route : createHash('md5').update(peer.address).digest('hex')
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number): string => (n < 10 ? `0${n}` : String(n))

/** nginx's ngx_http_cookie_time: `Thu, 31-Dec-37 23:55:55 GMT`, a two-digit year up to 2037
 *  (old browsers) and four digits after. */
export function cookieTime(seconds: number): string {
  const t = new Date(seconds * 1000)
  const year = t.getUTCFullYear()
  return `${WEEKDAYS[t.getUTCDay()]}, ${two(t.getUTCDate())}-${MONTHS[t.getUTCMonth()]}-${year > 2037 ? year : two(year % 100)} ` +
    `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())} GMT`
}

class StickyPolicy implements Policy {
  private readonly inner: Policy
  /** The wrapped method takes the hint (round robin additionally keeps its weights fair). */
  private readonly hinted: boolean
  private readonly roundRobin: boolean
  private readonly lookup: ReadonlyArray<(v: RequestVariables) => string>
  private readonly cookie: StickyCookie | null
  /** Per tier, the first peer with each id (nginx searches the current tier in order). */
  private readonly primary = new Map<string, Peer>()
  private readonly backup = new Map<string, Peer>()
  private readonly ids: string[]
  /** `Set-Cookie` per peer id when it never changes (no relative expiry, no variables). */
  private readonly fixed: ReadonlyArray<readonly string[]> | null

  constructor(peers: readonly Peer[], options: StickyOptions, wrapped: WrappedPolicy) {
    this.inner = wrapped.policy
    this.hinted = HINTED.has(wrapped.method)
    this.roundRobin = wrapped.method === 'round_robin'
    this.lookup = options.lookup.map(variableGetter)
    this.cookie = options.cookie
    this.ids = peers.map(serverId)
    for (const peer of peers) {
      const map = peer.server.backup ? this.backup : this.primary
      const id = this.ids[peer.id]!
      if (!map.has(id)) map.set(id, peer)
    }
    const c = this.cookie
    const constant = c !== null && typeof c.expires !== 'number' && (c.domain === null || c.domain.constant !== null) &&
      (c.samesite === null || c.samesite.constant !== null)
    this.fixed = constant ? peers.map((p) => ['set-cookie', this.cookieFor(p, 0, null)]) : null
  }

  report(peer: Peer, outcome: Outcome, now: number): void {
    this.inner.report?.(peer, outcome, now)
  }

  pick(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
    if (this.hinted) {
      const id = this.requestedId(ctx.vars)
      if (id !== '') {
        const bound = (peers.length !== 0 && peers[0]!.server.backup ? this.backup : this.primary).get(id)
        // An ineligible (down, failed, full or already tried) bound server: balance as new.
        if (bound !== undefined && ctx.eligible(bound)) return this.pickBound(peers, bound, ctx)
      }
    }
    return this.inner.pick(peers, ctx)
  }

  pickBound(peers: readonly Peer[], peer: Peer, ctx: PickContext): Peer {
    if (this.inner.pickBound) return this.inner.pickBound(peers, peer, ctx)
    return this.roundRobin ? roundRobinBound(peers, peer, ctx) : peer
  }

  responseHeaders(peer: Peer, headerTime: number, ctx: PickContext): readonly string[] | undefined {
    const inner = this.inner.responseHeaders?.(peer, headerTime, ctx)
    if (this.cookie === null || !this.hinted) return inner
    const own = this.fixed?.[peer.id] ?? ['set-cookie', this.cookieFor(peer, Math.floor(ctx.now / 1000), ctx.vars)]
    return inner === undefined ? own : [...own, ...inner]
  }

  private requestedId(vars: RequestVariables): string {
    for (const get of this.lookup) {
      const value = get(vars)
      if (value !== '') return value
    }
    return ''
  }

  /** The cookie as nginx writes it: `NAME=ID; expires=…; max-age=…; domain=…; httponly;
   *  secure; samesite=…; path=…`. */
  private cookieFor(peer: Peer, nowSeconds: number, vars: RequestVariables | null): string {
    const c = this.cookie!
    let out = `${c.name}=${this.ids[peer.id]}`
    if (c.expires === 'max') out += MAX_EXPIRES
    else if (c.expires !== null) out += `; expires=${cookieTime(nowSeconds + c.expires)}; max-age=${c.expires}`
    const domain = c.domain === null ? '' : vars === null ? c.domain.constant! : c.domain.evaluate(vars)
    if (domain !== '') out += `; domain=${domain}`
    if (c.httponly) out += '; httponly'
    if (c.secure) out += '; secure'
    let samesite = c.samesite === null ? '' : vars === null ? c.samesite.constant! : c.samesite.evaluate(vars)
    // A value from variables that is none of the three becomes strict, as in nginx.
    if (samesite !== '' && c.samesite!.constant === null && !SAMESITE.includes(samesite.toLowerCase())) samesite = 'strict'
    if (samesite !== '') out += `; samesite=${samesite}`
    if (c.path !== null) out += `; path=${c.path}`
    return out
  }
}

/**
 * Round robin's handling of a bound request (nginx's ngx_http_upstream_get_peer with a
 * sticky hint): the bound peer is taken, and the round-robin weights move as if round
 * robin had chosen it, so unbound requests still get their share. Once the bound peer is
 * a whole round ahead (current weight at or below -(total weight - its weight)), the
 * weights are left alone.
 */
function roundRobinBound(peers: readonly Peer[], bound: Peer, ctx: PickContext): Peer {
  let tierWeight = 0
  for (const peer of peers) tierWeight += peer.weight
  if (bound.currentWeight <= -(tierWeight - bound.weight)) return bound
  let total = 0
  for (const peer of peers) {
    if (!ctx.eligible(peer)) continue
    peer.currentWeight += peer.effectiveWeight
    total += peer.effectiveWeight
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++
  }
  bound.currentWeight -= total
  return bound
}

/** `sticky` over `wrapped` (round robin when the upstream names no other method). */
export function sticky(peers: readonly Peer[], options: StickyOptions, wrapped: WrappedPolicy): Policy {
  return new StickyPolicy(peers, options, wrapped)
}
