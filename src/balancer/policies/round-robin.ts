// nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every eligible peer
// gains its effective weight, the largest current weight wins (first in config order on
// ties) and gives back the total. Weights 5/1/1 give a a b a c a a.
import type { Peer } from '../../upstream/peer.js'
import type { PickContext, Policy } from '../policy.js'

export function smoothWeightedPick(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
  let best: Peer | undefined
  let total = 0
  for (const peer of peers) {
    if (!ctx.eligible(peer)) continue
    peer.currentWeight += peer.effectiveWeight
    total += peer.effectiveWeight
    // A failed peer's effective weight climbs back by one per selection round.
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++
    if (best === undefined || peer.currentWeight > best.currentWeight) best = peer
  }
  if (best !== undefined) best.currentWeight -= total
  return best
}

export function roundRobin(): Policy {
  return { pick: smoothWeightedPick }
}
