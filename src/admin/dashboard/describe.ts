// Words for what the stream reports, shared by the server (event lines) and the page
// (row labels), so both say the same thing. No imports: compiled for Node and the browser.

/** The fields a reason's wording needs. */
export interface ReasonSubject {
  readonly reasons: readonly string[]
  readonly max_fails: number
  /** ms */
  readonly fail_timeout: number
  readonly max_conns: number
}

/** Why a server takes no new requests, one phrase per reason, in nginx's terms. */
export function describeReasons(peer: ReasonSubject): string[] {
  return peer.reasons.map((reason) => {
    switch (reason) {
      case 'config_down': return 'down in the config'
      case 'api_down': return 'set down through the API'
      case 'draining': return 'draining (API)'
      case 'active_check': return 'failing its active health check'
      case 'max_fails': return `max_fails ${peer.max_fails}/${peer.max_fails}, out for fail_timeout ${seconds(peer.fail_timeout)}`
      case 'max_conns': return `max_conns ${peer.max_conns}/${peer.max_conns}`
      default: return reason
    }
  })
}

/** `10s`, `1.5s`, `500ms`. */
export function seconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`
}

/** `3 retries (error ×2, timeout ×1), 1 failover`. */
export function describeRetries(retries: Readonly<Record<string, number>>, failovers: number): string {
  const causes = Object.entries(retries).filter(([, n]) => n > 0)
  const total = causes.reduce((sum, [, n]) => sum + n, 0)
  const parts: string[] = []
  if (total > 0) parts.push(`${plural(total, 'retry', 'retries')} (${causes.map(([cause, n]) => `${cause} ×${n}`).join(', ')})`)
  if (failovers > 0) parts.push(plural(failovers, 'failover', 'failovers'))
  return parts.join(', ')
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}
