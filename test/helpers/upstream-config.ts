// Build UpstreamConfig values directly, for policy and peer tests that need no parser.
import type { UpstreamConfig, UpstreamServer } from '../../src/config/model.js'
import { DEFAULT_POLICY } from '../../src/balancer/registry.js'

export type ServerSpec = Partial<UpstreamServer> & { name: string }

export function server(spec: ServerSpec): UpstreamServer {
  const [host = '127.0.0.1', port = '80'] = spec.name.split(':')
  return {
    host, port: Number(port), weight: 1, maxFails: 1, failTimeout: 10_000, maxConns: 0, slowStart: 0, route: '',
    backup: false, down: false, source: { file: 'test.conf', line: 1 }, ...spec,
  }
}

export function upstreamConfig(servers: ServerSpec[], method = DEFAULT_POLICY, options: unknown = null): UpstreamConfig {
  return {
    name: 'test', source: { file: 'test.conf', line: 1 }, implicit: false,
    balancer: { method, options, source: null },
    servers: servers.map(server), keepalive: null, keepaliveTimeout: 60_000, keepaliveRequests: 1000, keepaliveTime: 3_600_000,
  }
}

/** A clock the test moves by hand. */
export class ManualClock {
  t = 1_000_000
  now = (): number => this.t
  advance(ms: number): void {
    this.t += ms
  }
}
