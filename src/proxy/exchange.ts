// The request path, top to bottom: pick a peer → forward through its pool → classify
// what came back → try another peer or answer. One Exchange per proxied request; one
// Attempt per peer tried. Retries follow nginx's ngx_http_upstream_next: only while
// nothing has gone to the client, never to a peer already tried, within
// proxy_next_upstream_tries/_timeout, and never for a POST/PATCH/LOCK that reached a
// peer unless `non_idempotent` is listed.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Outcome } from '../balancer/policy.js'
import type { Logger } from '../log.js'
import type { Peer } from '../upstream/peer.js'
import type { PeerClient } from '../upstream/peer-pool.js'
import type { RequestQueue } from '../upstream/queue.js'
import { Selection, type Environment } from '../upstream/upstream.js'
import {
  classifyError, classifyStatus, countsAsPeerFailure, isNonIdempotent, listedInNextUpstream, type Failure,
} from './classify.js'
import type { UpstreamTry } from '../config/log-format.js'
import { accessLine } from './access-log.js'
import { upstreamFramingError } from './edge.js'
import { sendErrorPage } from './error-page.js'
import { responseHeaders } from './headers.js'
import { BAD_BODY, BodyTooLargeError, RequestBody, type AttemptBody } from './request-body.js'
import type { RequestVars } from './request-vars.js'
import type { ProxyTarget } from './target.js'

/** Resends after a reused connection turned out closed, per request. A resend goes out
 *  on a new connection, which cannot be stale, so one is all a request normally needs. */
const MAX_STALE_RESENDS = 2

/** What an exchange needs from the running process. */
export interface ProxyContext {
  readonly env: Environment
  readonly log: Logger
  /** True while shutting down: responses close their client connection. */
  readonly closing: boolean
  /** Called once when the exchange is completely over. */
  exchangeDone(): void
  /** Append a line to an access log file. */
  accessLog(path: string, line: string): void
}

/** Bytes the client says it will send, or -1 for none/unknown (chunked). */
function declaredLength(req: IncomingMessage): number {
  const cl = req.headers['content-length']
  return cl === undefined ? -1 : Number(cl)
}

export class Exchange {
  private readonly ctx: ProxyContext
  private readonly target: ProxyTarget
  private readonly req: IncomingMessage
  private readonly res: ServerResponse
  private readonly vars: RequestVars
  private readonly selection: Selection
  private readonly startedAt: number
  private readonly hasBody: boolean
  private body: RequestBody | null = null
  private headers: string[] = []
  private path = ''
  private triesLeft: number
  private attempt: Attempt | null = null
  private failure: Failure | null = null
  private over = false
  /** Counted among the upstream's active requests (its retry budget). */
  private counted = false
  /** Holds a retry slot of the budget (made its first retry). */
  private retried = false
  /** Times the request went out again after a reused connection was found closed. */
  private staleResends = 0
  /** Seconds the request waited in the upstream's queue, for the next attempt's log entry. */
  private queueTime = 0
  /** Waiting in the upstream's queue: the way out. */
  private leaveQueue: (() => void) | null = null
  /** Response body bytes sent to the client (`$body_bytes_sent`). */
  private bytesSent = 0
  /** With an access log that asks for them: every attempt, for `$upstream_*`, and when
   *  the request began, for `$request_time`. */
  private readonly tries: Attempt[] | null
  private readonly began: number

  constructor(ctx: ProxyContext, target: ProxyTarget, req: IncomingMessage, res: ServerResponse, vars: RequestVars) {
    this.ctx = ctx
    this.target = target
    this.req = req
    this.res = res
    this.vars = vars
    this.selection = new Selection(ctx.env, vars)
    this.startedAt = this.selection.now
    const cl = declaredLength(req)
    this.hasBody = cl > 0 || req.headers['transfer-encoding'] !== undefined
    const limit = target.settings.proxyNextUpstreamTries
    this.triesLeft = limit === 0 ? target.upstream.maxTries : Math.min(limit, target.upstream.maxTries)
    const format = target.settings.accessLog?.format
    this.tries = format?.usesTries === true ? [] : null
    this.began = format?.usesRequestTime === true ? performance.now() : 0
  }

