// retry_budget (Envoy's semantics) and queue (NGINX Plus) in `upstream`: their config
// forms and errors, the budget's arithmetic, and the queue driven by a hand-moved clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../src/config/load.js'
import type { Config } from '../../src/config/model.js'
import { RetryBudget } from '../../src/upstream/retry-budget.js'
import { Selection, Upstream, type Environment } from '../../src/upstream/upstream.js'
import type { Peer } from '../../src/upstream/peer.js'
import { requestVars, short } from '../helpers/policy-harness.js'
import { ManualClock, upstreamConfig, type ServerSpec } from '../helpers/upstream-config.js'

const FILE = '/etc/switchyard/lb.conf'
const resolveHost = async (host: string): Promise<string[]> => (host === 'known' ? ['10.0.0.1'] : [])
/** An upstream `u` (its body at line 4) and a server proxying to it. */
const config = (body: string): Promise<Config> => parseConfigText(
  `events {}\nhttp {\nupstream u {\n${body}\n}\nserver { listen 8080; location / { proxy_pass http://u; } }\n}\n`, FILE, { resolveHost })
const upstreamOf = async (body: string) => (await config(`server known;\n${body}`)).http.upstreams.get('u')!

// The directives' model: on by default with Envoy's values, `off`, and the queue's default timeout.
test('retry_budget and queue in the model', async () => {
  assert.equal((await upstreamOf('')).retryBudget?.ratio, 0.2)
  assert.deepEqual((await upstreamOf('')).retryBudget, { ratio: 0.2, min: 3 })
  assert.equal((await upstreamOf('')).queue, undefined)
  assert.equal((await upstreamOf('retry_budget off;')).retryBudget, null)
  assert.deepEqual((await upstreamOf('retry_budget ratio=0.5;')).retryBudget, { ratio: 0.5, min: 3 })
  assert.deepEqual((await upstreamOf('retry_budget min=0 ratio=1;')).retryBudget, { ratio: 1, min: 0 })
  assert.deepEqual((await upstreamOf('queue 10;')).queue, { size: 10, timeout: 60_000 })
  assert.deepEqual((await upstreamOf('queue 5 timeout=1500ms;')).queue, { size: 5, timeout: 1500 })
})

// Bad forms fail with nginx-style messages at their line.
const bad: Array<[string, string]> = [
  ['retry_budget ratio=1.5;', 'invalid ratio "1.5" in "retry_budget" directive, it must be between 0 and 1'],
  ['retry_budget ratio=-1;', 'invalid ratio "-1" in "retry_budget" directive, it must be between 0 and 1'],
  ['retry_budget min=x;', 'invalid min "x" in "retry_budget" directive'],
  ['retry_budget off min=1;', 'invalid parameter "min=1"'],
  ['retry_budget colour=red;', 'invalid parameter "colour=red"'],
  ['retry_budget off;\nretry_budget off;', '"retry_budget" directive is duplicate'],
  ['queue 0;', 'invalid value "0" in "queue" directive'],
  ['queue many;', 'invalid value "many" in "queue" directive'],
  ['queue 5 timeout=soon;', 'invalid parameter "timeout=soon"'],
  ['queue 5 wait=1s;', 'invalid parameter "wait=1s"'],
  ['queue;', 'invalid number of arguments in "queue" directive'],
]
for (const [body, message] of bad) {
  test(`bad: ${body.split('\n').pop()}`, async () => {
    const line = 4 + body.split('\n').length - 1
    await assert.rejects(config(body), { message: `${message} in ${FILE}:${line}` })
  })
}

// Envoy's rule: max(min, ratio × active) retries in flight; a request holds its slot until it ends.
test('retry budget: max(min, ratio × active)', () => {
  const budget = new RetryBudget({ ratio: 0.2, min: 3 })
  for (let i = 0; i < 10; i++) budget.requestStarted()
  assert.equal(budget.limit(), 3, '0.2 × 10 = 2 < min 3')
  assert.deepEqual([budget.tryRetry(), budget.tryRetry(), budget.tryRetry(), budget.tryRetry()], [true, true, true, false])
  for (let i = 0; i < 20; i++) budget.requestStarted()
  assert.equal(budget.limit(), 6, '0.2 × 30')
  assert.deepEqual([budget.tryRetry(), budget.tryRetry(), budget.tryRetry(), budget.tryRetry()], [true, true, true, false])
  // A retried request ends: its slot is free, but the limit fell with the load (0.2 × 29).
  budget.requestEnded(true)
  assert.equal(budget.limit(), 5)
  assert.equal(budget.tryRetry(), false)
  budget.requestStarted()
  assert.equal(budget.tryRetry(), true)
  assert.equal(budget.retrying, 6)
})

