// Upgrade requests (WebSocket) as a raw byte tunnel: the request head goes to a peer
// over a fresh TCP connection, then bytes flow both ways untouched until either side
// closes, which closes the other. Peers are tried like any request while connecting.
import { connect, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Peer } from '../upstream/peer.js'
import { Selection } from '../upstream/upstream.js'
import type { ProxyContext } from './exchange.js'
import { rawErrorResponse } from './error-page.js'
import type { RequestVars } from './request-vars.js'
import type { ProxyTarget } from './target.js'

export class Tunnel {
  private readonly ctx: ProxyContext
  private readonly target: ProxyTarget
  private readonly req: IncomingMessage
  private readonly client: Duplex
  private readonly head: Buffer
  private readonly selection: Selection
  private requestHead = ''
  private triesLeft: number
  private upstream: Socket | null = null
  private peer: Peer | null = null
  private over = false

  constructor(ctx: ProxyContext, target: ProxyTarget, req: IncomingMessage, client: Duplex, head: Buffer, vars: RequestVars) {
    this.ctx = ctx
    this.target = target
    this.req = req
    this.client = client
    this.head = head
    this.selection = new Selection(ctx.env, vars)
    vars.proxyHost = target.proxyHost
    const headers = target.headers.build(req, vars, true)
    let text = `${req.method} ${target.upstreamPath(vars)} HTTP/1.1\r\n`
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`
    this.requestHead = text + '\r\n'
    const limit = target.settings.proxyNextUpstreamTries
    this.triesLeft = limit === 0 ? target.upstream.maxTries : Math.min(limit, target.upstream.maxTries)
    client.on('error', this.close)
    client.on('close', this.close)
    // A client that ends its side ends the tunnel, as nginx finalizes an upgraded request
    // at EOF from either side (the server socket is half-open capable, so without this a
    // backend that waits for the close would keep the tunnel, and its limit_conn slot).
    client.on('end', this.close)
  }

  start(): void {
    this.selection.tick()
    const peer = this.triesLeft > 0 ? this.target.upstream.select(this.selection) : undefined
    if (peer === undefined) {
      this.ctx.log.error(`no live upstreams while connecting to upstream (upgrade ${this.req.url})`)
      return this.fail(502)
    }
    this.peer = peer
    const socket = connect({ host: peer.server.host, port: peer.server.port })
    this.upstream = socket
    socket.setTimeout(this.target.settings.proxyConnectTimeout)
    const onConnectFailure = (timedOut: boolean, err?: Error): void => {
      socket.destroy()
      this.upstream = null
      this.triesLeft--
      this.target.upstream.release(peer, true, this.ctx.env.now(), timedOut ? 'connect timed out' : (err?.message ?? 'connect failed'))
      this.peer = null
      this.ctx.log.error(`${timedOut ? 'upstream timed out' : `connect() failed (${(err as { code?: string })?.code ?? err?.message})`} while connecting to upstream (upgrade), upstream: "${peer.address}"`)
      if (this.over) return
      if (this.triesLeft > 0 && (timedOut ? this.target.settings.proxyNextUpstream.timeout : this.target.settings.proxyNextUpstream.error)) return this.start()
      this.fail(timedOut ? 504 : 502)
    }
    const onError = (err: Error): void => onConnectFailure(false, err)
    const onTimeout = (): void => onConnectFailure(true)
    socket.once('error', onError)
    socket.once('timeout', onTimeout)
    socket.once('connect', () => {
      socket.off('error', onError)
      socket.off('timeout', onTimeout)
      socket.setTimeout(0)
      if (this.over) return this.close()
      socket.setNoDelay(true)
      socket.write(this.requestHead)
      if (this.head.length !== 0) socket.write(this.head)
      socket.pipe(this.client as NodeJS.WritableStream)
      this.client.pipe(socket)
      socket.on('error', this.close)
      socket.on('close', this.close)
    })
  }

  private fail(status: number): void {
    if (this.over) return
    this.over = true
    this.client.end(rawErrorResponse(status))
    this.ctx.exchangeDone()
  }

  /** Either side closing (or failing) ends both. */
  private readonly close = (): void => {
    if (this.over) return
    this.over = true
    this.upstream?.destroy()
    this.client.destroy()
    if (this.peer !== null) this.target.upstream.release(this.peer, false, this.ctx.env.now())
    this.ctx.exchangeDone()
  }
}
