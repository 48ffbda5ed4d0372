// The raw-byte corpus of ambiguous HTTP/1.1 framing and the small raw-socket tools the
// edge tests share (edge-strict, fuzz, differential-edge): each corpus row hides a second
// request (`/smuggled`) that a lenient parser would see.
import { connect } from 'node:net'
import { TestUpstream } from './net.js'

export const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
export const CANARY = 'GET /canary HTTP/1.1\r\nHost: a\r\n\r\n'

export interface Row {
  /** What the row protects (the trick it uses). */
  readonly what: string
  readonly bytes: string
  /** Status switchyard answers with; llhttp's or ours (see src/proxy/edge.ts). */
  readonly status: number
}

export const post = (headers: string, body: string): string => `POST /x HTTP/1.1\r\nHost: a\r\n${headers}\r\n${body}`
export const rows: Row[] = [
  { what: 'CL and TE together', bytes: post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'TE and CL together (order swapped)', bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'duplicate equal Content-Length', bytes: post('Content-Length: 5\r\nContent-Length: 5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'duplicate differing Content-Length', bytes: post('Content-Length: 5\r\nContent-Length: 40\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length +5', bytes: post('Content-Length: +5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length 5,5', bytes: post('Content-Length: 5,5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length "5 5"', bytes: post('Content-Length: 5 5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length in hex', bytes: post('Content-Length: 0x5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length overflow', bytes: post('Content-Length: 99999999999999999999999\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length negative', bytes: post('Content-Length: -1\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'Content-Length empty', bytes: post('Content-Length: \r\n', `${SMUGGLED}`), status: 400 },
  { what: 'TE xchunked (unknown coding)', bytes: post('Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 501 },
  { what: 'TE chunked, identity', bytes: post('Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'TE gzip, chunked', bytes: post('Transfer-Encoding: gzip, chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 501 },
  { what: 'TE quoted', bytes: post('Transfer-Encoding: "chunked"\r\n', `0\r\n\r\n${SMUGGLED}`), status: 501 },
  { what: 'TE repeated', bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'TE with a leading comma', bytes: post('Transfer-Encoding: ,chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 501 },
  { what: 'TE with a vertical tab', bytes: post('Transfer-Encoding: \x0bchunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'TE gzip alone', bytes: post('Transfer-Encoding: gzip\r\n', `${SMUGGLED}`), status: 501 },
  { what: 'TE in HTTP/1.0', bytes: `POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'space before the colon', bytes: post('Transfer-Encoding : chunked\r\nContent-Length: 5\r\n', `hello${SMUGGLED}`), status: 400 },
  { what: 'obs-fold hides chunked', bytes: post('Transfer-Encoding: x\r\n chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'header line starting with a space', bytes: post(' Transfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'bad chunk size', bytes: post('Transfer-Encoding: chunked\r\n', `zz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'chunk size overflow', bytes: post('Transfer-Encoding: chunked\r\n', `FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'chunk size with a trailing space', bytes: post('Transfer-Encoding: chunked\r\n', `5 \r\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'empty chunk extension', bytes: post('Transfer-Encoding: chunked\r\n', `5;\r\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'bare LF inside a chunk extension', bytes: post('Transfer-Encoding: chunked\r\n', `5;a\nb\r\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'bare LF after a chunk size', bytes: post('Transfer-Encoding: chunked\r\n', `5\nhello\r\n0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'chunk data longer than its size', bytes: post('Transfer-Encoding: chunked\r\n', `5\r\nhelloXX0\r\n\r\n${SMUGGLED}`), status: 400 },
  { what: 'bare LF line ends', bytes: `GET /x HTTP/1.1\nHost: a\n\n${SMUGGLED}`, status: 400 },
  { what: 'bare LF in the header block', bytes: `GET /x HTTP/1.1\r\nHost: a\nContent-Length: 40\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'bare CR in the header block', bytes: `GET /x HTTP/1.1\r\nHost: a\rContent-Length: 40\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'NUL in a header value', bytes: `GET /x HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'CR in a header value', bytes: `GET /x HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'control byte in a header value', bytes: `GET /x HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'target without a leading slash', bytes: `GET x HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'target *', bytes: `GET * HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'target with a fragment', bytes: `GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'target with a space', bytes: `GET /a b HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'target with a control byte', bytes: `GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'authority-form target on GET', bytes: `GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'no Host in HTTP/1.1', bytes: `GET /x HTTP/1.1\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'two Host lines', bytes: `GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'HTTP/2.0 in an HTTP/1 request line', bytes: `GET /x HTTP/2.0\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 505 },
  { what: 'HTTP/1.2', bytes: `GET /x HTTP/1.2\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
  { what: 'lower-case method', bytes: `get /x HTTP/1.1\r\nHost: a\r\n\r\n${SMUGGLED}`, status: 400 },
]

/** A TestUpstream that also keeps every byte it reads (latin1) in `raw`, to look for
 *  request lines that should never have reached it. */
export async function rawLoggingBackend(): Promise<TestUpstream & { raw: string }> {
  const backend = Object.assign(await new TestUpstream().listen(), { raw: '' })
  backend.server.on('connection', (s) => s.on('data', (d: Buffer) => (backend.raw += d.toString('latin1'))))
  return backend
}

/** Write `bytes` on a new connection; resolve with everything read until the server
 *  closes it (bounded: 2 s). */
export function exchange(p: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(p, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => s.destroy(), 2000)
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve(data)
    })
    s.write(Buffer.from(bytes, 'latin1'))
  })
}

export const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

