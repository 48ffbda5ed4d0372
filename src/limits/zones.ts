// Where limit state lives, behind one interface so the request path does not care:
// `LocalZones` when one process serves (the zones are objects in it), `RemoteZones`
// (remote-zones.ts) in a worker, which asks the primary that owns them. Either way the
// decision for one request is made in one place, in one synchronous step, so requests
// from every worker are counted against the same buckets.
import type { Config, LimitZoneConfig } from '../config/model.js'
import { ConnZone } from './conn-zone.js'
import { ReqZone, type Entry } from './req-zone.js'

/** One `limit_req` of a location, with the key it evaluated to ('' = not limited). */
export interface ReqItem {
  readonly zone: string
  readonly key: string
  /** Milli-requests, as in the model. */
  readonly burst: number
  readonly delay: number
}

/** One `limit_conn` with its evaluated, non-empty key. */
export interface ConnItem {
  readonly zone: string
  readonly key: string
  readonly max: number
}

export type ReqVerdict =
  /** No limit had a key: nothing was counted ($limit_req_status stays empty). */
  | { readonly kind: 'declined' }
  | { readonly kind: 'passed' }
  /** Counted; wait `ms` before going on. `zone`/`excess` name the limit that set the delay. */
  | { readonly kind: 'delayed'; readonly ms: number; readonly zone: string; readonly excess: number }
  /** Over `burst` in `zone` (nothing was counted), or `full`: no room for a new key. */
  | { readonly kind: 'rejected'; readonly zone: string; readonly excess: number; readonly full: boolean }

export type ConnVerdict =
  /** Every item holds a slot until `releaseConn`. */
  | { readonly ok: true }
  /** `zone` is at its limit (or `full`); no item holds a slot. */
  | { readonly ok: false; readonly zone: string; readonly full: boolean }

/** limit_req's verdict, and limit_conn's when it was decided in the same step (null:
 *  not asked, or not yet: the request was rejected, or must wait first). */
export interface CheckVerdict {
  readonly req: ReqVerdict
  readonly conn: ConnVerdict | null
}

export interface LimitZones {
  /** Run a location's `limit_req` list as nginx does, counting the request once; when
   *  the request may go on at once (or `reqDryRun` lets it), take its `conn` slots in the
   *  same step, which saves a round trip to the primary. */
  check(req: readonly ReqItem[], conn: readonly ConnItem[], reqDryRun: boolean): Promise<CheckVerdict>
  /** Take a slot in each `limit_conn` zone, all or none. */
  acquireConn(items: readonly ConnItem[]): Promise<ConnVerdict>
  /** Give back what a passed `acquireConn` took. */
  releaseConn(items: readonly ConnItem[]): void
}

/** A monotonic millisecond clock (nginx's ngx_current_msec): wall-clock steps do not drain
 *  or fill buckets. */
export const monotonicNow = (): number => Math.floor(performance.now())

/** Every zone of one config. A reload builds the next set from the previous one and
 *  keeps each zone whose name, kind and size are unchanged, with its state (nginx reuses
 *  such shared memory zones); a changed rate applies to the kept state. */
export class ZoneSet {
  readonly req = new Map<string, ReqZone>()
  readonly conn = new Map<string, ConnZone>()

  /** Throws nginx's error when a kept zone's key changed (the reload is refused). */
  static build(zones: ReadonlyMap<string, LimitZoneConfig>, previous: ZoneSet | null = null): ZoneSet {
    const set = new ZoneSet()
    for (const [name, config] of zones) {
      if (config.kind === 'req') {
        const before = previous?.req.get(name)
        if (before !== undefined && before.size === config.size) {
          if (before.keyText !== config.key.text) throw keyChanged(`limit_req "${name}"`, config.key.text, before.keyText)
          before.rate = config.rate
          set.req.set(name, before)
        } else {
          set.req.set(name, new ReqZone(name, config.key.text, config.size, config.rate))
        }
      } else {
        const before = previous?.conn.get(name)
        if (before !== undefined && before.size === config.size) {
          if (before.keyText !== config.key.text) throw keyChanged(`limit_conn_zone "${name}"`, config.key.text, before.keyText)
          set.conn.set(name, before)
        } else {
          set.conn.set(name, new ConnZone(name, config.key.text, config.size))
        }
      }
    }
    return set
  }

