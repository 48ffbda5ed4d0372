// nginx's leaky bucket (limit_req) and connection counts (limit_conn) with an injected
// clock: exact verdicts, excesses and delays, checked by hand against
// ngx_http_limit_req_module.c's integer arithmetic.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { LimitZoneConfig } from '../../src/config/model.js'
import { compileTemplate } from '../../src/config/variables.js'
import { ZoneSet, type ReqItem, type ReqVerdict } from '../../src/limits/zones.js'
import { RemoteZones, ZoneHost } from '../../src/limits/remote-zones.js'
import type { FromWorker } from '../../src/runtime/messages.js'

const KEY = compileTemplate('$binary_remote_addr')

/** Zones from `name → rate (milli-requests/s)` or `name → 'conn'`. */
function zones(defs: Record<string, number | 'conn'>, size = 1024 * 1024): ZoneSet {
  const map = new Map<string, LimitZoneConfig>()
  const source = { file: 'x.conf', line: 1 }
  for (const [name, rate] of Object.entries(defs)) {
    map.set(name, rate === 'conn' ? { kind: 'conn', name, key: KEY, size, source } : { kind: 'req', name, key: KEY, size, rate, source })
  }
  return ZoneSet.build(map)
}

const item = (zone: string, burst: number, delay = 0, key = '10.0.0.1'): ReqItem => ({ zone, key, burst: burst * 1000, delay })
const NODELAY = Number.MAX_SAFE_INTEGER

/** Short form of a verdict: `passed`, `delayed 1000`, `rejected r 1.000`. */
function short(v: ReqVerdict): string {
  if (v.kind === 'delayed') return `delayed ${v.ms}`
  if (v.kind === 'rejected') return `rejected ${v.zone} ${v.excess}`
  return v.kind
}

/** Play `[time, ...items]` rows through one zone set; the short verdicts in order. */
function play(set: ZoneSet, rows: ReadonlyArray<readonly [number, readonly ReqItem[]]>): string[] {
  return rows.map(([t, items]) => short(set.limitRequest(items, t)))
}

// Each row: the zones, the limit_req list, a request schedule, nginx's verdicts.
const scenarios: Array<{ what: string; set: () => ZoneSet; limits: ReqItem[]; times: number[]; expect: string[] }> = [
  {
    what: 'rate=1r/s, no burst: the second request within the second is rejected with excess 1.000; at +1000 ms one passes',
    set: () => zones({ r: 1000 }), limits: [item('r', 0)],
    times: [0, 0, 999, 1000, 1500],
    expect: ['passed', 'rejected r 1000', 'rejected r 1', 'passed', 'rejected r 500'],
  },
  {
    what: 'burst=2: two requests over the rate wait 1 s and 2 s, the third over is rejected',
    set: () => zones({ r: 1000 }), limits: [item('r', 2)],
    times: [0, 0, 0, 0, 500, 1000],
    expect: ['passed', 'delayed 1000', 'delayed 2000', 'rejected r 3000', 'rejected r 2500', 'delayed 2000'],
  },
  {
    what: 'burst=2 nodelay: the burst passes at once',
    set: () => zones({ r: 1000 }), limits: [item('r', 2, NODELAY)],
    times: [0, 0, 0, 0],
    expect: ['passed', 'passed', 'passed', 'rejected r 3000'],
  },
  {
    what: 'burst=4 delay=2: two pass at once, the next two wait (excess − delay) / rate',
    set: () => zones({ r: 1000 }), limits: [item('r', 4, 2000)],
    times: [0, 0, 0, 0, 0, 0],
    expect: ['passed', 'passed', 'passed', 'delayed 1000', 'delayed 2000', 'rejected r 5000'],
  },
  {
    what: 'rate=10r/s burst=5: one request over waits 100 ms',
    set: () => zones({ r: 10_000 }), limits: [item('r', 5)],
    times: [0, 0, 0],
    expect: ['passed', 'delayed 100', 'delayed 200'],
  },
  {
    // nginx keeps 1r/m as 16 thousandths per second: 1000 drains in 62.5 s, not 60 s.
    what: 'rate=1r/m is 16 thousandths: still rejected at 62.4 s, passes at 62.5 s',
    set: () => zones({ r: 16 }), limits: [item('r', 0)],
    times: [0, 60_000, 62_499, 62_500],
    expect: ['passed', 'rejected r 40', 'rejected r 1', 'passed'],
  },
  {
    what: 'a clock that steps back counts as no time (nginx clamps it)',
    set: () => zones({ r: 1000 }), limits: [item('r', 0)],
    times: [5000, 4000, 6000],
    expect: ['passed', 'rejected r 1000', 'passed'],
  },
]

