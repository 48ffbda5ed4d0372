// Balancing methods by nginx directive: how to read the directive's arguments, which
// `server` parameters the method supports (nginx rejects the rest), and how to build it.
// A new policy is one file in policies/ plus one row here.
import type { BalancerConfig } from '../config/model.js'
import type { Peer } from '../upstream/peer.js'
import type { Policy } from './policy.js'
import { fair, parseFair, type FairOptions } from './policies/fair.js'
import { hash, parseHash, type HashOptions } from './policies/hash.js'
import { ipHash } from './policies/ip-hash.js'
import { leastConn } from './policies/least-conn.js'
import { leastTime, parseLeastTime, type LeastTimeOptions } from './policies/least-time.js'
import { parseRandom, random, type RandomOptions } from './policies/random.js'
import { roundRobin } from './policies/round-robin.js'
import { parseSticky, sticky, type StickyOptions, type WrappedPolicy } from './policies/sticky.js'

export type ServerParam = 'weight' | 'max_fails' | 'fail_timeout' | 'max_conns' | 'backup' | 'down' | 'slow_start'

export interface PolicyDefinition {
  /** The directive inside `upstream { }`; `round_robin` is the default, which has none. */
  readonly directive: string
  /** Argument count bounds for the directive. */
  readonly minArgs: number
  readonly maxArgs: number
  /** `server` parameters this method accepts. */
  readonly serverParams: ReadonlySet<ServerParam>
  /** Validate the directive's arguments; throw an Error with nginx's wording on bad input. */
  parse(args: readonly string[]): unknown
  /** True for a directive that wraps the balancing method written before it in the same
   *  upstream instead of replacing it (nginx's `sticky`); that method's `server`
   *  parameters then apply, and `create` receives its policy as `wrapped`. */
  readonly wraps?: boolean
  /** Build the policy for one upstream, given all its peers (primary and backup). */
  create(peers: readonly Peer[], options: unknown, wrapped?: WrappedPolicy): Policy
}

const all: ReadonlySet<ServerParam> = new Set(['weight', 'max_fails', 'fail_timeout', 'max_conns', 'backup', 'down'])
/** NGINX Plus's `slow_start` goes with every method but hash, ip_hash and random. */
const allWithSlowStart: ReadonlySet<ServerParam> = new Set([...all, 'slow_start'])
const hashParams: ReadonlySet<ServerParam> = new Set(['weight', 'max_fails', 'fail_timeout', 'max_conns', 'down'])

export const DEFAULT_POLICY = 'round_robin'

const definitions: PolicyDefinition[] = [
  { directive: DEFAULT_POLICY, minArgs: 0, maxArgs: 0, serverParams: allWithSlowStart, parse: () => null, create: () => roundRobin() },
  { directive: 'least_conn', minArgs: 0, maxArgs: 0, serverParams: allWithSlowStart, parse: () => null, create: (peers) => leastConn(peers) },
  {
    directive: 'least_time', minArgs: 1, maxArgs: 2, serverParams: allWithSlowStart, parse: parseLeastTime,
    create: (peers, options) => leastTime(peers, options as LeastTimeOptions),
  },
  {
    directive: 'random', minArgs: 0, maxArgs: 2, serverParams: new Set(['weight', 'max_fails', 'fail_timeout', 'max_conns', 'down']),
    parse: parseRandom, create: (peers, options) => random(peers, options as RandomOptions),
  },
  {
    directive: 'fair', minArgs: 0, maxArgs: Number.POSITIVE_INFINITY, serverParams: new Set(['weight', 'max_fails', 'fail_timeout', 'down']),
    parse: parseFair, create: (peers, options) => fair(peers, options as FairOptions),
  },
  // nginx's hash methods take neither `backup` nor `slow_start` (ip_hash, hash modules' flags).
  { directive: 'ip_hash', minArgs: 0, maxArgs: 0, serverParams: hashParams, parse: () => null, create: (peers) => ipHash(peers) },
  { directive: 'hash', minArgs: 1, maxArgs: 2, serverParams: hashParams, parse: parseHash, create: (peers, options) => hash(peers, options as HashOptions) },
  {
    directive: 'sticky', minArgs: 2, maxArgs: Number.POSITIVE_INFINITY, serverParams: allWithSlowStart, wraps: true, parse: parseSticky,
    create: (peers, options, wrapped) => sticky(peers, options as StickyOptions, wrapped ?? { method: DEFAULT_POLICY, policy: roundRobin() }),
  },
]

const byDirective = new Map(definitions.map((d) => [d.directive, d]))

/** The registry row for a balancing directive, or undefined. */
export function policyDefinition(directive: string): PolicyDefinition | undefined {
  return byDirective.get(directive)
}

/** Build an upstream's policy from its config: the method, and for a wrapping method
 *  (`sticky`) the method inside it first. */
export function createPolicy(peers: readonly Peer[], config: BalancerConfig): Policy {
  const definition = byDirective.get(config.method)
  if (definition === undefined) throw new Error(`unknown balancing method "${config.method}"`)
  const wrapped = config.inner === undefined ? undefined : { method: config.inner.method, policy: createPolicy(peers, config.inner) }
  return definition.create(peers, config.options, wrapped)
}

/** Every registered method (for the contract tests and the docs). */
export function registeredPolicies(): readonly PolicyDefinition[] {
  return definitions
}

/** Directives that select a balancing method (everything but the default). */
export function balancingDirectives(): string[] {
  return definitions.filter((d) => d.directive !== DEFAULT_POLICY).map((d) => d.directive)
}
