// One `limit_req_zone`: nginx's leaky bucket per key (ngx_http_limit_req_module.c), in
// nginx's integer units. `excess` is in thousandths of a request: each request adds 1000,
// and `rate` (requests per second × 1000) drains it per millisecond; a request whose
// excess would pass `burst` is rejected. The first request of a key has excess 0.
//
// Entries are kept in least-recently-used order (a Map re-inserted on every hit). nginx
// bounds a zone by its bytes; switchyard bounds it by an entry count derived from SIZE
// (see `reqZoneCapacity`) and frees entries the way nginx does: each new key first drops
// up to two least-recently-used entries idle for a minute whose excess has drained, and
// a full zone drops its least-recently-used entry by force.

/** nginx's limit_req state for a `$binary_remote_addr` key is 128 bytes on a 64-bit
 *  platform (its documentation: "one megabyte zone can keep about 8 thousand 128-byte
 *  states"), so SIZE / 128 entries: 8192 per megabyte, 256 for the smallest zone (32k). */
export const REQ_STATE_BYTES = 128

export function reqZoneCapacity(size: number): number {
  return Math.max(1, Math.floor(size / REQ_STATE_BYTES))
}

export interface Entry {
  /** Thousandths of a request above the rate. */
  excess: number
  /** The clock (ms) when excess was last stored; null = never accounted (nginx's 0). */
  last: number | null
  /** Requests holding the entry between lookup and account (nginx's `count`). */
  count: number
}

export type LookupResult =
  /** Not over burst, and this was the last limit: accounted. */
  | { readonly rc: 'ok'; readonly excess: number }
  /** Not over burst; the entry is held until `account` or `unlock`. */
  | { readonly rc: 'again'; readonly excess: number; readonly entry: Entry }
  /** Over burst. */
  | { readonly rc: 'busy'; readonly excess: number }
  /** No room for a new key. */
  | { readonly rc: 'error'; readonly excess: number }

export class ReqZone {
  readonly name: string
  /** Requests per second × 1000 (may change on a reload that keeps the zone). */
  rate: number
  readonly size: number
  readonly capacity: number
  /** The key template as written (a reload that changes it is refused, as nginx does). */
  readonly keyText: string
  private readonly entries = new Map<string, Entry>()

  constructor(name: string, keyText: string, size: number, rate: number) {
    this.name = name
    this.keyText = keyText
    this.size = size
    this.rate = rate
    this.capacity = reqZoneCapacity(size)
  }

  get entryCount(): number {
    return this.entries.size
  }

  /** nginx's ngx_http_limit_req_lookup: the excess this request would bring. The last
   *  limit of a location stores it at once (`account`); earlier ones hold the entry. */
  lookup(key: string, burst: number, account: boolean, now: number): LookupResult {
    const found = this.entries.get(key)
    if (found !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, found)
      const ms = elapsed(found, now)
      const excess = this.drain(found, ms)
      if (excess > burst) return { rc: 'busy', excess }
      if (account) {
        found.excess = excess
        if (ms !== 0) found.last = now
        return { rc: 'ok', excess }
      }
      found.count++
      return { rc: 'again', excess, entry: found }
    }
    this.expire(1, now)
    if (this.entries.size >= this.capacity) {
      this.expire(0, now)
      if (this.entries.size >= this.capacity) return { rc: 'error', excess: 0 }
    }
    const entry: Entry = account ? { excess: 0, last: now, count: 0 } : { excess: 0, last: null, count: 1 }
    this.entries.set(key, entry)
    return account ? { rc: 'ok', excess: 0 } : { rc: 'again', excess: 0, entry }
  }

  /** nginx's ngx_http_limit_req_account for one held entry: store this request's excess
   *  (recomputed at `now`) and let the entry go; returns the excess. */
  account(entry: Entry, now: number): number {
    const ms = elapsed(entry, now)
    const excess = this.drain(entry, ms)
    if (ms !== 0) entry.last = now
    entry.excess = excess
    entry.count--
    return excess
  }

  /** A later limit rejected the request: this zone is not charged (nginx's unlock). */
  unlock(entry: Entry): void {
    entry.count--
  }

  /** The excess with one more request: the stored excess less what drained in `ms`, plus 1000. */
  private drain(entry: Entry, ms: number): number {
    const excess = entry.excess - Math.floor((this.rate * ms) / 1000) + 1000
    return excess < 0 ? 0 : excess
  }

  /** nginx's ngx_http_limit_req_expire: n = 1 drops up to two least-recently-used entries
   *  that nobody holds, idle for a minute and drained to zero; n = 0 first drops the
   *  least-recently-used one whatever its state (unless held). */
  private expire(n: number, now: number): void {
    while (n < 3) {
      const first = this.entries.entries().next()
      if (first.done === true) return
      const [key, entry] = first.value
      // Entries are bumped on lookup, so a held one at the old end means none further is free.
      if (entry.count !== 0) return
      if (n++ !== 0) {
        const ms = entry.last === null ? Infinity : Math.abs(now - entry.last)
        if (ms < 60_000) return
        if (entry.excess - (this.rate * ms) / 1000 > 0) return
      }
      this.entries.delete(key)
    }
  }
}

/** Milliseconds since the entry's last accounting, as nginx clamps them: a clock that went
 *  back by up to a minute counts as no time, more than that as 1 ms. An entry never
 *  accounted (nginx's `last` = 0) is long drained. */
function elapsed(entry: Entry, now: number): number {
  if (entry.last === null) return Number.MAX_SAFE_INTEGER
  const ms = now - entry.last
  if (ms < -60_000) return 1
  return ms < 0 ? 0 : ms
}
