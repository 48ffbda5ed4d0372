// Active health checks (NGINX Plus `health_check`): one checker per upstream and config
// generation probes every peer each `interval`; `fails` consecutive failures add the
// reason `active_check` (policies then skip the peer), `passes` consecutive passes remove
// it. A pass also clears the peer's passive failures, so either check can take a peer out
// and an active pass brings it back. Transitions are reported as upstream peer events.
import { request, type IncomingHttpHeaders } from 'node:http'
import type { HealthCheckConfig, MatchConfig } from '../config/model.js'
import type { Peer } from './peer.js'
import type { Upstream } from './upstream.js'

export interface ProbeResult {
  readonly ok: boolean
  /** Why it failed (`connect refused`, `timed out`, `status 500`, `header content-type`,
   *  `body`), or what passed (`status 200`). */
  readonly reason: string
}

/** One probe of one peer. Injected in tests; `httpProbe` otherwise. */
export type Probe = (peer: Peer, check: HealthCheckConfig) => Promise<ProbeResult>

/** Timers, injected so tests drive time themselves. */
export interface Timers {
  set(fn: () => void, ms: number): unknown
  clear(handle: unknown): void
}

export const systemTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/** What the checker knows of one peer. `checking`: `mandatory` and no probe has
 *  finished yet (NGINX Plus's "checking" state). */
export interface PeerHealth {
  healthy: boolean
  checking: boolean
  /** Consecutive failed / passed probes. */
  fails: number
  passes: number
  /** Probes run, and those that failed (for the API). */
  checks: number
  failed: number
  last: ProbeResult | null
}

export interface HealthCheckerOptions {
  readonly probe?: Probe
  readonly timers?: Timers
  /** For `jitter`; Math.random by default. */
  readonly random?: () => number
  /** The same upstream's checker in the generation this one replaces: with `persistent`,
   *  peers keep the state they had there. */
  readonly previous?: HealthChecker
}

export class HealthChecker {
  readonly upstream: Upstream
  readonly check: HealthCheckConfig
  private readonly probe: Probe
  private readonly timers: Timers
  private readonly random: () => number
  private readonly health = new Map<Peer, PeerHealth>()
  private readonly handles = new Map<Peer, unknown>()
  private running = false

  constructor(upstream: Upstream, check: HealthCheckConfig, options: HealthCheckerOptions = {}) {
    this.upstream = upstream
    this.check = check
    this.probe = options.probe ?? httpProbe
    this.timers = options.timers ?? systemTimers
    this.random = options.random ?? Math.random
    for (const peer of upstream.peers) {
      const before = check.persistent ? options.previous?.healthByName(peer.name) : undefined
      const out = before !== undefined ? !before.healthy : check.mandatory
      this.health.set(peer, { healthy: !out, checking: out && before === undefined, fails: 0, passes: 0, checks: 0, failed: 0, last: null })
      // Mandatory: a new peer takes no requests until its first probe passes.
      if (out) peer.reasons.add('active_check')
    }
  }

  /** Begin probing: every peer at once (plus jitter), then every `interval` after each
   *  probe ends. Peers `down` in the config are not probed (NGINX Plus skips them). */
  start(): void {
    if (this.running) return
    this.running = true
    for (const peer of this.upstream.peers) {
      if (!peer.server.down) this.schedule(peer, 0)
    }
  }

  /** Stop probing (the generation retired); results still in flight are dropped. */
  stop(): void {
    this.running = false
    for (const handle of this.handles.values()) this.timers.clear(handle)
    this.handles.clear()
  }

  healthOf(peer: Peer): PeerHealth {
    return this.health.get(peer)!
  }

  private healthByName(name: string): PeerHealth | undefined {
    for (const [peer, h] of this.health) if (peer.name === name && !h.checking) return h
    return undefined
  }

  private schedule(peer: Peer, delay: number): void {
    const jitter = this.check.jitter === 0 ? 0 : Math.floor(this.random() * this.check.jitter)
    this.handles.set(peer, this.timers.set(() => void this.probeOnce(peer), delay + jitter))
  }

  /** Probe `peer` now and apply the result; then schedule the next probe. */
  async probeOnce(peer: Peer): Promise<void> {
    let result: ProbeResult
    try {
      result = await this.probe(peer, this.check)
    } catch (err) {
      result = { ok: false, reason: err instanceof Error ? err.message : String(err) }
    }
    if (!this.running) return
    this.apply(peer, result)
    this.schedule(peer, this.check.interval)
  }

