// The runtime JSON API, in NGINX Plus's shape: every upstream and peer with its state,
// the reasons it is out and its counters; and changes without a reload (weight, down,
// drain) through PATCH. Read-only views over the same state the request path uses.
import { z } from 'zod'
import type { UpstreamConfig } from '../config/model.js'
import type { Peer, UnavailableReason } from '../upstream/peer.js'
import type { Upstream } from '../upstream/upstream.js'
import { histogramQuantile } from '../upstream/stats.js'

export type PeerState = 'up' | 'down' | 'draining' | 'unhealthy' | 'unavail'

/** The coarse state NGINX Plus reports, derived from the set of reasons. */
export function stateOf(reasons: readonly UnavailableReason[]): PeerState {
  if (reasons.includes('config_down') || reasons.includes('api_down')) return 'down'
  if (reasons.includes('draining')) return 'draining'
  if (reasons.includes('active_check')) return 'unhealthy'
  if (reasons.includes('max_fails')) return 'unavail'
  return 'up'
}

export type PeerView = ReturnType<typeof peerView>
export type UpstreamView = ReturnType<typeof upstreamView>

export function peerView(peer: Peer, now: number) {
  const reasons = peer.unavailableReasons(now)
  const s = peer.stats
  return {
    id: peer.id,
    server: peer.name,
    name: peer.address,
    backup: peer.server.backup,
    weight: peer.weight,
    state: stateOf(reasons),
    reasons,
    active: peer.active,
    requests: s.requests,
    responses: s.responseClasses(),
    fails: s.fails,
    unavail: s.unavail,
    max_fails: peer.maxFails,
    fail_timeout: peer.failTimeout,
    max_conns: peer.maxConns,
    response_time: s.latencyCount === 0 ? null : Math.round((s.latencySum / s.latencyCount) * 1000 * 10) / 10,
    /** Samples behind response_time, so workers' views can be merged. */
    response_count: s.latencyCount,
    ...percentiles(s.latency),
    /** The response-time histogram: counts per LATENCY_BUCKETS bound, then +Inf (for
     *  merging workers' views and for percentiles over a window). */
    response_buckets: [...s.latency],
  }
}

/** p50/p99 in ms (0.1 ms steps) from a histogram; null without samples. */
function percentiles(buckets: ArrayLike<number>): { response_time_p50: number | null; response_time_p99: number | null } {
  const ms = (q: number): number | null => {
    const s = histogramQuantile(buckets, q)
    return s === null ? null : Math.round(s * 10_000) / 10
  }
  return { response_time_p50: ms(0.5), response_time_p99: ms(0.99) }
}

/** One view of an upstream from several workers' views: counters add up, a reason held
 *  by any worker is reported, the state follows from the reasons. */
export function mergeUpstreamViews(views: readonly UpstreamView[]): UpstreamView {
  const first = views[0]!
  const retries: Record<string, number> = {}
  for (const v of views) for (const [cause, n] of Object.entries(v.retries)) retries[cause] = (retries[cause] ?? 0) + n
  return {
    ...first,
    retries,
    failovers: views.reduce((n, v) => n + v.failovers, 0),
    peers: first.peers.map((p, i) => {
      const all = views.map((v) => v.peers[i]!)
      const reasons = [...new Set(all.flatMap((x) => x.reasons))]
      const sum = (f: (x: PeerView) => number): number => all.reduce((n, x) => n + f(x), 0)
      const count = sum((x) => x.response_count)
      const responses = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, total: 0 }
      for (const x of all) for (const k of Object.keys(responses) as Array<keyof typeof responses>) responses[k] += x.responses[k]
      const buckets = p.response_buckets.map((_, b) => sum((x) => x.response_buckets[b] ?? 0))
      return {
        ...p,
        reasons,
        state: stateOf(reasons),
        active: sum((x) => x.active),
        requests: sum((x) => x.requests),
        responses,
        fails: sum((x) => x.fails),
        unavail: sum((x) => x.unavail),
        response_count: count,
        response_time: count === 0 ? null : Math.round((sum((x) => (x.response_time ?? 0) * x.response_count) / count) * 10) / 10,
        ...percentiles(buckets),
        response_buckets: buckets,
      }
    }),
  }
}

export function upstreamView(upstream: Upstream, now: number) {
  return {
    name: upstream.name,
    balancer: upstream.config.balancer.method,
    keepalive: upstream.config.keepalive,
    retries: Object.fromEntries(upstream.stats.retries),
    failovers: upstream.stats.failovers,
    peers: upstream.peers.map((p) => peerView(p, now)),
  }
}

/** A PATCH body: at least one of weight, down, drain. */
export const PeerChange = z.strictObject({
  weight: z.number().int().min(1).max(1_000_000).optional(),
  down: z.boolean().optional(),
  drain: z.literal(true).optional(),
}).refine((c) => c.weight !== undefined || c.down !== undefined || c.drain !== undefined, {
  message: 'expected at least one of "weight", "down", "drain"',
})
export type PeerChange = z.infer<typeof PeerChange>

/** Apply a change to a live peer. `down: false` also ends a drain. */
export function applyChange(peer: Peer, change: PeerChange): void {
  if (change.weight !== undefined) {
    // Through setWeight, so a slow start in progress ramps toward the new weight.
    peer.setWeight(change.weight)
    peer.currentWeight = 0
  }
  if (change.down === true) peer.reasons.add('api_down')
  if (change.down === false) {
    peer.reasons.delete('api_down')
    peer.reasons.delete('draining')
  }
  if (change.drain === true) peer.reasons.add('draining')
}

/** What the API has set on a peer, as one change that recreates it on a fresh peer. */
export function apiState(peer: Peer): PeerChange {
  return { weight: peer.weight, down: peer.reasons.has('api_down'), ...(peer.reasons.has('draining') ? { drain: true as const } : {}) }
}

/** One-line description of a change, for the log and the response. */
export function describeChange(change: PeerChange): string {
  return Object.entries(change).map(([k, v]) => `${k}=${v}`).join(' ')
}

/** Do two configs of an upstream have the same servers (so API changes carry over)? */
export function sameServers(a: UpstreamConfig, b: UpstreamConfig): boolean {
  const key = (u: UpstreamConfig): string =>
    JSON.stringify([u.balancer.method, u.servers.map((s) => [s.name, s.host, s.port, s.weight, s.backup, s.down, s.maxFails, s.failTimeout, s.maxConns])])
  return key(a) === key(b)
}
