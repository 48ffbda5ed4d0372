// Envoy's retry budget (cluster circuit breakers, `retry_budget`): retries in flight for
// an upstream may not exceed max(min, ratio × active requests), so a failing peer cannot
// turn every request into two and double the load on the rest. Counted per worker
// process, as nginx counts `max_conns` without a `zone`.
import type { RetryBudgetConfig } from '../config/model.js'

export class RetryBudget {
  /** Requests to the upstream in flight (first tries and retries alike). */
  active = 0
  /** Requests in flight that have been retried at least once. */
  retrying = 0
  private readonly config: RetryBudgetConfig | null

  /** `null` is `retry_budget off`: every retry is allowed. */
  constructor(config: RetryBudgetConfig | null) {
    this.config = config
  }

  requestStarted(): void {
    this.active++
  }

  /** The request is over; `retried` if it held a retry slot (a `tryRetry` that said yes). */
  requestEnded(retried: boolean): void {
    this.active--
    if (retried) this.retrying--
  }

  /** May a request in flight make its first retry now? Yes takes a slot until
   *  `requestEnded(true)`; later retries of the same request need none (Envoy counts
   *  requests in retry, not attempts). */
  tryRetry(): boolean {
    if (this.config !== null && this.retrying >= this.limit()) return false
    this.retrying++
    return true
  }

  /** Retries allowed in flight right now. */
  limit(): number {
    if (this.config === null) return Infinity
    return Math.max(this.config.min, Math.floor(this.config.ratio * this.active))
  }
}
