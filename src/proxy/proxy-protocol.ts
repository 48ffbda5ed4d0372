// The PROXY protocol (HAProxy's, v1 text and v2 binary) on `listen … proxy_protocol`: a
// load balancer in front tells switchyard who the client is before any HTTP or TLS byte.
// Parsing follows nginx's ngx_proxy_protocol.c: v1 `PROXY TCP4|TCP6 SRC DST SPORT DPORT`
// or `PROXY UNKNOWN …`; v2 with the PROXY command over TCP/IPv4 or TCP/IPv6. A v2 LOCAL
// command, another transport or family, or v1 UNKNOWN is accepted and gives no address
// (the connection's own peer stays the client). Anything else is a broken header and the
// connection is closed.
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'

/** What a PROXY header said about the client connection. */
export interface ProxyHeader {
  readonly srcAddr: string
  readonly srcPort: number
  readonly dstAddr: string
  readonly dstPort: number
}

/** The result of reading the start of a connection: more bytes needed, a broken header
 *  (with nginx's log wording), or the header's length and what it said (null: no
 *  address, e.g. LOCAL or UNKNOWN). */
export type ParseResult =
  | { readonly kind: 'more' }
  | { readonly kind: 'broken'; readonly why: string }
  | { readonly kind: 'done'; readonly length: number; readonly header: ProxyHeader | null }

const SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')
/** The longest v1 line, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107
/** v2: 16 fixed bytes and then the addresses and TLVs; nginx reads them within its header
 *  buffer, so switchyard takes at most this much too. */
export const V2_MAX = 16 + 1024

const MORE: ParseResult = { kind: 'more' }

export function parseProxyHeader(buf: Buffer): ParseResult {
  // Decide the version as soon as the first bytes say which one it can be.
  const sig = Math.min(buf.length, SIGNATURE.length)
  if (buf.subarray(0, sig).equals(SIGNATURE.subarray(0, sig))) {
    return buf.length < 16 ? MORE : parseV2(buf)
  }
  const v1 = Math.min(buf.length, 6)
  if (buf.subarray(0, v1).toString('latin1') !== 'PROXY '.slice(0, v1)) return broken(buf)
  const lf = buf.indexOf(10)
  if (lf === -1) return buf.length >= V1_MAX ? broken(buf) : MORE
  if (lf + 1 > V1_MAX || buf[lf - 1] !== 13) return broken(buf)
  const line = buf.subarray(6, lf - 1).toString('latin1')
  if (line.startsWith('UNKNOWN')) return { kind: 'done', length: lf + 1, header: null }
  const m = /^TCP[46] ([0-9A-Fa-f:.]+) ([0-9A-Fa-f:.]+) ([0-9]+) ([0-9]+)$/.exec(line)
  if (m === null) return broken(buf)
  const srcPort = Number(m[3])
  const dstPort = Number(m[4])
  if (srcPort > 65535 || dstPort > 65535) return broken(buf)
  return { kind: 'done', length: lf + 1, header: { srcAddr: m[1]!, srcPort, dstAddr: m[2]!, dstPort } }
}

function parseV2(buf: Buffer): ParseResult {
  const version = buf[12]! >> 4
  if (version !== 2) return { kind: 'broken', why: `unknown PROXY protocol version: ${version}` }
  const len = buf.readUInt16BE(14)
  if (16 + len > V2_MAX) return { kind: 'broken', why: 'header is too large' }
  if (buf.length < 16 + len) return MORE
  const length = 16 + len
  const command = buf[12]! & 0x0f
  const family = buf[13]! >> 4
  const transport = buf[13]! & 0x0f
  // Only PROXY over a stream carries a usable address; LOCAL (a health check from the
  // balancer itself) and the rest keep the connection's own.
  if (command !== 1 || transport !== 1) return { kind: 'done', length, header: null }
  const a = buf.subarray(16, length)
  if (family === 1) {
    if (a.length < 12) return { kind: 'broken', why: 'broken header' }
    return { kind: 'done', length, header: { srcAddr: ipv4(a, 0), dstAddr: ipv4(a, 4), srcPort: a.readUInt16BE(8), dstPort: a.readUInt16BE(10) } }
  }
  if (family === 2) {
    if (a.length < 36) return { kind: 'broken', why: 'broken header' }
    return { kind: 'done', length, header: { srcAddr: ipv6(a, 0), dstAddr: ipv6(a, 16), srcPort: a.readUInt16BE(32), dstPort: a.readUInt16BE(34) } }
  }
  return { kind: 'done', length, header: null }
}

/** nginx's log line: the bytes up to the first CR or LF. */
function broken(buf: Buffer): ParseResult {
  let end = 0
  while (end < buf.length && buf[end] !== 13 && buf[end] !== 10 && end < V1_MAX) end++
  return { kind: 'broken', why: `broken header: "${buf.subarray(0, end).toString('latin1')}"` }
}

