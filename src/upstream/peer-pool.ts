// The connection pool of one peer: an undici Pool of PeerClients, keep-alive always on,
// and nginx's `keepalive N` as a cap on *idle* connections: after a burst, connections
// beyond N that sit idle are closed (their Client stays in the pool and reconnects when
// needed). undici has no idle cap of its own, so this reads three of its Client getters,
// found by their symbol descriptions; if a future undici renames them, the cap is skipped
// and idle connections still close on the keep-alive timeout.
import { Client, Pool, type Dispatcher } from 'undici'

const clientSymbol = (name: string): symbol | undefined =>
  Object.getOwnPropertySymbols(Client.prototype).find((s) => s.description === name)

const kRunning = clientSymbol('running')
const kPending = clientSymbol('pending')
const kConnected = clientSymbol('connected')
let kSocket: symbol | undefined

/** The socket an undici Client holds (an own symbol property once it has connected). */
function socketOf(client: Client): { destroy(): void } | undefined {
  kSocket ??= Object.getOwnPropertySymbols(client).find((s) => s.description === 'socket')
  return kSocket === undefined ? undefined : (client as unknown as Record<symbol, { destroy(): void } | undefined>)[kSocket]
}

/** True when the idle cap can be enforced with this undici. */
export const idleCapSupported = kRunning !== undefined && kPending !== undefined && kConnected !== undefined

/** A dispatch handler that wants to know which client (connection) carries it. */
export interface ClientAware {
  onClient?(client: PeerClient): void
}

/** One connection to the peer at a time (pipelining 1). It counts the responses finished
 *  on its current connection, so a request that fails can tell whether it was written
 *  on a fresh connection or on one reused from the pool (which the peer may have closed
 *  while it sat idle). */
export class PeerClient extends Client {
  /** Responses completed on the current connection; 0 right after connecting. */
  served = 0
  /** keepalive_time in ms (0: none) and when the current connection was made. */
  private readonly lifetime: number
  private connectedAt = 0

  constructor(origin: string | URL, options: Client.Options, lifetime = 0) {
    super(origin, options)
    this.lifetime = lifetime
    this.on('connect', () => {
      this.served = 0
      if (lifetime > 0) this.connectedAt = Date.now()
    })
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    ;(handler as ClientAware).onClient?.(this)
    // keepalive_time: a connection older than this carries one more request, which says
    // `Connection: close`, and then closes (nginx closes it after the request that finds
    // it too old). Checked here, once per request, rather than with undici's `clientTtl`,
    // which reads the clock for every client of the pool on every dispatch.
    if (this.lifetime > 0 && this.served > 0 && Date.now() - this.connectedAt >= this.lifetime) options = { ...options, reset: true }
    return super.dispatch(options, handler)
  }

  /** The connection now open, if any (for its byte counts). */
  get socket(): { readonly bytesRead: number } | undefined {
    return socketOf(this) as { readonly bytesRead: number } | undefined
  }

  /** Can a request still be given to this client directly? */
  get usable(): boolean {
    return !this.closed && !this.destroyed
  }
}

export function createPeerPool(origin: string, options: Pool.Options, keepalive: number | null, keepaliveTime = 0): Pool {
  const cap = keepalive !== null && idleCapSupported
  const clients = new Set<Client>()
  let scheduled = false
  const trim = (): void => {
    scheduled = false
    let idle = 0
    for (const client of clients) {
      // Closed by the pool (keepalive_time) or after a connect error: gone for good.
      if (client.closed || client.destroyed) {
        clients.delete(client)
        continue
      }
      const c = client as unknown as Record<symbol, number | boolean>
      if (c[kConnected!] !== true || c[kRunning!] !== 0 || c[kPending!] !== 0) continue
      if (++idle > keepalive!) socketOf(client)?.destroy()
    }
  }
  return new Pool(origin, {
    ...options,
    factory: (o, opts) => {
      const client = new PeerClient(o, opts as Client.Options, keepaliveTime)
      if (!cap) return client
      clients.add(client)
      // A drained client may be idle now; count once per turn of the event loop, after
      // the pool has handed queued requests to it.
      client.on('drain', () => {
        if (!scheduled) {
          scheduled = true
          setImmediate(trim)
        }
      })
      client.on('connectionError', () => clients.delete(client))
      return client
    },
  })
}
