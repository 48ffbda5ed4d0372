import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { Selection, Upstream } from '../../src/upstream/upstream.js'
import { RequestVars } from '../../src/proxy/request-vars.js'
import { ManualClock, upstreamConfig, type ServerSpec } from '../helpers/upstream-config.js'

const fakeReq = { url: '/', socket: { remoteAddress: '127.0.0.1', remotePort: 5000, localAddress: '127.0.0.1' }, headers: {} } as unknown as IncomingMessage
const vars = new RequestVars(fakeReq, { scheme: 'http', port: 80 })

/** Pick `n` times, each as a fresh single-try request that succeeds at once. */
function sequence(upstream: Upstream, clock: ManualClock, n: number): string[] {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const peer = upstream.select(new Selection({ now: clock.now, random: () => 0 }, vars))
    out.push(peer === undefined ? '-' : peer.name)
    if (peer) upstream.release(peer, false, clock.now())
  }
  return out
}

const short = (names: string[]): string => names.map((n) => n === '-' ? '-' : n.split(':')[0]).join(' ')

// Golden tables: nginx's smooth weighted round robin order (ngx_http_upstream_get_peer).
const golden: Array<{ what: string; servers: ServerSpec[]; n: number; expect: string }> = [
  { what: 'weights 5/1/1', servers: [{ name: 'a:1', weight: 5 }, { name: 'b:1' }, { name: 'c:1' }], n: 7, expect: 'a a b a c a a' },
  { what: 'equal weights rotate in config order', servers: [{ name: 'a:1' }, { name: 'b:1' }, { name: 'c:1' }], n: 6, expect: 'a b c a b c' },
  // The tutorial's 3/5/2 (4000/4001/4002): the order nginx gives.
  { what: 'tutorial 3/5/2', servers: [{ name: 'a:1', weight: 3 }, { name: 'b:1', weight: 5 }, { name: 'c:1', weight: 2 }], n: 10, expect: 'b a c b a b b c a b' },
  { what: 'down peer never chosen', servers: [{ name: 'a:1' }, { name: 'b:1', down: true }, { name: 'c:1' }], n: 4, expect: 'a c a c' },
  { what: 'backup only when no primary is eligible', servers: [{ name: 'a:1', down: true }, { name: 'b:1', down: true }, { name: 'c:1', backup: true }], n: 2, expect: 'c c' },
  { what: 'backup unused while a primary is up', servers: [{ name: 'a:1' }, { name: 'c:1', backup: true }], n: 3, expect: 'a a a' },
  { what: 'all down: nothing', servers: [{ name: 'a:1', down: true }], n: 2, expect: '- -' },
]

for (const row of golden) {
  test(`round robin: ${row.what}`, () => {
    const clock = new ManualClock()
    assert.equal(short(sequence(new Upstream(upstreamConfig(row.servers)), clock, row.n)), row.expect)
  })
}

// A request never gets a peer it already tried, and gets none once all are tried.
test('round robin: tried peers are skipped within one request', () => {
  const clock = new ManualClock()
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', weight: 5 }, { name: 'b:1' }, { name: 'c:1' }]))
  const sel = new Selection({ now: clock.now, random: () => 0 }, vars)
  const picked = [upstream.select(sel), upstream.select(sel), upstream.select(sel), upstream.select(sel)]
  assert.deepEqual(picked.map((p) => p?.name.split(':')[0]), ['a', 'b', 'c', undefined])
})

// max_fails/fail_timeout exactly as nginx: out after max_fails, one probe after fail_timeout,
// a successful probe clears the count, a failed probe keeps it out another fail_timeout.
test('passive health: max_fails=2 fail_timeout=10s with an injected clock', () => {
  const clock = new ManualClock()
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', maxFails: 2, failTimeout: 10_000 }, { name: 'b:1', maxFails: 2, failTimeout: 10_000 }]))
  const [a, b] = upstream.peers
  const fail = (): void => {
    const sel = new Selection({ now: clock.now, random: () => 0 }, vars)
    upstream.select(sel)
    upstream.release(a!, true, clock.now())
  }
  a!.selected(clock.now()); upstream.release(a!, true, clock.now())
  assert.equal(a!.available(clock.now()), true, 'one failure of two')
  a!.selected(clock.now()); upstream.release(a!, true, clock.now())
  assert.equal(a!.available(clock.now()), false, 'two failures: out')
  assert.deepEqual(a!.unavailableReasons(clock.now()), ['max_fails'])
  assert.equal(short(sequence(upstream, clock, 3)), 'b b b')
  clock.advance(10_000)
  assert.equal(a!.available(clock.now()), false, 'still out at exactly fail_timeout')
  clock.advance(1)
  assert.equal(a!.available(clock.now()), true, 'probe allowed after fail_timeout')
  // The probe is taken: a is selected and `checked` moves, so a concurrent request skips it.
  a!.selected(clock.now())
  assert.equal(a!.available(clock.now()), false, 'only one probe at a time')
  upstream.release(a!, false, clock.now())
  assert.equal(a!.fails, 0, 'a successful probe clears the failures')
  assert.equal(a!.available(clock.now()), true)
  void b
  void fail
})

// A failure lowers effective_weight by weight/max_fails; each selection restores 1.
test('passive health: effective weight drops on failure and recovers per selection', () => {
  const clock = new ManualClock()
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', weight: 4, maxFails: 2 }, { name: 'b:1', weight: 4, maxFails: 2 }]))
  const [a] = upstream.peers
  a!.selected(clock.now())
  upstream.release(a!, true, clock.now())
  assert.equal(a!.effectiveWeight, 2)
  sequence(upstream, clock, 1)
  assert.equal(a!.effectiveWeight, 3)
  sequence(upstream, clock, 1)
  assert.equal(a!.effectiveWeight, 4)
  sequence(upstream, clock, 1)
  assert.equal(a!.effectiveWeight, 4, 'never above weight')
})

// nginx never marks the only server of an upstream as failed.
test('passive health: a single-server upstream is never marked down', () => {
  const clock = new ManualClock()
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1' }]))
  const [a] = upstream.peers
  for (let i = 0; i < 3; i++) {
    a!.selected(clock.now())
    upstream.release(a!, true, clock.now())
  }
  assert.equal(a!.available(clock.now()), true)
  assert.equal(short(sequence(upstream, clock, 2)), 'a a')
})

// max_fails=0 turns the accounting off.
test('passive health: max_fails=0 never takes a peer out', () => {
  const clock = new ManualClock()
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', maxFails: 0 }, { name: 'b:1' }]))
  const [a] = upstream.peers
  for (let i = 0; i < 5; i++) {
    a!.selected(clock.now())
    upstream.release(a!, true, clock.now())
  }
  assert.equal(a!.available(clock.now()), true)
})
