// The weight walk nginx's ip_hash and hash share: a number below the total weight names
// the peer whose slice of [0, total) holds it, peers laid out in config order — so a down
// peer keeps its slice and nobody else's clients move.

/** The sum of the peers' current weights (read per pick: the runtime API may change a
 *  weight, as NGINX Plus's API updates `peers->total_weight`). */
export function totalWeight(peers: readonly { readonly weight: number }[]): number {
  let total = 0
  for (let i = 0; i < peers.length; i++) total += peers[i]!.weight
  return total
}

/** The peer whose slice holds `w` (0 <= w < total weight): nginx's
 *  `while (w >= peer->weight) { w -= peer->weight; peer = peer->next; }`. */
export function peerAtWeight<P extends { readonly weight: number }>(peers: readonly P[], w: number): P {
  let p = 0
  while (w >= peers[p]!.weight) w -= peers[p++]!.weight
  return peers[p]!
}
