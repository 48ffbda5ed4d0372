// nginx's `ip_hash` (ngx_http_upstream_ip_hash_module.c): the client address picks the
// peer, so a client keeps its server across requests. Hashes the first three octets of
// an IPv4 address (a whole /24 lands together) or all 16 bytes of an IPv6 one:
// hash = 89, then hash = (hash * 113 + byte) % 6271 per byte; hash % total weight, walked
// over the primary peers in config order (down peers keep their place, so clients of
// other peers never move). An ineligible peer runs the byte loop again from the current
// hash; after 20 such rehashes — or with a single primary peer — it is round robin.
import type { Peer } from '../../upstream/peer.js'
import type { Policy } from '../policy.js'
import { peerAtWeight, totalWeight } from '../shared/weight-walk.js'
import { smoothWeightedPick } from './round-robin.js'

/** nginx gives up hashing after this many ineligible picks in one request. */
export const MAX_REHASHES = 20

/** The starting value and the two constants of nginx's ip_hash. */
const HASH_INIT = 89
const HASH_MUL = 113
const HASH_MOD = 6271

/**
 * The bytes nginx hashes for a client address, written to `out` (16 bytes); returns their
 * count. IPv4 → its first three octets. IPv6 → all 16 bytes. An IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`) counts as IPv4: nginx listens IPv6 sockets with `ipv6only=on`, so an
 * IPv4 client reaches it as AF_INET, while Node reports it mapped on a dual-stack socket.
 * Anything else (no address, a unix socket) → three zero bytes, nginx's pseudo address.
 */
export function clientAddressKey(address: string, out: Uint8Array): number {
  let start = 0
  if (address.startsWith('::ffff:') && address.includes('.')) start = 7
  if (address.includes(':', start)) {
    if (parseIpv6(address, out)) return 16
  } else if (parseIpv4(address, start, address.length, out, 0)) {
    return 3
  }
  out[0] = out[1] = out[2] = 0
  return 3
}

/** The dotted quad text[start..end) into out[at..at+3]. */
function parseIpv4(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let octet = 0
  let value = 0
  let digits = 0
  for (let i = start; i <= end; i++) {
    const c = i === end ? 0x2e : text.charCodeAt(i)
    if (c === 0x2e /* . */) {
      if (digits === 0 || octet > 3) return false
      out[at + octet++] = value
      value = 0
      digits = 0
    } else if (c >= 0x30 && c <= 0x39) {
      value = value * 10 + (c - 0x30)
      if (++digits > 3 || value > 255) return false
    } else {
      return false
    }
  }
  return octet === 4
}

const words = new Uint16Array(8)
const quad = new Uint8Array(4)

/** An IPv6 address (with `::`, a trailing dotted quad, or a `%zone`) into out[0..15]. */
function parseIpv6(text: string, out: Uint8Array): boolean {
  let end = text.indexOf('%')
  if (end === -1) end = text.length
  let n = 0
  let gap = -1
  let i = 0
  if (text.startsWith('::')) {
    gap = 0
    i = 2
  }
  while (i < end) {
    let j = i
    let word = 0
    let dotted = false
    let hex = true
    for (; j < end; j++) {
      const c = text.charCodeAt(j)
      if (c === 0x3a /* : */) break
      if (c === 0x2e /* . */) dotted = true
      const digit = c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10
      if (digit < 0 || digit > 15) hex = false
      word = word * 16 + digit
    }
    if (dotted) {
      if (j !== end || n > 6 || !parseIpv4(text, i, j, quad, 0)) return false
      words[n++] = (quad[0]! << 8) | quad[1]!
      words[n++] = (quad[2]! << 8) | quad[3]!
      break
    }
    if (!hex || j === i || j - i > 4 || n >= 8) return false
    words[n++] = word
    if (j === end) break
    if (text.charCodeAt(j + 1) === 0x3a /* : */) {
      if (gap !== -1) return false
      gap = n
      i = j + 2
    } else {
      i = j + 1
    }
  }
  if (gap === -1 ? n !== 8 : n > 7) return false
  const zeros = gap === -1 ? 0 : 8 - n
  for (let w = 0, k = 0; w < 8; w++) {
    const value = gap !== -1 && w >= gap && w < gap + zeros ? 0 : words[k++]!
    out[2 * w] = value >>> 8
    out[2 * w + 1] = value & 0xff
  }
  return true
}

/**
 * nginx's `ip_hash`. `peers` is the whole upstream; the hash walks the primary tier. A
 * `backup` tier cannot exist (the method rejects the parameter); one handed in anyway is
 * balanced by round robin, as nginx's fallback would.
 *
 * nginx keeps two numbers per request: `tries` (ineligible peers met; `ctx.policyTries`
 * here) and the hash after the last pick. The hash is not stored: every pick of the request
 * ran the byte loop once per ineligible peer plus once for the peer it returned, so the
 * loop has run `policyTries + attempt` times and is replayed from 89 (cheap, and only
 * retries replay anything).
 */
export function ipHash(peers: readonly Peer[]): Policy {
  const primary = peers.filter((p) => !p.server.backup)
  const single = primary.length < 2
  const key = new Uint8Array(16)

  return {
    pick(tier, ctx) {
      if (single || ctx.policyTries > MAX_REHASHES || tier.length !== primary.length || tier[0] !== primary[0]) {
        return smoothWeightedPick(tier, ctx)
      }
      const length = clientAddressKey(ctx.vars.remoteAddr, key)
      const total = totalWeight(primary)
      let hash = HASH_INIT
      for (let done = ctx.policyTries + ctx.attempt; done > 0; done--) {
        for (let i = 0; i < length; i++) hash = (hash * HASH_MUL + key[i]!) % HASH_MOD
      }
      for (;;) {
        for (let i = 0; i < length; i++) hash = (hash * HASH_MUL + key[i]!) % HASH_MOD
        const peer = peerAtWeight(primary, hash % total)
        if (ctx.eligible(peer)) return peer
        if (++ctx.policyTries > MAX_REHASHES) return smoothWeightedPick(tier, ctx)
      }
    },
  }
}
