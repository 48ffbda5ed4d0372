// One config generation at run time: upstreams with their peers and pools, and the
// routing tables of every listen address, all compiled from the Config model once.
// A reload builds a new generation and swaps it in; requests already running keep the
// generation they started on, which is closed when its last request ends.
import type { Pool } from 'undici'
import type { Config, Location, LocationSettings, VirtualServer } from '../config/model.js'
import { hostVariable } from '../config/variables.js'
import { LocationMatcher, ServerSelector } from '../proxy/router.js'
import type { RequestVars } from '../proxy/request-vars.js'
import { ProxyTarget } from '../proxy/target.js'
import { HealthChecker } from '../upstream/health-check.js'
import { createPeerPool } from '../upstream/peer-pool.js'
import { Upstream } from '../upstream/upstream.js'

/** What a location does with a request. */
export interface Route {
  readonly settings: LocationSettings
  /** null when the location (or the server, if no location matched) has no proxy_pass. */
  readonly target: ProxyTarget | null
}

export class CompiledServer {
  readonly config: VirtualServer
  /** `$server_name`: the first name of the block. */
  readonly name: string
  private readonly locations: LocationMatcher<Route>
  private readonly fallback: Route

  constructor(config: VirtualServer, routeFor: (location: Location | null, settings: LocationSettings) => Route) {
    this.config = config
    this.name = config.serverNames[0] ?? ''
    this.locations = new LocationMatcher(config.locations.map((l) => ({ config: l, value: routeFor(l, l.settings) })))
    this.fallback = routeFor(null, config.settings)
  }

  route(path: string): Route {
    return this.locations.match(path) ?? this.fallback
  }
}

/** Where a request goes: its server block and the location's route. */
export interface Routed {
  readonly server: CompiledServer
  readonly route: Route
}

/** `host:port` of a listen address, the key listeners are kept by across reloads. */
export function listenKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** What is bound at one listen address. */
export interface ListenSlot {
  readonly host: string
  readonly port: number
  readonly servers: ServerSelector<CompiledServer>
  /** Every server block on the address, the default one first. */
  readonly blocks: readonly CompiledServer[]
  /** `plain` HTTP/1.1, `https`, or `h2` (HTTP/2 and HTTP/1.1 over TLS, chosen by ALPN):
   *  `ssl` on any `listen` of the address makes it TLS, as in nginx; `http2` there or
   *  `http2 on` in any of its TLS server blocks adds HTTP/2. */
  readonly kind: ListenKind
  /** `proxy_protocol` on any `listen` of the address: connections start with a PROXY
   *  header (nginx too decides it per listening socket). */
  readonly proxyProtocol: boolean
}

export type ListenKind = 'plain' | 'https' | 'h2'

export class Generation {
  readonly config: Config
  readonly upstreams: ReadonlyMap<string, Upstream>
  /** Per listen address: the server blocks bound there. */
  readonly listeners: ReadonlyMap<string, ListenSlot>
  private readonly pools: Pool[] = []
  private active = 0
  private retired = false
  private closed: Promise<void> | null = null
  private onIdle: (() => void) | null = null
  /** Active health checkers by upstream name: one per upstream with a `health_check`
   *  (every location proxying there shares it). Started by `startHealthChecks`, stopped
   *  when the generation retires. */
  readonly healthCheckers: ReadonlyMap<string, HealthChecker>

