// nginx's random (ngx_http_upstream_random_module.c): a peer drawn with probability
// proportional to its weight, or with `two` the better of two distinct draws. A draw that
// lands on an ineligible peer is drawn again; after 20 wasted draws in one request (counted
// across its retries) the request falls back to round robin, as in nginx.
import type { Peer } from '../../upstream/peer.js'
import type { Outcome, PickContext, Policy } from '../policy.js'
import { ResponseTimes, type TimeMode } from '../shared/response-time.js'
import { smoothWeightedPick } from './round-robin.js'

/** How `random two` picks between its two draws. */
export type RandomMethod = 'least_conn' | 'least_time=header' | 'least_time=last_byte'

export interface RandomOptions {
  /** `two`: draw two distinct peers and keep the better. */
  readonly two: boolean
  /** What "better" means with `two`; nginx's default is least_conn. */
  readonly method: RandomMethod
}

const METHODS: readonly RandomMethod[] = ['least_conn', 'least_time=header', 'least_time=last_byte']

/**
 * `random [two [least_conn|least_time=header|least_time=last_byte]]`, with nginx's
 * `invalid parameter "X"` for anything else. (nginx's open-source module takes only
 * `least_conn` after `two`; the least_time choices are NGINX Plus's.)
 */
export function parseRandom(args: readonly string[]): RandomOptions {
  if (args.length === 0) return { two: false, method: 'least_conn' }
  if (args[0] !== 'two') throw new Error(`invalid parameter "${args[0]}"`)
  const method = args[1] ?? 'least_conn'
  if (!(METHODS as readonly string[]).includes(method)) throw new Error(`invalid parameter "${method}"`)
  return { two: true, method: method as RandomMethod }
}

/** nginx gives up drawing after this many misses in one request. */
const MAX_DRAWS = 20

/** `server` parameters random supports: weight, max_fails, fail_timeout, max_conns, down
 *  (no backup, no slow_start). */
class RandomPolicy implements Policy {
  private readonly two: boolean
  private readonly mode: TimeMode | null
  private readonly times: ResponseTimes | null
  /** The tier the draw ranges were built for, and its ranges: `starts[i]` is the sum of
   *  the weights before peer i (nginx's `ranges`), `total` all of them. */
  private tier: readonly Peer[] = []
  private starts = new Float64Array(0)
  private total = 0

  constructor(peers: readonly Peer[], options: RandomOptions) {
    this.two = options.two
    this.mode = options.method === 'least_time=header' ? 'header' : options.method === 'least_time=last_byte' ? 'last_byte' : null
    this.times = this.mode === null ? null : new ResponseTimes(peers.length)
  }

  pick(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
    if (ctx.policyTries > MAX_DRAWS || peers.length < 2) return smoothWeightedPick(peers, ctx)
    // Built once for the tier the upstream passes (random has no backup tier).
    if (peers !== this.tier) this.ranges(peers)
    return this.two ? this.pickTwo(peers, ctx) : this.pickOne(peers, ctx)
  }

  report(peer: Peer, outcome: Outcome): void {
    this.times?.learn(peer, outcome, true)
  }

  private pickOne(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
    for (;;) {
      const peer = peers[this.draw(ctx)]!
      if (ctx.eligible(peer)) return peer
      if (++ctx.policyTries > MAX_DRAWS) return smoothWeightedPick(peers, ctx)
    }
  }

  private pickTwo(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
    let first: Peer | undefined
    for (;;) {
      const peer = peers[this.draw(ctx)]!
      if (peer !== first && ctx.eligible(peer)) {
        if (first !== undefined) return this.worse(peer, first, ctx.now) ? first : peer
        first = peer
      }
      // nginx counts the first good draw too: only the second one ends the loop at once.
      if (++ctx.policyTries > MAX_DRAWS) return smoothWeightedPick(peers, ctx)
    }
  }

  /** Is `second` strictly worse than `first`? (On a tie the second draw wins, as in nginx.) */
  private worse(second: Peer, first: Peer, now: number): boolean {
    if (this.times === null) return second.active * first.weight > first.active * second.weight
    const mode = this.mode!
    return this.times.eta(second, mode, now) * first.weight > this.times.eta(first, mode, now) * second.weight
  }

  /** Uniform over [0, total weight), then the peer whose range holds it (binary search). */
  private draw(ctx: PickContext): number {
    const x = Math.floor(ctx.random() * this.total)
    const starts = this.starts
    let i = 0
    let j = this.tier.length
    while (j - i > 1) {
      const k = (i + j) >>> 1
      if (x < starts[k]!) j = k
      else i = k
    }
    return i
  }

  private ranges(peers: readonly Peer[]): void {
    this.tier = peers
    this.starts = new Float64Array(peers.length)
    let total = 0
    for (let i = 0; i < peers.length; i++) {
      this.starts[i] = total
      total += peers[i]!.weight
    }
    this.total = total
  }
}

/** nginx's `random` for one upstream (`random;` alone draws one peer by weight). */
export function random(peers: readonly Peer[], options: RandomOptions): Policy {
  return new RandomPolicy(peers, options)
}
