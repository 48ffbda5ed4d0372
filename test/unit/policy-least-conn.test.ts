// least_conn and fair: fewest requests in flight relative to weight, ties by smooth
// weighted round robin over the tied peers only (nginx's two-pass
// ngx_http_upstream_get_least_conn_peer).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Harness, short } from '../helpers/policy-harness.js'
import type { ServerSpec } from '../helpers/upstream-config.js'

interface Step {
  /** `hold` a request (kept in flight), `run N` sequential requests, `free X` ends one held on X. */
  readonly op: string
  readonly expect: string
}

const equal: ServerSpec[] = [{ name: 'a:1' }, { name: 'b:1' }, { name: 'c:1' }]

// Golden tables: each row a pool and a script; each step's picks as nginx makes them.
const golden: Array<{ what: string; directive: string; args?: string[]; servers: ServerSpec[]; steps: Step[] }> = [
  {
    what: 'an idle pool rotates exactly like round robin (5/1/1)',
    directive: 'least_conn',
    servers: [{ name: 'a:1', weight: 5 }, { name: 'b:1' }, { name: 'c:1' }],
    steps: [{ op: 'run 7', expect: 'a a b a c a a' }],
  },
  {
    what: 'a busy peer is skipped; the idle ones rotate between themselves',
    directive: 'least_conn',
    servers: equal,
    steps: [{ op: 'hold', expect: 'a' }, { op: 'run 4', expect: 'b c b c' }, { op: 'free a', expect: '' }, { op: 'run 3', expect: 'b c a' }],
  },
  {
    what: 'two busy peers: the third takes everything, with no round-robin change',
    directive: 'least_conn',
    servers: equal,
    steps: [{ op: 'hold', expect: 'a' }, { op: 'hold', expect: 'b' }, { op: 'run 3', expect: 'c c c' }],
  },
  {
    what: 'relative to weight: 1 in flight on weight 3 beats 1 on weight 1',
    directive: 'least_conn',
    servers: [{ name: 'a:1', weight: 3 }, { name: 'b:1' }],
    // At 3/3 against 1/1 the two tie, and round robin over the pair picks a once more.
    steps: [
      { op: 'hold', expect: 'a' }, { op: 'hold', expect: 'b' }, { op: 'run 3', expect: 'a a a' },
      { op: 'hold', expect: 'a' }, { op: 'hold', expect: 'a' }, { op: 'hold', expect: 'a' }, { op: 'hold', expect: 'b' },
    ],
  },
  {
    what: 'a down peer is never chosen, even when idle',
    directive: 'least_conn',
    servers: [{ name: 'a:1', down: true }, { name: 'b:1' }, { name: 'c:1' }],
    steps: [{ op: 'hold', expect: 'b' }, { op: 'run 2', expect: 'c c' }],
  },
  {
    what: 'backup peers only when no primary is eligible',
    directive: 'least_conn',
    servers: [{ name: 'a:1', maxConns: 1 }, { name: 'z:1', backup: true }],
    steps: [{ op: 'hold', expect: 'a' }, { op: 'run 2', expect: 'z z' }],
  },
  {
    what: "the tutorial's least busy, same order as least_conn",
    directive: 'fair',
    servers: equal,
    steps: [{ op: 'hold', expect: 'a' }, { op: 'run 4', expect: 'b c b c' }],
  },
  {
    what: 'no_rr: the first idle peer always goes first',
    directive: 'fair',
    args: ['no_rr'],
    servers: equal,
    steps: [{ op: 'run 2', expect: 'a a' }, { op: 'hold', expect: 'a' }, { op: 'run 2', expect: 'b b' }],
  },
]

for (const row of golden) {
  test(`${row.directive}: ${row.what}`, () => {
    const h = new Harness(row.servers, row.directive, row.args ?? [])
    const held = new Map<string, ReturnType<Harness['hold']>[]>()
    for (const step of row.steps) {
      const [op, arg] = step.op.split(' ')
      let got = ''
      if (op === 'hold') {
        const peer = h.hold()
        got = short(peer)
        held.set(got, [...(held.get(got) ?? []), peer])
      } else if (op === 'run') {
        got = h.run(Number(arg))
      } else {
        h.release(held.get(arg!)!.shift()!)
      }
      assert.equal(got, step.expect, `after "${step.op}"`)
    }
  })
}

// A retry never returns to the peer that failed, even when it is the least busy.
test('least_conn: a retry skips the tried peer', () => {
  const h = new Harness(equal, 'least_conn')
  const sel = h.selection()
  const first = h.upstream.select(sel)!
  h.release(first, { failed: false })
  const second = h.upstream.select(sel)!
  assert.notEqual(second, first)
})
