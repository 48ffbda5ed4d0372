// What limit_req and limit_conn decided, counted per zone in this process (NGINX Plus
// reports the same counts under /api/http/limit_reqs and /limit_conns). The metrics read
// them at scrape time; with workers, the primary sums every worker's.

export type ReqOutcome = 'passed' | 'delayed' | 'rejected' | 'delayed_dry_run' | 'rejected_dry_run'
export type ConnOutcome = 'passed' | 'rejected' | 'rejected_dry_run'

export class LimitStats {
  /** By zone, then outcome. */
  readonly req = new Map<string, Map<ReqOutcome, number>>()
  readonly conn = new Map<string, Map<ConnOutcome, number>>()

  countReq(zone: string, outcome: ReqOutcome): void {
    count(this.req, zone, outcome)
  }

  countConn(zone: string, outcome: ConnOutcome): void {
    count(this.conn, zone, outcome)
  }
}

function count<K>(by: Map<string, Map<K, number>>, zone: string, outcome: K): void {
  let outcomes = by.get(zone)
  if (outcomes === undefined) by.set(zone, (outcomes = new Map()))
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
}