  start(): void {
    const { settings } = this.target
    const limit = settings.clientMaxBodySize
    if (limit !== 0 && declaredLength(this.req) > limit) {
      this.ctx.log.error(`client intended to send too large body: ${declaredLength(this.req)} bytes${this.where()}`)
      return this.answer(413, true)
    }
    this.vars.proxyHost = this.target.proxyHost
    this.headers = this.target.headers.build(this.req, this.vars, false)
    this.path = this.target.upstreamPath(this.vars)
    const buffering = settings.proxyRequestBuffering
    if (this.hasBody) {
      this.body = new RequestBody(this.req, {
        limit,
        replayLimit: buffering ? settings.clientBodyBufferSize : 0,
        sendTimeout: settings.proxySendTimeout,
      })
      this.req.once(BAD_BODY, this.onBadBody)
    }
    this.res.on('close', this.onClientClose)
    this.target.upstream.retryBudget.requestStarted()
    this.counted = true
    // proxy_request_buffering on: the body (up to client_body_buffer_size) is read before
    // a server is picked, so it can go to another server if the first one fails.
    if (this.body !== null && buffering) {
      void this.body.preload(settings.clientBodyBufferSize).then((err) => this.bodyRead(err))
      return
    }
    this.next()
  }

  private bodyRead(err: Error | null): void {
    if (this.over) return
    if (err instanceof BodyTooLargeError) {
      this.ctx.log.error(`client intended to send too large chunked body${this.where()}`)
      return this.answer(413, true)
    }
    if (err !== null) return this.cut()
    this.next()
  }

  // ── pick → forward ────────────────────────────────────────────────────────────

  private next(): void {
    const timeout = this.target.settings.proxyNextUpstreamTimeout
    // The first pick uses the clock read when the exchange began.
    if (this.selection.attempt !== 0) this.selection.tick()
    if (this.triesLeft <= 0 || (timeout !== 0 && this.selection.now - this.startedAt >= timeout)) {
      return this.giveUp()
    }
    const { upstream } = this.target
    const peer = upstream.select(this.selection)
    if (peer === undefined) {
      // NGINX Plus queues only a request's first pick; a retry with nothing left gives up.
      if (upstream.queue !== null && this.selection.attempt === 0) return this.enqueue(upstream.queue)
      this.ctx.log.error(`no live upstreams while connecting to upstream${this.where()}`)
      return this.giveUp()
    }
    this.forward(peer)
  }

  /** Wait in the upstream's queue for a peer; a full queue or the timeout → 503 (the
   *  server is busy, not broken; NGINX Plus answers 502 here). */
  private enqueue(queue: RequestQueue): void {
    const stats = this.target.upstream.stats
    const queuedAt = performance.now()
    const leave = queue.enqueue(this.selection, (peer) => {
      this.leaveQueue = null
      this.queueTime = (performance.now() - queuedAt) / 1000
      this.forward(peer)
    }, () => {
      this.leaveQueue = null
      stats.queueTimeouts++
      this.ctx.log.error(`upstream queue timed out while connecting to upstream${this.where()}`)
      this.answer(503, this.hasBody)
    })
    if (leave === null) {
      stats.queueOverflows++
      this.ctx.log.error(`upstream queue is full while connecting to upstream${this.where()}`)
      return this.answer(503, this.hasBody)
    }
    stats.queued++
    this.leaveQueue = leave
  }

  /** Send the request to `peer`, through its pool, or on `client` (a connection of that
   *  pool, for a resend that must go out on a new connection). */
  private forward(peer: Peer, client?: PeerClient): void {
    const body = this.body === null ? null : this.body.reader()
    const attempt = new Attempt(this, peer, body, this.selection.now, this.tries !== null)
    attempt.queueTime = this.queueTime
    this.queueTime = 0
    this.attempt = attempt
    this.tries?.push(attempt)
    const read = this.target.settings.proxyReadTimeout
    const dispatcher = client !== undefined && client.usable ? client : this.target.pools[peer.id]!
    dispatcher.dispatch({
      path: this.path,
      method: this.req.method ?? 'GET',
      headers: this.headers,
      body,
      headersTimeout: read,
      bodyTimeout: read,
      ...(this.target.closeAfterEach ? { reset: true } : {}),
    }, attempt)
  }

