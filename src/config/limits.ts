// nginx's request and connection limits as config: `limit_req_zone` / `limit_conn_zone`
// (http level; shared "memory zones" named by `zone=NAME:SIZE`) and `limit_req`,
// `limit_conn` with their `_status`, `_log_level` and `_dry_run` (http, server,
// location). build.ts hands the statements here and merges levels with `mergeLimits`;
// the wording of every error is nginx's (ngx_http_limit_req_module.c,
// ngx_http_limit_conn_module.c, ngx_shared_memory_add).
import { ConfigError, once, onOff } from './errors.js'
import type { LimitConnRule, LimitConnZoneConfig, LimitLogLevel, LimitReqRule, LimitReqZoneConfig, LimitSettings, LimitZoneConfig, SourceRef } from './model.js'
import type { Statement } from './parser.js'
import { parseNumber, parseSize } from './units.js'
import { compileTemplate } from './variables.js'

export const DEFAULT_LIMITS: LimitSettings = {
  req: [],
  reqStatus: 503,
  reqLogLevel: 'error',
  reqDryRun: false,
  conn: [],
  connStatus: 503,
  connLogLevel: 'error',
  connDryRun: false,
}

/** Directive names read by `limitSetting` (in http, server or location). */
export const LIMIT_DIRECTIVES: ReadonlySet<string> = new Set([
  'limit_req', 'limit_req_status', 'limit_req_log_level', 'limit_req_dry_run',
  'limit_conn', 'limit_conn_status', 'limit_conn_log_level', 'limit_conn_dry_run',
])

/** nginx's smallest zone: 8 pages of 4 KiB. */
const MIN_ZONE_SIZE = 8 * 4096

/** `limit_req nodelay`: nginx's delay of NGX_MAX_INT_T_VALUE / 1000 requests, i.e. never. */
export const NO_DELAY = Number.MAX_SAFE_INTEGER

const LOG_LEVELS: readonly LimitLogLevel[] = ['info', 'notice', 'warn', 'error']

/** A `limit_req` / `limit_conn` as written; its zone is looked up once the http block is read. */
interface ReqDraft {
  readonly zone: string
  readonly source: SourceRef
  readonly burst: number
  readonly delay: number
}

interface ConnDraft {
  readonly zone: string
  readonly source: SourceRef
  readonly conn: number
}

/** Limit settings written at one level; undefined = inherit. */
export interface LimitDraft {
  req?: ReqDraft[]
  reqStatus?: number
  reqLogLevel?: LimitLogLevel
  reqDryRun?: boolean
  conn?: ConnDraft[]
  connStatus?: number
  connLogLevel?: LimitLogLevel
  connDryRun?: boolean
}

const fail = (reason: string, where: Statement | SourceRef): never => {
  throw new ConfigError(reason, 'source' in where ? where.source : where)
}

/** `limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m` and `limit_conn_zone KEY zone=NAME:SIZE`:
 *  check it and add it to `zones` (one namespace for both, like nginx's shared memory). */
export function defineLimitZone(stmt: Statement, zones: Map<string, LimitZoneConfig>): void {
  const kind = stmt.name === 'limit_req_zone' ? 'req' : 'conn'
  let key
  try {
    key = compileTemplate(stmt.args[0]!)
  } catch (err) {
    return fail((err as Error).message, stmt)
  }
  let name = ''
  let size = 0
  let rate = 1000
  for (const param of stmt.args.slice(1)) {
    if (param.startsWith('zone=')) {
      const colon = param.indexOf(':')
      if (colon === -1) fail(`invalid zone size "${param}"`, stmt)
      name = param.slice(5, colon)
      const bytes = parseSize(param.slice(colon + 1))
      if (bytes === null) fail(`invalid zone size "${param}"`, stmt)
      if (bytes! < MIN_ZONE_SIZE) fail(`zone "${param}" is too small`, stmt)
      size = bytes!
    } else if (kind === 'req' && param.startsWith('rate=')) {
      let text = param.slice(5)
      let scale = 1
      if (text.endsWith('r/s')) text = text.slice(0, -3)
      else if (text.endsWith('r/m')) [text, scale] = [text.slice(0, -3), 60]
      const n = parseNumber(text)
      if (n === null || n === 0) fail(`invalid rate "${param}"`, stmt)
      // nginx keeps the rate as an integer in thousandths: 1r/m is 16, not 16.67.
      rate = Math.floor((n! * 1000) / scale)
    } else {
      fail(`invalid parameter "${param}"`, stmt)
    }
  }
  if (name === '') fail(`"${stmt.name}" must have "zone" parameter`, stmt)
  const before = zones.get(name)
  if (before !== undefined) {
    if (before.size !== size) fail(`the size ${size} of shared memory zone "${name}" conflicts with already declared size ${before.size}`, stmt)
    if (before.kind !== kind) fail(`the shared memory zone "${name}" is already declared for a different use`, stmt)
    fail(`${stmt.name} "${name}" is already bound to key "${before.key.text}"`, stmt)
  }
  zones.set(name, kind === 'req'
    ? { kind, name, key, size, rate, source: stmt.source } satisfies LimitReqZoneConfig
    : { kind, name, key, size, source: stmt.source } satisfies LimitConnZoneConfig)
}

