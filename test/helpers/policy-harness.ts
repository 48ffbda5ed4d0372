// Drive one balancing policy through a real Upstream with an injected clock and random
// source, for golden tables: pick, hold requests in flight, release with timings.
import type { IncomingMessage } from 'node:http'
import type { Outcome } from '../../src/balancer/policy.js'
import { policyDefinition } from '../../src/balancer/registry.js'
import type { BalancerConfig } from '../../src/config/model.js'
import { RequestVars } from '../../src/proxy/request-vars.js'
import type { Peer } from '../../src/upstream/peer.js'
import { Selection, Upstream, type Environment } from '../../src/upstream/upstream.js'
import { ManualClock, upstreamConfig, type ServerSpec } from './upstream-config.js'

/** Request variables for a client `addr` asking for `url`, with optional headers. */
export function requestVars(options: { addr?: string; url?: string; headers?: Record<string, string> } = {}): RequestVars {
  const req = {
    url: options.url ?? '/', method: 'GET', httpVersion: '1.1', headers: { host: 'h', ...options.headers },
    socket: { remoteAddress: options.addr ?? '192.0.2.1', remotePort: 1234, localAddress: '127.0.0.1' },
  } as unknown as IncomingMessage
  return new RequestVars(req, { scheme: 'http', port: 80 })
}

/** `a` for a server named `a:1`. */
export const short = (peer: Peer | undefined): string => (peer === undefined ? '-' : peer.name.split(':')[0]!)

export class Harness {
  readonly clock = new ManualClock()
  readonly upstream: Upstream
  /** Values handed out by `random()`, in order (then the last one again). */
  randoms: number[] = [0]
  private drawn = 0
  readonly env: Environment = {
    now: this.clock.now,
    random: () => this.randoms[Math.min(this.drawn++, this.randoms.length - 1)]!,
  }

  /** `directive` with `args` (as written in the config) over `servers`; `inner` is the
   *  method a wrapping directive (sticky) wraps. */
  constructor(servers: ServerSpec[], directive = 'round_robin', args: string[] = [], inner?: { directive: string; args?: string[] }) {
    const options = policyDefinition(directive)!.parse(args)
    const config = upstreamConfig(servers, directive, options)
    const balancer: BalancerConfig = inner === undefined ? config.balancer : {
      ...config.balancer,
      inner: { method: inner.directive, options: policyDefinition(inner.directive)!.parse(inner.args ?? []), source: null },
    }
    this.upstream = new Upstream({ ...config, balancer })
  }

  peer(name: string): Peer {
    return this.upstream.peers.find((p) => short(p) === name)!
  }

  /** A new request's selection. */
  selection(vars = requestVars()): Selection {
    return new Selection(this.env, vars)
  }

  /** Pick for a new request and keep it in flight. */
  hold(vars = requestVars()): Peer | undefined {
    return this.upstream.select(this.selection(vars))
  }

  /** End an attempt on `peer` now. */
  release(peer: Peer, outcome: Outcome = { failed: false }): void {
    this.upstream.release(peer, outcome.failed, this.clock.now(), '', outcome)
  }

  /** `n` requests one after another, each answered at once; their peers as `a b c`. */
  run(n: number, vars = requestVars()): string {
    const out: string[] = []
    for (let i = 0; i < n; i++) {
      const peer = this.hold(vars)
      out.push(short(peer))
      if (peer) this.release(peer)
    }
    return out.join(' ')
  }
}
