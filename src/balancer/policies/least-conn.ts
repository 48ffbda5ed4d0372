// nginx's least_conn (ngx_http_upstream_least_conn_module.c): the eligible peer with the
// fewest requests in flight relative to its weight; peers that tie share requests by
// smooth weighted round robin, so an idle pool still rotates in nginx's order.
import type { Peer } from '../../upstream/peer.js'
import type { PickContext, Policy } from '../policy.js'
import { leastScorePick } from '../shared/least-score.js'

const inFlight = (peer: Peer): number => peer.active

/**
 * `least_conn;` (no arguments). Compares `active_a × weight_b < active_b × weight_a`, the
 * first peer in config order winning a strict minimum; ties go through smooth weighted
 * round robin over the tied peers only. `server` parameters: weight, max_fails,
 * fail_timeout, max_conns, backup, down, slow_start.
 */
export function leastConn(peers: readonly Peer[]): Policy {
  let scores = new Float64Array(peers.length)
  return {
    pick(tier: readonly Peer[], ctx: PickContext): Peer | undefined {
      if (tier.length > scores.length) scores = new Float64Array(tier.length)
      return leastScorePick(tier, ctx, scores, inFlight)
    },
  }
}
