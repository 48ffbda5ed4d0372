// The active health checker on an injected clock and probe: fails/passes thresholds, the
// `active_check` reason, mandatory, persistent, passive failures cleared by a pass, the
// events it reports, and `match` evaluation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HealthCheckConfig, MatchConfig, UpstreamConfig } from '../../src/config/model.js'
import { evaluateMatch, HealthChecker, type ProbeResult, type Timers } from '../../src/upstream/health-check.js'
import { Upstream, type PeerEvent } from '../../src/upstream/upstream.js'
import { DEFAULT_POLICY, policyDefinition } from '../../src/balancer/registry.js'

const src = { file: 'test.conf', line: 1 }

function upstream(n = 2): Upstream {
  const config: UpstreamConfig = {
    name: 'u', source: src, implicit: false,
    balancer: { method: DEFAULT_POLICY, options: policyDefinition(DEFAULT_POLICY)!.parse([]), source: null },
    servers: Array.from({ length: n }, (_, i) => ({
      name: `127.0.0.1:${4000 + i}`, host: '127.0.0.1', port: 4000 + i, weight: 1, maxFails: 1, failTimeout: 10_000,
      maxConns: 0, slowStart: 0, route: '', backup: false, down: false, source: src,
    })),
    keepalive: null, keepaliveTimeout: 60_000, keepaliveRequests: 1000, keepaliveTime: 3_600_000,
  }
  return new Upstream(config)
}

const check = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  source: src, interval: 5000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null, match: null, mandatory: false,
  persistent: false, connectTimeout: 1000, readTimeout: 1000, host: 'u', ...over,
})

/** Timers on a fake clock: `advance(ms)` fires what is due, in order. */
class FakeTimers implements Timers {
  now = 0
  private queue: Array<{ at: number; fn: () => void; id: number }> = []
  private next = 0
  set(fn: () => void, ms: number): unknown {
    const id = this.next++
    this.queue.push({ at: this.now + ms, fn, id })
    return id
  }
  clear(handle: unknown): void {
    this.queue = this.queue.filter((t) => t.id !== handle)
  }
  get pending(): number {
    return this.queue.length
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at || a.id - b.id)
      const t = this.queue[0]
      if (t === undefined || t.at > end) break
      this.queue.shift()
      this.now = t.at
      t.fn()
      // Let the probe's promise settle and the next probe be scheduled.
      for (let i = 0; i < 5; i++) await Promise.resolve()
    }
    this.now = end
  }
}

/** A probe whose answer per peer port the test sets; counts probes. */
function scripted(): { probe: (p: { server: { port: number } }) => Promise<ProbeResult>; set(port: number, r: ProbeResult): void; count: Map<number, number> } {
  const answers = new Map<number, ProbeResult>()
  const count = new Map<number, number>()
  return {
    probe: async (p) => {
      count.set(p.server.port, (count.get(p.server.port) ?? 0) + 1)
      return answers.get(p.server.port) ?? { ok: true, reason: 'status 200' }
    },
    set: (port, r) => answers.set(port, r),
    count,
  }
}

const REFUSED: ProbeResult = { ok: false, reason: 'connect refused' }
const OK: ProbeResult = { ok: true, reason: 'status 200' }

function setup(over: Partial<HealthCheckConfig> = {}, n = 2) {
  const u = upstream(n)
  const timers = new FakeTimers()
  const probe = scripted()
  const events: string[] = []
  u.onPeerEvent((e: PeerEvent) => events.push(`${e.peer.address} ${e.state} (${e.check}: ${e.reason})`))
  const checker = new HealthChecker(u, check(over), { probe: probe.probe as never, timers, random: () => 0.5 })
  return { u, timers, probe, events, checker, a: u.peers[0]!, b: u.peers[1]! }
}

// fails=2: one failed probe is not enough, the second takes the peer out with the reason
// and one event worded as the issue asks.
test('fails consecutive failures add active_check; the event says why and how many', async () => {
  const { timers, probe, events, checker, a, b } = setup({ fails: 2 })
  checker.start()
  await timers.advance(0)
  assert.deepEqual(probe.count.get(4000), 1)
  probe.set(4000, REFUSED)
  await timers.advance(5000)
  assert.equal(a.available(0), true, 'one failure of two')
  await timers.advance(5000)
  assert.equal(a.available(0), false)
  assert.deepEqual(a.unavailableReasons(0), ['active_check'])
  assert.equal(b.available(0), true)
  assert.deepEqual(events, ['127.0.0.1:4000 down (active: connect refused, 2/2 fails)'])
  // Further failures report nothing new.
  await timers.advance(10_000)
  assert.equal(events.length, 1)
  checker.stop()
})

// passes=2: the first pass after being out is not enough; the second brings it back.
test('passes consecutive passes clear active_check', async () => {
  const { timers, probe, events, checker, a } = setup({ passes: 2 })
  probe.set(4000, REFUSED)
  checker.start()
  await timers.advance(0)
  assert.equal(a.available(0), false)
  probe.set(4000, OK)
  await timers.advance(5000)
  assert.equal(a.available(0), false, 'one pass of two')
  await timers.advance(5000)
  assert.equal(a.available(0), true)
  assert.deepEqual(events, ['127.0.0.1:4000 down (active: connect refused, 1/1 fails)', '127.0.0.1:4000 up (active: 2/2 passes)'])
  checker.stop()
})

// A pass in between resets the failure count: fails are consecutive.
test('failures must be consecutive', async () => {
  const { timers, probe, checker, a } = setup({ fails: 2 })
  checker.start()
  await timers.advance(0)
  for (const r of [REFUSED, OK, REFUSED, OK]) {
    probe.set(4000, r)
    await timers.advance(5000)
  }
  assert.equal(a.available(0), true)
  assert.equal(checker.healthOf(a).failed, 2)
  checker.stop()
})

