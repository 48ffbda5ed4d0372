// Prometheus metrics (prom-client), read from the counters the request path keeps.
// Every value is computed at scrape time from the live upstreams, so the hot path pays
// for plain increments only. Labels are bounded: upstream and server names from the
// config, status codes, causes; never a path or a client address.
import { Counter, Registry } from 'prom-client'
import type { Upstream } from '../upstream/upstream.js'
import { LATENCY_BUCKETS } from '../upstream/stats.js'
import type { LimitStats } from '../limits/stats.js'

/** What the metrics read from the running switchyard. */
export interface MetricsSource {
  upstreams(): Iterable<Upstream>
  /** limit_req / limit_conn outcomes by zone. */
  limits(): LimitStats
  requestsInFlight(): number
  clientConnections(): number
  readonly now: () => number
}

export interface Metrics {
  readonly registry: Registry
  /** Count a config reload attempt. */
  reload(outcome: 'ok' | 'error'): void
}

type Labels = Record<string, string | number>

/** One sample; `metricName` names a histogram's _bucket/_sum/_count series (prom-client
 *  honours it when rendering, and its cluster aggregator sums samples by it). */
interface Sample {
  value: number
  labels: Labels
  metricName?: string
}

/** A metric whose samples are computed on each scrape. prom-client's registry takes any
 *  object with `get()`; this one reads the live counters instead of keeping its own. */
function computed(registry: Registry, name: string, help: string, type: 'gauge' | 'counter' | 'histogram', values: () => Sample[], aggregator: 'sum' | 'max' | 'first' = 'sum'): void {
  // `aggregator` says how the primary combines the workers' samples (prom-client's cluster
  // aggregation): counters and in-flight gauges add up; "is it up" is up on any worker.
  const metric = {
    name,
    help,
    type,
    aggregator,
    collect: () => undefined,
    get: async () => ({ name, help, type, aggregator, values: values() }),
    reset: () => undefined,
  }
  registry.registerMetric(metric as never)
}

/** `reloads`: include the reload counter (the process that reloads owns it).
 *  `process`: prom-client's process metrics — only when something will scrape them, since
 *  they observe every garbage collection. */
export function createMetrics(source: MetricsSource, options: { reloads: boolean; process: boolean }): Metrics {
  const registry = new Registry()
  if (options.process) processMetrics(registry)
  const peers = function* (): Generator<{ upstream: Upstream; labels: Labels; peer: Upstream['peers'][number] }> {
    for (const upstream of source.upstreams()) {
      for (const peer of upstream.peers) yield { upstream, peer, labels: { upstream: upstream.name, server: peer.name } }
    }
  }

  computed(registry, 'switchyard_upstream_requests_total', 'Attempts sent to each upstream server, by response status code or failure type.', 'counter', () => {
    const out: Sample[] = []
    for (const { peer, labels } of peers()) {
      for (const [code, n] of peer.stats.codes) out.push({ labels: { ...labels, code }, value: n })
    }
    return out
  })
  computed(registry, 'switchyard_upstream_response_seconds', 'Time from sending the request to the upstream response header.', 'histogram', () => {
    const out: Sample[] = []
    for (const { peer, labels } of peers()) {
      const s = peer.stats
      let cumulative = 0
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += s.latency[i]!
        out.push({ metricName: 'switchyard_upstream_response_seconds_bucket', labels: { ...labels, le }, value: cumulative })
      })
      out.push({ metricName: 'switchyard_upstream_response_seconds_bucket', labels: { ...labels, le: '+Inf' }, value: s.latencyCount })
      out.push({ metricName: 'switchyard_upstream_response_seconds_sum', labels, value: s.latencySum })
      out.push({ metricName: 'switchyard_upstream_response_seconds_count', labels, value: s.latencyCount })
    }
    return out
  })
  computed(registry, 'switchyard_upstream_peer_up', '1 while the upstream server takes new requests, 0 while it is out.', 'gauge', () => {
    const now = source.now()
    return [...peers()].map(({ peer, labels }) => ({ labels, value: peer.available(now) ? 1 : 0 }))
  }, 'max')
  computed(registry, 'switchyard_upstream_peer_unavailable', '1 for each reason an upstream server is out (config_down, api_down, draining, active_check, max_fails, max_conns).', 'gauge', () => {
    const now = source.now()
    const out: Sample[] = []
    for (const { peer, labels } of peers()) for (const reason of peer.unavailableReasons(now)) out.push({ labels: { ...labels, reason }, value: 1 })
    return out
  }, 'max')
  computed(registry, 'switchyard_upstream_peer_active', 'Requests in flight to each upstream server.', 'gauge', () =>
    [...peers()].map(({ peer, labels }) => ({ labels, value: peer.active })))
  computed(registry, 'switchyard_upstream_peer_weight', 'Configured (or API-set) weight of each upstream server.', 'gauge', () =>
    [...peers()].map(({ peer, labels }) => ({ labels, value: peer.weight })), 'max')
  computed(registry, 'switchyard_upstream_fails_total', 'Failed attempts per upstream server (what max_fails counts).', 'counter', () =>
    [...peers()].map(({ peer, labels }) => ({ labels, value: peer.stats.fails })))
  computed(registry, 'switchyard_upstream_unavailable_total', 'Times an upstream server was taken out by max_fails.', 'counter', () =>
    [...peers()].map(({ peer, labels }) => ({ labels, value: peer.stats.unavail })))
  computed(registry, 'switchyard_upstream_retries_total', 'Attempts made on another server after a failed one, by cause.', 'counter', () => {
    const out: Sample[] = []
    for (const upstream of source.upstreams()) for (const [cause, n] of upstream.stats.retries) out.push({ labels: { upstream: upstream.name, cause }, value: n })
    return out
  })
  computed(registry, 'switchyard_upstream_failovers_total', 'Requests answered after at least one other server failed them.', 'counter', () =>
    [...source.upstreams()].map((u) => ({ labels: { upstream: u.name }, value: u.stats.failovers })))
  computed(registry, 'switchyard_upstream_retry_budget_exhausted_total', 'Retries not made because the retry_budget was spent (the last try\'s answer stood).', 'counter', () =>
    [...source.upstreams()].map((u) => ({ labels: { upstream: u.name }, value: u.stats.retryBudgetExhausted })))
  computed(registry, 'switchyard_upstream_queued_total', 'Requests that waited in the upstream queue for a server.', 'counter', () =>
    [...source.upstreams()].map((u) => ({ labels: { upstream: u.name }, value: u.stats.queued })))
  computed(registry, 'switchyard_upstream_queue_rejected_total', 'Requests answered 503 by the upstream queue: full, or no server within its timeout.', 'counter', () =>
    [...source.upstreams()].flatMap((u) => [
      { labels: { upstream: u.name, reason: 'full' }, value: u.stats.queueOverflows },
      { labels: { upstream: u.name, reason: 'timeout' }, value: u.stats.queueTimeouts },
    ]))
  computed(registry, 'switchyard_upstream_queue_waiting', 'Requests waiting in the upstream queue now.', 'gauge', () =>
    [...source.upstreams()].map((u) => ({ labels: { upstream: u.name }, value: u.queue?.length ?? 0 })))
  const byZone = (counts: ReadonlyMap<string, ReadonlyMap<string, number>>): Sample[] =>
    [...counts].flatMap(([zone, outcomes]) => [...outcomes].map(([outcome, n]) => ({ labels: { zone, outcome }, value: n })))
  computed(registry, 'switchyard_limit_req_total', 'Requests limit_req decided on, by zone and outcome (passed, delayed, rejected, delayed_dry_run, rejected_dry_run; a request that passes several zones counts in each).', 'counter', () => byZone(source.limits().req))
  computed(registry, 'switchyard_limit_conn_total', 'Requests limit_conn decided on, by zone and outcome (passed, rejected, rejected_dry_run).', 'counter', () => byZone(source.limits().conn))
  computed(registry, 'switchyard_requests_in_flight', 'Proxied requests (and tunnels) in progress.', 'gauge', () => [{ labels: {}, value: source.requestsInFlight() }])
  computed(registry, 'switchyard_client_connections', 'Open client connections on the traffic listeners.', 'gauge', () => [{ labels: {}, value: source.clientConnections() }])

  if (!options.reloads) return { registry, reload: () => undefined }
  const reload = reloadCounter(registry)
  return { registry, reload }
}

