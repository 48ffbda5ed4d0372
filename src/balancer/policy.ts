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
}

/** What happened on a peer the policy picked, for policies that adapt (nginx's `free`). */
export interface Outcome {
  readonly failed: boolean
  /** Milliseconds from the start of the attempt to the response header, when there was one. */
  readonly headerTime?: number
}

export interface Policy {
  /** A peer from `peers` for which `ctx.eligible` is true, or undefined when there is none. */
  pick(peers: readonly Peer[], ctx: PickContext): Peer | undefined
  /** Optional feedback after an attempt ends. */
  report?(peer: Peer, outcome: Outcome): void
}