const ipv4 = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`

/** RFC 5952 text (the longest run of zero groups, if two or more, becomes `::`), as
 *  nginx's ngx_inet6_ntop writes it; an IPv4-mapped address keeps its dotted tail. */
function ipv6(b: Buffer, at: number): string {
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i))
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4(b, at + 12)}`
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

// ── connections ─────────────────────────────────────────────────────────────────

/** What switchyard knows about a connection that came through a PROXY header. */
export interface ProxiedConnection {
  /** null when the header carried no address (LOCAL, UNKNOWN). */
  readonly header: ProxyHeader | null
  /** The TCP peer and local end, kept here because a TLS socket over a stream wrapper
   *  (see `acceptProxied`) cannot ask the kernel. */
  readonly peerAddress: string
  readonly peerPort: number
  readonly localAddress: string
  readonly localPort: number
}

const kProxied = Symbol('switchyard.proxied')
type Tagged = { [kProxied]?: ProxiedConnection }

/** The PROXY facts of the connection a request came on: `socket` is the TCP socket, the
 *  TLS socket over the stream handed to the TLS server (tagged by `adoptTlsSocket`), or
 *  node:http2's proxy of that TLS socket (which passes property reads through). */
export function proxiedConnection(socket: object | null | undefined): ProxiedConnection | undefined {
  if (socket == null) return undefined
  return (socket as Tagged)[kProxied]
}

/** At 'secureConnection': give the TLS socket the facts of the stream it runs over. Node
 *  keeps no public link from a TLS socket to a JS stream under it: the TLS handle's
 *  `_parentWrap` is Node's JSStreamSocket, whose `stream` is the one switchyard made. */
export function adoptTlsSocket(socket: object): void {
  const under = (socket as { _handle?: { _parentWrap?: { stream?: Tagged } } })._handle?._parentWrap?.stream
  const info = under?.[kProxied]
  if (info !== undefined) (socket as Tagged)[kProxied] = info
}

/** Read the PROXY header off a freshly accepted socket, then hand the connection on:
 *  `serve(socket)` gets the same socket (plain HTTP) or, for TLS, a stream over it, with
 *  every byte after the header still to be read. A broken header, or none within
 *  `timeout` ms, closes the connection; `onBroken` gets nginx's log text. */
export function acceptProxied(socket: Socket, options: { timeout: () => number; wrap: boolean; serve: (s: Duplex) => void; onBroken: (why: string) => void }): void {
  let buffered: Buffer = Buffer.alloc(0)
  const timer = setTimeout(() => {
    cleanup()
    socket.destroy()
  }, Math.max(1, options.timeout()))
  const cleanup = (): void => {
    clearTimeout(timer)
    socket.removeListener('data', onData)
    socket.removeListener('error', onError)
    socket.removeListener('close', onClose)
  }
  const onError = (): void => {
    cleanup()
    socket.destroy()
  }
  const onClose = (): void => cleanup()
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const result = parseProxyHeader(buffered)
    if (result.kind === 'more') return
    cleanup()
    if (result.kind === 'broken') {
      options.onBroken(result.why)
      socket.destroy()
      return
    }
    socket.pause()
    const info: ProxiedConnection = {
      header: result.header,
      peerAddress: socket.remoteAddress ?? '',
      peerPort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
    }
    ;(socket as Tagged)[kProxied] = info
    const rest = buffered.subarray(result.length)
    if (!options.wrap) {
      // Node's HTTP parser takes over the socket's handle and reads from it directly, so
      // the bytes already read go to it at once, before anything read later.
      options.serve(socket)
      if (rest.length > 0) socket.emit('data', rest)
      socket.resume()
      return
    }
    // A TLS server would take the handle too and lose the bytes already read (often the
    // ClientHello, sent with the header): it gets a stream that starts with them instead.
    const stream = streamOver(socket, rest)
    ;(stream as Tagged)[kProxied] = info
    options.serve(stream)
  }
  socket.on('data', onData)
  socket.on('error', onError)
  socket.on('close', onClose)
}

/** A Duplex that reads `first` and then `socket`, and writes to `socket`. */
function streamOver(socket: Socket, first: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume()
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb)
    },
    final(cb) {
      socket.end()
      cb()
    },
    destroy(err, cb) {
      socket.destroy()
      cb(err)
    },
  })
  if (first.length > 0) stream.push(first)
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause()
  })
  socket.on('end', () => stream.push(null))
  socket.on('error', (err) => stream.destroy(err))
  socket.on('close', () => stream.destroy())
  socket.resume()
  return stream
}
