// Counters kept beside each peer and upstream on the request path (plain integer
// increments: no labels hashed, no allocation). The metrics endpoint and the JSON API
// read them when asked; nothing is computed per request beyond the increments.

/** Upper bounds (seconds) of the response-time histogram buckets. */
export const LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class PeerStats {
  /** Attempts sent to this peer (nginx Plus `requests`). */
  requests = 0
  /** Responses by status code, and failed attempts by type (`error`, `timeout`, `invalid_header`). */
  readonly codes = new Map<string, number>()
  /** Failed attempts, as max_fails counts them (nginx Plus `fails`). */
  fails = 0
  /** Times the peer became unavailable through max_fails (nginx Plus `unavail`). */
  unavail = 0
  /** Response-header time histogram: counts per LATENCY_BUCKETS bound, plus +Inf. */
  readonly latency = new Float64Array(LATENCY_BUCKETS.length + 1)
  latencySum = 0
  latencyCount = 0

  /** A response header arrived after `seconds`. */
  response(status: number, seconds: number): void {
    const code = String(status)
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1)
    let i = 0
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++
    this.latency[i]!++
    this.latencySum += seconds
    this.latencyCount++
  }

  /** An attempt failed without a usable response (counted by type; `fails` is counted
   *  where max_fails is, in Peer.released). */
  failure(type: string): void {
    this.codes.set(type, (this.codes.get(type) ?? 0) + 1)
  }

  /** Responses by class, as NGINX Plus reports them. */
  responseClasses(): { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number; total: number } {
    const out = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, total: 0 }
    for (const [code, n] of this.codes) {
      const c = code.charCodeAt(0) - 48
      if (code.length !== 3 || c < 1 || c > 5) continue
      out[`${c}xx` as '1xx']! += n
      out.total += n
    }
    return out
  }
}

/**
 * The q-quantile (0..1), in seconds, of a response-time histogram (counts per
 * LATENCY_BUCKETS bound, then +Inf), interpolated linearly inside its bucket as
 * Prometheus's histogram_quantile() does; a quantile in the +Inf bucket is the highest
 * finite bound. null without samples. Resolution is the buckets': below 5 ms, only
 * "under 5 ms" is known.
 */
export function histogramQuantile(counts: ArrayLike<number>, q: number): number | null {
  let total = 0
  for (let i = 0; i < counts.length; i++) total += counts[i]!
  if (total === 0) return null
  const rank = q * total
  let below = 0
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    const n = counts[i]!
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!
      return lower + (LATENCY_BUCKETS[i]! - lower) * Math.max(0, rank - below) / n
    }
    below += n
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!
}

export class UpstreamStats {
  /** Attempts made after a failed one, by the failure's cause. */
  readonly retries = new Map<string, number>()
  /** Requests answered by a peer after at least one other peer failed them. */
  failovers = 0
  /** Retries not made because the upstream's retry budget was spent (`retry_budget`). */
  retryBudgetExhausted = 0
  /** Requests that waited in the `queue`; of those, answered 503 when it was full or
   *  when no peer came within its timeout. */
  queued = 0
  queueOverflows = 0
  queueTimeouts = 0

  retry(cause: string): void {
    this.retries.set(cause, (this.retries.get(cause) ?? 0) + 1)
  }
}
