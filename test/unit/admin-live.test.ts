// The dashboard's data: latency percentiles from the histogram, and what comparing
// consecutive API snapshots yields (rates, shares and percentiles over the window, events).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mergeUpstreamViews, peerView, upstreamView, type UpstreamView } from '../../src/admin/api.js'
import { LiveState } from '../../src/admin/live.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { histogramQuantile, LATENCY_BUCKETS } from '../../src/upstream/stats.js'
import { upstreamConfig } from '../helpers/upstream-config.js'

const buckets = (counts: Record<number, number>): number[] => Array.from({ length: LATENCY_BUCKETS.length + 1 }, (_, i) => counts[i] ?? 0)

// Interpolated inside the bucket like Prometheus's histogram_quantile; +Inf reports the top bound.
const quantiles: Array<[what: string, counts: number[], q: number, seconds: number | null]> = [
  ['no samples', buckets({}), 0.5, null],
  ['all under 5 ms: the bucket middle', buckets({ 0: 10 }), 0.5, 0.0025],
  ['half in 5-10 ms, half in 10-25 ms: p50 at 10 ms', buckets({ 1: 5, 2: 5 }), 0.5, 0.01],
  ['p99 of 100 with 99 fast: the fast bucket\'s top', buckets({ 0: 99, 7: 1 }), 0.99, 0.005],
  ['p99 of 100 with two slow: halfway into 0.5-1 s', buckets({ 0: 98, 7: 2 }), 0.99, 0.75],
  ['beyond the last bound', buckets({ [LATENCY_BUCKETS.length]: 3 }), 0.5, 10],
]
for (const [what, counts, q, seconds] of quantiles) {
  test(`histogramQuantile: ${what}`, () => {
    const got = histogramQuantile(counts, q)
    if (seconds === null) assert.equal(got, null)
    else assert.ok(Math.abs(got! - seconds) < 1e-9, `${got} ≠ ${seconds}`)
  })
}

// The API's peer view carries the histogram and its p50/p99; merging workers adds buckets.
test('peer views carry p50/p99 and buckets, and merge across workers', () => {
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1' }]))
  const peer = upstream.peers[0]!
  for (let i = 0; i < 9; i++) peer.stats.response(200, 0.003)
  peer.stats.response(200, 0.02)
  const view = peerView(peer, 0)
  assert.equal(view.response_time_p50, 2.8)
  assert.equal(view.response_buckets.length, LATENCY_BUCKETS.length + 1)
  const merged = mergeUpstreamViews([upstreamView(upstream, 0), upstreamView(upstream, 0)]).peers[0]!
  assert.equal(merged.response_buckets[0], 18)
  assert.equal(merged.response_buckets[2], 2)
  assert.equal(merged.response_time_p50, view.response_time_p50)
  assert.equal(merged.response_time_p99, view.response_time_p99)
})

// ── LiveState, driven by hand-made snapshots ──────────────────────────────────────────

type PeerSpec = { requests?: number; total?: number; x5?: number; active?: number; reasons?: string[]; weight?: number; fast?: number }

/** A one-upstream snapshot: servers a, b, c with weights 3/5/2 unless told otherwise. */
function snapshot(peers: PeerSpec[], extra: Partial<UpstreamView> = {}, servers = ['a:1', 'b:1', 'c:1']): Record<string, UpstreamView> {
  const upstream = new Upstream(upstreamConfig(servers.map((name, i) => ({ name, weight: [3, 5, 2][i] ?? 1 }))))
  const view = upstreamView(upstream, 0)
  return {
    u: {
      ...view,
      ...extra,
      peers: view.peers.map((p, i) => {
        const s = peers[i] ?? {}
        const requests = s.requests ?? 0
        const reasons = (s.reasons ?? []) as typeof p.reasons
        const state = reasons.includes('max_fails') ? 'unavail' as const : reasons.includes('draining') ? 'draining' as const : reasons.length > 0 ? 'down' as const : 'up' as const
        return {
          ...p,
          weight: s.weight ?? p.weight,
          requests,
          active: s.active ?? 0,
          reasons,
          state,
          responses: { ...p.responses, '5xx': s.x5 ?? 0, total: s.total ?? requests },
          response_buckets: buckets({ 0: s.fast ?? s.total ?? requests }),
        }
      }),
    },
  }
}

const reloads = { ok: 0, error: 0 }

// The first snapshot has nothing to compare with: no rates, no share, no events.
test('live: the first tick has no rates and no events', () => {
  const live = new LiveState()
  const frame = live.update(1000, snapshot([{ requests: 30 }, { requests: 50 }, { requests: 20 }]), reloads)
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.rps), [null, null, null])
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.share), [null, null, null])
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.weight_share), [0.3, 0.5, 0.2])
  assert.deepEqual(frame.events, [])
})

// Rates per tick, shares over the window beside the weight shares, errors over the window.
test('live: rates, shares and error rates from the counters\' steps', () => {
  const live = new LiveState()
  live.update(1000, snapshot([{}, {}, {}]), reloads)
  const frame = live.update(2000, snapshot([{ requests: 30 }, { requests: 50, total: 48, x5: 3 }, { requests: 20 }]), reloads)
  const peers = frame.upstreams[0]!.peers
  assert.deepEqual(peers.map((p) => p.rps), [30, 50, 20])
  assert.deepEqual(peers.map((p) => p.share), [0.3, 0.5, 0.2])
  assert.deepEqual(peers.map((p) => p.error_rate), [0, 0.1, 0])
  assert.equal(frame.upstreams[0]!.rps, 100)
  assert.equal(frame.window, 1)
  assert.deepEqual(peers.map((p) => p.p50), [2.5, 2.5, 2.5])
})

