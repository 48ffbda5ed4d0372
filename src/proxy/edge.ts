// What switchyard checks on a client request before routing it, beyond what Node's
// parser (llhttp, strict: switchyard never turns on `insecureHTTPParser`) already refuses.
//
// llhttp answers (through the listener's `clientError` handler, 400 and close) for:
// Content-Length with Transfer-Encoding, duplicate or malformed Content-Length (`+5`,
// `5,5`, `5 5`, hex, overflow), Transfer-Encoding where `chunked` is not last or is
// repeated, bad chunk sizes and chunk-extension syntax, bare CR or LF as line ends, NUL,
// CR, LF or control bytes in header values, obs-fold, whitespace before the colon or
// before a header name, bad methods and versions, and control bytes or spaces in the
// request target. What it lets through and switchyard refuses here, one pass and no
// regular expression over the headers:
// - a Transfer-Encoding other than exactly `chunked` (`gzip, chunked`, `,chunked`,
//   `xchunked`, quoted) → 501, as nginx ("client sent unknown Transfer-Encoding");
// - Transfer-Encoding in an HTTP/1.0 request → 400 (RFC 9112 §6.1: faulty framing);
// - HTTP/0.9 → 400 and HTTP/2+ over HTTP/1 framing → 505;
// - a request target that is neither origin-form (`/…`) nor absolute-form
//   (`http://host/…`), e.g. `*`, or one with a `#` fragment → 400;
// - no Host in HTTP/1.1, or two Host lines → 400 (nginx: "client sent duplicate host header");
// - a request line over large_client_header_buffers' size → 414, a header line over it → 400.
// Every such answer closes the connection, and requests already pipelined behind it on
// the same connection are dropped unanswered (see markClosing).
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { addressWords, cidrMatches, type Cidr } from '../config/cidr.js'
import type { AccessRule, EdgeSettings, RealIp } from '../config/model.js'
import { isHttp2 } from './http2.js'
import { proxiedConnection } from './proxy-protocol.js'

const kClosing = Symbol('switchyard.closing')
type MarkedSocket = Socket & { [kClosing]?: true }

/** switchyard answered on this connection with `Connection: close`: whatever the parser
 *  reads after that answer (pipelined requests, or the unread rest of a body it could not
 *  frame) must never be served or forwarded. */
export function markClosing(socket: Socket | null): void {
  if (socket !== null) (socket as MarkedSocket)[kClosing] = true
}

export function isClosing(socket: Socket): boolean {
  return (socket as MarkedSocket)[kClosing] === true
}

/** 0 when the request may go on, else the status to answer it with (and close). May
 *  rewrite an absolute-form target to origin-form, taking Host from it (RFC 9112 §3.2.2). */
export function checkRequest(req: IncomingMessage, edge: EdgeSettings): number {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? 400 : 505
  const size = edge.largeClientHeaderBuffers.size
  let url = req.url ?? ''
  if (url.charCodeAt(0) !== 47 /* / */) {
    const origin = absoluteForm(req, url)
    if (origin === null) return 400
    url = origin
  }
  if (url.length + (req.method?.length ?? 0) + 10 > size) return 414
  if (url.includes('#')) return 400
  const headers = req.headers
  if (headers.host === undefined && req.httpVersionMinor === 1) return 400
  const te = headers['transfer-encoding']
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return 400
    if (te !== 'chunked' && (te.length !== 7 || te.toLowerCase() !== 'chunked')) return 501
  }
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length + raw[i + 1]!.length + 2 > size) return 400
    if (name.length === 4 && (name === 'Host' || name.toLowerCase() === 'host')) hosts++
  }
  return hosts > 1 ? 400 : 0
}

/** `http://authority/path` → `/path` with Host set from the authority; null when the
 *  target is not a usable absolute-form URI. */
function absoluteForm(req: IncomingMessage, url: string): string | null {
  const m = /^https?:\/\/([A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?)(\/[^]*)?$/i.exec(url)
  if (m === null) return null
  const path = m[2] ?? '/'
  if (path.charCodeAt(0) !== 47) return null
  req.url = path
  req.headers.host = m[1]!
  return path
}

/** The client address from `real_ip_header` when the connecting peer is trusted by
 *  `set_real_ip_from` (nginx's realip module); null to keep the peer's own address. */
export function realAddress(peer: string, realIp: RealIp, req: IncomingMessage): string | null {
  if (realIp.from.length === 0) return null
  const peerWords = addressWords(peer)
  if (peerWords === null || !trusted(realIp.from, peerWords)) return null
  if (realIp.header === 'proxy_protocol') {
    // The address the PROXY header gave; none (LOCAL, UNKNOWN, not a PROXY listener) or
    // one that is not an IP address keeps the peer's.
    const addr = proxiedConnection(req.socket)?.header?.srcAddr
    return addr === undefined || addressWords(addr) === null ? null : addr
  }
  const value = req.headers[realIp.header]
  if (value === undefined) return null
  const text = Array.isArray(value) ? value.join(',') : value
  if (realIp.header === 'x-real-ip') {
    const ip = text.trim()
    return addressWords(ip) === null ? null : ip
  }
  // X-Forwarded-For and any other list header: from the right, the last address, or
  // with real_ip_recursive the last one that is not itself trusted (nginx's
  // ngx_http_get_forwarded_addr).
  const parts = text.split(',')
  let found: string | null = null
  for (let i = parts.length - 1; i >= 0; i--) {
    const ip = parts[i]!.trim()
    const words = addressWords(ip)
    if (words === null) return found
    found = ip
    if (!realIp.recursive || !trusted(realIp.from, words)) return ip
  }
  return found
}

function trusted(from: readonly Cidr[], addr: { family: 4 | 6; words: readonly number[] }): boolean {
  for (const cidr of from) if (cidrMatches(cidr, addr)) return true
  return false
}

/** nginx's access module: the first `allow`/`deny` that matches decides; none → allowed. */
export function accessDenied(rules: readonly AccessRule[], address: string): boolean {
  if (rules.length === 0) return false
  const words = addressWords(address)
  if (words === null) return false
  for (const rule of rules) if (cidrMatches(rule.cidr, words)) return !rule.allow
  return false
}

/** Why an upstream response header cannot be framed safely, or null. undici's parser
 *  takes a response with Content-Length and Transfer-Encoding, or with two
 *  Content-Lengths, and only fails later on the body; switchyard refuses it before any
 *  byte reaches the client (→ 502, the upstream connection is destroyed, never reused).
 *  A name is only decoded when its length is 14 or 17, so the pass costs a compare per header. */
export function upstreamFramingError(raw: readonly Buffer[]): string | null {
  let lengths = 0
  let chunked = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 14) {
      if (name.toString('latin1').toLowerCase() === 'content-length') lengths++
    } else if (name.length === 17) {
      if (name.toString('latin1').toLowerCase() === 'transfer-encoding') chunked = true
    }
  }
  if (lengths > 1) return 'upstream sent duplicate header line: "Content-Length"'
  if (lengths === 1 && chunked) return 'upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time'
  return null
}

/** client_body_timeout: the longest gap between two reads of a request body. Past it the
 *  connection is closed (nginx's 408, which nginx also never sends: it closes). The
 *  socket's idle timer runs only until the body has arrived. */
export function armBodyTimeout(req: IncomingMessage, ms: number): void {
  if (ms === 0 || req.complete) return
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return
  // An HTTP/2 request is one stream: it alone is reset (node:http2 forbids touching the socket).
  req.setTimeout(ms, () => (isHttp2(req) ? req.destroy() : req.socket.destroy()))
  req.once('end', () => req.setTimeout(0))
}