  // ── classify ──────────────────────────────────────────────────────────────────

  /** The upstream answered. A status listed in proxy_next_upstream moves on while
   *  tries remain; anything else is committed to the client. */
  onResponseHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void): boolean {
    if (attempt !== this.attempt || this.over) return false
    const framing = upstreamFramingError(raw)
    if (framing !== null) {
      // Aborting a response in progress makes undici destroy the connection.
      const err = Object.assign(new Error(framing), { code: 'HPE_UNEXPECTED_CONTENT_LENGTH' })
      attempt.abort(err)
      this.onAttemptError(attempt, err)
      return false
    }
    const at = performance.now()
    attempt.peer.stats.response(status, (at - attempt.startedAt) / 1000)
    attempt.status = status
    attempt.headerAt = at
    const failure = classifyStatus(status, this.target.settings.proxyNextUpstream)
    if (failure !== null && this.triesLeft > 1 && this.mayMoveOn(failure) && this.withinBudget(attempt.peer)) {
      this.attemptFailed(attempt, failure)
      attempt.abort(new Error('moving to the next upstream'))
      this.target.upstream.stats.retry(`http_${status}`)
      this.next()
      return false
    }
    if (this.failure !== null) this.target.upstream.stats.failovers++
    // The last try's listed status still counts against the peer (nginx marks it failed).
    attempt.failed = failure !== null && countsAsPeerFailure(failure)
    attempt.responded = true
    attempt.resume = resume
    const headers = responseHeaders(raw)
    // nginx's NOTIFY_HEADER: least_time learns the header time, sticky adds its cookie.
    this.selection.tick()
    attempt.headerTime = this.selection.now - attempt.dispatchedAt
    const added = this.target.upstream.responded(attempt.peer, attempt.headerTime, this.selection)
    if (added !== undefined) headers.unshift(...added)
    headers.push('server', 'switchyard')
    if (this.ctx.closing) this.res.shouldKeepAlive = false
    this.res.writeHead(status, headers)
    return true
  }

  onResponseData(chunk: Buffer): boolean {
    this.bytesSent += chunk.length
    if (this.res.write(chunk)) return true
    this.res.once('drain', this.onDrain)
    // send_timeout: the client must take some of the response within this time, or the
    // connection is closed (the upstream request is aborted through onClientClose).
    const ms = this.target.settings.edge.sendTimeout
    if (ms > 0) this.sendTimer = setTimeout(this.onSendTimeout, ms)
    return false
  }

  private sendTimer: NodeJS.Timeout | null = null

  private readonly onSendTimeout = (): void => {
    this.sendTimer = null
    if (this.over) return
    this.ctx.log.info(`client timed out (send_timeout) while sending response to client${this.where()}`)
    this.res.destroy()
  }

  onResponseEnd(attempt: Attempt): void {
    if (attempt !== this.attempt || this.over) return
    this.release(attempt, attempt.failed)
    if (this.over) return
    this.res.end()
    this.finish()
  }

  onAttemptError(attempt: Attempt, err: Error): void {
    if (attempt !== this.attempt || attempt.released || this.over) return
    // The client went away (its upload broke off): not the upstream's fault, whatever
    // the upstream had answered so far.
    if ((err as { code?: string }).code === 'SY_CLIENT_ABORTED') {
      this.release(attempt, false)
      return this.cut()
    }
    if (attempt.responded) {
      // Bytes already went to the client: nothing can be retried, and a cut response
      // must stay visibly cut, so the client connection is closed, never padded.
      this.ctx.log.error(`upstream prematurely closed connection while reading upstream (${(err as { code?: string }).code ?? err.message})${this.where(attempt.peer)}`)
      this.release(attempt, false)
      return this.cut()
    }
    if (err instanceof BodyTooLargeError) {
      this.ctx.log.error(`client intended to send too large chunked body${this.where()}`)
      this.release(attempt, false)
      return this.answer(413, true)
    }
    const classified = classifyError(err)
    // undici writes the request right after onConnect: without it nothing went out.
    const failure = attempt.written ? classified : { ...classified, beforeSend: true }
    if (attempt.staleConnection(failure)) return this.staleConnectionFailed(attempt, failure, err)
    attempt.peer.stats.failure(failure.type)
    this.attemptFailed(attempt, failure)
    if (this.triesLeft > 0 && this.mayMoveOn(failure) && this.withinBudget(attempt.peer)) {
      this.target.upstream.stats.retry(failure.type)
      return this.next()
    }
    this.giveUp()
  }

  /** A connection reused from the pool was closed by the peer before any of the answer
   *  came: the peer most likely closed it while it sat idle (its keep-alive timeout, a
   *  restart), so the peer is not blamed (no max_fails, no try of
   *  proxy_next_upstream_tries, no retry budget; nginx also keeps the try, but counts
   *  the failure). The request goes out again on a new connection to the same peer when
   *  it could go to another peer (an idempotent method, or `non_idempotent`, and a body
   *  that can be sent again); otherwise 502. Whether the peer read the request before
   *  closing cannot be known, so a POST is never sent twice by this path. */
  private staleConnectionFailed(attempt: Attempt, failure: Failure, err: Error): void {
    const code = (err as { code?: string }).code ?? err.message
    attempt.status = failure.status
    if (this.staleResends < MAX_STALE_RESENDS && this.mayMoveOn(failure)) {
      this.staleResends++
      // Released without telling the upstream: the peer keeps its slot for the resend.
      attempt.released = true
      if (attempt.timed) attempt.endedAt = performance.now()
      this.ctx.log.warn(`upstream closed a kept-alive connection before answering (${code}), sending the request again on a new connection${this.where(attempt.peer)}`)
      this.target.upstream.stats.retry('stale_connection')
      return this.forward(attempt.peer, attempt.client ?? undefined)
    }
    this.failure = failure
    this.ctx.log.error(`upstream closed a kept-alive connection before answering (${code}) while sending request to upstream, not sent again${this.where(attempt.peer)}`)
    this.release(attempt, false)
    this.giveUp()
  }

  // ── retry rules ───────────────────────────────────────────────────────────────

  private mayMoveOn(failure: Failure): boolean {
    const { settings } = this.target
    const rules = settings.proxyNextUpstream
    if (!listedInNextUpstream(failure, rules)) return false
    // A streamed body that is partly gone (and too large to have been kept) cannot be sent again.
    if (this.body !== null && !this.body.resendable) return false
    if (!failure.beforeSend && !rules.nonIdempotent && isNonIdempotent(this.req.method ?? 'GET')) return false
    const timeout = settings.proxyNextUpstreamTimeout
    return timeout === 0 || this.ctx.env.now() - this.startedAt < timeout
  }

  /** retry_budget: the first retry of a request takes a slot while the upstream has one;
   *  over budget the request ends as its last try would have. */
  private withinBudget(failed: Peer): boolean {
    if (this.retried) return true
    // A peer health has taken out (max_fails, active check, down, draining) gets no new
    // first tries, so moving its last requests elsewhere cannot keep doubling the load:
    // free, and a peer dying under load costs no request (issue 4's chaos tests).
    if (failed.unavailableReasons(this.ctx.env.now()).some((r) => r !== 'max_conns')) return true
    const { upstream } = this.target
    if (upstream.retryBudget.tryRetry()) {
      this.retried = true
      return true
    }
    upstream.stats.retryBudgetExhausted++
    this.ctx.log.warn(`retry budget exhausted (${upstream.retryBudget.retrying} of ${upstream.retryBudget.limit()} retries in flight), not retrying${this.where()}`)
    return false
  }

  private attemptFailed(attempt: Attempt, failure: Failure): void {
    this.failure = failure
    if (failure.type !== 'http_status') attempt.status = failure.status
    this.triesLeft--
    // nginx stops at the first failure of a one-server upstream (nothing else to try).
    if (!attempt.peer.countsFailures) this.triesLeft = 0
    this.ctx.log.error(`${failure.message} while ${failure.during ?? 'connecting to upstream'}${this.where(attempt.peer)}`)
    this.release(attempt, countsAsPeerFailure(failure), failure.message)
  }

  /** No (more) peers: answer 502, or 504 when the last try timed out. */
  private giveUp(): void {
    const status = this.failure?.status ?? 502
    this.answer(status, this.hasBody)
  }

  // ── bookkeeping ───────────────────────────────────────────────────────────────

  private release(attempt: Attempt, failed: boolean, reason = ''): void {
    if (attempt.released) return
    attempt.released = true
    attempt.failed = failed
    if (attempt.timed) attempt.endedAt = performance.now()
    const now = this.ctx.env.now()
    attempt.responseTime = now - attempt.dispatchedAt
    this.target.upstream.release(attempt.peer, failed, now, reason, attempt)
  }

  /** End the exchange with switchyard's own error page. */
  private answer(status: number, close: boolean): void {
    if (this.over) return
    this.bytesSent = sendErrorPage(this.res, status, close)
    this.finish()
  }

  /** End the exchange by closing the client connection (a response that cannot complete). */
  private cut(): void {
    if (this.over) return
    this.res.destroy()
    this.finish()
  }

  /** The exchange is over (the response is written): log and account, once. */
  private finish(): void {
    if (this.over) return
    this.over = true
    this.res.off('close', this.onClientClose)
    this.settle()
    this.logAccess(this.res.statusCode)
    this.ctx.exchangeDone()
  }

  /** Leave the queue and the retry budget's counts. */
  private settle(): void {
    this.leaveQueue?.()
    this.leaveQueue = null
    if (!this.counted) return
    this.counted = false
    this.target.upstream.retryBudget.requestEnded(this.retried)
  }

  private logAccess(status: number): void {
    const log = this.target.settings.accessLog
    if (log === null) return
    const tries = this.tries === null ? [] : this.tries.map((a) => a.try())
    const requestTime = log.format.usesRequestTime ? (performance.now() - this.began) / 1000 : 0
    this.ctx.accessLog(log.path, accessLine(log, this.vars, status, this.bytesSent, requestTime, tries))
  }

  /** The parser refused the rest of the body: answer `status` (or, once the upstream's
   *  answer has begun, cut it), then stop the upstream request. The exchange is over
   *  first, so the abort's synchronous error report finds nothing to do. */
  private readonly onBadBody = (status: number): void => {
    if (this.over) return
    this.ctx.log.info(`client sent invalid request body${this.where()}`)
    const attempt = this.attempt
    if (attempt?.responded) this.cut()
    else this.answer(status, true)
    if (attempt !== null) {
      attempt.abort(Object.assign(new Error('client sent invalid request body'), { code: 'SY_CLIENT_ABORTED' }))
      this.release(attempt, false)
    }
  }

  private readonly onDrain = (): void => {
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer)
      this.sendTimer = null
    }
    this.attempt?.resume?.()
  }

  /** The client went away before the response was complete: stop the upstream request
   *  (nginx's 499); the peer is not blamed. */
  private readonly onClientClose = (): void => {
    if (this.over) return
    // Over before the abort: undici reports an abort synchronously through onError, which
    // would otherwise end this exchange a second time (counted out twice, logged twice).
    this.over = true
    const attempt = this.attempt
    if (attempt !== null) {
      attempt.abort(Object.assign(new Error('client closed connection'), { code: 'SY_CLIENT_ABORTED' }))
      this.release(attempt, false)
    }
    this.settle()
    // nginx's 499: the client closed the connection before the response was complete.
    this.logAccess(499)
    this.ctx.exchangeDone()
  }

  private where(peer?: Peer): string {
    const upstream = peer ? `, upstream: "http://${peer.address}${this.path}"` : ''
    const host = this.req.headers.host ? `, host: "${this.req.headers.host}"` : ''
    return `, client: ${this.vars.remoteAddr}, server: ${this.vars.serverName}, request: "${this.req.method} ${this.req.url} HTTP/${this.req.httpVersion}"${upstream}${host}`
  }
}

