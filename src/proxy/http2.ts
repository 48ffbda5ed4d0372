// HTTP/2 requests from clients (node:http2's compatibility API) made to look like the
// HTTP/1.1 requests the proxy path expects; the upstream side stays HTTP/1.1.
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'

/** True for a request that came over HTTP/2 (node:http2's Http2ServerRequest). An
 *  HTTP/1 request line that says `HTTP/2.0` also has httpVersionMajor 2, and is refused. */
export function isHttp2(req: IncomingMessage): boolean {
  return (req as unknown as { stream?: unknown }).stream !== undefined
}

/** 0 when the request may go on, else the status to answer its stream with. */
export function adaptHttp2Request(req: IncomingMessage): number {
  const stream = (req as unknown as Http2ServerRequest).stream
  const headers = req.headers
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