test('retry budget: min=0 and off', () => {
  const none = new RetryBudget({ ratio: 0.2, min: 0 })
  for (let i = 0; i < 4; i++) none.requestStarted()
  assert.equal(none.tryRetry(), false, '0.2 × 4 rounds down to 0')
  const off = new RetryBudget(null)
  for (let i = 0; i < 100; i++) assert.equal(off.tryRetry(), true)
})

/** An upstream with a queue and a clock the test moves. */
function queued(servers: ServerSpec[], size: number, timeout: number): { upstream: Upstream; clock: ManualClock; env: Environment } {
  const clock = new ManualClock()
  const upstream = new Upstream({ ...upstreamConfig(servers), queue: { size, timeout } })
  return { upstream, clock, env: { now: clock.now, random: () => 0 } }
}

/** Queue a new request; its outcome lands in `log` as `name` → peer or `timeout`. */
function wait(upstream: Upstream, env: Environment, log: string[], name: string): { leave: (() => void) | null; peer: () => Peer | undefined } {
  let got: Peer | undefined
  const leave = upstream.queue!.enqueue(new Selection(env, requestVars()), (p) => {
    got = p
    log.push(`${name}→${short(p)}`)
  }, () => log.push(`${name}→timeout`))
  return { leave, peer: () => got }
}

// max_conns=1 on both peers: waiters get the freed slot in arrival order, one per release.
test('queue: a released slot goes to the oldest waiter', () => {
  const { upstream, env } = queued([{ name: 'a:1', maxConns: 1 }, { name: 'b:1', maxConns: 1 }], 3, 1000)
  const sel = (): Selection => new Selection(env, requestVars())
  const a = upstream.select(sel())!
  const b = upstream.select(sel())!
  assert.equal(upstream.select(sel()), undefined, 'both at max_conns')
  const log: string[] = []
  const first = wait(upstream, env, log, 'r1')
  wait(upstream, env, log, 'r2')
  wait(upstream, env, log, 'r3')
  assert.equal(wait(upstream, env, log, 'r4').leave, null, 'a fourth waiter overflows queue 3')
  upstream.release(b, false, env.now())
  assert.deepEqual(log, ['r1→b'])
  assert.equal(first.peer()!.active, 1, 'the waiter holds the slot')
  upstream.release(a, false, env.now())
  assert.deepEqual(log, ['r1→b', 'r2→a'])
  assert.equal(upstream.queue!.length, 1)
})

// A waiter past its timeout leaves with `timeout`; one whose client went away just leaves.
test('queue: timeout and leaving', () => {
  const { upstream, clock, env } = queued([{ name: 'a:1', maxConns: 1 }], 5, 1000)
  const a = upstream.select(new Selection(env, requestVars()))!
  const log: string[] = []
  const gone = wait(upstream, env, log, 'gone')
  clock.advance(500)
  wait(upstream, env, log, 'late')
  gone.leave!()
  clock.advance(600)
  upstream.queue!.drain()
  assert.deepEqual(log, [], 'late has waited 600 of 1000 ms')
  clock.advance(400)
  upstream.queue!.drain()
  assert.deepEqual(log, ['late→timeout'])
  assert.equal(upstream.queue!.length, 0)
  upstream.release(a, false, env.now())
})

// A peer out for max_fails comes back after fail_timeout with no release: the poll finds it.
test('queue: a peer back after fail_timeout serves the waiter', () => {
  const { upstream, clock, env } = queued([{ name: 'a:1', maxFails: 1, failTimeout: 2000 }, { name: 'b:1', maxFails: 1, failTimeout: 2000 }], 5, 10_000)
  for (const _ of [0, 1]) {
    const p = upstream.select(new Selection(env, requestVars()))!
    upstream.release(p, true, env.now())
  }
  assert.equal(upstream.select(new Selection(env, requestVars())), undefined, 'both out')
  const log: string[] = []
  wait(upstream, env, log, 'r')
  clock.advance(1000)
  upstream.queue!.drain()
  assert.deepEqual(log, [])
  clock.advance(1001)
  upstream.queue!.drain()
  assert.equal(log.length, 1)
  assert.match(log[0]!, /^r→[ab]$/)
})
