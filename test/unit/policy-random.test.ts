// random: a draw proportional to weight with the injected random source, redrawn when it
// lands on an ineligible peer, round robin after 20 misses in one request; `two` keeps the
// better of two distinct draws (ngx_http_upstream_random_module.c).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseRandom } from '../../src/balancer/policies/random.js'
import { Harness, short } from '../helpers/policy-harness.js'
import type { ServerSpec } from '../helpers/upstream-config.js'

// Weights 3/1/1: a owns [0, 3), b [3, 4), c [4, 5) of floor(random × 5).
const weighted: ServerSpec[] = [{ name: 'a:1', weight: 3 }, { name: 'b:1' }, { name: 'c:1' }]

// Golden tables: the random values handed out and the peers they give, one request each.
const golden: Array<{ what: string; args: string[]; servers: ServerSpec[]; randoms: number[]; hold?: number; expect: string }> = [
  { what: 'each draw lands by weight', args: [], servers: weighted, randoms: [0.1, 0.65, 0.85, 0.5, 0.59], expect: 'a b c a a' },
  { what: 'a draw on a down peer is drawn again', args: [], servers: [{ name: 'a:1', weight: 3 }, { name: 'b:1', down: true }, { name: 'c:1' }], randoms: [0.65, 0.85, 0.1], expect: 'c a' },
  // two: the better of two distinct draws; on a tie the second draw wins.
  { what: 'idle peers tie, the second draw wins', args: ['two'], servers: weighted, randoms: [0.1, 0.65, 0.85, 0.1], expect: 'b a' },
  { what: 'the same peer twice is drawn again', args: ['two'], servers: weighted, randoms: [0.1, 0.3, 0.9], expect: 'c' },
  // The held request lands on a (a tie: the second draw); then b is the less busy of (a, b)
  // whichever is drawn first.
  { what: 'the less busy of the two', args: ['two', 'least_conn'], servers: weighted, randoms: [0.65, 0.1, 0.1, 0.65, 0.65, 0.1], hold: 1, expect: 'b b' },
]

for (const row of golden) {
  test(`random${row.args.map((a) => ` ${a}`).join('')}: ${row.what}`, () => {
    const h = new Harness(row.servers, 'random', row.args)
    h.randoms = row.randoms
    for (let i = 0; i < (row.hold ?? 0); i++) h.hold()
    const n = row.expect.split(' ').length
    assert.equal(h.run(n), row.expect)
  })
}

// After 20 wasted draws nginx gives up on random for the rest of the request: the next
// peer comes from round robin, and so does a retry of the same request.
test('random: 20 misses in one request fall back to round robin, retries included', () => {
  const h = new Harness([{ name: 'a:1', weight: 3, down: true }, { name: 'b:1' }, { name: 'c:1' }], 'random')
  h.randoms = [0.1] // always a, which is down
  const sel = h.selection()
  assert.equal(short(h.upstream.select(sel)), 'b')
  assert.equal(sel.policyTries, 21)
  assert.equal(short(h.upstream.select(sel)), 'c', 'the retry goes straight to round robin')
  assert.equal(short(h.upstream.select(sel)), '-')
})

// A one-server upstream is plain round robin (nginx: peers->number < 2).
test('random: a single server needs no draw', () => {
  const h = new Harness([{ name: 'a:1' }], 'random', ['two'])
  h.randoms = [0.99]
  assert.equal(h.run(2), 'a a')
})

// two least_time=header: the draw with the lower estimated time wins.
test('random two least_time=header: the faster of the two', () => {
  const h = new Harness(weighted, 'random', ['two', 'least_time=header'])
  const a = h.peer('a')
  const b = h.peer('b')
  // Teach the averages: a answers in 300 ms, b in 40 ms.
  a.selected(h.clock.now()); h.release(a, { failed: false, headerTime: 300, responseTime: 310 })
  b.selected(h.clock.now()); h.release(b, { failed: false, headerTime: 40, responseTime: 45 })
  h.randoms = [0.65, 0.1, 0.1, 0.65]
  assert.equal(h.run(2), 'b b')
})

// The directive's arguments, as nginx reads them (Plus adds the least_time choices).
const args: Array<{ args: string[]; expect: ReturnType<typeof parseRandom> | string }> = [
  { args: [], expect: { two: false, method: 'least_conn' } },
  { args: ['two'], expect: { two: true, method: 'least_conn' } },
  { args: ['two', 'least_conn'], expect: { two: true, method: 'least_conn' } },
  { args: ['two', 'least_time=last_byte'], expect: { two: true, method: 'least_time=last_byte' } },
  { args: ['three'], expect: 'invalid parameter "three"' },
  { args: ['two', 'least_time'], expect: 'invalid parameter "least_time"' },
  { args: ['TWO'], expect: 'invalid parameter "TWO"' },
]
for (const row of args) {
  test(`random${row.args.map((a) => ` ${a}`).join('')}: parses as nginx does`, () => {
    if (typeof row.expect === 'string') assert.throws(() => parseRandom(row.args), { message: row.expect })
    else assert.deepEqual(parseRandom(row.args), row.expect)
  })
}