// The share covers only the window: old traffic drops out of it.
test('live: the share is over the last `window` seconds only', () => {
  const live = new LiveState({ window: 2 })
  live.update(0, snapshot([{}, {}, {}]), reloads)
  live.update(1000, snapshot([{ requests: 100 }, {}, {}]), reloads)
  live.update(2000, snapshot([{ requests: 100 }, { requests: 10 }, {}]), reloads)
  const frame = live.update(3000, snapshot([{ requests: 100 }, { requests: 20 }, { requests: 20 }]), reloads)
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.share), [0, 0.5, 0.5])
  assert.equal(frame.window, 2)
})

// A server taken out, with nginx's reason, and back; a weight set through the API.
test('live: state and weight changes become events', () => {
  const live = new LiveState()
  live.update(0, snapshot([{}, {}, {}]), reloads)
  let frame = live.update(1000, snapshot([{}, { reasons: ['max_fails'] }, {}]), reloads)
  assert.equal(frame.events.length, 1)
  assert.deepEqual({ ...frame.events[0]!, t: 0 }, {
    t: 0, kind: 'state', upstream: 'u', server: 'b:1', from: 'up', to: 'unavail', reasons: ['max_fails'],
    text: 'b:1: up → unavail (max_fails 1/1, out for fail_timeout 10s)',
  })
  frame = live.update(2000, snapshot([{ weight: 4 }, {}, {}]), reloads)
  assert.deepEqual(frame.events.map((e) => e.text), ['a:1: weight 3 → 4', 'b:1: unavail → up (fail_timeout over: taking requests again)'])
  // slow_start moves the weight in fractions: not an event.
  frame = live.update(3000, snapshot([{ weight: 4.5 }, {}, {}]), reloads)
  assert.deepEqual(frame.events, [])
})

// Retries and failovers in a tick, and reloads, are events.
test('live: retries, failovers and reloads become events', () => {
  const live = new LiveState()
  live.update(0, snapshot([{}, {}, {}], { retries: { error: 1 }, failovers: 1 }), reloads)
  const frame = live.update(1000, snapshot([{}, {}, {}], { retries: { error: 3, timeout: 1 }, failovers: 3 }), { ok: 1, error: 1 })
  assert.deepEqual(frame.events.map((e) => [e.kind, e.text]), [
    ['reload', 'configuration reloaded'],
    ['reload', 'a reload failed; the running configuration stays'],
    ['retry', '3 retries (error ×2, timeout ×1), 2 failovers'],
  ])
})

// A reload starts the counters again: no rates or retry events across it; new servers say so.
test('live: counters that start again (reload) give no rates; other servers are an event', () => {
  const live = new LiveState()
  live.update(0, snapshot([{ requests: 100 }, { requests: 100 }, { requests: 100 }], { failovers: 5 }), reloads)
  let frame = live.update(1000, snapshot([{ requests: 2 }, { requests: 3 }, { requests: 1 }], { failovers: 0 }), { ok: 1, error: 0 })
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.rps), [null, null, null])
  assert.deepEqual(frame.events.map((e) => e.kind), ['reload'])
  frame = live.update(2000, snapshot([{ requests: 4 }, { requests: 6 }], {}, ['a:1', 'd:1']), reloads)
  assert.deepEqual(frame.events.map((e) => e.text), ['upstream u now has a:1, d:1 (was a:1, b:1, c:1)'])
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.rps), [null, null])
})

// After a pause (nobody watching) nothing is compared with the stale snapshot, and the
// history shows the gap; a client connecting gets the history and the events so far.
test('live: a pause leaves a gap, and hello carries history and events', () => {
  const live = new LiveState()
  live.update(0, snapshot([{}, {}, {}]), reloads)
  live.update(1000, snapshot([{ requests: 10 }, { reasons: ['max_fails'] }, {}]), reloads)
  live.pause()
  assert.equal(live.hello(false).frame, null, 'no stale frame')
  const frame = live.update(60_000, snapshot([{ requests: 500 }, {}, {}]), reloads)
  assert.deepEqual(frame.events, [])
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.rps), [null, null, null])
  const hello = live.hello(true)
  assert.equal(hello.token_required, true)
  assert.deepEqual(hello.history.map((p) => p.rps), [{}, { u: { 'a:1': 10, 'b:1': 0, 'c:1': 0 } }, {}])
  assert.deepEqual(hello.events.map((e) => e.to), ['unavail'])
  assert.equal(hello.frame, frame)
})

// History and events are bounded.
test('live: history and events are bounded', () => {
  const live = new LiveState({ history: 5, events: 3 })
  for (let i = 0; i < 20; i++) live.update(i * 1000, snapshot([{ reasons: i % 2 === 0 ? [] : ['api_down'] }, {}, {}]), reloads)
  const hello = live.hello(false)
  assert.equal(hello.history.length, 5)
  assert.equal(hello.events.length, 3)
})

// Backup servers and servers down in the config take no share of the weights.
test('live: weight shares count only primary servers not down in the config', () => {
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', weight: 1 }, { name: 'b:1', weight: 3 }, { name: 'c:1', weight: 5, backup: true }, { name: 'd:1', weight: 2, down: true }]))
  const frame = new LiveState().update(0, { u: upstreamView(upstream, 0) }, reloads)
  assert.deepEqual(frame.upstreams[0]!.peers.map((p) => p.weight_share), [0.25, 0.75, 0, 0])
})
