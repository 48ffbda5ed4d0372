// `return` (ngx_http_rewrite_module): switchyard answers the request itself. As nginx's
// ngx_http_script_return_code and ngx_http_send_response do it:
// - 301, 302, 303, 307, 308: the text is the Location; one that starts with `/` is made
//   absolute from $scheme, the Host header's name (server_name_in_redirect off) and the
//   listening port unless it is the scheme's default (absolute_redirect and
//   port_in_redirect on); the body is the small HTML page of the status;
// - any other code below 400, or any code with a text: the text, as `text/plain` (nginx's
//   default_type; its built-in types map .html, .gif and .jpg by the URI's extension);
// - 400 and above without a text: the status's error page (none for codes nginx has no
//   page for: an empty body);
// - 444 (and 499): the connection is closed without an answer (an HTTP/2 stream is reset,
//   as is one whose code HTTP/2 cannot send: below 200 or above 599).
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { constants as h2, type Http2ServerRequest } from 'node:http2'
import type { ReturnAction } from '../config/model.js'
import { hostVariable, type RequestVariables } from '../config/variables.js'
import { markClosing } from './edge.js'
import { sendErrorPage } from './error-page.js'
import { isHttp2 } from './http2.js'

const REDIRECTS = new Set([301, 302, 303, 307, 308])
/** Codes nginx has an error page for (ngx_http_error_pages); others get an empty body. */
const PAGES = new Set([400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 421, 429, 500, 501, 502, 503, 504, 505, 507])
/** Error pages after which nginx closes the connection (ngx_http_special_response_handler). */
const CLOSING = new Set([400, 413, 414, 500, 501])
/** nginx's built-in `types` when no mime.types is included; the rest is default_type. */
const TYPES: Record<string, string> = { html: 'text/html', gif: 'image/gif', jpg: 'image/jpeg' }

/** The request has a body that may still be on the wire: the connection cannot be kept. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
}

/** Answer `req` as `action` says; returns the status and body bytes for the access log,
 *  or null when the connection was closed without an answer. */
export function sendReturn(action: ReturnAction, req: IncomingMessage, res: ServerResponse, vars: RequestVariables): { status: number; bytes: number } | null {
  const code = action.code
  const h2stream = isHttp2(req) ? (req as unknown as Http2ServerRequest).stream : null
  // HTTP/2 has no way to send a final status outside 200..599 (node:http2 throws).
  if (code === 444 || code === 499 || code < 100 || (h2stream !== null && (code < 200 || code > 599))) {
    if (h2stream !== null) h2stream.close(h2.NGHTTP2_INTERNAL_ERROR)
    else req.socket.destroy()
    return null
  }
  // An unread body behind the answer is never parsed as the next request.
  const close = h2stream === null && (hasBody(req) || !res.shouldKeepAlive)
  if (REDIRECTS.has(code)) {
    const location = absoluteLocation(action.text.constant ?? action.text.evaluate(vars), vars)
    res.setHeader('location', location)
    return { status: code, bytes: sendErrorPage(res, code, close) }
  }
  if (code < 400 || action.text.constant !== '') {
    const text = action.text.constant ?? action.text.evaluate(vars)
    const headers: Record<string, string | number> = { server: 'switchyard' }
    if (code !== 204) {
      headers['content-type'] = contentType(vars.path)
      headers['content-length'] = Buffer.byteLength(text)
    }
    if (close) {
      headers.connection = 'close'
      res.shouldKeepAlive = false
      markClosing(req.socket)
    }
    if (h2stream !== null) res.writeHead(code, headers)
    else res.writeHead(code, STATUS_CODES[code] ?? '', headers)
    const head = req.method === 'HEAD' || code === 204 || code === 304
    res.end(head ? undefined : text)
    return { status: code, bytes: head ? 0 : Buffer.byteLength(text) }
  }
  if (PAGES.has(code)) return { status: code, bytes: sendErrorPage(res, code, close || CLOSING.has(code)) }
  const headers: Record<string, string | number> = { server: 'switchyard', 'content-length': 0 }
  if (close) {
    headers.connection = 'close'
    res.shouldKeepAlive = false
    markClosing(req.socket)
  }
  if (h2stream !== null) res.writeHead(code, headers)
  else res.writeHead(code, '', headers)
  res.end()
  return { status: code, bytes: 0 }
}

/** nginx's header filter: `/path` → `scheme://host[:port]/path`. */
function absoluteLocation(location: string, vars: RequestVariables): string {
  if (location.charCodeAt(0) !== 47 /* / */) return location
  let host = vars.req.headers.host ? hostVariable(vars) : vars.serverAddr
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
  const port = vars.serverPort
  const standard = vars.scheme === 'https' ? 443 : 80
  return `${vars.scheme}://${host}${port === standard ? '' : `:${port}`}${location}`
}

function contentType(path: string): string {
  const slash = path.lastIndexOf('/')
  const dot = path.lastIndexOf('.')
  if (dot <= slash) return 'text/plain'
  return TYPES[path.slice(dot + 1).toLowerCase()] ?? 'text/plain'
}