  static fromConfig(config: Config, previous: ZoneSet | null = null): ZoneSet {
    return ZoneSet.build(config.http.limitZones, previous)
  }

  /**
   * nginx's limit_req handler over a location's list, in one step: each limit in order
   * looks its key up; the last one stores its excess at once, earlier ones hold their
   * entry. A limit over its burst rejects the request and the held entries are let go
   * uncharged. Otherwise every held entry is charged, and the delay is the longest any
   * limit asks for: (excess − delay) / rate.
   */
  limitRequest(items: readonly ReqItem[], now: number): ReqVerdict {
    const held: Array<{ zone: ReqZone; entry: Entry; item: ReqItem }> = []
    let rc: 'declined' | 'again' | 'ok' | 'busy' | 'error' = 'declined'
    let excess = 0
    let stopped: ReqItem | null = null
    for (let n = 0; n < items.length; n++) {
      const item = items[n]!
      const zone = this.req.get(item.zone)
      if (item.key === '' || zone === undefined) continue
      const found = zone.lookup(item.key, item.burst, n === items.length - 1, now)
      rc = found.rc
      excess = found.excess
      if (found.rc !== 'again') {
        stopped = item
        break
      }
      held.push({ zone, entry: found.entry, item })
    }
    if (rc === 'declined') return { kind: 'declined' }
    if (rc === 'busy' || rc === 'error') {
      for (const h of held) h.zone.unlock(h.entry)
      return { kind: 'rejected', zone: stopped!.zone, excess, full: rc === 'error' }
    }
    // nginx starts from the last limit of the list (its excess if it was accounted, else 0).
    const last = items[items.length - 1]!
    if (rc === 'again') excess = 0
    let zoneName = last.zone
    const lastZone = this.req.get(last.zone)
    let delay = excess <= last.delay || lastZone === undefined ? 0 : Math.floor(((excess - last.delay) * 1000) / lastZone.rate)
    for (let i = held.length - 1; i >= 0; i--) {
      const { zone, entry, item } = held[i]!
      const e = zone.account(entry, now)
      if (e <= item.delay) continue
      const ms = Math.floor(((e - item.delay) * 1000) / zone.rate)
      if (ms > delay) {
        delay = ms
        excess = e
        zoneName = item.zone
      }
    }
    return delay === 0 ? { kind: 'passed' } : { kind: 'delayed', ms: delay, zone: zoneName, excess }
  }

  /** `LimitZones.check` in one step. */
  check(req: readonly ReqItem[], conn: readonly ConnItem[], reqDryRun: boolean, now: number): CheckVerdict {
    const verdict = this.limitRequest(req, now)
    const goesOn = verdict.kind === 'passed' || verdict.kind === 'declined' || reqDryRun
    return { req: verdict, conn: goesOn && conn.length !== 0 ? this.acquireConn(conn) : null }
  }

  /** Take a slot per item; on the first zone at its limit (or full), give back the ones
   *  taken (nginx's cleanup_all) and say which. */
  acquireConn(items: readonly ConnItem[]): ConnVerdict {
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      const zone = this.conn.get(item.zone)
      if (zone === undefined) continue
      const got = zone.acquire(item.key, item.max)
      if (got !== 'ok') {
        this.releaseConn(items.slice(0, i))
        return { ok: false, zone: item.zone, full: got === 'full' }
      }
    }
    return { ok: true }
  }

  releaseConn(items: readonly ConnItem[]): void {
    for (const item of items) this.conn.get(item.zone)?.release(item.key)
  }
}

function keyChanged(what: string, key: string, before: string): Error {
  return new Error(`${what} uses the "${key}" key while previously it used the "${before}" key`)
}

/** The zones in this process (worker_processes 1). */
export class LocalZones implements LimitZones {
  zones: ZoneSet
  private readonly now: () => number

  constructor(zones: ZoneSet, now: () => number = monotonicNow) {
    this.zones = zones
    this.now = now
  }

  check(req: readonly ReqItem[], conn: readonly ConnItem[], reqDryRun: boolean): Promise<CheckVerdict> {
    return Promise.resolve(this.zones.check(req, conn, reqDryRun, this.now()))
  }

  acquireConn(items: readonly ConnItem[]): Promise<ConnVerdict> {
    return Promise.resolve(this.zones.acquireConn(items))
  }

  releaseConn(items: readonly ConnItem[]): void {
    this.zones.releaseConn(items)
  }
}
