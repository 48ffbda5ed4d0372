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
  // connection error: GOAWAY with ENHANCE_YOUR_CALM, and the connection closes (here once
  // the streams already running have ended; nginx cuts them).
  // nginx measures one field as it came on the wire, Huffman-coded or not; switchyard
  // sees it decoded, so it takes the shorter of the two codings (never refusing what
  // nginx would take).
  const { number, size } = edge.largeClientHeaderBuffers
  let left = number * size
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    left -= name.length + value.length
    if (left < 0 || (name.length > size && huffmanLength(name) > size) || (value.length > size && huffmanLength(value) > size)) {
      const session = stream.session
      // destroy() with a code would drop the socket before the GOAWAY frame is written.
      session?.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
      stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM)
      session?.close()
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

/** Bits per byte in HPACK's static Huffman code (RFC 7541, Appendix B). */
const HUFFMAN_BITS = Uint8Array.from([
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
])

/** Bytes `text` takes Huffman-coded (node:http2 hands header bytes over as latin1 text). */
export function huffmanLength(text: string): number {
  let bits = 0
  for (let i = 0; i < text.length; i++) bits += HUFFMAN_BITS[text.charCodeAt(i) & 0xff]!
  return Math.ceil(bits / 8)
}
