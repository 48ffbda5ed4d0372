// Differential edge: the raw-byte framing corpus and the client limits (414, 431, 413,
// 408) played against Debian's nginx and switchyard on the same config, comparing the
// statuses each connection gets and whether the server closes it. Where switchyard is
// deliberately different, the row is in `deviations` below with both answers; every other
// row must match nginx exactly.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { CANARY, post, rawLoggingBackend, rows, SMUGGLED } from '../helpers/edge-corpus.js'
import { underBoth } from '../helpers/nginx.js'

/** How long a connection may stay silent before we call it left open by the server
 *  (keepalive_timeout and the header/body timeouts are longer). */
const WAIT_MS = 2500

interface Case {
  readonly what: string
  readonly bytes: string
}

const limits: Case[] = [
  { what: 'request line over large_client_header_buffers (414)', bytes: `GET /${'a'.repeat(1100)} HTTP/1.1\r\nHost: a\r\n\r\n` },
  { what: 'one header line over large_client_header_buffers', bytes: `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(1100)}\r\n\r\n` },
  { what: 'all headers over large_client_header_buffers (431)', bytes: `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 8 }, (_, i) => `X-${i}: ${'c'.repeat(500)}\r\n`).join('')}\r\n` },
  { what: 'Content-Length over client_max_body_size (413)', bytes: post('Content-Length: 2000\r\n', 'x'.repeat(2000)) },
  { what: 'chunked body over client_max_body_size (413)', bytes: post('Transfer-Encoding: chunked\r\n', `7d0\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`) },
  { what: 'header never finished (client_header_timeout, 408)', bytes: 'GET / HTTP/1.1\r\nHost: a\r\n' },
  { what: 'body never finished (client_body_timeout)', bytes: post('Content-Length: 100\r\n', 'abc') },
  { what: 'CONNECT with an authority', bytes: 'CONNECT a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n' },
  { what: 'CONNECT behind a good request', bytes: 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nCONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n' },
  { what: 'CONNECT behind a request that closes', bytes: 'GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nCONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n' },
  { what: 'bad request behind a request that closes', bytes: 'GET /a HTTP/1.0\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n' },
  { what: 'bad request behind a good one', bytes: `GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n${SMUGGLED}` },
  { what: 'bad chunk size behind a good request', bytes: `GET /a HTTP/1.1\r\nHost: a\r\n\r\n${post('Transfer-Encoding: chunked\r\n', `5\r\nhello\r\nzz\r\n${SMUGGLED}`)}` },
  { what: 'PRI in an HTTP/1.1 request', bytes: 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nPRI /x HTTP/1.1\r\nHost: a\r\n\r\n' },
  { what: 'an Expect other than 100-continue', bytes: 'GET /a HTTP/1.1\r\nHost: a\r\nExpect: keep-alive\r\n\r\n' },
  { what: 'Expect: 100-continue', bytes: post('Expect: 100-continue\r\nContent-Length: 5\r\n', 'hello') },
  { what: 'HTTP/1.0 without Host', bytes: 'GET /a HTTP/1.0\r\n\r\n' },
  { what: 'absolute-form target', bytes: 'GET http://example.test/abs HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n' },
  { what: 'OWS around a Content-Length', bytes: post('Content-Length:  5 \r\nConnection: close\r\n', 'hello') },
]

/** Every corpus row is sent with a canary behind it: a server that reads past the refusal
 *  answers it too (and the statuses show it). */
const cases: Case[] = [...rows.map((r) => ({ what: r.what, bytes: r.bytes + CANARY })), ...limits]

interface Outcome {
  statuses: number[]
  closed: boolean
}

const refused = (status: number): Outcome => ({ statuses: [status], closed: true })
/** nginx served the request, the hidden one behind it and the canary, and kept the
 *  connection: it reads the bytes as three requests where switchyard refuses the first. */
const servedAll: Outcome = { statuses: [200, 200, 200], closed: false }

/** Where switchyard answers differently from nginx 1.22, on purpose; each row says why.
 *  The test fails when a row stops being true, so the table (and the README's list, which
 *  copies it) cannot go stale. */
const deviations: Record<string, { nginx: Outcome; switchyard: Outcome; why: string }> = {
  // Stricter: llhttp refuses what nginx's parser tolerates.
  'chunk size with a trailing space': { nginx: servedAll, switchyard: refused(400), why: 'RFC 9112 §7.1 has no whitespace after chunk-size' },
  'empty chunk extension': { nginx: servedAll, switchyard: refused(400), why: '`;` must be followed by a token (RFC 9112 §7.1.1)' },
  'bare LF after a chunk size': { nginx: servedAll, switchyard: refused(400), why: 'bare LF line ends are refused everywhere' },
  'bare LF line ends': { nginx: servedAll, switchyard: refused(400), why: 'a bare LF as the only line end is how front and back ends disagree on framing' },
  'bare LF in the header block': { nginx: { statuses: [200, 400], closed: true }, switchyard: refused(400), why: 'nginx takes LF as a line end and then fails on the body; switchyard refuses the mixed line ends at once' },
  'control byte in a header value': { nginx: { statuses: [400, 200, 200], closed: false }, switchyard: refused(400), why: 'nginx answers 400 and reads on; switchyard answers 400 and closes' },
  'target with a fragment': { nginx: servedAll, switchyard: refused(400), why: 'a fragment is never sent in a request target (RFC 9112 §3.2)' },
  'HTTP/1.2': { nginx: servedAll, switchyard: refused(400), why: 'only HTTP/1.0 and 1.1 are HTTP/1 versions switchyard speaks' },
  // Same refusal, another status.
  'TE chunked, identity': { nginx: refused(501), switchyard: refused(400), why: 'llhttp refuses a coding after `chunked` as bad framing before switchyard sees the header' },
  'TE with a vertical tab': { nginx: refused(501), switchyard: refused(400), why: 'llhttp refuses the control byte in the value' },
  'all headers over large_client_header_buffers (431)': { nginx: refused(400), switchyard: refused(431), why: 'nginx says 400 "Request Header Or Cookie Too Large"; switchyard the status made for it (RFC 6585)' },
  'header never finished (client_header_timeout, 408)': { nginx: { statuses: [], closed: true }, switchyard: refused(408), why: 'nginx closes silently; switchyard tells the client why' },
  'PRI in an HTTP/1.1 request': { nginx: { statuses: [200, 400], closed: false }, switchyard: { statuses: [200, 400], closed: true }, why: 'llhttp allows PRI only as the HTTP/2 preface (400 and close); nginx forwards it as any other method' },
}

/** Send `bytes`; the statuses that came back, and whether the server closed the connection
 *  within WAIT_MS of its last byte. */
function play(port: number, bytes: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let data = ''
    let timer = setTimeout(() => done(false), WAIT_MS + 2000)
    const done = (closed: boolean): void => {
      clearTimeout(timer)
      s.destroy()
      resolve({ statuses: [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])), closed })
    }
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1')
      clearTimeout(timer)
      timer = setTimeout(() => done(false), WAIT_MS)
    })
    s.on('error', () => undefined)
    s.on('close', () => done(true))
    s.write(Buffer.from(bytes, 'latin1'))
  })
}