  /** Count one probe result and report a transition (exported for tests through
   *  probeOnce; kept separate so the rule reads in one place). */
  private apply(peer: Peer, result: ProbeResult): void {
    const h = this.health.get(peer)!
    const { fails, passes } = this.check
    h.checks++
    h.last = result
    if (result.ok) {
      h.fails = 0
      h.passes++
      // An active pass clears passive failures too (max_fails).
      peer.fails = 0
      if (h.checking || (!h.healthy && h.passes >= passes)) {
        const why = h.checking ? 'first check passed' : `${h.passes}/${passes} passes`
        h.checking = false
        h.healthy = true
        peer.reasons.delete('active_check')
        this.upstream.emitPeerEvent({ peer, state: 'up', reason: why, check: 'active' })
      }
      return
    }
    h.failed++
    h.passes = 0
    h.fails++
    if (h.checking || (h.healthy && h.fails >= fails)) {
      h.checking = false
      h.healthy = false
      peer.reasons.add('active_check')
      this.upstream.emitPeerEvent({ peer, state: 'down', reason: `${result.reason}, ${Math.min(h.fails, fails)}/${fails} fails`, check: 'active' })
    }
  }
}

/** Body bytes kept for `match { body ~ … }`; the rest is read and dropped. */
export const MATCH_BODY_LIMIT = 256 * 1024

/**
 * One HTTP probe: `GET uri` with the check's Host, on a fresh connection that is closed
 * afterwards. The connect must finish within the location's proxy_connect_timeout, and
 * no gap between reads may exceed its proxy_read_timeout. The body is always read to
 * the end (kept only as far as a `match` needs it).
 */
export function httpProbe(peer: Peer, check: HealthCheckConfig): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false
    const req = request({
      host: peer.server.host,
      port: check.port ?? peer.server.port,
      method: 'GET',
      path: check.uri,
      agent: false,
      headers: { host: check.host, connection: 'close', 'user-agent': 'switchyard-health-check' },
    })
    const finish = (result: ProbeResult): void => {
      if (done) return
      done = true
      clearTimeout(connectTimer)
      req.destroy()
      resolve(result)
    }
    const connectTimer = setTimeout(() => finish({ ok: false, reason: 'connect timed out' }), check.connectTimeout)
    req.on('socket', (socket) => {
      socket.once('connect', () => {
        clearTimeout(connectTimer)
        socket.setTimeout(check.readTimeout, () => finish({ ok: false, reason: 'timed out' }))
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: describeError(err) }))
    req.on('response', (res) => {
      const keep = check.match?.body != null
      const chunks: Buffer[] = []
      let kept = 0
      res.on('data', (chunk: Buffer) => {
        if (keep && kept < MATCH_BODY_LIMIT) {
          chunks.push(chunk)
          kept += chunk.length
        }
      })
      res.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: describeError(err) }))
      res.on('end', () => {
        const body = keep ? Buffer.concat(chunks).subarray(0, MATCH_BODY_LIMIT).toString('utf8') : ''
        finish(evaluateMatch(check.match, res.statusCode ?? 0, res.headers, body))
      })
    })
    req.end()
  })
}

function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connect refused'
    case 'ECONNRESET': return 'connection reset'
    case 'EHOSTUNREACH': return 'host unreachable'
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_STATUS': return 'invalid header'
    default: return err.code ?? err.message
  }
}

/** Does a response pass? Without `match`, any 2xx or 3xx (NGINX Plus); with one, every
 *  test it has. */
export function evaluateMatch(match: MatchConfig | null, status: number, headers: IncomingHttpHeaders, body: string): ProbeResult {
  if (match === null) return { ok: status >= 200 && status < 400, reason: `status ${status}` }
  if (match.status !== null) {
    const inside = match.status.ranges.some(([low, high]) => status >= low && status <= high)
    if (inside === match.status.negate) return { ok: false, reason: `status ${status}` }
  }
  for (const test of match.headers) {
    const raw = headers[test.name]
    const value = raw === undefined ? undefined : Array.isArray(raw) ? raw.join(', ') : raw
    let ok: boolean
    switch (test.op) {
      case 'present': ok = value !== undefined; break
      case 'absent': ok = value === undefined; break
      case '=': ok = value === test.value; break
      case '!=': ok = value !== test.value; break
      case '~': ok = value !== undefined && test.regex!.test(value); break
      case '!~': ok = value === undefined || !test.regex!.test(value); break
    }
    if (!ok) return { ok: false, reason: `header ${test.name}` }
  }
  if (match.body !== null && match.body.regex.test(body) === match.body.negate) return { ok: false, reason: 'body' }
  return { ok: true, reason: `status ${status}` }
}