for (const s of scenarios) {
  test(`limit_req: ${s.what}`, () => {
    const set = s.set()
    assert.deepEqual(play(set, s.times.map((t) => [t, s.limits] as const)), s.expect)
  })
}

// Keys are separate buckets.
test('limit_req: each key has its own bucket', () => {
  const set = zones({ r: 1000 })
  assert.deepEqual(play(set, [
    [0, [item('r', 0, 0, 'a')]], [0, [item('r', 0, 0, 'b')]], [0, [item('r', 0, 0, 'a')]], [0, [item('r', 0, 0, 'b')]],
  ]), ['passed', 'passed', 'rejected r 1000', 'rejected r 1000'])
})

// An empty key is not limited, and $limit_req_status stays empty (declined).
test('limit_req: an empty key is not counted', () => {
  const set = zones({ r: 1000 })
  assert.deepEqual(play(set, [[0, [item('r', 0, 0, '')]], [0, [item('r', 0, 0, '')]]]), ['declined', 'declined'])
  assert.equal(set.req.get('r')!.entryCount, 0)
})

// Several limits: a request rejected by a later zone is not charged to the earlier ones.
test('limit_req: a rejection by the second zone leaves the first uncharged', () => {
  const set = zones({ a: 1000, b: 1000 })
  const limits = [item('a', 1, NODELAY), item('b', 0)]
  // Had `a` been charged for the two rejected requests, its excess at 1000 ms would be
  // 2000 − 1000 + 1000 = 2000 > burst 1000, and the last request would be rejected by `a`.
  assert.deepEqual(play(set, [[0, limits], [0, limits], [0, limits], [1000, limits]]), ['passed', 'rejected b 1000', 'rejected b 1000', 'passed'])
})

// A dry run that would reject still takes limit_conn's slots in the same step; a real
// delay leaves them for after the wait.
test('check: limit_conn decided with limit_req only when the request goes on at once', () => {
  const set = zones({ r: 1000, c: 'conn' })
  const slot = [{ zone: 'c', key: 'x', max: 9 }]
  assert.deepEqual(set.check([item('r', 1)], slot, false, 0).conn, { ok: true })
  assert.equal(set.check([item('r', 1)], slot, false, 0).conn, null, 'delayed: limit_conn comes after the wait')
  assert.deepEqual(set.check([item('r', 1)], slot, true, 0), { req: { kind: 'rejected', zone: 'r', excess: 2000, full: false }, conn: { ok: true } })
  assert.equal(set.conn.get('c')!.active('x'), 2)
})

// Several limits: every zone counts the request and the longest delay applies.
test('limit_req: the longest delay of the zones applies, named by its zone', () => {
  const set = zones({ slow: 1000, fast: 2000 })
  const limits = [item('slow', 5), item('fast', 5)]
  set.limitRequest(limits, 0)
  assert.deepEqual(set.limitRequest(limits, 0), { kind: 'delayed', ms: 1000, zone: 'slow', excess: 1000 })
  // Reversed, the same: the delay is the maximum, not the last zone's.
  const other = zones({ slow: 1000, fast: 2000 })
  const reversed = [item('fast', 5), item('slow', 5)]
  other.limitRequest(reversed, 0)
  assert.deepEqual(other.limitRequest(reversed, 0), { kind: 'delayed', ms: 1000, zone: 'slow', excess: 1000 })
})

// Zone SIZE bounds the entries: 32k / 128 bytes = 256 keys; a full zone drops its
// least-recently-used key, and keys idle a minute with nothing left are freed first.
test('limit_req: a full zone evicts its least recently used key', () => {
  const set = zones({ r: 1000 }, 32 * 1024)
  const zone = set.req.get('r')!
  assert.equal(zone.capacity, 256)
  for (let i = 0; i < 256; i++) set.limitRequest([item('r', 0, 0, `k${i}`)], 0)
  assert.equal(zone.entryCount, 256)
  // k0 is used again, so k1 is now the least recently used.
  assert.equal(short(set.limitRequest([item('r', 0, 0, 'k0')], 0)), 'rejected r 1000')
  assert.equal(short(set.limitRequest([item('r', 0, 0, 'new')], 0)), 'passed')
  assert.equal(zone.entryCount, 256)
  // k1 was dropped: it starts over; k0 was kept: still limited.
  assert.equal(short(set.limitRequest([item('r', 0, 0, 'k1')], 0)), 'passed')
  assert.equal(short(set.limitRequest([item('r', 0, 0, 'k0')], 0)), 'rejected r 1000')
  // A minute on, a new key frees up to two drained idle keys before it is added.
  set.limitRequest([item('r', 0, 0, 'later')], 61_000)
  assert.equal(zone.entryCount, 255)
})

