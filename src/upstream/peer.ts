// One upstream server at run time: its config, the smooth-weighted-round-robin state
// nginx keeps beside it, passive-health counters, and in-flight requests.
// Health is a set of reasons; `available()` is the only question policies ask.
import type { Millis, UpstreamServer } from '../config/model.js'
import { PeerStats } from './stats.js'

/** Why a peer takes no new requests. Derived reasons (`max_fails`, `max_conns`) are
 *  computed from counters; the others are held in `Peer.reasons` (`api_down` and
 *  `draining` are set through the runtime API; `active_check` by the health checker,
 *  src/upstream/health-check.ts). */
export type UnavailableReason = 'config_down' | 'api_down' | 'draining' | 'active_check' | 'max_fails' | 'max_conns'

export class Peer {
  /** Index in the upstream's server list (config order); stable for the upstream's life. */
  readonly id: number
  readonly server: UpstreamServer
  /** The server as written in the config, e.g. `127.0.0.1:4000`. */
  readonly name: string
  /** `host:port` actually connected to. */
  readonly address: string
  /** `weight=N`; the runtime API may change it. */
  weight: number
  readonly maxFails: number
  readonly failTimeout: Millis
  readonly maxConns: number
  /** False for the only server of an upstream: nginx never marks that one failed. */
  readonly countsFailures: boolean
  /** `slow_start=TIME` in ms, 0 = off (NGINX Plus): after coming back from `max_fails`,
   *  the weight climbs linearly from near zero to its nominal value over this time. */
  readonly slowStart: Millis
  /** A slow start is running (since `rampStartedAt`). */
  ramping = false
  rampStartedAt = 0
  /** The weight a running slow start climbs to. */
  private rampTarget = 0

  /** nginx's `current_weight` (smooth weighted round robin). */
  currentWeight = 0
  /** nginx's `effective_weight`: lowered by failures, restored by 1 per selection. */
  effectiveWeight: number

  /** Failures since the last success (nginx `fails`). */
  fails = 0
  /** Time of the last failure (nginx `accessed`). */
  accessed = 0
  /** Time of the last failure or of the last probe after `fail_timeout` (nginx `checked`). */
  checked = 0
  /** Requests in flight (nginx `conns`). */
  active = 0

  /** Reasons held until something clears them (config `down`, the API's down and drain). */
  readonly reasons = new Set<UnavailableReason>()
  readonly stats = new PeerStats()

  constructor(id: number, server: UpstreamServer, countsFailures: boolean) {
    this.id = id
    this.server = server
    this.name = server.name
    this.address = server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`
    this.weight = server.weight
    this.effectiveWeight = server.weight
    this.maxFails = server.maxFails
    this.failTimeout = server.failTimeout
    this.maxConns = server.maxConns
    this.countsFailures = countsFailures
    this.slowStart = server.slowStart
    if (server.down) this.reasons.add('config_down')
  }

  /** May this peer take a new request at `now`? (nginx's eligibility test in
   *  ngx_http_upstream_get_peer, minus the per-request "tried" bit.) */
  available(now: number): boolean {
    if (this.reasons.size !== 0) return false
    if (this.maxConns !== 0 && this.active >= this.maxConns) return false
    if (!this.countsFailures || this.maxFails === 0) return true
    return this.fails < this.maxFails || now - this.checked > this.failTimeout
  }

  /** Every reason the peer is out at `now` (empty when available). */
  unavailableReasons(now: number): UnavailableReason[] {
    const out = [...this.reasons]
    if (this.maxConns !== 0 && this.active >= this.maxConns) out.push('max_conns')
    if (this.countsFailures && this.maxFails !== 0 && this.fails >= this.maxFails && now - this.checked <= this.failTimeout) {
      out.push('max_fails')
    }
    return out
  }

  /** Called when a policy picked this peer: the in-flight count goes up, and after
   *  `fail_timeout` the pick is the one probe nginx lets through (`checked` moves). */
  selected(now: number): void {
    this.active++
    this.stats.requests++
    if (now - this.checked > this.failTimeout) this.checked = now
  }

  /** The attempt on this peer ended. A failure counts toward `max_fails` and lowers the
   *  effective weight by weight/max_fails; a success after the last failure clears
   *  `fails` (nginx's ngx_http_upstream_free_round_robin_peer). Returns true when this
   *  failure took the peer out. */
  released(now: number, failed: boolean): boolean {
    this.active--
    if (failed) this.stats.fails++
    if (!this.countsFailures) return false
    if (failed) {
      this.fails++
      this.accessed = now
      this.checked = now
      if (this.maxFails !== 0) {
        this.effectiveWeight -= Math.floor(this.weight / this.maxFails)
        if (this.effectiveWeight < 0) this.effectiveWeight = 0
        if (this.fails === this.maxFails) {
          this.stats.unavail++
          return true
        }
      }
      return false
    }
    if (this.accessed < this.checked) {
      // Back from max_fails: a peer with slow_start starts again from near zero.
      if (this.slowStart !== 0 && this.maxFails !== 0 && this.fails >= this.maxFails) this.startRamp(now)
      this.fails = 0
    }
    return false
  }

  /** Set the nominal weight (the runtime API); during a slow start it is the ramp's target. */
  setWeight(weight: number): void {
    if (this.ramping) {
      this.rampTarget = weight
    } else {
      this.weight = weight
      this.effectiveWeight = weight
    }
  }

  /** Begin a slow start at `now`. */
  startRamp(now: number): void {
    if (!this.ramping) this.rampTarget = this.weight
    this.ramping = true
    this.rampStartedAt = now
    this.rampWeight(now)
  }

  /** Bring a slow start up to `now`: weight = target × elapsed / slow_start (at least one
   *  millisecond's worth, so the peer is never at exactly zero), then the target itself.
   *  The effective weight is kept within it, as round robin assumes. */
  rampWeight(now: number): void {
    if (!this.ramping) return
    const elapsed = now - this.rampStartedAt
    if (elapsed >= this.slowStart) {
      this.weight = this.rampTarget
      this.ramping = false
      return
    }
    this.weight = (this.rampTarget * Math.max(elapsed, 1)) / this.slowStart
    if (this.effectiveWeight > this.weight) this.effectiveWeight = this.weight
  }
}
