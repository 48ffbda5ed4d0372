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
import { startAdmin, type AdminBackend, type AdminOptions } from '../admin/server.js'
import { accessLine, AccessLogs } from '../proxy/access-log.js'
import { sendErrorPage } from '../proxy/error-page.js'
import { Exchange, type ProxyContext } from '../proxy/exchange.js'
import { BAD_BODY } from '../proxy/request-body.js'
import { RequestVars } from '../proxy/request-vars.js'
import { Tunnel } from '../proxy/upgrade.js'
import { systemEnvironment, type Environment } from '../upstream/upstream.js'
import { Generation, listenKey, type ListenKind, type ListenSlot } from './generation.js'
import { ListenerTls } from './listener-tls.js'
import { adaptHttp2Request, isHttp2 } from '../proxy/http2.js'
import type { EdgeSettings } from '../config/model.js'
import { DEFAULT_EDGE } from '../config/edge.js'
import { accessDenied, armBodyTimeout, checkRequest, isClosing, markClosing, realAddress } from '../proxy/edge.js'
import { applyListenerEdge, CHECK_INTERVAL, listenerEdges } from './listener-edge.js'

export interface SwitchyardOptions {
  /** Path of the nginx-syntax config file. */
  readonly configFile: string
  /** Where log lines go; by default a logger that follows the config's error_log. */
  readonly logger?: Logger
  /** Clock and randomness; the system's by default. */
  readonly env?: Environment
  /** Start the admin listener (metrics, JSON API) here. */
  readonly admin?: AdminOptions
  /** `single` (default): this process is all of switchyard (writes the pid file, counts
   *  reloads). `worker`: one of several workers under a primary, which does those. */
  readonly role?: 'single' | 'worker'
  /** Collect prom-client's process metrics (default: when this process has an admin
   *  listener; a worker is told by its primary). */
  readonly processMetrics?: boolean
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
  const runtime = new Runtime(options.configFile, log, options.env ?? systemEnvironment, watchPeers(new Generation(config), log), ownLogger, role, options.processMetrics ?? options.admin !== undefined)
  await runtime.bindListeners(runtime.generation)
  runtime.generation.startHealthChecks()
  if (options.admin !== undefined) {
    try {
      await runtime.startAdmin(options.admin)
    } catch (err) {
      await runtime.stop()
      throw err
    }
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
  private closing = false
  readonly metrics: Metrics
  private admin: Server | null = null
  /** API changes by `upstream\0server`, re-applied after a reload that keeps the upstream. */
  private readonly changes = new Map<string, PeerChange>()
  private drained: (() => void) | null = null
  private pidWritten = false
  private reloading: Promise<{ ok: true } | { ok: false; error: string }> | null = null

  private readonly role: 'single' | 'worker'

  constructor(file: string, log: Logger, env: Environment, generation: Generation, ownLogger: boolean, role: 'single' | 'worker', processMetrics: boolean) {
    this.role = role
    this.file = file
    this.log = log
    this.env = env
    this.generation = generation
    this.ownLogger = ownLogger
    this.metrics = createMetrics({
      upstreams: () => this.generation.upstreams.values(),
      requestsInFlight: () => this.inFlight,
      clientConnections: () => this.sockets.size,
      now: env.now,
    }, { reloads: role === 'single', process: processMetrics })
  }

  // ── admin ─────────────────────────────────────────────────────────────────────

  async startAdmin(options: AdminOptions): Promise<void> {
    this.admin = await startAdmin(this.adminBackend(), options)
    const a = this.adminAddress()!
    this.log.notice(`admin listener on http://${listenKey(a.host, a.port)}/ (metrics at /metrics, API at /api/upstreams)`)
  }

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

  private adminBackend(): AdminBackend {
    return {
      upstreams: async () => this.upstreamViews(),
      patch: async (name, id, change) => this.patchPeer(name, id, change),
      metrics: async () => ({ contentType: this.metrics.registry.contentType, text: await this.metrics.registry.metrics() }),
      reloads: () => reloadCounts(this.metrics.registry),
      log: this.log,
    }
  }

  adminAddress(): { host: string; port: number } | null {
    const address = this.admin?.address()
    return address && typeof address === 'object' ? { host: address.address, port: address.port } : null
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
    const h2 = isHttp2(req)
    countStream(socket, res)
    const invalid = h2 ? adaptHttp2Request(req) : checkRequest(req, listener.edge)
    if (invalid !== 0) return this.refuse(req, res, invalid, 'client sent invalid request')
    const gen = this.generation
    const vars = new RequestVars(req, { scheme: listener.kind === 'plain' ? 'http' : 'https', port: listener.port })
    const found = gen.route(listener.key, vars)
    if (found !== null) {
      const { edge } = found.route.settings
      if (edge.realIp.from.length !== 0) vars.realAddr = realAddress(vars.remoteAddr, edge.realIp, req)
      if (accessDenied(edge.access, vars.remoteAddr)) {
        return this.refuse(req, res, 403, `access forbidden by rule, client: ${vars.remoteAddr}, server: ${vars.serverName}, request: "${req.method} ${req.url} HTTP/${req.httpVersion}"`)
      }
      if (edge.keepaliveTimeout === 0) res.shouldKeepAlive = false
    }
    if (found === null || found.route.target === null) {
      // No proxy_pass here: nginx would look for a file under `root`; switchyard serves none.
      if (this.closing) res.shouldKeepAlive = false
      const bytes = sendErrorPage(res, 404, req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)
      const log = found?.route.settings.accessLog ?? null
      if (log !== null) this.accessLogs.write(log.path, accessLine(log, vars, 404, bytes, 0, []))
      return
    }
    armBodyTimeout(req, found.route.settings.edge.clientBodyTimeout)
    gen.enter()
    this.inFlight++
    new Exchange(this.context(gen), found.route.target, req, res, vars).start()
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
    const gen = this.generation
    const vars = new RequestVars(req, { scheme: listener.kind === 'plain' ? 'http' : 'https', port: listener.port })
    const found = gen.route(listener.key, vars)
    const target = found?.route.target ?? null
    if (target === null || !target.canUpgrade || this.closing) {
      // Not configured for upgrades: nginx proxies such a request as a plain one (the
      // Upgrade header is hop-by-hop and dropped). Node handed us the socket, so answer
      // on it with a response object of our own, then close.
      const res = new ServerResponse(req)
      res.assignSocket(socket as Socket)
      res.shouldKeepAlive = false
      res.on('finish', () => socket.end())
      if (target === null) {
        sendErrorPage(res, 404, true)
        return
      }
      gen.enter()
      this.inFlight++
      new Exchange(this.context(gen), target, req, res, vars).start()
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
      const kind = this.listeners.get(key)?.kind
      // One socket serves an address across reloads; its server cannot change protocol.
      if (kind !== undefined && kind !== slot.kind) throw new Error(`the listen ${key} changes from ${kind} to ${slot.kind}, which needs a restart of switchyard`)
    }
    try {
      for (const [key, slot] of gen.listeners) {
        if (this.listeners.has(key)) continue
        const listener = await this.listen(key, slot)
        opened.push(listener)
      }
    } catch (err) {
      await Promise.all(opened.map((l) => closeServer(l.server)))
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
    const listener: Listener = { key, server, port, edge: DEFAULT_EDGE, kind, tls }
    // Requests are counted on the socket they arrive on: the TLS one, not the TCP one.
    server.on(tls === null ? 'connection' : 'secureConnection', (socket: Socket | TLSSocket) => {
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
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`bind() to ${key} failed (${err.code ?? err.message})`))
      })
      server.listen({ host, port, backlog: 511 }, () => {
        const address = server.address()
        if (address !== null && typeof address === 'object') listener.port = address.port
        server.removeAllListeners('error')
        server.on('error', (err) => this.log.error(`listener ${key}: ${err.message}`))
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
    try {
      const config = await loadConfig(this.file)
      gen = watchPeers(new Generation(config, this.generation), this.log)
      await this.bindListeners(gen)
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
    this.applyEdges(gen)
    gen.startHealthChecks()
    this.metrics.reload('ok')
    if (this.ownLogger) this.log.configure(gen.config.main.errorLog.path, gen.config.main.errorLog.level)
    for (const [key, l] of this.listeners) {
      if (!gen.listeners.has(key)) {
        this.listeners.delete(key)
        void closeServer(l.server)
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
    const closed = [...this.listeners.values()].map((l) => stopAccepting(l.server))
    await this.drainConnections()
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve))
    await Promise.all(closed)
    await this.generation.retire()
    await this.closeAdmin()
    await this.accessLogs.close()
    await this.removePid()
    this.log.notice('exiting')
  }

  async stop(): Promise<void> {
    this.closing = true
    for (const t of this.tunnels) t.destroy()
    const closed = [...this.listeners.values()].map((l) => closeServer(l.server))
    for (const l of this.listeners.values()) l.server.closeAllConnections?.()
    for (const socket of this.sockets) socket.destroy()
    await Promise.all(closed)
    await this.generation.destroy()
    await this.closeAdmin()
    await this.accessLogs.close()
    await this.removePid()
  }

  private async closeAdmin(): Promise<void> {
    if (this.admin === null) return
    this.admin.closeAllConnections()
    await closeServer(this.admin)
    this.admin = null
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
function stopAccepting(server: Server): Promise<void> {
  return new Promise((resolve) => NetServer.prototype.close.call(server, () => resolve()))
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
