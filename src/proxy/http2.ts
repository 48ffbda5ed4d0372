// HTTP/2 requests from clients (node:http2's compatibility API) made to look like the
// HTTP/1.1 requests the proxy path expects; the upstream side stays HTTP/1.1.
import type { IncomingMessage } from 'node:http'
import { constants, type Http2ServerRequest } from 'node:http2'
import type { EdgeSettings } from '../config/model.js'

/** True for a request that came over HTTP/2 (node:http2's Http2ServerRequest). An
 *  HTTP/1 request line that says `HTTP/2.0` also has httpVersionMajor 2, and is refused. */
export function isHttp2(req: IncomingMessage): boolean {
  return (req as unknown as { stream?: unknown }).stream !== undefined
}

/** The request broke a limit that ends the whole connection (see adaptHttp2Request). */
export const CONNECTION_ERROR = -1

/** 0 when the request may go on, else the status to answer its stream with, or
 *  CONNECTION_ERROR when the session has been ended. */
export function adaptHttp2Request(req: IncomingMessage, edge: EdgeSettings): number {
  const stream = (req as unknown as Http2ServerRequest).stream
  const headers = req.headers
  // large_client_header_buffers as nginx (≥ 1.19.7) applies it to HTTP/2: one field name
  // or value longer than SIZE ("client sent too large header field"), or all names and
  // values together longer than NUMBER × SIZE ("client sent too large header"), is a
  // connection error: GOAWAY with ENHANCE_YOUR_CALM, every stream of the session ends.
  const { number, size } = edge.largeClientHeaderBuffers
  let left = number * size
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.length
    const value = raw[i + 1]!.length
    left -= name + value
    if (name > size || value > size || left < 0) {
      stream.session?.destroy(undefined, constants.NGHTTP2_ENHANCE_YOUR_CALM)
      return CONNECTION_ERROR
    }
  }
  // CONNECT has no :path (RFC 9113 §8.5); nginx answers it 405 too.
  if (req.method === 'CONNECT') return 405
  // :authority stands for Host (RFC 9113 §8.3.1); a client may send Host instead.
  if (headers.host === undefined) {
    const authority = headers[':authority']
    if (typeof authority !== 'string' || authority === '') return 400
    headers.host = authority
  }
  // DATA frames carry a body without Content-Length. The proxy path knows a body by
  // its framing headers; Transfer-Encoding is hop-by-hop, so it is never forwarded, and
  // the body goes upstream chunked.
  if (headers['content-length'] === undefined && !stream.endAfterHeaders) headers['transfer-encoding'] = 'chunked'
  return 0
}