// limit_conn: counted per key up to N, all zones or none.
test('limit_conn: slots per key, and a refused request holds none', () => {
  const set = zones({ c: 'conn', d: 'conn' })
  const one = { zone: 'c', key: 'x', max: 2 }
  const two = { zone: 'd', key: 'x', max: 1 }
  assert.deepEqual(set.acquireConn([one, two]), { ok: true })
  assert.deepEqual(set.acquireConn([one, two]), { ok: false, zone: 'd', full: false })
  assert.equal(set.conn.get('c')!.active('x'), 1, 'the slot taken in c was given back')
  assert.deepEqual(set.acquireConn([one]), { ok: true })
  assert.deepEqual(set.acquireConn([one]), { ok: false, zone: 'c', full: false })
  set.releaseConn([one, two])
  set.releaseConn([one])
  assert.equal(set.conn.get('c')!.entryCount, 0)
  assert.equal(set.conn.get('d')!.entryCount, 0)
})

// A reload keeps zones whose name, kind and size stay, with their state; a new size is a
// new zone; a changed key is refused with nginx's words.
test('zones survive a reload when unchanged', () => {
  const before = zones({ r: 1000, c: 'conn' })
  before.limitRequest([item('r', 0)], 0)
  const kept = ZoneSet.build(new Map([...before.req.keys(), ...before.conn.keys()].map((name) => [name, {
    kind: name === 'r' ? 'req' : 'conn', name, key: KEY, size: 1024 * 1024, rate: 2000, source: { file: 'x', line: 1 },
  } as LimitZoneConfig])), before)
  assert.equal(kept.req.get('r'), before.req.get('r'))
  assert.equal(kept.req.get('r')!.rate, 2000, 'the new rate applies')
  assert.equal(short(kept.limitRequest([item('r', 0)], 0)), 'rejected r 1000', 'the state was kept')
  const resized = ZoneSet.build(new Map([['r', { kind: 'req', name: 'r', key: KEY, size: 2 * 1024 * 1024, rate: 1000, source: { file: 'x', line: 1 } } as LimitZoneConfig]]), before)
  assert.equal(short(resized.limitRequest([item('r', 0)], 0)), 'passed')
  assert.throws(
    () => ZoneSet.build(new Map([['r', { kind: 'req', name: 'r', key: compileTemplate('$uri'), size: 1024 * 1024, rate: 1000, source: { file: 'x', line: 1 } } as LimitZoneConfig]]), before),
    /^Error: limit_req "r" uses the "\$uri" key while previously it used the "\$binary_remote_addr" key$/,
  )
})

// The IPC pair without processes: a worker's questions (batched per event-loop turn), the
// primary's answers, and the slots of a worker that dies given back.
test('remote zones: answers match questions, a dead worker releases its slots', async () => {
  const host = new ZoneHost<string>(zones({ r: 1000, c: 'conn' }), () => 0)
  const worker = (name: string): RemoteZones => {
    const remote: RemoteZones = new RemoteZones((m: FromWorker) => {
      const answer = host.handle(name, m)
      if (answer !== null) queueMicrotask(() => remote.receive(answer))
    })
    return remote
  }
  const w1 = worker('w1')
  const w2 = worker('w2')
  const req = [item('r', 0)]
  const slot = [{ zone: 'c', key: 'x', max: 1 }]
  // One question: limit_req passes, so the limit_conn slot is taken in the same step.
  assert.deepEqual(await w1.check(req, slot, false), { req: { kind: 'passed' }, conn: { ok: true } })
  // Rejected by limit_req: limit_conn is not asked (nginx never gets that far).
  assert.deepEqual(await w2.check(req, slot, false), { req: { kind: 'rejected', zone: 'r', excess: 1000, full: false }, conn: null })
  assert.deepEqual(await w2.acquireConn(slot), { ok: false, zone: 'c', full: false })
  host.gone('w1')
  assert.deepEqual(await w2.acquireConn(slot), { ok: true })
  // w1 is gone: a late release from it does not free w2's slot.
  w1.releaseConn(slot)
  await new Promise((r) => setImmediate(r))
  assert.equal(host.zones.conn.get('c')!.active('x'), 1)
  // A worker whose primary is gone is not limited, and a question in flight is answered.
  const stuck = new RemoteZones(() => undefined)
  const pending = stuck.check(req, [], false)
  stuck.disconnected()
  assert.deepEqual(await pending, { req: { kind: 'declined' }, conn: null })
})
