// A running switchyard: listeners bound per `listen` address, the current config
// generation, reload (validate, swap, let the old generation finish), graceful quit and
// fast stop. Signals are wired by the CLI, so tests and the demo can embed this.
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import { createSecureServer } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import type { SecureContext, TLSSocket } from 'node:tls'
import { Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { writeFile, rm } from 'node:fs/promises'
import type { Config } from '../config/model.js'
import { loadConfig } from '../config/load.js'
import { createLogger, type Logger } from '../log.js'
import { apiState, applyChange, peerView, sameServers, upstreamView, type PeerChange, type PeerView, type UpstreamView } from '../admin/api.js'
import { createMetrics, reloadCounts, type Metrics } from '../admin/metrics.js'
import type { AdminBackend, AdminOptions } from '../admin/server.js'
import { AdminEndpoint } from '../admin/endpoint.js'
import { accessLine, AccessLogs } from '../proxy/access-log.js'
import { sendErrorPage } from '../proxy/error-page.js'
import { Exchange, type ProxyContext } from '../proxy/exchange.js'
import { BAD_BODY } from '../proxy/request-body.js'
import { RequestVars } from '../proxy/request-vars.js'
import { Tunnel } from '../proxy/upgrade.js'
import { systemEnvironment, type Environment } from '../upstream/upstream.js'
import { Generation, listenKey, type ListenKind, type ListenSlot, type Route, type Routed } from './generation.js'
import { ListenerTls } from './listener-tls.js'
import { adaptHttp2Request, CONNECTION_ERROR, isHttp2 } from '../proxy/http2.js'
import type { EdgeSettings } from '../config/model.js'
import { DEFAULT_EDGE } from '../config/edge.js'
import { accessDenied, armBodyTimeout, checkRequest, isClosing, markClosing, realAddress } from '../proxy/edge.js'
import { hasBody, sendReturn } from '../proxy/return.js'
import { acceptProxied, adoptTlsSocket } from '../proxy/proxy-protocol.js'
import { plainAddress } from '../proxy/request-vars.js'
import { applyListenerEdge, CHECK_INTERVAL, listenerEdges } from './listener-edge.js'
import { LimitGate, limitsSomething } from '../limits/preaccess.js'
import { LimitStats } from '../limits/stats.js'
import { LocalZones, ZoneSet, type LimitZones } from '../limits/zones.js'

export interface SwitchyardOptions {
  /** Path of the nginx-syntax config file. */
  readonly configFile: string
  /** Where log lines go; by default a logger that follows the config's error_log. */
  readonly logger?: Logger
  /** Clock and randomness; the system's by default. */
  readonly env?: Environment
  /** Start the admin listener (metrics, JSON API) here; without it a single process
   *  follows the config's `admin_listen` across reloads (a worker never has one). */
  readonly admin?: AdminOptions
  /** `single` (default): this process is all of switchyard (writes the pid file, counts
   *  reloads). `worker`: one of several workers under a primary, which does those. */
  readonly role?: 'single' | 'worker'
  /** Collect prom-client's process metrics (default: when this process has an admin
   *  listener; a worker is told by its primary). */
  readonly processMetrics?: boolean
  /** Where `limit_req`/`limit_conn` state lives: by default zones in this process (kept
   *  across reloads); a worker is given its primary's (src/limits/remote-zones.ts). */
  readonly limitZones?: LimitZones
}

export interface Switchyard {
  readonly config: Config
  /** Bound listener addresses, e.g. [{ host: '127.0.0.1', port: 8080 }]. */
  addresses(): Array<{ host: string; port: number }>
  /** Re-read the same file; on error the old config keeps serving. */
  reload(): Promise<{ ok: true } | { ok: false; error: string }>
  /** Graceful: stop accepting, finish in-flight requests, close. */
  quit(): Promise<void>
  /** Fast: close everything now. */
  stop(): Promise<void>
  /** Reopen the access log files (SIGUSR1, after rotation). */
  reopenLogs(): Promise<void>
  /** The admin listener's address, when one was asked for. */
  adminAddress(): { host: string; port: number } | null
  /** The metrics registry (a worker hands it to the primary's aggregation). */
  readonly metrics: Metrics
  /** Views of every explicit upstream, for the API. */
  upstreamViews(): Record<string, UpstreamView>
  /** Apply an API change to peer `id` of upstream `name`; null when there is none. */
  patchPeer(name: string, id: number, change: PeerChange): PeerView | null
  /** Changes made through the API, to hand to a process that replaces this one. */
  apiChanges(): Array<[string, PeerChange]>
  /** Adopt changes made through the API before this process started. */
  adoptChanges(changes: ReadonlyArray<[string, PeerChange]>): void
}

/** Load the config, bind every listener and start serving. Throws on a bad config or a
 *  port that cannot be bound (nothing is left listening then). */
export async function startSwitchyard(options: SwitchyardOptions): Promise<Switchyard> {
  const ownLogger = options.logger === undefined
  const log = options.logger ?? createLogger()
  const config = await loadConfig(options.configFile)
  if (ownLogger) log.configure(config.main.errorLog.path, config.main.errorLog.level)
  const role = options.role ?? 'single'
  const adminWanted = options.admin !== undefined || (role === 'single' && config.main.admin !== null)
  const runtime = new Runtime(options.configFile, log, options.env ?? systemEnvironment, watchPeers(new Generation(config), log), ownLogger, role, options.processMetrics ?? adminWanted, options.limitZones ?? new LocalZones(ZoneSet.fromConfig(config)))
  if (role === 'single') runtime.adminEndpoint = new AdminEndpoint(runtime.adminBackend(), log, options.admin ?? null)
  await runtime.bindListeners(runtime.generation)
  runtime.generation.startHealthChecks()
  try {
    await runtime.adminEndpoint?.apply(config.main.admin)
  } catch (err) {
    await runtime.stop()
    throw err
  }
  if (role === 'single') await runtime.writePid()
  log.notice(`switchyard ${role === 'worker' ? 'worker ' : ''}started, listening on ${runtime.addresses().map((a) => listenKey(a.host, a.port)).join(', ')}`)
  return runtime
}

interface Listener {
  readonly key: string
  readonly server: Server
  port: number
  /** The default server's edge settings (see listener-edge.ts). */
  edge: EdgeSettings
  readonly kind: ListenKind
  /** The current generation's certificates (TLS listeners only). */
  tls: ListenerTls | null
  /** With `proxy_protocol`: the socket that accepts, reads the PROXY header and hands
   *  the connection to `server` (which then listens on nothing itself). */
  readonly front: NetServer | null
}

class Runtime implements Switchyard {
  generation: Generation
  private readonly file: string
  private readonly log: Logger
  private readonly env: Environment
  private readonly ownLogger: boolean
  private readonly listeners = new Map<string, Listener>()
  private readonly tunnels = new Set<Duplex>()
  private readonly accessLogs = new AccessLogs()
  private readonly contexts = new WeakMap<Generation, ProxyContext>()
  private inFlight = 0
  /** Open client connections on the traffic listeners. */
  private readonly sockets = new Set<Socket>()
  /** Connections on a `proxy_protocol` listener whose PROXY header is not read yet. */
  private readonly pending = new Set<Socket>()
  private closing = false
  readonly metrics: Metrics
  /** The admin listener (a single process only; a primary owns it for its workers). */
  adminEndpoint: AdminEndpoint | null = null
  /** API changes by `upstream\0server`, re-applied after a reload that keeps the upstream. */
  private readonly changes = new Map<string, PeerChange>()
  private drained: (() => void) | null = null
  private pidWritten = false
  private reloading: Promise<{ ok: true } | { ok: false; error: string }> | null = null

  private readonly role: 'single' | 'worker'
  private readonly limitZones: LimitZones
  /** What the limits decided, per zone, for the metrics. */
  private readonly limitStats = new LimitStats()

  constructor(file: string, log: Logger, env: Environment, generation: Generation, ownLogger: boolean, role: 'single' | 'worker', processMetrics: boolean, limitZones: LimitZones) {
    this.role = role
    this.limitZones = limitZones
    this.file = file
    this.log = log
    this.env = env
    this.generation = generation
    this.ownLogger = ownLogger
    this.metrics = createMetrics({
      upstreams: () => this.generation.upstreams.values(),
      limits: () => this.limitStats,
      requestsInFlight: () => this.inFlight,
      clientConnections: () => this.sockets.size,
      now: env.now,
    }, { reloads: role === 'single', process: processMetrics })
  }

  // ── admin ─────────────────────────────────────────────────────────────────────

  /** Views of every explicit upstream, for the API. */
  upstreamViews(): Record<string, UpstreamView> {
    const now = this.env.now()
    return Object.fromEntries([...this.generation.upstreams].filter(([, u]) => !u.config.implicit).map(([name, u]) => [name, upstreamView(u, now)]))
  }

  /** Apply an API change to a live peer and remember it across reloads. */
  patchPeer(name: string, id: number, change: PeerChange): PeerView | null {
    const upstream = this.generation.upstreams.get(name)
    const peer = upstream?.config.implicit === false ? upstream.peers[id] : undefined
    if (upstream === undefined || peer === undefined) return null
    applyChange(peer, change)
    this.changes.set(`${upstream.name}\0${peer.name}`, apiState(peer))
    return peerView(peer, this.env.now())
  }

  /** Changes made through the API (by `upstream\0server`), to hand to a new process. */
  apiChanges(): Array<[string, PeerChange]> {
    return [...this.changes]
  }

  /** Adopt changes made through the API before this process started (a new worker). */
  adoptChanges(changes: ReadonlyArray<[string, PeerChange]>): void {
    for (const [key, change] of changes) {
      this.changes.set(key, change)
      const [name, server] = key.split('\0') as [string, string]
      for (const peer of this.generation.upstreams.get(name)?.peers ?? []) if (peer.name === server) applyChange(peer, change)
    }
  }

  adminBackend(): AdminBackend {
    return {
      upstreams: async () => this.upstreamViews(),
      patch: async (name, id, change) => this.patchPeer(name, id, change),
      metrics: async () => ({ contentType: this.metrics.registry.contentType, text: await this.metrics.registry.metrics() }),
      reloads: () => reloadCounts(this.metrics.registry),
      log: this.log,
    }
  }

  adminAddress(): { host: string; port: number } | null {
    return this.adminEndpoint?.address() ?? null
  }

  /** Carry API changes into a new generation for every upstream whose servers did not
   *  change; forget them for the rest. */
  private carryChanges(old: Generation, next: Generation): void {
    for (const [key, change] of [...this.changes]) {
      const [name, peerKey] = key.split('\0') as [string, string]
      const before = old.upstreams.get(name)
      const after = next.upstreams.get(name)
      if (before === undefined || after === undefined || !sameServers(before.config, after.config)) {
        this.changes.delete(key)
        continue
      }
      for (const peer of after.peers) if (peer.name === peerKey) applyChange(peer, change)
    }
  }

  get config(): Config {
    return this.generation.config
  }

  addresses(): Array<{ host: string; port: number }> {
    return [...this.listeners.values()].map((l) => ({ host: this.generation.listeners.get(l.key)?.host ?? l.key, port: l.port }))
  }

  // ── requests ──────────────────────────────────────────────────────────────────

  private context(gen: Generation): ProxyContext {
    let ctx = this.contexts.get(gen)
    if (ctx === undefined) {
      const runtime = this
      ctx = {
        env: this.env,
        log: this.log,
        get closing() {
          return runtime.closing
        },
        exchangeDone: () => {
          gen.leave()
          this.requestDone()
        },
        accessLog: (path, line) => this.accessLogs.write(path, line),
      }
      this.contexts.set(gen, ctx)
    }
    return ctx
  }

  private handleRequest(listener: Listener, req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    // Pipelined behind an answer that closes this connection: never served (the socket
    // is closed once that answer is out).
    if (isClosing(socket)) return
    countRequest(socket)
    // Every response is counted until done: HTTP/2 streams, and HTTP/1.1 responses that
    // a refusal pipelined behind them waits for (afterOpenResponses).
    countStream(socket, res)
    const vars = new RequestVars(req, { scheme: listener.kind === 'plain' ? 'http' : 'https', port: listener.port })
    const gen = this.generation
    const found = this.edgePhases(listener, req, () => res, vars)
    if (found === undefined) return
    if (found !== null && limitsSomething(found.route.settings.limits)) return this.limitThenServe(gen, found.route, req, res, vars)
    this.serve(gen, found?.route ?? null, req, res, vars)
  }

  /** What happens to every request before its limits, plain or Upgrade, in nginx's
   *  phase order: the request checks (edge.ts), server and location, realip (post-read),
   *  `return` at server level (server rewrite) then at location level (rewrite). Returns
   *  the route to go on with (null: no server block), or undefined when the request has
   *  been answered here. `answer` gives the response to answer on (an Upgrade request has
   *  none until one is made on its socket). */
  private edgePhases(listener: Listener, req: IncomingMessage, answer: () => ServerResponse, vars: RequestVars): Routed | null | undefined {
    const invalid = isHttp2(req) ? adaptHttp2Request(req, listener.edge) : checkRequest(req, listener.edge)
    if (invalid === CONNECTION_ERROR) {
      this.log.info('client sent too large header')
      return undefined
    }
    if (invalid !== 0) {
      this.refuse(req, answer(), invalid, 'client sent invalid request')
      return undefined
    }
    const found = this.generation.route(listener.key, vars)
    // keepalive_requests: the Nth request is the connection's last (nginx decides it per
    // location); requests pipelined behind it are never served. (Node's own
    // maxRequestsPerSocket would answer those with 503 instead.) HTTP/2 streams are not
    // counted; an Upgrade request's connection is handed over or closed anyway.
    if (!isHttp2(req) && !(req as { upgrade?: boolean }).upgrade && requestsOn(req.socket) >= (found?.route.settings.edge ?? listener.edge).keepaliveRequests) {
      answer().shouldKeepAlive = false
      markClosing(req.socket)
    }
    if (found === null) return null
    const { settings } = found.route
    const { edge } = settings
    if (edge.realIp.from.length !== 0) vars.realAddr = realAddress(vars.remoteAddr, edge.realIp, req)
    const ret = found.server.config.settings.return ?? settings.return
    if (ret !== null) {
      const res = answer()
      if (this.closing || edge.keepaliveTimeout === 0) res.shouldKeepAlive = false
      const done = sendReturn(ret, req, res, vars)
      this.logAccess(found.route, vars, done?.status ?? ret.code, done?.bytes ?? 0)
      return undefined
    }
    return found
  }

  /** nginx's preaccess phase (limit_req, limit_conn) before the rest. The request counts
   *  as in flight while it waits (a quit waits for it; its generation stays open). */
  private limitThenServe(gen: Generation, route: Route, req: IncomingMessage, res: ServerResponse, vars: RequestVars): void {
    gen.enter()
    this.inFlight++
    const gate = new LimitGate(this.limitZones, route.settings.limits, vars, this.log, this.limitStats, res)
    gate.admit().then((admission) => {
      if (admission === null) this.logAccess(route, vars, 499, 0)
      else if (!admission.pass) this.answer(route, req, res, vars, admission.status)
      else this.serve(gen, route, req, res, vars)
    }).catch((err: Error) => {
      this.log.error(`limits: ${err.message}`)
      this.answer(route, req, res, vars, 500)
    }).finally(() => {
      gen.leave()
      this.requestDone()
    })
  }

  /** allow/deny (nginx's access phase), then the proxy or switchyard's 404. */
  private serve(gen: Generation, route: Route | null, req: IncomingMessage, res: ServerResponse, vars: RequestVars): void {
    if (route !== null) {
      const { edge } = route.settings
      if (this.denied(route, req, () => res, vars)) return
      if (edge.keepaliveTimeout === 0) res.shouldKeepAlive = false
    }
    if (route === null || route.target === null) {
      // No proxy_pass here: nginx would look for a file under `root`; switchyard serves none.
      return this.answer(route, req, res, vars, 404)
    }
    armBodyTimeout(req, route.settings.edge.clientBodyTimeout)
    gen.enter()
    this.inFlight++
    new Exchange(this.context(gen), route.target, req, res, vars).start()
  }

  /** allow/deny: a denied request is answered 403 (and its connection closed). */
  private denied(route: Route, req: IncomingMessage, answer: () => ServerResponse, vars: RequestVars): boolean {
    if (!accessDenied(route.settings.edge.access, vars.remoteAddr)) return false
    this.refuse(req, answer(), 403, `access forbidden by rule, client: ${vars.remoteAddr}, server: ${vars.serverName}, request: "${req.method} ${req.url} HTTP/${req.httpVersion}"`)
    this.logAccess(route, vars, 403, 0)
    return true
  }

  /** Answer with switchyard's own page and log it. The connection stays open unless a
   *  request body may still be on the wire. */
  private answer(route: Route | null, req: IncomingMessage, res: ServerResponse, vars: RequestVars, status: number): void {
    if (this.closing) res.shouldKeepAlive = false
    const bytes = sendErrorPage(res, status, !req.complete && hasBody(req))
    this.logAccess(route, vars, status, bytes)
  }

  private logAccess(route: Route | null, vars: RequestVars, status: number, bytes: number): void {
    const log = route?.settings.accessLog ?? null
    if (log !== null) this.accessLogs.write(log.path, accessLine(log, vars, status, bytes, 0, []))
  }

  /** Answer a request switchyard will not pass on, and close the connection: an unread
   *  body behind it is never parsed as a request (markClosing). */
  private refuse(req: IncomingMessage, res: ServerResponse, status: number, why: string): void {
    this.log.log(status === 403 ? 'error' : 'info', why)
    // An HTTP/2 answer ends only its stream; the session's other streams go on.
    if (isHttp2(req)) return void sendErrorPage(res, status)
    markClosing(req.socket)
    sendErrorPage(res, status, true)
  }

  private handleUpgrade(listener: Listener, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Pipelined behind an answer that closes this connection: never served.
    if (isClosing(socket as Socket)) return void socket.destroy()
    countRequest(socket as Socket)
    // Node hands the socket over as soon as it parses the Upgrade request; one pipelined
    // behind requests still being answered waits for their answers, which anything
    // written on the socket now would cut.
    if (((socket as CountedSocket)[kStreams]?.open ?? 0) > 0) {
      socket.pause()
      return afterOpenResponses(socket as Socket, () => this.upgradeRequest(listener, req, socket, head))
    }
    this.upgradeRequest(listener, req, socket, head)
  }

  private upgradeRequest(listener: Listener, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gen = this.generation
    const vars = new RequestVars(req, { scheme: listener.kind === 'plain' ? 'http' : 'https', port: listener.port })
    // Node handed the socket over: anything switchyard answers itself goes on a response
    // object of its own, and the connection closes after it.
    let res: ServerResponse | null = null
    const answer = (): ServerResponse => {
      if (res === null) {
        res = new ServerResponse(req)
        res.assignSocket(socket as Socket)
        res.shouldKeepAlive = false
        res.on('finish', () => socket.end())
      }
      return res
    }
    const found = this.edgePhases(listener, req, answer, vars)
    if (found === undefined) return
    if (found !== null && limitsSomething(found.route.settings.limits)) return this.limitThenUpgrade(gen, found.route, req, socket, head, vars, answer)
    this.upgrade(gen, found?.route ?? null, req, socket, head, vars, answer)
  }

  /** An upgrade's limits: a limit_conn slot is held until the tunnel closes. */
  private limitThenUpgrade(gen: Generation, route: Route, req: IncomingMessage, socket: Duplex, head: Buffer, vars: RequestVars, answer: () => ServerResponse): void {
    gen.enter()
    this.inFlight++
    const gate = new LimitGate(this.limitZones, route.settings.limits, vars, this.log, this.limitStats, socket)
    gate.admit().then((admission) => {
      if (admission === null) return this.logAccess(route, vars, 499, 0)
      if (admission.pass) return this.upgrade(gen, route, req, socket, head, vars, answer)
      sendErrorPage(answer(), admission.status, true)
      this.logAccess(route, vars, admission.status, 0)
    }).catch((err: Error) => {
      this.log.error(`limits: ${err.message}`)
      socket.destroy()
    }).finally(() => {
      gen.leave()
      this.requestDone()
    })
  }

  private upgrade(gen: Generation, route: Route | null, req: IncomingMessage, socket: Duplex, head: Buffer, vars: RequestVars, answer: () => ServerResponse): void {
    if (route !== null && this.denied(route, req, answer, vars)) return
    const target = route?.target ?? null
    if (target === null || !target.canUpgrade || this.closing) {
      // Not configured for upgrades: nginx proxies such a request as a plain one (the
      // Upgrade header is hop-by-hop and dropped).
      if (target === null) {
        sendErrorPage(answer(), 404, true)
        return
      }
      gen.enter()
      this.inFlight++
      new Exchange(this.context(gen), target, req, answer(), vars).start()
      return
    }
    gen.enter()
    this.inFlight++
    this.tunnels.add(socket)
    socket.once('close', () => this.tunnels.delete(socket))
    new Tunnel(this.context(gen), target, req, socket, head, vars).start()
  }

  private requestDone(): void {
    this.inFlight--
    if (this.closing && this.inFlight === 0) this.drained?.()
  }

  /** Let every client connection end without losing a request. While quitting, each
   *  response says `Connection: close`, so a client that keeps sending is told to go;
   *  a connection is closed by us only once it has sat idle for a whole tick with no new
   *  request, because closing an idle connection races with a client that is sending on
   *  it at that moment (how nginx loses requests at a reload). */
  private async drainConnections(): Promise<void> {
    const tick = 1000
    const deadline = Date.now() + 75_000
    let previous = new Map<Socket, number>()
    while (this.sockets.size > 0 && Date.now() < deadline) {
      const now = new Map<Socket, number>()
      for (const socket of this.sockets) {
        const seen = requestsOn(socket)
        if (previous.get(socket) === seen && isIdle(socket)) socket.destroy()
        else now.set(socket, seen)
      }
      previous = now
      if (this.sockets.size > 0) await new Promise((r) => setTimeout(r, tick))
    }
    for (const socket of this.sockets) socket.destroy()
  }

  // ── listeners ─────────────────────────────────────────────────────────────────

  /** Open the listeners `gen` needs that are not open yet. On failure, close the ones
   *  this call opened and throw nginx's `bind() to … failed` error. */
  async bindListeners(gen: Generation): Promise<void> {
    const opened: Listener[] = []
    for (const [key, slot] of gen.listeners) {
      const open = this.listeners.get(key)
      // One socket serves an address across reloads; its server cannot change protocol.
      if (open !== undefined && open.kind !== slot.kind) throw new Error(`the listen ${key} changes from ${open.kind} to ${slot.kind}, which needs a restart of switchyard`)
      if (open !== undefined && (open.front !== null) !== slot.proxyProtocol) throw new Error(`the listen ${key} ${slot.proxyProtocol ? 'adds' : 'drops'} proxy_protocol, which needs a restart of switchyard`)
    }
    try {
      for (const [key, slot] of gen.listeners) {
        if (this.listeners.has(key)) continue
        const listener = await this.listen(key, slot)
        opened.push(listener)
      }
    } catch (err) {
      await Promise.all(opened.map((l) => closeListener(l)))
      throw err
    }
    for (const l of opened) this.listeners.set(l.key, l)
    if (gen === this.generation) this.applyEdges(gen)
  }

  /** Give every listener the limits of `gen`'s default server for its address. */
  private applyEdges(gen: Generation): void {
    const edges = listenerEdges(gen.config)
    for (const l of this.listeners.values()) {
      l.edge = edges.get(l.key) ?? DEFAULT_EDGE
      applyListenerEdge(l.server, l.edge)
      const slot = gen.listeners.get(l.key)
      if (l.kind !== 'plain' && slot !== undefined) {
        // New certificates for new handshakes; connections already open keep theirs.
        l.tls = new ListenerTls(slot)
        ;(l.server as unknown as { setSecureContext(options: object): void }).setSecureContext(l.tls.defaultOptions)
      }
    }
  }

  private listen(key: string, slot: ListenSlot): Promise<Listener> {
    const { host, port, kind } = slot
    const tls = kind === 'plain' ? null : new ListenerTls(slot)
    // Host is checked in checkRequest (Node's own 400 for a missing Host would still let
    // requests pipelined behind it through).
    const options = { requireHostHeader: false, connectionsCheckingInterval: CHECK_INTERVAL }
    const sni = (name: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => cb(null, listener.tls?.select(name))
    const server: Server = tls === null
      ? createServer(options)
      : kind === 'https'
        ? createHttpsServer({ ...options, ...tls.defaultOptions, SNICallback: sni })
        // HTTP/1.1 clients (no ALPN, or `http/1.1`) are served by the same server.
        : (createSecureServer({ ...options, ...tls.defaultOptions, SNICallback: sni, allowHTTP1: true }) as unknown as Server)
    // nginx's defaults: keepalive_timeout 75s, client_header_timeout 60s (applyEdges sets
    // the configured ones); no cap on the whole upload (Node's 300 s requestTimeout would
    // cut slow large bodies).
    applyListenerEdge(server, DEFAULT_EDGE)
    server.requestTimeout = 0
    const front = slot.proxyProtocol ? new NetServer() : null
    const listener: Listener = { key, server, port, edge: DEFAULT_EDGE, kind, tls, front }
    if (front !== null) {
      front.on('connection', (socket: Socket) => {
        // Until its header is read a connection is in neither server: quit and stop close it.
        this.pending.add(socket)
        socket.once('close', () => this.pending.delete(socket))
        acceptProxied(socket, {
          // nginx reads the header under client_header_timeout.
          timeout: () => listener.edge.clientHeaderTimeout,
          wrap: tls !== null,
          serve: (s) => {
            this.pending.delete(socket)
            server.emit('connection', s)
          },
          onBroken: (why) => this.log.error(`${why} while reading PROXY protocol, client: ${plainAddress(socket.remoteAddress)}, server: ${key}`),
        })
      })
    }
    // Requests are counted on the socket they arrive on: the TLS one, not the TCP one.
    server.on(tls === null ? 'connection' : 'secureConnection', (socket: Socket | TLSSocket) => {
      if (front !== null && tls !== null) adoptTlsSocket(socket)
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    server.on('request', (req, res) => this.handleRequest(listener, req, res))
    // An Expect other than 100-continue: nginx ignores it and serves the request. (Node
    // would answer 417 itself, bypassing the request path, and so the in-order refusal of
    // a bad body behind it.)
    server.on('checkExpectation', (req, res) => this.handleRequest(listener, req, res))
    server.on('upgrade', (req, socket, head) => this.handleUpgrade(listener, req, socket, head))
    // CONNECT: switchyard is no forward proxy. As nginx: 405 for an origin-form target, 400
    // for anything else, after the requests before it are answered (without a listener
    // Node drops the connection, and their responses with it).
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      // Node hands the socket over without its own error listener.
      socket.on('error', () => socket.destroy())
      // Behind an answer that closes: never answered, as any request there.
      if (isClosing(socket as Socket)) return
      const status = req.url?.charCodeAt(0) === 47 ? 405 : 400
      this.log.info(`client sent CONNECT method, client: ${req.socket.remoteAddress ?? ''}`)
      markClosing(socket as Socket)
      socket.pause()
      afterOpenResponses(socket as Socket, () => endWith(socket, `HTTP/1.1 ${status} ${status === 405 ? 'Not Allowed' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`))
    })
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return socket.destroy()
      // Bytes after an answer that closes (an unframeable body): that answer is the last
      // thing this connection gets; it closes once the answer is out.
      if (isClosing(socket as Socket)) return
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
      const answer = `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Time-out' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
      // A bad request pipelined behind requests still being answered is answered after
      // them, as nginx reads it only then: answered at once, the client would take the
      // error for the answer to its first request, and lose the responses in between.
      markClosing(socket as Socket)
      socket.pause()
      // A bad body of a request already being proxied: its exchange answers it in turn.
      const current = (socket as CountedSocket).parser?.incoming
      if (current != null && !current.complete && current.listenerCount(BAD_BODY) > 0) return void current.emit(BAD_BODY, status)
      afterOpenResponses(socket as Socket, () => endWith(socket, answer))
    })
    const bound: NetServer = front ?? server
    return new Promise((resolve, reject) => {
      bound.once('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`bind() to ${key} failed (${err.code ?? err.message})`))
      })
      bound.listen({ host, port, backlog: 511 }, () => {
        const address = bound.address()
        if (address !== null && typeof address === 'object') listener.port = address.port
        bound.removeAllListeners('error')
        bound.on('error', (err) => this.log.error(`listener ${key}: ${err.message}`))
        // Node's HTTP server starts its client_header_timeout checks when it listens; behind
        // a front it never does itself.
        if (front !== null) server.emit('listening')
        resolve(listener)
      })
    })
  }

  // ── reload, quit, stop ────────────────────────────────────────────────────────

  reload(): Promise<{ ok: true } | { ok: false; error: string }> {
    // Reloads queue behind each other: two SIGHUPs in a row apply in order.
    const previous = this.reloading ?? Promise.resolve({ ok: true as const })
    const next = previous.then(() => this.reloadNow())
    this.reloading = next
    return next
  }

  private async reloadNow(): Promise<{ ok: true } | { ok: false; error: string }> {
    if (this.closing) return { ok: false, error: 'shutting down' }
    let gen: Generation
    let zones: ZoneSet | null = null
    try {
      const config = await loadConfig(this.file)
      // Zones whose definition is unchanged keep their state (nginx keeps shared zones).
      if (this.limitZones instanceof LocalZones) zones = ZoneSet.fromConfig(config, this.limitZones.zones)
      gen = watchPeers(new Generation(config, this.generation), this.log)
      await this.adminEndpoint?.apply(config.main.admin)
      try {
        await this.bindListeners(gen)
      } catch (err) {
        // Put the admin listener back where the running config has it.
        await this.adminEndpoint?.apply(this.generation.config.main.admin).catch(() => undefined)
        throw err
      }
    } catch (err) {
      const message = (err as Error).message
      this.log.log('emerg', message)
      this.log.notice('reload failed, the running configuration stays in force')
      this.metrics.reload('error')
      return { ok: false, error: message }
    }
    const old = this.generation
    this.carryChanges(old, gen)
    this.generation = gen
    if (zones !== null) (this.limitZones as LocalZones).zones = zones
    this.applyEdges(gen)
    gen.startHealthChecks()
    this.metrics.reload('ok')
    if (this.ownLogger) this.log.configure(gen.config.main.errorLog.path, gen.config.main.errorLog.level)
    for (const [key, l] of this.listeners) {
      if (!gen.listeners.has(key)) {
        this.listeners.delete(key)
        void closeListener(l)
      }
    }
    void old.retire()
    await this.writePid()
    this.log.notice(`reconfigured from ${this.file}`)
    return { ok: true }
  }

  async quit(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.log.notice('gracefully shutting down')
    for (const t of this.tunnels) t.destroy()
    const closed = [...this.listeners.values()].map((l) => stopAccepting(l.front ?? l.server))
    // No request has come on these yet.
    for (const socket of this.pending) socket.destroy()
    await this.drainConnections()
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve))
    await Promise.all(closed)
    // A PROXY listener's HTTP server listens on nothing, but runs its timeout checks.
    for (const l of this.listeners.values()) if (l.front !== null) l.server.close()
    await this.generation.retire()
    await this.closeAdmin()
    await this.accessLogs.close()
    await this.removePid()
    this.log.notice('exiting')
  }

  async stop(): Promise<void> {
    this.closing = true
    for (const t of this.tunnels) t.destroy()
    const closed = [...this.listeners.values()].map((l) => closeListener(l))
    for (const l of this.listeners.values()) l.server.closeAllConnections?.()
    for (const socket of this.sockets) socket.destroy()
    for (const socket of this.pending) socket.destroy()
    await Promise.all(closed)
    await this.generation.destroy()
    await this.closeAdmin()
    await this.accessLogs.close()
    await this.removePid()
  }

  private async closeAdmin(): Promise<void> {
    await this.adminEndpoint?.close()
  }

  /** SIGUSR1: files are reopened on their next write, so a rotated log gets a new one. */
  async reopenLogs(): Promise<void> {
    await this.accessLogs.close()
  }

  async writePid(): Promise<void> {
    const pid = this.generation.config.main.pid
    if (pid !== null && this.role === 'single') await writeFile(pid, `${process.pid}\n`)
    this.pidWritten = true
  }

  private async removePid(): Promise<void> {
    const pid = this.generation.config.main.pid
    // Stopped before writing it (the admin port was taken): the file, if any, is another
    // process's.
    if (pid !== null && this.role === 'single' && this.pidWritten) await rm(pid, { force: true })
  }
}

/** Log peer health transitions the way nginx does. */
function watchPeers(gen: Generation, log: Logger): Generation {
  for (const upstream of gen.upstreams.values()) {
    upstream.onPeerEvent(({ peer, reason, state, check }) => {
      if (check === 'active') {
        const line = `peer ${peer.address} ${state} (active: ${reason}) in upstream "${upstream.name}"`
        return state === 'down' ? log.warn(line) : log.notice(line)
      }
      log.warn(`upstream server temporarily disabled: ${peer.name} in upstream "${upstream.name}" (${reason}, ${peer.fails}/${peer.maxFails} fails, back in ${peer.failTimeout / 1000}s)`)
    })
  }
  return gen
}

const kRequests = Symbol('switchyard.requests')
const kStreams = Symbol('switchyard.streams')
interface Streams {
  open: number
  /** Runs once when the last open response is done. */
  idle?: (() => void) | undefined
}
type CountedSocket = Socket & { [kRequests]?: number; [kStreams]?: Streams; _httpMessage?: unknown; parser?: { incoming?: IncomingMessage | null } | null }

/** Responses not yet done on a connection: HTTP/2 streams, or HTTP/1.1 requests answered
 *  in order (pipelined ones wait behind the first). The connection is idle only when none
 *  is open. (For HTTP/2, `socket` is node:http2's proxy of the TLS socket; the counter
 *  lands on the TLS socket itself.) */
function countStream(socket: Socket, res: ServerResponse): void {
  const s = socket as CountedSocket
  let streams = s[kStreams]
  if (streams === undefined) s[kStreams] = streams = { open: 0 }
  const counter = streams
  counter.open++
  res.once('close', () => {
    if (--counter.open !== 0 || counter.idle === undefined) return
    const idle = counter.idle
    counter.idle = undefined
    idle()
  })
}

/** The last bytes of a connection, unless it is already ending (a response before them
 *  said `Connection: close`). */
function endWith(socket: Duplex, bytes: string): void {
  if (!socket.writableEnded && !socket.destroyed) socket.end(bytes)
}

/** Run `then` once every request already read on this HTTP/1 connection is answered:
 *  now if none is open. */
function afterOpenResponses(socket: Socket, then: () => void): void {
  const s = socket as CountedSocket
  // A parse error in the body of a request still being read belongs to that request:
  // its answer cannot wait for its own response.
  const current = s.parser?.incoming
  const streams = s[kStreams]
  if (streams === undefined || streams.open === 0 || (current != null && !current.complete)) return then()
  streams.idle = then
}

function countRequest(socket: Socket): void {
  const s = socket as CountedSocket
  s[kRequests] = (s[kRequests] ?? 0) + 1
}

const requestsOn = (socket: Socket): number => (socket as CountedSocket)[kRequests] ?? 0

/** No response in progress on this connection (Node keeps the one being written in
 *  `_httpMessage`, and clears it when the response is done). */
const isIdle = (socket: Socket): boolean => (socket as CountedSocket)._httpMessage == null && ((socket as CountedSocket)[kStreams]?.open ?? 0) === 0

/** Stop accepting connections without touching the open ones (http.Server#close would
 *  also drop every idle keep-alive connection at once). */
function stopAccepting(server: NetServer): Promise<void> {
  return new Promise((resolve) => NetServer.prototype.close.call(server, () => resolve()))
}

/** Close a listener's socket: the PROXY front if it has one (its HTTP server listens on
 *  nothing, but still has connections to let go), else the server itself. */
async function closeListener(l: Listener): Promise<void> {
  if (l.front !== null) {
    await new Promise<void>((resolve) => l.front!.close(() => resolve()))
    // Stops its timeout checks and lets idle connections go (it listens on nothing itself).
    l.server.close()
    return
  }
  await closeServer(l.server)
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
