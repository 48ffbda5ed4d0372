// The admin listener over a process's life, on a thread of its own (thread.ts). `--admin`
// fixes it at start; without the flag the config's `admin_listen` is followed across
// reloads: a new address is bound before the old one closes (a reload whose address
// cannot be bound fails and changes nothing),
// a token-only change re-opens the same address so the next request and the dashboard's
// next connection see the new token, and removing the directive closes the listener.
import type { AdminListen } from '../config/model.js'
import type { Logger } from '../log.js'
import { listenKey } from '../runtime/generation.js'
import type { AdminBackend, AdminOptions } from './server.js'
import { AdminThread } from './thread.js'

const same = (a: AdminOptions | null, b: AdminOptions | null): boolean =>
  a === b || (a !== null && b !== null && a.host === b.host && a.port === b.port && a.token === b.token)

const sameAddress = (a: AdminOptions, b: AdminOptions): boolean => a.host === b.host && a.port === b.port

export class AdminEndpoint {
  private readonly backend: AdminBackend
  private readonly log: Logger
  /** From the command line: wins over the config, never changes. */
  private readonly fixed: AdminOptions | null
  private server: AdminThread | null = null
  private options: AdminOptions | null = null

  constructor(backend: AdminBackend, log: Logger, fixed: AdminOptions | null) {
    this.backend = backend
    this.log = log
    this.fixed = fixed
  }

  /** Open, move or close the listener as `configured` (the config's `admin_listen`) asks.
   *  Throws the bind error and leaves the current listener as it was. */
  async apply(configured: AdminListen | null): Promise<void> {
    const wanted = this.fixed ?? (configured === null ? null : { ...configured })
    if (same(wanted, this.options)) return
    const old = this.server
    const oldOptions = this.options
    if (wanted === null) {
      this.server = this.options = null
      if (old !== null) await old.close()
      this.log.notice('admin listener closed')
      return
    }
    // The same address cannot be bound twice: a token-only change closes first.
    if (old !== null && oldOptions !== null && sameAddress(oldOptions, wanted)) {
      this.server = null
      await old.close()
      try {
        this.server = await AdminThread.start(this.backend, wanted)
      } catch (err) {
        this.options = null
        throw err
      }
    } else {
      this.server = await AdminThread.start(this.backend, wanted)
      if (old !== null) await old.close()
    }
    this.options = wanted
    const a = this.address()!
    this.log.notice(`admin listener on http://${listenKey(a.host, a.port)}/ (metrics at /metrics, API at /api/upstreams${wanted.token !== undefined ? ', changes need the token' : ''})`)
  }

  address(): { host: string; port: number } | null {
    return this.server?.address() ?? null
  }

  async close(): Promise<void> {
    const server = this.server
    this.server = this.options = null
    if (server !== null) await server.close()
  }
}
