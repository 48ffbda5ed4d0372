// An upstream at run time: its peers in two tiers (primary, then `backup` when no
// primary is eligible), the balancing policy, and the per-request selection state that
// nginx keeps in its "tried" bitmap.
import type { UpstreamConfig } from '../config/model.js'
import type { RequestVariables } from '../config/variables.js'
import type { Outcome, PickContext, Policy } from '../balancer/policy.js'
import { createPolicy } from '../balancer/registry.js'
import { Peer } from './peer.js'
import { UpstreamStats } from './stats.js'
import { RetryBudget } from './retry-budget.js'
import { RequestQueue } from './queue.js'
import { DEFAULT_RETRY_BUDGET } from '../config/upstream-limits.js'

/** Clock and randomness, injected so every pick is reproducible in tests. */
export interface Environment {
  now(): number
  random(): number
}

export const systemEnvironment: Environment = { now: Date.now, random: Math.random }

/** A peer's health changed. `check` says which check saw it: `passive` (a failed
 *  request, max_fails reached; `reason` is the failure) or `active` (the health checker;
 *  `reason` is e.g. `connect refused, 1/1 fails` or `2/2 passes`). */
export interface PeerEvent {
  upstream: Upstream
  peer: Peer
  state: 'down' | 'up'
  reason: string
  check?: 'passive' | 'active'
}

/** Told when a peer's health changes (logs subscribe; later metrics too). */
export type PeerListener = (event: PeerEvent) => void

export class Upstream {
  readonly name: string
  readonly config: UpstreamConfig
  /** Every peer in config order; `peer.id` is its index here. */
  readonly peers: readonly Peer[]
  readonly primary: readonly Peer[]
  readonly backup: readonly Peer[]
  readonly policy: Policy
  /** How many peers one request may try at most (nginx: every primary and backup peer). */
  readonly maxTries: number
  readonly stats = new UpstreamStats()
  /** `retry_budget`: may a request in flight be retried now. */
  readonly retryBudget: RetryBudget
  /** `queue`: where requests wait for a peer; null without the directive. */
  readonly queue: RequestQueue | null
  private readonly listeners: PeerListener[] = []
  /** Some peer has `slow_start`: weights are brought up to date before each pick. */
  private readonly slowStart: boolean

  constructor(config: UpstreamConfig) {
    this.name = config.name
    this.config = config
    const primaryCount = config.servers.filter((s) => !s.backup).length
    // nginx never marks the only primary server of an upstream as failed.
    const single = primaryCount === 1
    this.peers = config.servers.map((server, i) => new Peer(i, server, !(single && !server.backup)))
    this.primary = this.peers.filter((p) => !p.server.backup)
    this.backup = this.peers.filter((p) => p.server.backup)
    // nginx counts the servers not marked `down` in both tiers (ngx_http_upstream_tries).
    this.maxTries = this.peers.filter((p) => !p.server.down).length
    this.policy = createPolicy(this.peers, config.balancer)
    this.slowStart = this.peers.some((p) => p.slowStart !== 0)
    this.retryBudget = new RetryBudget(config.retryBudget === undefined ? DEFAULT_RETRY_BUDGET : config.retryBudget)
    this.queue = config.queue === undefined ? null : new RequestQueue(config.queue, (selection) => this.select(selection))
  }

  onPeerEvent(listener: PeerListener): void {
    this.listeners.push(listener)
  }

  /** Tell every listener about a transition (the health checker reports through this). */
  emitPeerEvent(event: Omit<PeerEvent, 'upstream'>): void {
    for (const listener of this.listeners) listener({ upstream: this, ...event })
    if (event.state === 'up') this.queue?.drain()
  }

  /** The next peer for a request, or undefined when no peer is eligible ("no live
   *  upstreams"). The chosen peer counts one more request in flight until `release`. */
  select(selection: Selection): Peer | undefined {
    if (this.slowStart) for (const p of this.peers) p.rampWeight(selection.now)
    let peer = this.policy.pick(this.primary, selection)
    if (peer === undefined && this.backup.length !== 0) peer = this.policy.pick(this.backup, selection)
    if (peer === undefined) return undefined
    selection.tried.push(peer)
    peer.selected(selection.now)
    return peer
  }

  /** The attempt on `peer` is over. `failed` is nginx's NGX_PEER_FAILED: an error,
   *  a timeout, an invalid header or a status listed in proxy_next_upstream (never 403/404).
   *  `outcome` adds the attempt's timings for policies that adapt (the exchange passes its
   *  Attempt). */
  release(peer: Peer, failed: boolean, now: number, reason = '', outcome: Outcome = failed ? FAILED : SUCCEEDED): void {
    if (peer.released(now, failed)) {
      for (const listener of this.listeners) listener({ upstream: this, peer, state: 'down', reason })
    }
    this.policy.report?.(peer, outcome, now)
    // A connection slot is free (or a failure may have left the rest eligible): waiters first.
    this.queue?.drain()
  }

  /** The response from `peer` goes to the client, `headerTime` ms into the attempt: the
   *  policy may learn from it (least_time) and add response headers (sticky's cookie). */
  responded(peer: Peer, headerTime: number, selection: Selection): readonly string[] | undefined {
    return this.policy.responseHeaders?.(peer, headerTime, selection)
  }
}

const FAILED: Outcome = { failed: true }
const SUCCEEDED: Outcome = { failed: false }

/** One request's walk over an upstream: the pick context handed to the policy. */
export class Selection implements PickContext {
  readonly tried: Peer[] = []
  policyTries = 0
  now: number
  readonly vars: RequestVariables
  private readonly env: Environment

  constructor(env: Environment, vars: RequestVariables) {
    this.env = env
    this.vars = vars
    this.now = env.now()
  }

  get attempt(): number {
    return this.tried.length
  }

  eligible(peer: Peer): boolean {
    return !this.tried.includes(peer) && peer.available(this.now)
  }

  random(): number {
    return this.env.random()
  }

  /** Move the clock before another pick. */
  tick(): void {
    this.now = this.env.now()
  }
}
