// IEEE CRC-32 (zlib's, polynomial 0xEDB88320), the hash nginx's `hash` balancer uses
// (ngx_crc32_init / ngx_crc32_update / ngx_crc32_final). node:zlib only has crc32 from
// Node 22, and the ketama ring needs the running (unfinalized) state anyway, so this is
// a small table-driven one with the same three steps.

const TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** The running state before any byte (nginx's `ngx_crc32_init`). */
export const CRC32_INIT = 0xffffffff

/** Feed one byte (0–255). */
export function crc32UpdateByte(crc: number, byte: number): number {
  return (TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)) >>> 0
}

/** Feed bytes. */
export function crc32UpdateBytes(crc: number, bytes: ArrayLike<number>): number {
  for (let i = 0; i < bytes.length; i++) crc = (TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)) >>> 0
  return crc
}

/**
 * Feed a string as the bytes nginx would see. Node hands request text (headers, cookies,
 * the request target) over latin1-decoded, one character per byte, so a character below
 * 0x100 is that byte; a character above (only config text can hold one) is fed as UTF-8,
 * the encoding the config file was read in. No allocation.
 */
export function crc32UpdateString(crc: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i)
    if (c < 0x100) {
      crc = (TABLE[(crc ^ c) & 0xff]! ^ (crc >>> 8)) >>> 0
      continue
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1)
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00)
        i++
      }
    }
    if (c < 0x800) {
      crc = crc32UpdateByte(crc, 0xc0 | (c >> 6))
    } else if (c < 0x10000) {
      crc = crc32UpdateByte(crc, 0xe0 | (c >> 12))
      crc = crc32UpdateByte(crc, 0x80 | ((c >> 6) & 0x3f))
    } else {
      crc = crc32UpdateByte(crc, 0xf0 | (c >> 18))
      crc = crc32UpdateByte(crc, 0x80 | ((c >> 12) & 0x3f))
      crc = crc32UpdateByte(crc, 0x80 | ((c >> 6) & 0x3f))
    }
    crc = crc32UpdateByte(crc, 0x80 | (c & 0x3f))
  }
  return crc
}

/** Feed a non-negative integer as its decimal digits (nginx's `ngx_sprintf("%ui")`), without
 *  building the string. */
export function crc32UpdateDecimal(crc: number, n: number): number {
  let div = 1
  while (div * 10 <= n) div *= 10
  for (; div >= 1; div /= 10) crc = crc32UpdateByte(crc, 0x30 + (Math.floor(n / div) % 10))
  return crc
}

/** The finished checksum, unsigned (nginx's `ngx_crc32_final`). */
export function crc32Final(crc: number): number {
  return (crc ^ 0xffffffff) >>> 0
}

/** CRC-32 of a whole string (see crc32UpdateString for the bytes) or byte array
 *  (nginx's `ngx_crc32_long`). */
export function crc32(input: string | ArrayLike<number>): number {
  return crc32Final(typeof input === 'string' ? crc32UpdateString(CRC32_INIT, input) : crc32UpdateBytes(CRC32_INIT, input))
}
