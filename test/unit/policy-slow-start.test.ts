// slow_start=TIME (NGINX Plus): a server back from max_fails ramps its weight linearly from
// near zero to its nominal weight over TIME; the injected clock makes the ramp exact.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Harness, short } from '../helpers/policy-harness.js'

/** a (weight 4, slow_start 10 s) failed out, then came back at the returned time. */
function recovered(directive = 'round_robin'): { h: Harness; back: number } {
  const h = new Harness([{ name: 'a:1', weight: 4, slowStart: 10_000 }, { name: 'b:1', weight: 4 }], directive)
  const a = h.peer('a')
  a.selected(h.clock.now())
  h.release(a, { failed: true })
  assert.equal(a.available(h.clock.now()), false, 'out after max_fails=1')
  h.clock.advance(10_001)
  // The probe after fail_timeout succeeds: a is back, and starts slowly.
  a.selected(h.clock.now())
  h.release(a, { failed: false })
  return { h, back: h.clock.now() }
}

// The weight as each pick sees it: linear in the time since the peer came back.
const ramp: Array<[elapsed: number, weight: number, ramping: boolean]> = [
  [0, 0.0004, true],
  [2_500, 1, true],
  [5_000, 2, true],
  [7_500, 3, true],
  [10_000, 4, false],
  [60_000, 4, false],
]
for (const [elapsed, weight, ramping] of ramp) {
  test(`slow_start: weight ${weight} at ${elapsed} ms after coming back`, () => {
    const { h, back } = recovered()
    h.clock.t = back + elapsed
    h.run(1)
    const a = h.peer('a')
    assert.equal(a.weight, weight)
    assert.equal(a.ramping, ramping)
    // Round robin may restore the effective weight by 1 after a pick; the ramp holds it
    // within the weight again before the next one.
    a.rampWeight(h.clock.now())
    assert.ok(a.effectiveWeight <= a.weight)
  })
}

// Traffic follows the ramp: one request every 100 ms for 12 s; a's share grows each quarter
// of the ramp and is back to about half once it is over (round robin's running weights
// carry a request either way).
test('slow_start: round robin shares climb with the weight', () => {
  const { h, back } = recovered()
  const perQuarter = [0, 0, 0, 0, 0]
  for (let t = 0; t < 12_000; t += 100) {
    h.clock.t = back + t
    if (h.run(1) === 'a') perQuarter[Math.min(4, Math.floor(t / 2_500))]!++
  }
  for (let q = 1; q < 4; q++) assert.ok(perQuarter[q]! > perQuarter[q - 1]!, `quarter ${q}: ${perQuarter}`)
  assert.ok(perQuarter[0]! <= 4, `first quarter: ${perQuarter}`)
  assert.ok(Math.abs(perQuarter[4]! - 10) <= 1, `after the ramp (2 s, 20 requests): ${perQuarter}`)
})

// least_conn compares against the ramped weight too.
test('slow_start: least_conn sees the ramped weight', () => {
  const { h, back } = recovered('least_conn')
  h.clock.t = back + 1_000
  // Both idle: a tie, and round robin over the pair with a's tiny weight picks b.
  assert.equal(short(h.hold()), 'b')
})

// Weight changes from the runtime API during a ramp become its target.
test('slow_start: setWeight during a ramp changes its target', () => {
  const { h, back } = recovered()
  const a = h.peer('a')
  a.setWeight(8)
  h.clock.t = back + 5_000
  h.run(1)
  assert.equal(a.weight, 4)
  h.clock.t = back + 10_000
  h.run(1)
  assert.equal(a.weight, 8)
})

// A peer that never left does not ramp, and slow_start=0 is off.
test('slow_start: nothing happens without a comeback', () => {
  const h = new Harness([{ name: 'a:1', weight: 4, slowStart: 10_000 }, { name: 'b:1', weight: 4 }])
  assert.equal(h.run(4), 'a b a b')
  assert.equal(h.peer('a').ramping, false)
})
