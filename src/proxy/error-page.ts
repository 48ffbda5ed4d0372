// Responses switchyard writes itself, shaped like nginx's (same status lines, a small
// HTML body), so clients and monitoring see what they saw behind nginx.
import { STATUS_CODES, type ServerResponse } from 'node:http'
import { markClosing } from './edge.js'
import { isHttp2 } from './http2.js'

const pages = new Map<number, Buffer>()

function page(status: number): Buffer {
  let body = pages.get(status)
  if (body === undefined) {
    const title = `${status} ${statusText(status)}`
    body = Buffer.from(`<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>switchyard</center>\r\n</body>\r\n</html>\r\n`)
    pages.set(status, body)
  }
  return body
}

/** nginx's reason phrases where they differ from Node's. */
export function statusText(status: number): string {
  if (status === 504) return 'Gateway Time-out'
  if (status === 413) return 'Request Entity Too Large'
  if (status === 414) return 'Request-URI Too Large'
  return STATUS_CODES[status] ?? 'Unknown'
}

/** Answer with an nginx-style error page; returns the body bytes sent. `close` also ends
 *  the client connection, which is required when an unread request body is still on
 *  the wire. */
export function sendErrorPage(res: ServerResponse, status: number, close = false): number {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return 0
  }
  const body = page(status)
  const headers: Record<string, string | number> = {
    'content-type': 'text/html',
    'content-length': body.length,
    server: 'switchyard',
  }
  // An HTTP/2 stream ends alone (its unread body is reset with it); the connection and
  // its other streams go on, and HTTP/2 has no Connection header (RFC 9113 §8.2.2).
  const h2 = isHttp2(res.req)
  if (close && !h2) {
    headers.connection = 'close'
    res.shouldKeepAlive = false
    markClosing(res.socket)
  }
  // HTTP/2 has no reason phrase (RFC 9113 §8.3.2).
  if (h2) res.writeHead(status, headers)
  // nginx's status line for 302 (its page says `302 Found`).
  else res.writeHead(status, status === 302 ? 'Moved Temporarily' : statusText(status), headers)
  const head = res.req.method === 'HEAD'
  res.end(head ? undefined : body)
  return head ? 0 : body.length
}

/** The same page as raw bytes, for sockets taken over by an upgrade. */
export function rawErrorResponse(status: number): Buffer {
  const body = page(status)
  const head = `HTTP/1.1 ${status} ${statusText(status)}\r\nServer: switchyard\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`
  return Buffer.concat([Buffer.from(head), body])
}
