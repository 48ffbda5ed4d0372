// The contract every registered balancing policy keeps, run over the registry so a new
// policy is checked the day it is added: it never returns an ineligible or already tried
// peer, returns nothing on an empty or all-down pool, and is deterministic for a fixed
// clock and random source.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { registeredPolicies } from '../../src/balancer/registry.js'
import { RequestVars } from '../../src/proxy/request-vars.js'
import { Selection, Upstream, type Environment } from '../../src/upstream/upstream.js'
import { ManualClock, upstreamConfig, type ServerSpec } from '../helpers/upstream-config.js'

function vars(addr: string, url: string): RequestVars {
  const req = { url, socket: { remoteAddress: addr, remotePort: 1234, localAddress: '127.0.0.1' }, headers: { host: 'h' }, method: 'GET', httpVersion: '1.1' } as unknown as IncomingMessage
  return new RequestVars(req, { scheme: 'http', port: 80 })
}

/** A seeded xorshift source, so "random" policies repeat exactly. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 2 ** 32
  }
}

const pool: ServerSpec[] = [
  { name: '10.0.0.1:80', weight: 3 }, { name: '10.0.0.2:80', weight: 5 }, { name: '10.0.0.3:80', weight: 2 }, { name: '10.0.0.4:80' },
]

/** Directive arguments each method is checked with; a method not listed runs with none. */
const sampleArgs: Record<string, string[][]> = {
  least_time: [['header'], ['last_byte', 'inflight']],
  random: [[], ['two'], ['two', 'least_time=last_byte']],
  fair: [[], ['no_rr']],
  sticky: [['cookie', 'srv']],
  hash: [['$request_uri'], ['$request_uri', 'consistent'], ['$arg_none']],
}

for (const def of registeredPolicies()) for (const args of sampleArgs[def.directive] ?? [[]]) {
  const options = def.parse(args)
  const directive = [def.directive, ...args].join(' ')
  const make = (servers: ServerSpec[]): Upstream => new Upstream(upstreamConfig(servers.filter((s) => !s.backup || def.serverParams.has('backup')), def.directive, options))

  test(`policy contract (${directive}): never an ineligible or tried peer`, () => {
    const clock = new ManualClock()
    const env: Environment = { now: clock.now, random: seeded(7) }
    const upstream = make(pool.map((s, i) => (i === 1 ? { ...s, down: true } : s)))
    for (let r = 0; r < 200; r++) {
      // Spread over /24s: ip_hash keys on the first three octets.
      const sel = new Selection(env, vars(`192.0.${r % 50}.${r % 3}`, `/item/${r}`))
      const seen = new Set<string>()
      for (;;) {
        const peer = upstream.select(sel)
        if (peer === undefined) break
        assert.ok(!peer.server.down, 'never a down peer')
        assert.ok(!seen.has(peer.name), 'never a peer already tried')
        seen.add(peer.name)
        upstream.release(peer, false, clock.now())
      }
      assert.equal(seen.size, 3, 'every eligible peer is reachable within one request')
    }
  })

  test(`policy contract (${directive}): nothing from an empty or all-down pool`, () => {
    const clock = new ManualClock()
    const env: Environment = { now: clock.now, random: seeded(1) }
    const allDown = make(pool.map((s) => ({ ...s, down: true })))
    assert.equal(allDown.select(new Selection(env, vars('192.0.2.1', '/'))), undefined)
    const picked = allDown.policy.pick([], new Selection(env, vars('192.0.2.1', '/')))
    assert.equal(picked, undefined)
  })

  test(`policy contract (${directive}): deterministic for a fixed clock and seed`, () => {
    const run = (): string[] => {
      const clock = new ManualClock()
      const env: Environment = { now: clock.now, random: seeded(42) }
      const upstream = make(pool)
      const out: string[] = []
      for (let r = 0; r < 100; r++) {
        const peer = upstream.select(new Selection(env, vars(`198.51.${r % 7}.100`, `/k/${r % 13}`)))
        out.push(peer?.name ?? '-')
        if (peer) upstream.release(peer, r % 9 === 0, clock.now())
        clock.advance(37)
      }
      return out
    }
    assert.deepEqual(run(), run())
  })
}