// mandatory: peers are out from the start; a never-passing one stays out, one that passes
// comes in at its first pass.
test('mandatory keeps peers out until their first pass', async () => {
  const { timers, probe, events, checker, a, b } = setup({ mandatory: true, passes: 3 })
  probe.set(4001, { ok: false, reason: 'status 500' })
  assert.equal(a.available(0), false)
  assert.equal(b.available(0), false)
  checker.start()
  await timers.advance(0)
  assert.equal(a.available(0), true)
  assert.equal(b.available(0), false)
  await timers.advance(60_000)
  assert.equal(b.available(0), false)
  assert.deepEqual(events, ['127.0.0.1:4000 up (active: first check passed)', '127.0.0.1:4001 down (active: status 500, 1/1 fails)'])
  checker.stop()
})

// persistent: after a reload, a peer that was healthy starts healthy; an unknown one is checked first.
test('persistent carries health across generations; without it mandatory starts over', async () => {
  const first = setup({ mandatory: true, persistent: true })
  first.probe.set(4001, REFUSED)
  first.checker.start()
  await first.timers.advance(0)
  first.checker.stop()
  const next = upstream(3)
  const carried = new HealthChecker(next, check({ mandatory: true, persistent: true }), { previous: first.checker, timers: new FakeTimers() })
  assert.deepEqual(next.peers.map((p) => p.available(0)), [true, false, false])
  assert.equal(carried.healthOf(next.peers[2]!).checking, true)
  const fresh = upstream(2)
  new HealthChecker(fresh, check({ mandatory: true }), { previous: first.checker, timers: new FakeTimers() })
  assert.deepEqual(fresh.peers.map((p) => p.available(0)), [false, false])
})

// Active and passive combine: a passive max_fails takes the peer out; an active pass
// clears the passive failures and brings it back at once.
test('an active pass clears passive failures', async () => {
  const { u, timers, checker, a } = setup()
  checker.start()
  await timers.advance(0)
  u.release(a, false, 0) // balance `active` before a failing release
  a.active++
  u.release(a, true, 1000)
  assert.deepEqual(a.unavailableReasons(1000), ['max_fails'])
  await timers.advance(5000)
  assert.equal(a.fails, 0)
  assert.equal(a.available(1000), true)
  checker.stop()
})

// stop(): no timers stay armed and results still in flight are dropped.
test('stop disarms every timer and ignores late results', async () => {
  const { timers, probe, checker, a } = setup()
  checker.start()
  assert.equal(timers.pending, 2)
  checker.stop()
  assert.equal(timers.pending, 0)
  probe.set(4000, REFUSED)
  await checker.probeOnce(a)
  assert.equal(a.available(0), true)
  assert.equal(timers.pending, 0)
})

// Peers `down` in the config are not probed; jitter delays each probe by up to `jitter`.
test('down peers are skipped; jitter delays probes', async () => {
  const u = new Upstream({ ...upstream(2).config, servers: upstream(2).config.servers.map((s, i) => ({ ...s, down: i === 1 })) })
  const timers = new FakeTimers()
  const probe = scripted()
  const checker = new HealthChecker(u, check({ jitter: 1000 }), { probe: probe.probe as never, timers, random: () => 0.5 })
  checker.start()
  await timers.advance(499)
  assert.equal(probe.count.get(4000), undefined)
  await timers.advance(1)
  assert.equal(probe.count.get(4000), 1)
  assert.equal(probe.count.get(4001), undefined)
  checker.stop()
})

const m = (over: Partial<MatchConfig>): MatchConfig => ({ name: 'm', source: src, status: null, headers: [], body: null, ...over })

// No match: 2xx and 3xx pass (NGINX Plus); with match every test must hold.
const matchRows: Array<[string, MatchConfig | null, number, Record<string, string>, string, boolean, string]> = [
  ['default 200', null, 200, {}, '', true, 'status 200'],
  ['default 302', null, 302, {}, '', true, 'status 302'],
  ['default 404', null, 404, {}, '', false, 'status 404'],
  ['default 500', null, 500, {}, '', false, 'status 500'],
  ['status list hit', m({ status: { negate: false, ranges: [[200, 200], [500, 503]] } }), 502, {}, '', true, 'status 502'],
  ['status ! range', m({ status: { negate: true, ranges: [[500, 599]] } }), 503, {}, '', false, 'status 503'],
  ['match without status takes any', m({}), 500, {}, '', true, 'status 500'],
  ['header ~', m({ headers: [{ name: 'content-type', op: '~', value: 'json', regex: /json/ }] }), 200, { 'content-type': 'text/html' }, '', false, 'header content-type'],
  ['header =', m({ headers: [{ name: 'x-a', op: '=', value: '1', regex: null }] }), 200, { 'x-a': '1' }, '', true, 'status 200'],
  ['header absent', m({ headers: [{ name: 'x-a', op: 'absent', value: '', regex: null }] }), 200, { 'x-a': '1' }, '', false, 'header x-a'],
  ['header present', m({ headers: [{ name: 'x-a', op: 'present', value: '', regex: null }] }), 200, {}, '', false, 'header x-a'],
  ['body ~', m({ body: { negate: false, regex: /"ok":true/ } }), 200, {}, '{"ok":true}', true, 'status 200'],
  ['body !~', m({ body: { negate: true, regex: /maintenance/ } }), 200, {}, 'in maintenance', false, 'body'],
]
for (const [what, match, status, headers, body, ok, reason] of matchRows) {
  test(`match: ${what}`, () => {
    assert.deepEqual(evaluateMatch(match, status, headers, body), { ok, reason })
  })
}
