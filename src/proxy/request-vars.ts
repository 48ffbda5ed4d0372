// The per-request facts that variables, policies and logs read. Addresses are looked up
// only when something asks for them (most configs never do on the hot path).
import type { IncomingMessage } from 'node:http'
import type { LogVariables, UpstreamTry } from '../config/log-format.js'
import type { RequestVariables } from '../config/variables.js'
import { proxiedConnection } from './proxy-protocol.js'

/** What the listening socket knows about itself. */
export interface ListenerInfo {
  readonly scheme: 'http' | 'https'
  readonly port: number
}

export class RequestVars implements RequestVariables, LogVariables {
  readonly req: IncomingMessage
  readonly scheme: string
  readonly serverPort: number
  serverName = ''
  proxyHost = ''
  readonly path: string
  readonly args: string
  // What an access log line adds once the request is over (see `finished`).
  status = 0
  bodyBytesSent = 0
  requestTime = 0
  ended = 0
  tries: readonly UpstreamTry[] = noTries

  constructor(req: IncomingMessage, listener: ListenerInfo) {
    this.req = req
    this.serverPort = listener.port
    this.scheme = listener.scheme
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    this.path = q === -1 ? url : url.slice(0, q)
    this.args = q === -1 ? '' : url.slice(q + 1)
  }

  /** Record how the request ended, for `$status`, `$body_bytes_sent`, `$request_time`,
   *  the times and `$upstream_*`. */
  finished(status: number, bodyBytesSent: number, requestTime: number, tries: readonly UpstreamTry[]): this {
    this.status = status
    this.bodyBytesSent = bodyBytesSent
    this.requestTime = requestTime
    this.ended = Date.now()
    this.tries = tries
    return this
  }

  /** `$limit_req_status`, `$limit_conn_status`: PASSED, DELAYED, REJECTED, … ('' until
   *  a limit with a non-empty key has looked at the request). */
  limitReqStatus = ''
  limitConnStatus = ''

  /** The client address from `real_ip_header`, when a trusted peer sent one. */
  realAddr: string | null = null

  get remoteAddr(): string {
    return this.realAddr ?? plainAddress(this.req.socket.remoteAddress ?? proxiedConnection(this.req.socket)?.peerAddress)
  }

  get remotePort(): number {
    return this.req.socket.remotePort ?? proxiedConnection(this.req.socket)?.peerPort ?? 0
  }

  get serverAddr(): string {
    return plainAddress(this.req.socket.localAddress ?? proxiedConnection(this.req.socket)?.localAddress)
  }

  /** `$proxy_protocol_addr` / `$proxy_protocol_port` (see proxy-protocol.ts). */
  get proxyProtocol(): { addr: string; port: number } | null {
    const header = proxiedConnection(this.req.socket)?.header
    return header == null ? null : { addr: header.srcAddr, port: header.srcPort }
  }
}

const noTries: readonly UpstreamTry[] = []

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is `127.0.0.1` to nginx. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return ''
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
