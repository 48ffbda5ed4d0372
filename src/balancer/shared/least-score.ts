// The two-pass pick that nginx's least_conn and least_time share
// (ngx_http_upstream_get_least_conn_peer, ngx_http_upstream_get_least_time_peer): the
// eligible peer with the lowest score relative to its weight wins; when several tie, smooth
// weighted round robin runs over just the tied peers, so equal peers still rotate.
import type { Peer } from '../../upstream/peer.js'
import type { PickContext } from '../policy.js'

/** Per-peer score for one pick (active requests for least_conn, estimated time for least_time). */
export type Score = (peer: Peer) => number

/**
 * The peer with the lowest `score / weight` among the eligible `peers`, compared as nginx
 * does without division (`score_a * weight_b < score_b * weight_a`); the first in config
 * order on a strict minimum. `scores` is the caller's scratch (one slot per peer of the
 * tier, reused across picks so a pick allocates nothing).
 */
export function leastScorePick(peers: readonly Peer[], ctx: PickContext, scores: Float64Array, score: Score): Peer | undefined {
  let best: Peer | undefined
  let bestIndex = 0
  let bestScore = 0
  let many = false
  for (let i = 0; i < peers.length; i++) {
    const peer = peers[i]!
    if (!ctx.eligible(peer)) {
      // NaN never compares equal, so the tie pass below skips this peer without asking again.
      scores[i] = Number.NaN
      continue
    }
    const s = score(peer)
    scores[i] = s
    if (best === undefined || s * best.weight < bestScore * peer.weight) {
      best = peer
      bestIndex = i
      bestScore = s
      many = false
    } else if (s * best.weight === bestScore * peer.weight) {
      many = true
    }
  }
  // A single best peer is taken as is: nginx leaves the round-robin weights alone then.
  if (best === undefined || !many) return best

  // Every peer before bestIndex scored strictly worse, so the tie pass starts there.
  const first = best
  let total = 0
  for (let i = bestIndex; i < peers.length; i++) {
    const peer = peers[i]!
    if (!(scores[i]! * first.weight === bestScore * peer.weight)) continue
    peer.currentWeight += peer.effectiveWeight
    total += peer.effectiveWeight
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++
    if (peer.currentWeight > best.currentWeight) best = peer
  }
  best.currentWeight -= total
  return best
}
