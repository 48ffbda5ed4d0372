// nginx's `hash KEY [consistent]` (ngx_http_upstream_hash_module.c): a request's key —
// a string with variables, the same for every pick of one request — picks the peer.
//
// Plain (Cache::Memcached-compatible): try n hashes `KEY` (n = 0) or `n` in decimal
// followed by KEY, adds (crc32 >> 16) & 0x7fff to a running sum, and walks sum % total
// weight over the primary peers in config order (down peers keep their place).
//
// `consistent` (ketama, Cache::Memcached::Fast-compatible): crc32(KEY) finds the first
// ring point >= it; the point names a server as written, and among that server's peers
// (a name may resolve to several addresses) smooth weighted round robin picks an eligible
// one. None eligible → the next point.
//
// Both: a request that meets 20 ineligible peers/points, an empty key, or an upstream
// with a single primary peer is balanced by round robin.
import { compileTemplate, type Template } from '../../config/variables.js'
import type { Peer } from '../../upstream/peer.js'
import type { PickContext, Policy } from '../policy.js'
import { CRC32_INIT, crc32, crc32Final, crc32UpdateDecimal, crc32UpdateString } from '../shared/crc32.js'
import { buildRing, firstPointAtOrAfter, type Ring } from '../shared/ketama.js'
import { peerAtWeight, totalWeight } from '../shared/weight-walk.js'
import { smoothWeightedPick } from './round-robin.js'

/** nginx gives up hashing after this many ineligible picks in one request. */
export const MAX_REHASHES = 20

/** `hash KEY [consistent]` as parsed from the config. */
export interface HashOptions {
  /** The key, e.g. `$request_uri` or `$host$uri`. */
  readonly key: Template
  /** True for `consistent` (ketama); false for the Cache::Memcached mapping. */
  readonly consistent: boolean
}

/** Read the directive's arguments with nginx's errors: `invalid parameter "x"` for a
 *  second argument other than `consistent`, `unknown "x" variable` for a bad key. */
export function parseHash(args: readonly string[]): HashOptions {
  const [text, mode] = args
  // nginx checks the parameter while reading the directive and the variables only once
  // the whole config is read, so `hash $nope bogus;` reports the parameter.
  if (mode !== undefined && mode !== 'consistent') throw new Error(`invalid parameter "${mode}"`)
  return { key: compileTemplate(text!), consistent: mode !== undefined }
}

/**
 * nginx's `hash`. `peers` is the whole upstream; the key walks the primary tier. A
 * `backup` tier cannot exist (the method rejects the parameter); one handed in anyway is
 * balanced by round robin, as nginx's fallback would.
 *
 * nginx keeps per request `tries` (ineligible peers or points met; `ctx.policyTries` here)
 * and the walk's position. The position is not stored but derived: plain, every pick ran
 * one hash for each ineligible peer plus one for the peer it returned, so `policyTries +
 * attempt` keys were hashed and their sum is replayed; consistent, only an ineligible point
 * moves on, so the point is the key's own plus `policyTries`. Only retries replay anything.
 */
export function hash(peers: readonly Peer[], options: HashOptions): Policy {
  return options.consistent ? consistentHash(peers, options.key) : plainHash(peers, options.key)
}

/** The Cache::Memcached step: (crc32(`n` KEY) >> 16) & 0x7fff, the decimal omitted for n = 0. */
function memcachedHash(key: string, n: number): number {
  let crc = CRC32_INIT
  if (n > 0) crc = crc32UpdateDecimal(crc, n)
  return (crc32Final(crc32UpdateString(crc, key)) >>> 16) & 0x7fff
}

/** The request's hash key, or null when nginx would use round robin instead: a single
 *  primary server, past the rehash limit, a tier other than the primary one, an empty key. */
function hashKey(tier: readonly Peer[], ctx: PickContext, primary: readonly Peer[], template: Template): string | null {
  if (primary.length === 1 || ctx.policyTries > MAX_REHASHES || tier.length !== primary.length || tier[0] !== primary[0]) return null
  const key = template.evaluate(ctx.vars)
  return key === '' ? null : key
}

function plainHash(peers: readonly Peer[], template: Template): Policy {
  const primary = peers.filter((p) => !p.server.backup)

  return {
    pick(tier, ctx) {
      const key = hashKey(tier, ctx, primary, template)
      if (key === null) return smoothWeightedPick(tier, ctx)
      const total = totalWeight(primary)
      let rehash = 0
      let sum = 0
      for (const done = ctx.policyTries + ctx.attempt; rehash < done; rehash++) sum = (sum + memcachedHash(key, rehash)) >>> 0
      for (;;) {
        // nginx keeps the sum in a uint32_t.
        sum = (sum + memcachedHash(key, rehash++)) >>> 0
        const peer = peerAtWeight(primary, sum % total)
        if (ctx.eligible(peer)) return peer
        if (++ctx.policyTries > MAX_REHASHES) return smoothWeightedPick(tier, ctx)
      }
    },
  }
}

function consistentHash(peers: readonly Peer[], template: Template): Policy {
  const primary = peers.filter((p) => !p.server.backup)
  // One ring entry per server name as written; its peers are the addresses it resolved to.
  const groups = new Map<string, Peer[]>()
  for (const peer of primary) {
    const group = groups.get(peer.name)
    if (group) group.push(peer)
    else groups.set(peer.name, [peer])
  }
  const members = [...groups.values()]
  // nginx adds 160 × weight points per peer and drops repeats, so a name written twice
  // with different weights gets the larger count.
  const ringWeight = (group: readonly Peer[]): number => {
    let weight = 0
    for (const peer of group) if (peer.weight > weight) weight = peer.weight
    return weight
  }
  let weights = members.map(ringWeight)
  let ring: Ring = buildRing(members.map((g, i) => ({ name: g[0]!.name, weight: weights[i]! })))
  // The runtime API may change a weight; the ring then follows, as NGINX Plus rebuilds it
  // when the upstream changes (ngx_http_upstream_update_chash).
  const currentRing = (): Ring => {
    for (let i = 0; i < members.length; i++) {
      if (ringWeight(members[i]!) === weights[i]) continue
      weights = members.map(ringWeight)
      ring = buildRing(members.map((g, j) => ({ name: g[0]!.name, weight: weights[j]! })))
      break
    }
    return ring
  }

  return {
    pick(tier, ctx) {
      const key = hashKey(tier, ctx, primary, template)
      if (key === null) return smoothWeightedPick(tier, ctx)
      const { hashes, owners } = currentRing()
      let point = firstPointAtOrAfter(hashes, crc32(key)) + ctx.policyTries
      for (;;) {
        // Among the point's server's addresses, smooth weighted round robin (a retry comes
        // back to the same point and so to that server's other addresses first).
        const peer = smoothWeightedPick(members[owners[point % hashes.length]!]!, ctx)
        if (peer !== undefined) return peer
        point++
        if (++ctx.policyTries > MAX_REHASHES) return smoothWeightedPick(tier, ctx)
      }
    },
  }
}
