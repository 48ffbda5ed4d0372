// The per-request facts that variables, policies and logs read.
import type { IncomingMessage } from 'node:http'
import type { RequestVariables } from '../config/variables.js'

/** What the listening socket knows about itself. */
export interface ListenerInfo {
  readonly scheme: 'http' | 'https'
  readonly port: number
}

export class RequestVars implements RequestVariables {
  readonly req: IncomingMessage
  readonly remoteAddr: string
  readonly remotePort: number
  readonly scheme: string
  readonly serverAddr: string
  readonly serverPort: number
  serverName = ''
  proxyHost = ''
  readonly path: string
  readonly args: string

  constructor(req: IncomingMessage, listener: ListenerInfo) {
    this.req = req
    const socket = req.socket
    this.remoteAddr = plainAddress(socket.remoteAddress)
    this.remotePort = socket.remotePort ?? 0
    this.serverAddr = plainAddress(socket.localAddress)
    this.serverPort = listener.port
    this.scheme = listener.scheme
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    this.path = q === -1 ? url : url.slice(0, q)
    this.args = q === -1 ? '' : url.slice(q + 1)
  }
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is `127.0.0.1` to nginx. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return ''
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