  /** `previous`: the generation this one replaces (health states carry over with
   *  `health_check … mandatory persistent`). */
  constructor(config: Config, previous?: Generation) {
    this.config = config
    const upstreams = new Map<string, Upstream>()
    for (const [name, uc] of config.http.upstreams) upstreams.set(name, new Upstream(uc))
    this.upstreams = upstreams
    const checkers = new Map<string, HealthChecker>()
    for (const [name, upstream] of upstreams) {
      const check = upstream.config.healthCheck
      if (check === undefined) continue
      const before = previous?.healthCheckers.get(name)
      checkers.set(name, new HealthChecker(upstream, check, before === undefined ? {} : { previous: before }))
    }
    this.healthCheckers = checkers

    // Pools are shared by every location with the same connect timeout.
    const poolSets = new Map<string, Pool[]>()
    const poolsFor = (upstream: Upstream, connectTimeout: number): Pool[] => {
      const key = `${upstream.name}\0${connectTimeout}`
      let set = poolSets.get(key)
      if (set === undefined) {
        set = upstream.peers.map((peer) => {
          const pool = createPeerPool(`http://${peer.address}`, {
            connect: { timeout: connectTimeout },
            pipelining: 1,
            // Idle connections close after the upstream's keep-alive hint (less a margin) or
            // 4 s, capped by the upstream's keepalive_timeout, so a pooled connection is
            // not reused just as the backend closes it.
            keepAliveTimeout: Math.min(4000, upstream.config.keepaliveTimeout),
            keepAliveMaxTimeout: upstream.config.keepaliveTimeout,
            // keepalive_requests N: undici lets a connection carry maxRequestsPerClient + 1
            // requests (the last says `Connection: close`); N ≤ 1 is a `reset` on every
            // dispatch (ProxyTarget.closeAfterEach).
            ...(upstream.config.keepaliveRequests > 1 ? { maxRequestsPerClient: upstream.config.keepaliveRequests - 1 } : {}),
          }, upstream.config.keepalive, upstream.config.keepaliveTime)
          this.pools.push(pool)
          return pool
        })
        poolSets.set(key, set)
      }
      return set
    }
    const routeFor = (location: Location | null, settings: LocationSettings): Route => {
      const pass = settings.proxyPass
      if (pass === null) return { settings, target: null }
      const upstream = upstreams.get(pass.upstream)
      if (upstream === undefined) throw new Error(`upstream "${pass.upstream}" is missing from the config model`)
      return { settings, target: new ProxyTarget(location, settings, upstream, poolsFor(upstream, settings.proxyConnectTimeout)) }
    }

    const byAddress = new Map<string, { host: string; port: number; ssl: boolean; http2: boolean; proxyProtocol: boolean; entries: Array<{ config: VirtualServer; server: CompiledServer; isDefault: boolean }> }>()
    for (const vs of config.http.servers) {
      const server = new CompiledServer(vs, routeFor)
      for (const l of vs.listen) {
        const key = listenKey(l.host, l.port)
        let slot = byAddress.get(key)
        if (slot === undefined) byAddress.set(key, (slot = { host: l.host, port: l.port, ssl: false, http2: false, proxyProtocol: false, entries: [] }))
        slot.entries.push({ config: vs, server, isDefault: l.defaultServer })
        slot.ssl ||= l.ssl
        slot.http2 ||= l.http2 || vs.tls.http2
        slot.proxyProtocol ||= l.proxyProtocol
      }
    }
    this.listeners = new Map([...byAddress].map(([key, slot]) => [key, {
      host: slot.host,
      port: slot.port,
      servers: new ServerSelector(slot.entries),
      blocks: [...slot.entries.filter((e) => e.isDefault), ...slot.entries.filter((e) => !e.isDefault)].map((e) => e.server),
      kind: !slot.ssl ? 'plain' : slot.http2 ? 'h2' : 'https',
      proxyProtocol: slot.proxyProtocol,
    }]))
  }

  /** The server block and route for a request that arrived on `key`. */
  route(key: string, vars: RequestVars): Routed | null {
    const listener = this.listeners.get(key)
    if (listener === undefined) return null
    const server = listener.servers.single ?? listener.servers.select(hostVariable(vars))
    vars.serverName = server.name
    return { server, route: server.route(vars.path) }
  }

  /** A request (or tunnel) starts on this generation. */
  enter(): void {
    this.active++
  }

  /** …and ends. */
  leave(): void {
    this.active--
    if (this.active === 0 && this.retired) this.onIdle?.()
  }

  get inFlight(): number {
    return this.active
  }

  /** This generation serves now: begin its active health checks. */
  startHealthChecks(): void {
    if (this.retired) return
    for (const checker of this.healthCheckers.values()) checker.start()
  }

  /** No new requests will come: stop probing at once, and close the pools once the last
   *  running request ends. */
  retire(): Promise<void> {
    for (const checker of this.healthCheckers.values()) checker.stop()
    if (this.closed !== null) return this.closed
    this.retired = true
    this.closed = new Promise<void>((resolve) => {
      const close = (): void => {
        void Promise.allSettled(this.pools.map((p) => p.close())).then(() => resolve())
      }
      if (this.active === 0) close()
      else this.onIdle = close
    })
    return this.closed
  }

  /** Close every pool now, aborting whatever is in flight. */
  async destroy(): Promise<void> {
    for (const checker of this.healthCheckers.values()) checker.stop()
    await Promise.allSettled(this.pools.map((p) => p.destroy()))
  }
}
