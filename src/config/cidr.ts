// Addresses and CIDR blocks as nginx's ngx_ptocidr reads them (`allow`, `deny`,
// `set_real_ip_from`): `ADDR`, `ADDR/BITS`, IPv4 or IPv6, or `all`. An address is kept as
// four 32-bit words (IPv4 in the last one), so matching is a few integer compares.
import { isIPv4, isIPv6 } from 'node:net'

export interface Cidr {
  /** As written, for logs and errors. */
  readonly text: string
  /** 0 for `all` (matches every address of either family). */
  readonly family: 0 | 4 | 6
  readonly words: readonly number[]
  readonly masks: readonly number[]
}

const FULL = 0xffffffff

/** Four words for an IPv4 or IPv6 address; null when `ip` is neither. An IPv4-mapped
 *  IPv6 address (`::ffff:1.2.3.4`) is the IPv4 address, as nginx treats it. */
export function addressWords(ip: string): { family: 4 | 6; words: number[] } | null {
  if (isIPv4(ip)) return { family: 4, words: [0, 0, 0, ipv4Word(ip)] }
  if (!isIPv6(ip)) return null
  const words = ipv6Words(ip)
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return { family: 4, words: [0, 0, 0, words[3]!] }
  return { family: 6, words }
}

function ipv4Word(ip: string): number {
  const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number]
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0
}

function ipv6Words(ip: string): number[] {
  let text = ip
  const zone = text.indexOf('%')
  if (zone !== -1) text = text.slice(0, zone)
  let tail: number[] = []
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) is two groups.
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) {
    const v4 = ipv4Word(text.slice(lastColon + 1))
    tail = [v4 >>> 16, v4 & 0xffff]
    text = text.slice(0, lastColon + 1)
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, null]
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)))
  const left = parse(head)
  const right = rest === null ? [] : parse(rest)
  const groups = [...left, ...new Array<number>(8 - left.length - right.length - tail.length).fill(0), ...right, ...tail]
  const words: number[] = []
  for (let i = 0; i < 8; i += 2) words.push(((groups[i]! << 16) | groups[i + 1]!) >>> 0)
  return words
}

/** Parse `ADDR[/BITS]` or `all`; returns nginx's error text on failure. Like nginx, host
 *  bits set under the mask are cleared (nginx warns "low address bits … are meaningless"). */
export function parseCidr(text: string): Cidr | string {
  if (text === 'all') return { text, family: 0, words: [0, 0, 0, 0], masks: [0, 0, 0, 0] }
  const slash = text.indexOf('/')
  const ip = slash === -1 ? text : text.slice(0, slash)
  const addr = isIPv4(ip) ? { family: 4 as const, words: [0, 0, 0, ipv4Word(ip)] } : isIPv6(ip) ? { family: 6 as const, words: ipv6Words(ip) } : null
  if (addr === null) return `invalid parameter "${text}"`
  const max = addr.family === 4 ? 32 : 128
  let bits = max
  if (slash !== -1) {
    const b = text.slice(slash + 1)
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > max) return `invalid parameter "${text}"`
    bits = Number(b)
  }
  // IPv4 bits count within the last word; IPv6 across all four.
  const offset = addr.family === 4 ? 96 : 0
  const masks = [0, 1, 2, 3].map((i) => {
    const from = i * 32
    const n = Math.max(0, Math.min(32, offset + bits - from))
    if (addr.family === 4 && i < 3) return 0
    return n === 0 ? 0 : n === 32 ? FULL : (FULL << (32 - n)) >>> 0
  })
  const words = addr.words.map((w, i) => (w & masks[i]!) >>> 0)
  return { text, family: addr.family, words, masks }
}

/** Does `addr` (from addressWords) fall inside `cidr`? */
export function cidrMatches(cidr: Cidr, addr: { family: 4 | 6; words: readonly number[] }): boolean {
  if (cidr.family === 0) return true
  if (cidr.family !== addr.family) return false
  for (let i = 0; i < 4; i++) if (((addr.words[i]! & cidr.masks[i]!) >>> 0) !== cidr.words[i]) return false
  return true
}