let backend: Awaited<ReturnType<typeof rawLoggingBackend>>
before(async () => {
  backend = await rawLoggingBackend()
})
after(async () => {
  await backend?.close()
})

const config = (listen: number): string => `events { worker_connections 1024; }
http {
  access_log off;
  client_header_timeout 2s;
  client_body_timeout 2s;
  keepalive_timeout 3s;
  large_client_header_buffers 2 1k;
  client_max_body_size 1k;
  server {
    listen 127.0.0.1:${listen};
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`

test(`differential edge: ${cases.length} raw requests against nginx and switchyard`, { timeout: 120_000 }, async () => {
  // The backend's raw bytes are kept per server: nginx forwards some hidden requests as
  // ordinary pipelined ones (the rows above where it reads on), switchyard never.
  const both = await underBoth(config, async (port) => {
    backend.raw = ''
    const outcomes = await Promise.all(cases.map((c) => play(port, c.bytes)))
    return Object.assign(outcomes, { raw: backend.raw })
  })
  const report: string[] = []
  const mismatches: string[] = []
  cases.forEach((c, i) => {
    const n = both.nginx[i]!
    const s = both.switchyard[i]!
    const show = (o: Outcome): string => `${o.statuses.join(',') || '-'}${o.closed ? ' close' : ' open'}`
    const known = deviations[c.what]
    const line = `${c.what}: nginx ${show(n)}, switchyard ${show(s)}${known ? ' (known deviation)' : ''}`
    report.push(line)
    if (known) {
      // The table must stay true: a deviation that went away (or changed) is reported too.
      if (show(n) !== show(known.nginx) || show(s) !== show(known.switchyard)) mismatches.push(`${line} — table says nginx ${show(known.nginx)}, switchyard ${show(known.switchyard)}`)
    } else if (show(n) !== show(s)) mismatches.push(line)
  })
  console.log(report.map((l) => `# ${l}`).join('\n'))
  assert.deepEqual(mismatches, [])
  assert.doesNotMatch(both.switchyard.raw, /smuggled/)
})
