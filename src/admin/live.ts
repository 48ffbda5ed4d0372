// The dashboard's view of time: it compares consecutive snapshots of the API's views
// (one per tick) and derives rates, shares over a window, percentiles over a window and
// events (state changes, weight changes, retries, reloads). Working from snapshots needs
// nothing from the request path and nothing new over the workers' IPC: with workers the
// snapshot is the primary's merged view.
import type { UpstreamView } from './api.js'
import { histogramQuantile } from '../upstream/stats.js'
import { describeReasons, describeRetries } from './dashboard/describe.js'
import type { LiveEvent, LiveFrame, LiveHello, LivePeer, LivePoint, LiveUpstream } from './dashboard/wire.js'

/** Config reloads so far, by outcome. */
export interface ReloadCounts {
  readonly ok: number
  readonly error: number
}

export interface LiveStateOptions {
  /** ms between ticks (told to the page). Default 1000. */
  readonly interval?: number
  /** Seconds the share, error rate and percentiles cover. Default 10. */
  readonly window?: number
  /** Points of requests/s history kept. Default 300 (5 minutes at 1 s). */
  readonly history?: number
  /** Events kept. Default 200. */
  readonly events?: number
}

/** Cumulative counters of one server at one tick. */
interface Counters {
  readonly requests: number
  /** Attempts that ended with no response header (error, timeout, invalid header). */
  readonly unanswered: number
  readonly errors5xx: number
  readonly buckets: readonly number[]
}

interface Snapshot {
  readonly t: number
  readonly upstreams: Readonly<Record<string, UpstreamView>>
  readonly reloads: ReloadCounts
}

export class LiveState {
  readonly interval: number
  readonly window: number
  private readonly historyLength: number
  private readonly eventLimit: number
  private previous: Snapshot | null = null
  /** Per upstream: counters by server at each tick inside the window, oldest first. */
  private readonly ticks = new Map<string, Array<{ t: number; servers: Map<string, Counters> }>>()
  private readonly history: LivePoint[] = []
  private readonly events: LiveEvent[] = []
  private latest: LiveFrame | null = null

  constructor(options: LiveStateOptions = {}) {
    this.interval = options.interval ?? 1000
    this.window = options.window ?? 10
    this.historyLength = options.history ?? 300
    this.eventLimit = options.events ?? 200
  }

  /** Nobody is watching: the next snapshot starts afresh (no rates or events from a
   *  comparison with a stale one; the history shows a gap; no frame until then). */
  pause(): void {
    this.previous = null
    this.ticks.clear()
    // Its numbers are stale: a page that connects waits for the next (immediate) tick.
    this.latest = null
  }

  /** Take the snapshot of tick `t` (ms) and return what the page needs of it. */
  update(t: number, upstreams: Readonly<Record<string, UpstreamView>>, reloads: ReloadCounts): LiveFrame {
    const previous = this.previous
    const events: LiveEvent[] = []
    const point: Record<string, Record<string, number>> = {}
    const out: LiveUpstream[] = []
    const seconds = previous === null ? 0 : (t - previous.t) / 1000

    if (previous !== null) {
      const ok = reloads.ok - previous.reloads.ok
      const failed = reloads.error - previous.reloads.error
      if (ok > 0) events.push({ t, kind: 'reload', text: ok === 1 ? 'configuration reloaded' : `configuration reloaded ${ok} times` })
      if (failed > 0) events.push({ t, kind: 'reload', text: `${failed === 1 ? 'a reload' : `${failed} reloads`} failed; the running configuration stays` })
      for (const name of Object.keys(previous.upstreams)) {
        if (!Object.hasOwn(upstreams, name)) events.push({ t, kind: 'servers', upstream: name, text: `upstream ${name} removed` })
      }
    }

    for (const [name, view] of Object.entries(upstreams)) {
      const before = previous !== null && Object.hasOwn(previous.upstreams, name) ? previous.upstreams[name]! : undefined
      const servers = view.peers.map((p) => p.server)
      const sameServers = before !== undefined && before.peers.length === servers.length && before.peers.every((p, i) => p.server === servers[i])
      if (previous !== null && before === undefined) {
        events.push({ t, kind: 'servers', upstream: name, text: `upstream ${name} added: ${servers.join(', ')}` })
      } else if (before !== undefined && !sameServers) {
        events.push({ t, kind: 'servers', upstream: name, text: `upstream ${name} now has ${servers.join(', ')} (was ${before.peers.map((p) => p.server).join(', ')})` })
      }
      // Counters start again with a new config generation (and when a worker is
      // replaced): no rates across such a step.
      const continuous = sameServers && view.peers.every((p, i) => p.requests >= before!.peers[i]!.requests)
      if (!continuous) this.ticks.delete(name)

      const counters = new Map(view.peers.map((p) => [p.server, countersOf(p)]))
      const ticks = this.ticks.get(name) ?? []
      ticks.push({ t, servers: counters })
      while (ticks.length > 1 && t - ticks[0]!.t > this.window * 1000) ticks.shift()
      this.ticks.set(name, ticks)
      const first = ticks[0]!

      if (before !== undefined && sameServers) {
        view.peers.forEach((p, i) => events.push(...peerEvents(t, name, before.peers[i]!, p)))
        if (continuous) {
          const retries: Record<string, number> = {}
          for (const [cause, n] of Object.entries(view.retries)) {
            const d = n - (before.retries[cause] ?? 0)
            if (d > 0) retries[cause] = d
          }
          const failovers = Math.max(0, view.failovers - before.failovers)
          const text = describeRetries(retries, failovers)
          if (text !== '') events.push({ t, kind: 'retry', upstream: name, text })
        }
      }

      const configured = view.peers.filter((p) => !p.backup && !p.reasons.includes('config_down')).reduce((sum, p) => sum + p.weight, 0)
      const total = view.peers.reduce((sum, p) => sum + delta(first.servers.get(p.server), counters.get(p.server)!).requests, 0)
      const rates: Record<string, number> = {}
      const peers = view.peers.map((p, i): LivePeer => {
        const rps = continuous && seconds > 0 ? round((p.requests - before!.peers[i]!.requests) / seconds, 1) : null
        if (rps !== null) rates[p.server] = rps
        const d = delta(first.servers.get(p.server), counters.get(p.server)!)
        const ms = (q: number): number | null => {
          const s = histogramQuantile(d.buckets, q)
          return s === null ? null : round(s * 1000, 1)
        }
        return {
          id: p.id,
          server: p.server,
          name: p.name,
          backup: p.backup,
          weight: p.weight,
          state: p.state,
          reasons: p.reasons,
          active: p.active,
          requests: p.requests,
          rps,
          share: total === 0 ? null : round(d.requests / total, 4),
          weight_share: p.backup || p.reasons.includes('config_down') || configured === 0 ? 0 : round(p.weight / configured, 4),
          error_rate: d.requests === 0 ? null : round(Math.min(1, (d.errors5xx + d.unanswered) / d.requests), 4),
          p50: ms(0.5),
          p99: ms(0.99),
          response_time: p.response_time,
          max_fails: p.max_fails,
          fail_timeout: p.fail_timeout,
          max_conns: p.max_conns,
        }
      })
      if (Object.keys(rates).length > 0) point[name] = rates
      out.push({
        name,
        balancer: view.balancer,
        rps: Object.keys(rates).length === 0 ? null : round(peers.reduce((sum, p) => sum + (p.rps ?? 0), 0), 1),
        retries: view.retries,
        failovers: view.failovers,
        peers,
      })
    }

    this.previous = { t, upstreams, reloads }
    this.push(this.history, { t, rps: point }, this.historyLength)
    for (const e of events) this.push(this.events, e, this.eventLimit)
    const windowSeconds = Math.max(0, ...[...this.ticks.values()].map((ticks) => (t - ticks[0]!.t) / 1000))
    this.latest = { t, window: round(windowSeconds, 1), upstreams: out, events }
    return this.latest
  }

