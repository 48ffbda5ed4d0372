// nginx's least_time (open source since 1.31, ngx_http_upstream_least_time_module.c): the
// eligible peer with the least estimated time for one more request, relative to weight.
// The estimate is the peer's average time to the response header (or to the last byte)
// times its requests in flight plus one; see shared/response-time.ts for how the average
// moves, decays while idle, and is clustered. Ties go through smooth weighted round robin.
import type { Peer } from '../../upstream/peer.js'
import type { Outcome, PickContext, Policy } from '../policy.js'
import { leastScorePick } from '../shared/least-score.js'
import { movingAverage, ResponseTimes, type TimeMode } from '../shared/response-time.js'

export interface LeastTimeOptions {
  /** `header` (time to the response header) or `last_byte` (time to the whole response). */
  readonly mode: TimeMode
  /** `inflight`: requests still running count with their age so far. */
  readonly inflight: boolean
}

/**
 * `least_time header|last_byte [inflight]`, checked in nginx's order: a bad second
 * argument is `invalid parameter "X"`, a bad first one `invalid value "X"` (the mode is
 * matched without regard to case, as nginx's enum slot does).
 */
export function parseLeastTime(args: readonly string[]): LeastTimeOptions {
  const [mode, extra] = args as [string, string | undefined]
  if (extra !== undefined && extra !== 'inflight') throw new Error(`invalid parameter "${extra}"`)
  const lower = mode.toLowerCase()
  if (lower !== 'header' && lower !== 'last_byte') throw new Error(`invalid value "${mode}"`)
  return { mode: lower as TimeMode, inflight: extra !== undefined }
}

/** `server` parameters: weight, max_fails, fail_timeout, max_conns, backup, down, slow_start. */
class LeastTimePolicy implements Policy {
  private readonly mode: TimeMode
  private readonly inflight: boolean
  private readonly times: ResponseTimes
  private scores: Float64Array
  /** The clock of the pick being scored (read by `score`, which must not allocate). */
  private now = 0
  private readonly score = (peer: Peer): number => {
    if (this.inflight) this.times.refreshInflight(peer, this.now)
    return this.times.eta(peer, this.mode, this.now)
  }

  constructor(peers: readonly Peer[], options: LeastTimeOptions) {
    this.mode = options.mode
    this.inflight = options.inflight
    this.times = new ResponseTimes(peers.length)
    this.scores = new Float64Array(peers.length)
  }

  /** The averages, for tests and the admin view. */
  get responseTimes(): ResponseTimes {
    return this.times
  }

  pick(peers: readonly Peer[], ctx: PickContext): Peer | undefined {
    if (peers.length > this.scores.length) this.scores = new Float64Array(peers.length)
    this.now = ctx.now
    const best = leastScorePick(peers, ctx, this.scores, this.score)
    if (best !== undefined && this.inflight) this.times.startInflight(best, ctx.now)
    return best
  }

  pickBound(_peers: readonly Peer[], peer: Peer, ctx: PickContext): Peer {
    if (this.inflight) this.times.startInflight(peer, ctx.now)
    return peer
  }

  responseHeaders(peer: Peer, headerTime: number, ctx: PickContext): undefined {
    // With `header inflight`, nginx learns the header time as soon as it comes, and the
    // request stops counting as in flight then.
    if (this.inflight && this.mode === 'header') {
      this.times.header[peer.id] = movingAverage(this.times.header[peer.id]!, headerTime)
      this.times.finishInflight(peer, headerTime, ctx.now)
    }
    return undefined
  }

  report(peer: Peer, outcome: Outcome, now: number): void {
    const headerDone = this.inflight && this.mode === 'header'
    // Still in flight unless the header already ended it (headerTime is set exactly when
    // responseHeaders ran).
    if (this.inflight && !(headerDone && outcome.headerTime !== undefined)) {
      this.times.finishInflight(peer, outcome.responseTime ?? 0, now)
    }
    this.times.learn(peer, outcome, !headerDone)
  }
}

/** nginx's `least_time` for one upstream; the averages start empty (every peer ties at
 *  20 ms until it has answered once). */
export function leastTime(peers: readonly Peer[], options: LeastTimeOptions): Policy {
  return new LeastTimePolicy(peers, options)
}
