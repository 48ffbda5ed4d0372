// The balancing-policy contract. A policy chooses one peer from a tier (primary or
// backup servers, in config order); every health rule hides behind `ctx.eligible`, so a
// policy never knows why a peer is out. One file per policy in policies/, one row each
// in registry.ts.
import type { RequestVariables } from '../config/variables.js'
import type { Peer } from '../upstream/peer.js'

export interface PickContext {
  /** True when the peer may take this request: available now and not yet tried by it. */
  eligible(peer: Peer): boolean
  /** The clock, in milliseconds (injected: tests pass a fixed clock). */
  readonly now: number
  /** Uniform in [0, 1) (injected: tests pass a seeded source). */
  random(): number
  /** The request, for policies keyed by it (client address, hash key). */
  readonly vars: RequestVariables
  /** How many peers this request has tried already (0 on the first pick). */
  readonly attempt: number
  /** A count the policy keeps per request, across its retries: nginx's per-request
   *  `tries` of random (and of the hash methods), which fall back to round robin after
   *  20 draws. 0 when the request starts; the policy increments it. */
  policyTries: number
}

/** What happened on a peer the policy picked, for policies that adapt (nginx's `free`). */
export interface Outcome {
  readonly failed: boolean
  /** Milliseconds from the start of the attempt to the response header, when that response
   *  went to the client (nginx's `$upstream_header_time`); undefined otherwise (no answer,
   *  or an answer that moved the request to the next upstream). */
  readonly headerTime?: number | undefined
  /** Milliseconds from the start of the attempt to its end: the last byte, or the failure
   *  (nginx's `$upstream_response_time`); undefined when not measured. */
  readonly responseTime?: number | undefined
}

export interface Policy {
  /** A peer from `peers` for which `ctx.eligible` is true, or undefined when there is none. */
  pick(peers: readonly Peer[], ctx: PickContext): Peer | undefined
  /** Optional feedback after an attempt ends (nginx's `free`), at `now`. */
  report?(peer: Peer, outcome: Outcome, now: number): void
  /**
   * Optional: the response from `peer` is going to the client, `headerTime` ms after the
   * attempt started (nginx's NGX_HTTP_UPSTREAM_NOTIFY_HEADER; `ctx.now` is the time the
   * header arrived). least_time learns from it; sticky returns its `Set-Cookie` as flat
   * name/value pairs to add to the response. undefined adds nothing.
   */
  responseHeaders?(peer: Peer, headerTime: number, ctx: PickContext): readonly string[] | undefined
  /**
   * Optional (nginx's sticky hint, `pc->hint`): the request is bound to `peer`, which is in
   * `peers` and eligible; do the bookkeeping a pick of it needs and return it. A policy
   * without this takes the bound peer as it is.
   */
  pickBound?(peers: readonly Peer[], peer: Peer, ctx: PickContext): Peer
}
