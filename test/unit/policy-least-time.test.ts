// least_time (nginx 1.31, ngx_http_upstream_least_time_module.c): the peer with the least
// estimated time for one more request relative to weight; the average moves 5% toward each
// sample, is clustered in 20 ms steps, capped at 5 s, and halves per idle fail_timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseLeastTime } from '../../src/balancer/policies/least-time.js'
import { movingAverage, ResponseTimes } from '../../src/balancer/shared/response-time.js'
import { Peer } from '../../src/upstream/peer.js'
import { Harness, short } from '../helpers/policy-harness.js'
import { server } from '../helpers/upstream-config.js'

// nginx's ngx_http_upstream_response_time_avg: first sample as is, then 5% toward each new
// one, rounded half up to whole ms.
const averages: Array<[average: number, sample: number, expect: number]> = [
  [0, 250, 250],
  [100, 200, 105],
  [100, 101, 100],
  [100, 110, 101],
  [1000, 0, 950],
  [7, 8, 7],
]
for (const [average, sample, expect] of averages) {
  test(`least_time: moving average ${average} ← ${sample} = ${expect}`, () => {
    assert.equal(movingAverage(average, sample), expect)
  })
}

/** A peer with `active` requests in flight, last checked at `checked`. */
function peer(active: number, checked: number, failTimeout = 10_000): Peer {
  const p = new Peer(0, server({ name: 'a:1', failTimeout }), true)
  p.active = active
  p.checked = checked
  return p
}

// The estimate: clustered up to the next 20 ms step (a multiple moves a whole step), capped
// at 5000 without a step, halved per idle fail_timeout (+1 s), times (1 + in flight).
const etas: Array<{ what: string; average: number; active: number; idle: number; expect: number }> = [
  { what: 'no sample yet', average: 0, active: 0, idle: 0, expect: 20 },
  { what: 'a multiple of 20 moves up a whole step', average: 100, active: 0, idle: 0, expect: 120 },
  { what: 'in between rounds up', average: 101, active: 0, idle: 0, expect: 120 },
  { what: 'two in flight triple it', average: 101, active: 2, idle: 0, expect: 360 },
  { what: 'above 5 s all peers are equal', average: 9000, active: 0, idle: 0, expect: 5000 },
  { what: 'exactly at 5 s still steps', average: 5000, active: 0, idle: 0, expect: 5020 },
  { what: 'idle for exactly fail_timeout: no decay', average: 300, active: 0, idle: 10_000, expect: 320 },
  { what: 'idle just past fail_timeout: still whole (nginx divides by fail_timeout + 1 s)', average: 300, active: 0, idle: 10_001, expect: 320 },
  { what: 'idle fail_timeout + 1 s: halved once', average: 300, active: 0, idle: 11_000, expect: 160 },
  { what: 'idle 22 s with fail_timeout 10 s: halved twice', average: 300, active: 0, idle: 22_000, expect: 80 },
  { what: 'idle for days: nothing left', average: 4000, active: 0, idle: 86_400_000, expect: 20 },
]
for (const row of etas) {
  test(`least_time: estimate, ${row.what}`, () => {
    const now = 100_000_000
    const times = new ResponseTimes(1)
    times.header[0] = row.average
    assert.equal(times.eta(peer(row.active, now - row.idle), 'header', now), row.expect)
  })
}

// Golden: a fast and a slow peer. Before any sample they tie and rotate; after, the fast
// one takes every request until the slow one's estimate decays below it.
test('least_time header: rotation before samples, then the fast peer', () => {
  const h = new Harness([{ name: 'a:1' }, { name: 'b:1' }], 'least_time', ['header'])
  assert.equal(h.run(2), 'a b')
  const a = h.hold()!
  const b = h.hold()!
  h.release(a, { failed: false, headerTime: 100, responseTime: 400 })
  h.release(b, { failed: false, headerTime: 300, responseTime: 310 })
  assert.equal(h.run(4), 'a a a a')
})

// last_byte balances on the time to the whole response instead.
test('least_time last_byte: the shorter whole response wins', () => {
  const h = new Harness([{ name: 'a:1' }, { name: 'b:1' }], 'least_time', ['last_byte'])
  const a = h.hold()!
  const b = h.hold()!
  h.release(a, { failed: false, headerTime: 100, responseTime: 400 })
  h.release(b, { failed: false, headerTime: 300, responseTime: 310 })
  assert.equal(h.run(3), 'b b b')
})

