// The per-request facts that variables, policies and logs read. Addresses are looked up
// only when something asks for them (most configs never do on the hot path).
import type { IncomingMessage } from 'node:http'
import type { RequestVariables } from '../config/variables.js'

/** What the listening socket knows about itself. */
export interface ListenerInfo {
  readonly scheme: 'http' | 'https'
  readonly port: number
}

export class RequestVars implements RequestVariables {
  readonly req: IncomingMessage
  readonly scheme: string
  readonly serverPort: number
  serverName = ''
  proxyHost = ''
  readonly path: string
  readonly args: string

  constructor(req: IncomingMessage, listener: ListenerInfo) {
    this.req = req
    this.serverPort = listener.port
    this.scheme = listener.scheme
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    this.path = q === -1 ? url : url.slice(0, q)
    this.args = q === -1 ? '' : url.slice(q + 1)
  }

  get remoteAddr(): string {
    return plainAddress(this.req.socket.remoteAddress)
  }

  get remotePort(): number {
    return this.req.socket.remotePort ?? 0
  }

  get serverAddr(): string {
    return plainAddress(this.req.socket.localAddress)
  }
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is `127.0.0.1` to nginx. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return ''
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
