// A location that proxies, compiled once per config generation: its settings, the
// upstream, the header plan, one connection pool per peer (for this location's connect
// timeout) and nginx's proxy_pass URI rule.
import type { Pool } from 'undici'
import type { Location, LocationSettings } from '../config/model.js'
import { normalizeUri } from '../config/variables.js'
import type { Upstream } from '../upstream/upstream.js'
import { RequestHeaderPlan } from './headers.js'
import { needsNormalizing } from './router.js'
import type { RequestVars } from './request-vars.js'

export class ProxyTarget {
  readonly location: Location | null
  readonly settings: LocationSettings
  readonly upstream: Upstream
  readonly headers: RequestHeaderPlan
  /** Indexed by `peer.id`. */
  readonly pools: readonly Pool[]
  /** WebSocket-style upgrades are tunnelled only with nginx's recipe: HTTP/1.1 upstream
   *  and the Upgrade header passed on by proxy_set_header. */
  readonly canUpgrade: boolean
  readonly proxyHost: string
  /** `keepalive_requests` 0 or 1 in the upstream: every upstream connection carries one
   *  request. */
  readonly closeAfterEach: boolean
  private readonly prefix: string
  private readonly uri: string | null

  constructor(location: Location | null, settings: LocationSettings, upstream: Upstream, pools: readonly Pool[]) {
    const pass = settings.proxyPass!
    this.location = location
    this.settings = settings
    this.upstream = upstream
    this.pools = pools
    this.headers = new RequestHeaderPlan(settings.proxySetHeaders)
    this.canUpgrade = settings.proxyHttpVersion === '1.1' && this.headers.passesUpgrade
    this.proxyHost = pass.proxyHost
    this.closeAfterEach = upstream.config.keepaliveRequests <= 1
    this.uri = pass.uri
    this.prefix = location !== null && (location.modifier === '' || location.modifier === '^~' || location.modifier === '=') ? location.path : ''
  }

  /** The request target sent upstream. Without a URI part in proxy_pass the client's
   *  target goes unchanged; with one, the part of the path that matched the location
   *  is replaced by it (nginx's rule). */
  upstreamPath(vars: RequestVars): string {
    if (this.uri === null) return vars.req.url ?? '/'
    let path = vars.path
    if (needsNormalizing(path)) path = escapeUri(normalizeUri(path))
    const rest = path.startsWith(this.prefix) ? path.slice(this.prefix.length) : path
    const query = vars.args === '' ? '' : `?${vars.args}`
    return this.uri + rest + query
  }
}

/** Re-escape a decoded path for the wire (the characters nginx's NGX_ESCAPE_URI escapes). */
function escapeUri(path: string): string {
  return encodeURI(path).replace(/[?#]/g, (c) => (c === '?' ? '%3F' : '%23'))
}