/** One try on one peer: undici's dispatch handler, forwarding every event to the exchange.
 *  Its timings are the Outcome the policy hears about when it ends. */
export class Attempt implements Outcome {
  readonly exchange: Exchange
  readonly peer: Peer
  readonly body: AttemptBody | null
  /** Response headers went to the client: the exchange is committed to this attempt. */
  responded = false
  /** Whether to count the attempt as a peer failure when it ends. */
  failed = false
  released = false
  resume: (() => void) | null = null
  /** performance.now() when the attempt was dispatched, connected, got its header, ended
   *  (-1 until then; connect and end only when `timed`, for the access log). */
  readonly startedAt = performance.now()
  connectedAt = -1
  headerAt = -1
  endedAt = -1
  /** The status the upstream answered, or the one switchyard answered for this try. */
  status = 0
  /** Seconds the request waited in the queue before this try (`$upstream_queue_time`). */
  queueTime = 0
  /** Record the timings `$upstream_*` need. */
  readonly timed: boolean
  /** The injected clock when the attempt was dispatched (nginx's `u->start_time`). */
  readonly dispatchedAt: number
  /** ms to the response header, once the response is committed to this attempt. */
  headerTime: number | undefined = undefined
  /** ms to the end of the attempt, set when it is released. */
  responseTime: number | undefined = undefined
  /** The pool's client (connection) undici gave this attempt to. */
  client: PeerClient | null = null
  /** undici started writing the request (onConnect comes right before the first byte). */
  written = false
  /** Written on a connection that had already carried a response. */
  reused = false
  private socket: { readonly bytesRead: number } | undefined = undefined
  private readAtWrite = -1
  private abortFn: ((reason?: Error) => void) | null = null
  private pendingAbort: Error | null = null

