// The certificates a TLS listener serves under one config generation. SNI picks the
// server block by server_name (nginx's ngx_http_ssl_servername); a name that matches no
// block, a block without a certificate, or a client that sends no SNI gets the default
// server's certificate. A reload swaps in a new ListenerTls and the default context
// (Server#setSecureContext), so the listening socket and open connections stay.
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import type { ServerTls } from '../config/model.js'
import { secureContextOptions } from '../config/tls.js'
import type { ListenSlot } from './generation.js'

/** One secure context per server block's settings, shared by all its addresses. */
const contexts = new WeakMap<ServerTls, SecureContext>()

function contextOf(tls: ServerTls): SecureContext {
  let ctx = contexts.get(tls)
  if (ctx === undefined) contexts.set(tls, (ctx = createSecureContext(secureContextOptions(tls))))
  return ctx
}

export class ListenerTls {
  private readonly slot: ListenSlot
  /** The default context's options: the default server's, or failing that (it has no
   *  certificate) the first block's on the address that has one. */
  readonly defaultOptions: SecureContextOptions

  constructor(slot: ListenSlot) {
    this.slot = slot
    const block = slot.blocks.find((b) => b.config.tls.certificate !== null)
    // build.ts refuses an `ssl` listen without a certificate, so one block has one.
    if (block === undefined) throw new Error(`no "ssl_certificate" for the listen ${slot.host}:${slot.port} in the config model`)
    this.defaultOptions = secureContextOptions(block.config.tls)
  }

  /** Node's SNICallback: undefined keeps the default context. */
  select(servername: string): SecureContext | undefined {
    if (this.slot.blocks.length === 1) return undefined
    const tls = this.slot.servers.select(servername).config.tls
    return tls.certificate === null ? undefined : contextOf(tls)
  }
}
