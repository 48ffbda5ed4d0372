// The tutorial's `fair` (the third-party nginx-upstream-fair module) as switchyard runs it:
// least busy first. The peer with the fewest outstanding requests relative to its weight
// gets the next one; idle peers (and any that tie) take turns by smooth weighted round
// robin, or with `no_rr` the first of them in config order always goes first.
import type { Peer } from '../../upstream/peer.js'
import type { PickContext, Policy } from '../policy.js'
import { leastScorePick } from '../shared/least-score.js'

export interface FairOptions {
  /** `no_rr`: ties go to the first tied peer in config order instead of rotating. */
  readonly noRoundRobin: boolean
}

/**
 * `fair [no_rr]`. The module's `weight_mode=idle|peak` is not supported; anything else is
 * the module's own error, ``Invalid `fair' parameter `X'``.
 */
export function parseFair(args: readonly string[]): FairOptions {
  let noRoundRobin = false
  for (const arg of args) {
    if (arg === 'no_rr') noRoundRobin = true
    else if (arg === 'weight_mode=idle' || arg === 'weight_mode=peak') throw new Error(`"fair ${arg}" is not supported by switchyard yet`)
    else throw new Error(`Invalid \`fair' parameter \`${arg}'`)
  }
  return { noRoundRobin }
}

const outstanding = (peer: Peer): number => peer.active

/** Least busy relative to weight; supports weight, max_fails, fail_timeout and down, as
 *  the module does (no backup, no max_conns). */
export function fair(peers: readonly Peer[], options: FairOptions): Policy {
  let scores = new Float64Array(peers.length)
  if (!options.noRoundRobin) {
    return {
      pick(tier: readonly Peer[], ctx: PickContext): Peer | undefined {
        if (tier.length > scores.length) scores = new Float64Array(tier.length)
        return leastScorePick(tier, ctx, scores, outstanding)
      },
    }
  }
  return {
    pick(tier: readonly Peer[], ctx: PickContext): Peer | undefined {
      let best: Peer | undefined
      for (const peer of tier) {
        if (!ctx.eligible(peer)) continue
        if (best === undefined || peer.active * best.weight < best.active * peer.weight) best = peer
      }
      return best
    },
  }
}
