// Balancing methods by nginx directive: how to read the directive's arguments, which
// `server` parameters the method supports (nginx rejects the rest), and how to build it.
// A new policy is one file in policies/ plus one row here.
import type { Peer } from '../upstream/peer.js'
import type { Policy } from './policy.js'
import { roundRobin } from './policies/round-robin.js'

export type ServerParam = 'weight' | 'max_fails' | 'fail_timeout' | 'max_conns' | 'backup' | 'down'

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
  /** Build the policy for one upstream, given all its peers (primary and backup). */
  create(peers: readonly Peer[], options: unknown): Policy
}

const all: ReadonlySet<ServerParam> = new Set(['weight', 'max_fails', 'fail_timeout', 'max_conns', 'backup', 'down'])

export const DEFAULT_POLICY = 'round_robin'

const definitions: PolicyDefinition[] = [
  { directive: DEFAULT_POLICY, minArgs: 0, maxArgs: 0, serverParams: all, parse: () => null, create: () => roundRobin() },
]

const byDirective = new Map(definitions.map((d) => [d.directive, d]))

/** The registry row for a balancing directive, or undefined. */
export function policyDefinition(directive: string): PolicyDefinition | undefined {
  return byDirective.get(directive)
}

/** Every registered method (for the contract tests and the docs). */
export function registeredPolicies(): readonly PolicyDefinition[] {
  return definitions
}

/** Directives that select a balancing method (everything but the default). */
export function balancingDirectives(): string[] {
  return definitions.filter((d) => d.directive !== DEFAULT_POLICY).map((d) => d.directive)
}