/** Read one limit directive into `draft`; `seen` gives nginx's "is duplicate" for the
 *  single-value ones. */
export function limitSetting(stmt: Statement, draft: LimitDraft, seen: Set<string>): void {
  const [arg] = stmt.args as [string]
  switch (stmt.name) {
    case 'limit_req':
      return void (draft.req ??= []).push(limitReq(stmt, draft.req))
    case 'limit_conn': {
      const list = (draft.conn ??= [])
      if (list.some((l) => l.zone === arg)) fail('"limit_conn" directive is duplicate', stmt)
      const n = parseNumber(stmt.args[1]!)
      if (n === null || n === 0) fail(`invalid number of connections "${stmt.args[1]}"`, stmt)
      if (n! > 65535) fail('connection limit must be less 65536', stmt)
      list.push({ zone: arg, source: stmt.source, conn: n! })
      return
    }
  }
  once(stmt, seen)
  switch (stmt.name) {
    case 'limit_req_status':
    case 'limit_conn_status': {
      const n = parseNumber(arg)
      if (n === null) fail(`"${stmt.name}" directive invalid number`, stmt)
      if (n! < 400 || n! > 599) fail('value must be between 400 and 599', stmt)
      if (stmt.name === 'limit_req_status') draft.reqStatus = n!
      else draft.connStatus = n!
      return
    }
    case 'limit_req_log_level':
    case 'limit_conn_log_level': {
      if (!(LOG_LEVELS as readonly string[]).includes(arg)) fail(`invalid value "${arg}"`, stmt)
      if (stmt.name === 'limit_req_log_level') draft.reqLogLevel = arg as LimitLogLevel
      else draft.connLogLevel = arg as LimitLogLevel
      return
    }
    case 'limit_req_dry_run':
    case 'limit_conn_dry_run': {
      if (stmt.name === 'limit_req_dry_run') draft.reqDryRun = onOff(stmt)
      else draft.connDryRun = onOff(stmt)
      return
    }
  }
}

/** `limit_req zone=NAME [burst=N] [nodelay | delay=N]` (the last of nodelay/delay wins). */
function limitReq(stmt: Statement, level: readonly ReqDraft[]): ReqDraft {
  let zone: string | null = null
  let burst = 0
  let delay = 0
  for (const param of stmt.args) {
    if (param.startsWith('zone=')) {
      zone = param.slice(5)
    } else if (param.startsWith('burst=')) {
      const n = parseNumber(param.slice(6))
      if (n === null || n === 0) fail(`invalid burst value "${param}"`, stmt)
      burst = n!
    } else if (param.startsWith('delay=')) {
      const n = parseNumber(param.slice(6))
      if (n === null || n === 0) fail(`invalid delay value "${param}"`, stmt)
      delay = n!
    } else if (param === 'nodelay') {
      delay = NO_DELAY
    } else {
      fail(`invalid parameter "${param}"`, stmt)
    }
  }
  if (zone === null) return fail('"limit_req" must have "zone" parameter', stmt)
  if (level.some((l) => l.zone === zone)) fail('"limit_req" directive is duplicate', stmt)
  return { zone, source: stmt.source, burst: burst * 1000, delay: delay === NO_DELAY ? NO_DELAY : delay * 1000 }
}

/** Fill what a level left unset from the enclosing one. `limit_req` and `limit_conn` are
 *  array directives: a level with any replaces the outer list (nginx's merge). */
export function mergeLimits(inner: LimitDraft | undefined, outer: LimitSettings, zones: ReadonlyMap<string, LimitZoneConfig>): LimitSettings {
  if (inner === undefined) return outer
  return {
    req: inner.req ? inner.req.map((d): LimitReqRule => ({ zone: zoneFor(d, 'req', zones) as LimitReqZoneConfig, burst: d.burst, delay: d.delay })) : outer.req,
    reqStatus: inner.reqStatus ?? outer.reqStatus,
    reqLogLevel: inner.reqLogLevel ?? outer.reqLogLevel,
    reqDryRun: inner.reqDryRun ?? outer.reqDryRun,
    conn: inner.conn ? inner.conn.map((d): LimitConnRule => ({ zone: zoneFor(d, 'conn', zones) as LimitConnZoneConfig, conn: d.conn })) : outer.conn,
    connStatus: inner.connStatus ?? outer.connStatus,
    connLogLevel: inner.connLogLevel ?? outer.connLogLevel,
    connDryRun: inner.connDryRun ?? outer.connDryRun,
  }
}

/** The zone a limit names. nginx reports a name no `*_zone` defines as a zero size zone
 *  (without a line; switchyard adds the line of the limit that names it). */
function zoneFor(draft: ReqDraft | ConnDraft, kind: 'req' | 'conn', zones: ReadonlyMap<string, LimitZoneConfig>): LimitZoneConfig {
  const zone = zones.get(draft.zone)
  if (zone === undefined) return fail(`zero size shared memory zone "${draft.zone}"`, draft.source)
  if (zone.kind !== kind) fail(`the shared memory zone "${draft.zone}" is already declared for a different use`, draft.source)
  return zone
}

