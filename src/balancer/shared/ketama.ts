// nginx's ketama ring for `hash KEY consistent` (ngx_http_upstream_init_chash, compatible
// with Cache::Memcached::Fast): 160 points per weight unit for each server *name* as
// written, so the ring depends only on the names and weights, never on which servers are
// up — taking one down moves only its own keys.
import { CRC32_INIT, crc32Final, crc32UpdateByte, crc32UpdateString } from './crc32.js'

/** Points per weight unit (nginx's constant). */
export const POINTS_PER_WEIGHT = 160

/** One server on the ring: its name as written in `server NAME …;` and its weight. */
export interface RingServer {
  readonly name: string
  readonly weight: number
}

/** The sorted ring: `hashes[i]` is a point, `owners[i]` the index of its server in the
 *  list the ring was built from. Equal points are kept once (the earlier server's). */
export interface Ring {
  readonly hashes: Uint32Array
  readonly owners: Uint32Array
}

/**
 * The running CRC over `HOST "\0" PORT` (unfinalized). nginx splits the name at the last
 * `:` when only digits follow it; otherwise the whole name is the host and the port is
 * empty (`backend`, `[::1]`, `unix:` paths — for those the `unix:` prefix is dropped).
 */
export function serverBaseCrc(name: string): number {
  let host = name
  let port = ''
  if (name.length >= 5 && name.slice(0, 5).toLowerCase() === 'unix:') {
    host = name.slice(5)
  } else {
    for (let j = name.length - 1; j >= 0; j--) {
      const c = name.charCodeAt(j)
      if (c === 0x3a /* : */) {
        host = name.slice(0, j)
        port = name.slice(j + 1)
        break
      }
      if (c < 0x30 || c > 0x39) break
    }
  }
  let crc = crc32UpdateString(CRC32_INIT, host)
  crc = crc32UpdateByte(crc, 0)
  return crc32UpdateString(crc, port)
}

/** The `count` points of one server: point j = crc32(HOST "\0" PORT PREV), PREV being point
 *  j-1 as 4 little-endian bytes (4 zero bytes for the first). */
export function serverPoints(name: string, count: number): Uint32Array {
  const base = serverBaseCrc(name)
  const out = new Uint32Array(count)
  let prev = 0
  for (let j = 0; j < count; j++) {
    let crc = base
    crc = crc32UpdateByte(crc, prev & 0xff)
    crc = crc32UpdateByte(crc, (prev >>> 8) & 0xff)
    crc = crc32UpdateByte(crc, (prev >>> 16) & 0xff)
    crc = crc32UpdateByte(crc, prev >>> 24)
    prev = crc32Final(crc)
    out[j] = prev
  }
  return out
}

/** Build the ring for `servers` in config order. */
export function buildRing(servers: readonly RingServer[]): Ring {
  const points: Array<{ hash: number; owner: number }> = []
  servers.forEach((server, owner) => {
    for (const hash of serverPoints(server.name, server.weight * POINTS_PER_WEIGHT)) points.push({ hash, owner })
  })
  // A stable sort, so on a collision the server listed first keeps the point, as with
  // nginx's qsort on glibc (a merge sort) followed by its drop-equal-neighbours pass.
  points.sort((a, b) => a.hash - b.hash)
  const hashes: number[] = []
  const owners: number[] = []
  for (const p of points) {
    if (hashes.length !== 0 && hashes[hashes.length - 1] === p.hash) continue
    hashes.push(p.hash)
    owners.push(p.owner)
  }
  return { hashes: Uint32Array.from(hashes), owners: Uint32Array.from(owners) }
}

/** Index of the first point >= `hash`; `hashes.length` when there is none (the caller
 *  wraps it, as nginx does with `% points->number`). nginx's ngx_http_upstream_find_chash_point. */
export function firstPointAtOrAfter(hashes: Uint32Array, hash: number): number {
  let lo = 0
  let hi = hashes.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (hashes[mid]! < hash) lo = mid + 1
    else hi = mid
  }
  return lo
}
