// One `limit_conn_zone`: requests in progress per key (ngx_http_limit_conn_module.c).
// An entry lives while its count is above zero, so the zone fills only with that many
// distinct keys busy at once; a new key that finds it full is rejected, as nginx rejects
// a request when it cannot allocate the key's node.

/** nginx's limit_conn state for a `$binary_remote_addr` key is 64 bytes on a 64-bit
 *  platform (its documentation: "one megabyte zone can keep about 16 thousand 64-byte
 *  states"), so SIZE / 64 entries: 16384 per megabyte. */
export const CONN_STATE_BYTES = 64

export function connZoneCapacity(size: number): number {
  return Math.max(1, Math.floor(size / CONN_STATE_BYTES))
}

export class ConnZone {
  readonly name: string
  readonly size: number
  readonly capacity: number
  readonly keyText: string
  private readonly counts = new Map<string, number>()

  constructor(name: string, keyText: string, size: number) {
    this.name = name
    this.keyText = keyText
    this.size = size
    this.capacity = connZoneCapacity(size)
  }

  /** Take one slot for `key` under a limit of `max`: `busy` at the limit, `full` when a
   *  new key finds no room. */
  acquire(key: string, max: number): 'ok' | 'busy' | 'full' {
    const count = this.counts.get(key)
    if (count === undefined) {
      if (this.counts.size >= this.capacity) return 'full'
      this.counts.set(key, 1)
      return 'ok'
    }
    if (count >= max) return 'busy'
    this.counts.set(key, count + 1)
    return 'ok'
  }

  release(key: string): void {
    const count = this.counts.get(key)
    if (count === undefined) return
    if (count <= 1) this.counts.delete(key)
    else this.counts.set(key, count - 1)
  }

  /** Slots taken for `key` now. */
  active(key: string): number {
    return this.counts.get(key) ?? 0
  }

  get entryCount(): number {
    return this.counts.size
  }
}