  constructor(exchange: Exchange, peer: Peer, body: AttemptBody | null, dispatchedAt: number, timed: boolean) {
    this.timed = timed
    this.exchange = exchange
    this.peer = peer
    this.body = body
    this.dispatchedAt = dispatchedAt
  }

  abort(reason: Error): void {
    if (this.abortFn !== null) this.abortFn(reason)
    else this.pendingAbort = reason
  }

  /** This try as `$upstream_addr`, `$upstream_status` and the `$upstream_*_time`s see it. */
  try(): UpstreamTry {
    const since = (t: number): number | null => (t < 0 ? null : (t - this.startedAt) / 1000)
    return { addr: this.peer.address, status: this.status || 502, connectTime: since(this.connectedAt), headerTime: since(this.headerAt), responseTime: since(this.endedAt), queueTime: this.queueTime }
  }

  /** undici's dispatch picked `client` for this attempt (PeerClient calls this). */
  onClient(client: PeerClient): void {
    this.client = client
  }

  /** Did this attempt fail on a pooled connection the peer had closed? A reused
   *  connection, a connection error (not a timeout, not a bad header), and not one byte
   *  read on it since the request was written. */
  staleConnection(failure: Failure): boolean {
    return this.reused && failure.type === 'error' && this.socket !== undefined && this.socket.bytesRead === this.readAtWrite
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.written = true
    if (this.client !== null) {
      this.reused = this.client.served > 0
      this.socket = this.client.socket
      this.readAtWrite = this.socket?.bytesRead ?? -1
    }
    if (this.timed) this.connectedAt = performance.now()
    this.abortFn = abort
    if (this.pendingAbort !== null) abort(this.pendingAbort)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    return this.exchange.onResponseHeaders(this, statusCode, rawHeaders, resume)
  }

  onData(chunk: Buffer): boolean {
    return this.exchange.onResponseData(chunk)
  }

  onComplete(): void {
    if (this.client !== null) this.client.served++
    this.exchange.onResponseEnd(this)
  }

  onError(err: Error): void {
    this.exchange.onAttemptError(this, err)
  }
}
