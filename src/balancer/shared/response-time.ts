// Per-peer response times for least_time (and `random two least_time=…`), kept the way
// nginx 1.31 keeps them (ngx_http_upstream_least_time_module.c): a moving average that
// moves 5% toward each sample, an estimate that decays while the peer sits idle, is
// clustered into 20 ms steps and capped at 5 s, and is multiplied by the peer's load.
import type { Peer } from '../../upstream/peer.js'
import type { Outcome } from '../policy.js'

/** Which time least_time balances on: to the response header, or to its last byte. */
export type TimeMode = 'header' | 'last_byte'

/** Above this (ms) every peer counts as equally slow, so the choice falls back to least_conn. */
const CAP = 5000
/** Estimates are grouped in steps of this many ms, so close peers share requests by weight. */
const STEP = 20

/**
 * nginx's ngx_http_upstream_response_time_avg: the first sample is taken as is, then the
 * average moves 5% toward each new one, rounded to whole milliseconds. (A zero average
 * counts as "no sample yet", as in nginx.)
 */
export function movingAverage(average: number, sample: number): number {
  return average === 0 ? sample : Math.floor(0.5 + (sample * 0.05 + average * 0.95))
}

/** Averages and in-flight bookkeeping for every peer of one upstream, by `peer.id`. */
export class ResponseTimes {
  /** Average ms to the response header (nginx `header_time`). */
  readonly header: Float64Array
  /** Average ms to the last byte (nginx `response_time`). */
  readonly lastByte: Float64Array
  /** `inflight`: average age of the requests still running (nginx `inflight_time`). */
  readonly inflightTime: Float64Array
  /** `inflight`: ms the running requests have accumulated (nginx `inflight_last`). */
  private readonly inflightLast: Float64Array
  /** `inflight`: when the running set last changed (nginx `inflight_reqs_changed`). */
  private readonly inflightChanged: Float64Array
  /** `inflight`: requests counted as running (nginx `inflight_reqs`). */
  readonly inflightRequests: Uint32Array

  constructor(peerCount: number) {
    this.header = new Float64Array(peerCount)
    this.lastByte = new Float64Array(peerCount)
    this.inflightTime = new Float64Array(peerCount)
    this.inflightLast = new Float64Array(peerCount)
    this.inflightChanged = new Float64Array(peerCount)
    this.inflightRequests = new Uint32Array(peerCount)
  }

  /**
   * The time `peer` would need for the requests it has plus one more (nginx's
   * ngx_http_upstream_least_time_eta), at `now` in ms.
   */
  eta(peer: Peer, mode: TimeMode, now: number): number {
    const id = peer.id
    let rt = mode === 'header' ? this.header[id]! : this.lastByte[id]!
    const idle = now - peer.checked
    if (idle > peer.failTimeout) {
      // Halve the estimate once per idle fail_timeout (+1 s, as nginx divides seconds by
      // fail_timeout + 1) so that a peer once slow is tried again. nginx shifts; a shift of
      // 64 or more is undefined in C, here it is simply zero.
      rt = Math.floor(rt / 2 ** Math.floor(idle / (peer.failTimeout + 1000)))
    }
    // Requests still running longer than the average mark the peer as worse than it looks.
    if (this.inflightRequests[id]! > 0 && this.inflightTime[id]! > rt) rt = this.inflightTime[id]!
    if (rt > CAP) rt = CAP
    else rt += STEP - (rt % STEP)
    return rt * (1 + peer.active)
  }

  /** `inflight`: before scoring, fold the age of the peer's running requests into its
   *  in-flight average (nginx does this for every eligible peer on every pick). */
  refreshInflight(peer: Peer, now: number): void {
    const id = peer.id
    const n = this.inflightRequests[id]!
    if (n === 0) return
    const age = Math.floor(this.inflightLast[id]! / n) + (now - this.inflightChanged[id]!)
    this.inflightTime[id] = movingAverage(this.inflightTime[id]!, age)
  }

  /** `inflight`: the picked peer has one more running request. */
  startInflight(peer: Peer, now: number): void {
    const id = peer.id
    const n = this.inflightRequests[id]!
    if (n > 0) this.inflightLast[id] = this.inflightLast[id]! + (now - this.inflightChanged[id]!) * n
    this.inflightChanged[id] = now
    this.inflightRequests[id] = n + 1
  }

  /** `inflight`: one running request of `peer` finished after `elapsed` ms. */
  finishInflight(peer: Peer, elapsed: number, now: number): void {
    const id = peer.id
    const n = this.inflightRequests[id]!
    if (n === 0) return
    if (n === 1) {
      this.inflightLast[id] = 0
    } else {
      // nginx does this in unsigned arithmetic; a negative total (clock steps) is kept at 0.
      this.inflightLast[id] = Math.max(0, this.inflightLast[id]! + (now - this.inflightChanged[id]!) * n - elapsed)
      this.inflightChanged[id] = now
    }
    this.inflightRequests[id] = n - 1
  }

  /** Learn from a finished attempt (nginx's free handler): only successful attempts whose
   *  response came back count, so that failing fast never looks fast. `header` false skips
   *  the header average (already learned when the header arrived). */
  learn(peer: Peer, outcome: Outcome, header: boolean): void {
    if (outcome.failed || outcome.headerTime === undefined) return
    const id = peer.id
    this.lastByte[id] = movingAverage(this.lastByte[id]!, outcome.responseTime ?? outcome.headerTime)
    if (header) this.header[id] = movingAverage(this.header[id]!, outcome.headerTime)
  }
}