// Failed attempts and attempts whose response never reached the client teach nothing, so
// a peer that fails fast never looks fast.
test('least_time: only successful, answered attempts are averaged', () => {
  const h = new Harness([{ name: 'a:1' }, { name: 'b:1' }], 'least_time', ['header'])
  const a = h.hold()!
  h.release(a, { failed: true, headerTime: 1, responseTime: 1 })
  const a2 = h.hold()!
  h.release(a2, { failed: false, responseTime: 2 })
  const times = (h.upstream.policy as unknown as { responseTimes: ResponseTimes }).responseTimes
  assert.equal(times.header[a.id], 0)
  assert.equal(times.lastByte[a.id], 0)
})

// The slow peer is never starved: a 1000 ms peer against a 100 ms one, one request a second,
// fail_timeout 10 s. The fast peer's checked time moves every 11 s (when it is picked more
// than fail_timeout after the last move), the slow one's never; the slow estimate halves at
// 11, 22, 33, 44 s and is 62 → 80 ms at 44 s, below the fast 120 ms from 45 s on.
test('least_time: a slow peer is retried once its estimate decays (second 45)', () => {
  const h = new Harness([{ name: 'a:1' }, { name: 'b:1' }], 'least_time', ['header'])
  const times = (h.upstream.policy as unknown as { responseTimes: ResponseTimes }).responseTimes
  const [a, b] = h.upstream.peers as [Peer, Peer]
  times.header[a.id] = 100
  times.header[b.id] = 1000
  const start = h.clock.now()
  a.checked = start
  b.checked = start
  let firstB = -1
  for (let k = 1; k <= 60 && firstB === -1; k++) {
    h.clock.t = start + k * 1000
    if (h.run(1) === 'b') firstB = k
  }
  assert.equal(firstB, 45)
})

// inflight: a request running far longer than the average counts with its age, so a peer
// stuck on one request loses even against a lower weight.
test('least_time header inflight: a stuck request makes the peer look slow', () => {
  const plain = new Harness([{ name: 'a:1', weight: 3 }, { name: 'b:1' }], 'least_time', ['header'])
  const inflight = new Harness([{ name: 'a:1', weight: 3 }, { name: 'b:1' }], 'least_time', ['header', 'inflight'])
  for (const h of [plain, inflight]) {
    const times = (h.upstream.policy as unknown as { responseTimes: ResponseTimes }).responseTimes
    times.header[0] = 100
    times.header[1] = 100
    h.peer('a').checked = h.clock.now()
    h.peer('b').checked = h.clock.now()
    assert.equal(short(h.hold()), 'a', 'a (weight 3) takes the first, held request')
    h.clock.advance(1000)
  }
  // a: 120 × 2 in flight against weight 3 is still better than b's 120 × 1 against 1 …
  assert.equal(plain.run(1), 'a')
  // … unless the held request's 1000 ms age counts: 1020 × 2 against 3 loses to 120.
  assert.equal(inflight.run(1), 'b')
})

// inflight bookkeeping: counted at the pick, done at the header (header mode) or at the end.
test('least_time inflight: requests counted in flight until header or end', () => {
  const h = new Harness([{ name: 'a:1' }, { name: 'b:1' }], 'least_time', ['header', 'inflight'])
  const times = (h.upstream.policy as unknown as { responseTimes: ResponseTimes }).responseTimes
  const sel = h.selection()
  const a = h.upstream.select(sel)!
  assert.equal(times.inflightRequests[a.id], 1)
  h.clock.advance(50)
  sel.tick()
  h.upstream.responded(a, 50, sel)
  assert.equal(times.inflightRequests[a.id], 0, 'done at the header')
  assert.equal(times.header[a.id], 50, 'header time learned at once')
  h.release(a, { failed: false, headerTime: 50, responseTime: 80 })
  assert.equal(times.inflightRequests[a.id], 0, 'not counted down twice')
  assert.equal(times.lastByte[a.id], 80)
  assert.equal(times.header[a.id], 50, 'header time not learned twice')
  const b = h.hold()!
  h.release(b, { failed: true, responseTime: 5 })
  assert.equal(times.inflightRequests[b.id], 0, 'a failure ends it too')
})

// The directive's arguments in nginx's order of checks and wording.
const args: Array<{ args: string[]; expect: ReturnType<typeof parseLeastTime> | string }> = [
  { args: ['header'], expect: { mode: 'header', inflight: false } },
  { args: ['LAST_BYTE', 'inflight'], expect: { mode: 'last_byte', inflight: true } },
  { args: ['first_byte'], expect: 'invalid value "first_byte"' },
  { args: ['header', 'Inflight'], expect: 'invalid parameter "Inflight"' },
  { args: ['nope', 'nope2'], expect: 'invalid parameter "nope2"' },
]
for (const row of args) {
  test(`least_time ${row.args.join(' ')}: parses as nginx does`, () => {
    if (typeof row.expect === 'string') assert.throws(() => parseLeastTime(row.args), { message: row.expect })
    else assert.deepEqual(parseLeastTime(row.args), row.expect)
  })
}