/** The reload counts `reloadCounter` keeps in `registry` (zeros if it keeps none). */
export async function reloadCounts(registry: Registry): Promise<{ ok: number; error: number }> {
  const metric = registry.getSingleMetric('switchyard_config_reloads_total')
  const counts = { ok: 0, error: 0 }
  if (metric === undefined) return counts
  for (const { labels, value } of (await metric.get()).values) {
    if (labels.outcome === 'ok' || labels.outcome === 'error') counts[labels.outcome] = value
  }
  return counts
}

/** `switchyard_config_reloads_total{outcome}` in `registry`; returns the counting function. */
export function reloadCounter(registry: Registry): (outcome: 'ok' | 'error') => void {
  const reloads = new Counter({ name: 'switchyard_config_reloads_total', help: 'Config reloads by outcome.', labelNames: ['outcome'], registers: [registry] })
  reloads.inc({ outcome: 'ok' }, 0)
  reloads.inc({ outcome: 'error' }, 0)
  return (outcome) => reloads.inc({ outcome })
}

/** The process's own numbers, read at scrape time. (prom-client's default metrics would
 *  observe every garbage collection; a proxy collects its nursery thousands of times a
 *  second under load, so those callbacks cost measurable throughput.) */
function processMetrics(registry: Registry): void {
  const started = Date.now() / 1000 - process.uptime()
  computed(registry, 'switchyard_process_cpu_seconds_total', 'User and system CPU time spent.', 'counter', () => {
    const { user, system } = process.cpuUsage()
    return [{ labels: {}, value: (user + system) / 1e6 }]
  })
  computed(registry, 'switchyard_process_resident_memory_bytes', 'Resident memory size.', 'gauge', () => [{ labels: {}, value: process.memoryUsage.rss() }])
  computed(registry, 'switchyard_process_heap_bytes', 'V8 heap used and total.', 'gauge', () => {
    const m = process.memoryUsage()
    return [{ labels: { kind: 'used' }, value: m.heapUsed }, { labels: { kind: 'total' }, value: m.heapTotal }]
  })
  computed(registry, 'switchyard_process_start_time_seconds', 'Start time of the process since the Unix epoch.', 'gauge', () => [{ labels: {}, value: started }], 'max')
}
