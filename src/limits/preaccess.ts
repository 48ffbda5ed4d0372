// nginx's preaccess phase for one request: `limit_req` (which may reject, or hold the
// request for its delay), then `limit_conn` (a slot per zone while the request is in
// progress). nginx runs them in this order (limit_req's handler is registered last and
// phase handlers run last-registered first), so a request limit_req rejects never
// counts against limit_conn. Each runs once per request, as nginx marks `r->main`.
import type { EventEmitter } from 'node:events'
import type { LimitLogLevel, LimitSettings, LogLevel } from '../config/model.js'
import type { Template } from '../config/variables.js'
import type { Logger } from '../log.js'
import type { RequestVars } from '../proxy/request-vars.js'
import type { LimitStats } from './stats.js'
import type { ConnItem, ConnVerdict, LimitZones, ReqItem, ReqVerdict } from './zones.js'

export type Admission =
  /** Go on (to allow/deny and the proxy). */
  | { readonly pass: true }
  /** Answer with this status (`limit_req_status` / `limit_conn_status`). */
  | { readonly pass: false; readonly status: number }
  /** The client went away while the request waited. */
  | null

/** The level a delay is logged at: one below limit_req_log_level (info stays info). */
const DELAY_LEVEL: Record<LimitLogLevel, LogLevel> = { error: 'warn', warn: 'notice', notice: 'info', info: 'info' }

/** Limits one request; `client` emits 'close' when the request is over or its client
 *  gone, which gives back the limit_conn slots it holds. */
export class LimitGate {
  private readonly zones: LimitZones
  private readonly limits: LimitSettings
  private readonly vars: RequestVars
  private readonly log: Logger
  private readonly stats: LimitStats
  private gone = false
  private held: readonly ConnItem[] | null = null
  private wake: (() => void) | null = null

  constructor(zones: LimitZones, limits: LimitSettings, vars: RequestVars, log: Logger, stats: LimitStats, client: EventEmitter) {
    this.zones = zones
    this.stats = stats
    this.limits = limits
    this.vars = vars
    this.log = log
    client.once('close', this.onClose)
  }

  private readonly onClose = (): void => {
    this.gone = true
    this.wake?.()
    if (this.held !== null) this.zones.releaseConn(this.held)
    this.held = null
  }

  async admit(): Promise<Admission> {
    const req = this.reqItems()
    const conn = this.connItems()
    // limit_conn's verdict comes with limit_req's when the request may go on at once.
    let connVerdict: ConnVerdict | null = null
    if (req !== null) {
      const verdict = await this.zones.check(req, conn, this.limits.reqDryRun)
      connVerdict = verdict.conn
      const status = await this.limitReq(verdict.req, req)
      if (status !== 0) return { pass: false, status }
    }
    if (conn.length !== 0) {
      if (this.gone && connVerdict?.ok === true) this.zones.releaseConn(conn)
      if (this.gone) return null
      const status = await this.limitConn(conn, connVerdict)
      if (status !== 0) return { pass: false, status }
    }
    return this.gone ? null : { pass: true }
  }

  /** The location's limit_req list with this request's keys; null when none applies. */
  private reqItems(): ReqItem[] | null {
    const { req } = this.limits
    if (req.length === 0) return null
    const items = req.map((rule) => ({ zone: rule.zone.name, key: this.key(rule.zone.key, 65535), burst: rule.burst, delay: rule.delay }))
    return items.every((i) => i.key === '') ? null : items
  }

  /** The location's limit_conn list, without the limits whose key is empty. */
  private connItems(): ConnItem[] {
    const items: ConnItem[] = []
    for (const rule of this.limits.conn) {
      const key = this.key(rule.zone.key, 255)
      if (key !== '') items.push({ zone: rule.zone.name, key, max: rule.conn })
    }
    return items
  }

  /** Act on limit_req's verdict (log, $limit_req_status, the delay): 0 to go on, else
   *  the status to answer with. */
  private async limitReq(verdict: ReqVerdict, items: readonly ReqItem[]): Promise<number> {
    const { reqDryRun: dry, reqLogLevel, reqStatus } = this.limits
    const dryRun = dry ? ', dry run' : ''
    switch (verdict.kind) {
      case 'declined':
        return 0
      case 'passed':
        this.vars.limitReqStatus = 'PASSED'
        for (const item of items) if (item.key !== '') this.stats.countReq(item.zone, 'passed')
        return 0
      case 'rejected':
        if (verdict.full) this.log.log('alert', `could not allocate node in limit_req zone "${verdict.zone}"`)
        else this.log.log(reqLogLevel, `limiting requests${dryRun}, excess: ${milli(verdict.excess)} by zone "${verdict.zone}"${this.where()}`)
        this.vars.limitReqStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED'
        this.stats.countReq(verdict.zone, dry ? 'rejected_dry_run' : 'rejected')
        return dry ? 0 : reqStatus
      case 'delayed':
        this.log.log(DELAY_LEVEL[reqLogLevel], `delaying request${dryRun}, excess: ${milli(verdict.excess)}, by zone "${verdict.zone}"${this.where()}`)
        this.vars.limitReqStatus = dry ? 'DELAYED_DRY_RUN' : 'DELAYED'
        this.stats.countReq(verdict.zone, dry ? 'delayed_dry_run' : 'delayed')
        if (!dry) await this.sleep(verdict.ms)
        return 0
    }
  }

  /** limit_conn: take the slots (unless taken with limit_req's verdict); 0 to go on,
   *  else the status to answer with. */
  private async limitConn(items: readonly ConnItem[], taken: ConnVerdict | null): Promise<number> {
    const { connDryRun: dry, connLogLevel, connStatus } = this.limits
    this.vars.limitConnStatus = 'PASSED'
    const verdict = taken ?? (await this.zones.acquireConn(items))
    if (verdict.ok) {
      for (const item of items) this.stats.countConn(item.zone, 'passed')
      // The client may have gone while the answer was on its way.
      if (this.gone) this.zones.releaseConn(items)
      else this.held = items
      return 0
    }
    if (!verdict.full) this.log.log(connLogLevel, `limiting connections${dry ? ', dry run,' : ''} by zone "${verdict.zone}"${this.where()}`)
    this.vars.limitConnStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED'
    this.stats.countConn(verdict.zone, dry ? 'rejected_dry_run' : 'rejected')
    return dry ? 0 : connStatus
  }

  /** The zone key for this request; a key over nginx's length limit is not limited. */
  private key(template: Template, max: number): string {
    const key = template.evaluate(this.vars)
    if (key.length > max / 4 && Buffer.byteLength(key) > max) {
      this.log.error(`the value of the "${template.text}" key is more than ${max} bytes: "${key.slice(0, 64)}…"${this.where()}`)
      return ''
    }
    return key
  }

  /** limit_req's delay; ends early when the client goes away. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null
        resolve()
      }, ms)
      this.wake = () => {
        clearTimeout(timer)
        this.wake = null
        resolve()
      }
    })
  }

  private where(): string {
    const { req } = this.vars
    const host = req.headers.host ? `, host: "${req.headers.host}"` : ''
    return `, client: ${this.vars.remoteAddr}, server: ${this.vars.serverName}, request: "${req.method} ${req.url} HTTP/${req.httpVersion}"${host}`
  }
}

/** nginx's `%ui.%03ui` of thousandths: 1500 → `1.500`. */
function milli(n: number): string {
  return `${Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}`
}

/** True when a location limits anything. */
export function limitsSomething(limits: LimitSettings): boolean {
  return limits.req.length !== 0 || limits.conn.length !== 0
}
