// The edge settings that belong to a listening socket rather than to a request:
// nginx reads client_header_timeout, keepalive_timeout and large_client_header_buffers
// from the default server of the address before it knows the Host. Listeners outlive a
// reload, so these are applied again to each one whenever a generation is swapped in.
import type { Server } from 'node:http'
import { DEFAULT_EDGE } from '../config/edge.js'
import type { Config, EdgeSettings } from '../config/model.js'
import { listenKey } from './generation.js'

/** How often Node looks for connections past client_header_timeout (Node's default is
 *  30 s, which would let a slowloris hold a connection up to 30 s longer). */
export const CHECK_INTERVAL = 1000

/** nginx's client_header_buffer_size (1k), which comes before the large buffers. */
const FIRST_BUFFER = 1024

/** The default server's edge settings for every listen address of `config`. */
export function listenerEdges(config: Config): Map<string, EdgeSettings> {
  const out = new Map<string, EdgeSettings>()
  const explicit = new Set<string>()
  for (const server of config.http.servers) {
    for (const l of server.listen) {
      const key = listenKey(l.host, l.port)
      if (l.defaultServer && !explicit.has(key)) {
        explicit.add(key)
        out.set(key, server.settings.edge)
      } else if (!out.has(key)) out.set(key, server.settings.edge)
    }
  }
  return out
}

/** Put a listener's limits on its Node server; they apply to connections accepted from
 *  now on (maxHeaderSize) or at the next check (timeouts). */
export function applyListenerEdge(server: Server, edge: EdgeSettings = DEFAULT_EDGE): void {
  // Node's 0 would mean "no limit"; nginx's 0 for these is an immediate timeout, which
  // nobody configures on purpose; 1 ms keeps the meaning.
  server.headersTimeout = Math.max(1, edge.clientHeaderTimeout)
  // keepalive_timeout 0 turns keep-alive off: every response then says `Connection: close`
  // (handleRequest), so Node's idle timer is never reached.
  server.keepAliveTimeout = Math.max(1, edge.keepaliveTimeout)
  ;(server as Server & { maxHeaderSize?: number }).maxHeaderSize = FIRST_BUFFER + edge.largeClientHeaderBuffers.number * edge.largeClientHeaderBuffers.size
}