  /** What a client that connects now is told first. */
  hello(tokenRequired: boolean): LiveHello {
    return {
      interval: this.interval,
      window: this.window,
      token_required: tokenRequired,
      history: [...this.history],
      events: [...this.events],
      frame: this.latest,
    }
  }

  private push<T>(list: T[], item: T, limit: number): void {
    list.push(item)
    if (list.length > limit) list.splice(0, list.length - limit)
  }
}

function countersOf(p: UpstreamView['peers'][number]): Counters {
  return {
    requests: p.requests,
    // Attempts still running are in `requests` but not yet answered (and one whose body
    // is still streaming is in both `responses` and `active`): clamped where used.
    unanswered: p.requests - p.responses.total - p.active,
    errors5xx: p.responses['5xx'],
    buckets: p.response_buckets,
  }
}

/** Counters of `now` minus those of `then` (everything when the server is new). */
function delta(then: Counters | undefined, now: Counters): Counters {
  if (then === undefined) return { ...now, unanswered: Math.max(0, now.unanswered) }
  return {
    requests: now.requests - then.requests,
    unanswered: Math.max(0, now.unanswered - Math.max(0, then.unanswered)),
    errors5xx: now.errors5xx - then.errors5xx,
    buckets: now.buckets.map((n, i) => n - (then.buckets[i] ?? 0)),
  }
}

function peerEvents(t: number, upstream: string, before: UpstreamView['peers'][number], now: UpstreamView['peers'][number]): LiveEvent[] {
  const events: LiveEvent[] = []
  const reasonsChanged = before.reasons.length !== now.reasons.length || before.reasons.some((r) => !now.reasons.includes(r))
  if (before.state !== now.state || reasonsChanged) {
    const why = describeReasons(now)
    let text = before.state === now.state ? `${now.server}: ${now.state}` : `${now.server}: ${before.state} → ${now.state}`
    if (why.length > 0) text += ` (${why.join('; ')})`
    else if (before.reasons.includes('max_fails')) text += ' (fail_timeout over: taking requests again)'
    else if (before.reasons.includes('active_check')) text += ' (health check passed: taking requests again)'
    events.push({ t, kind: 'state', upstream, server: now.server, from: before.state, to: now.state, reasons: now.reasons, text })
  }
  // Slow start moves the weight in fractions every tick; only whole changes (the API's)
  // are events.
  if (before.weight !== now.weight && Number.isInteger(before.weight) && Number.isInteger(now.weight)) {
    events.push({ t, kind: 'weight', upstream, server: now.server, from: String(before.weight), to: String(now.weight), text: `${now.server}: weight ${before.weight} → ${now.weight}` })
  }
  return events
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}
