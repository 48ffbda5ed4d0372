// Strict HTTP/1.1 in front: a raw-byte corpus of ambiguous framing. Each request hides a
// second request (`/smuggled`) that a lenient parser would see; after each one a canary
// follows on the same connection and on a new one. The backend's raw byte log must never
// show the smuggled request line, and nothing after a refusal may reach it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { createServer, type Server } from 'node:net'
import { freePort, send, TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
const CANARY = 'GET /canary HTTP/1.1\r\nHost: a\r\n\r\n'

interface Row {
  /** What the row protects (the trick it uses). */
  readonly what: string
  readonly bytes: string
  /** Status switchyard answers with; llhttp's or ours (see src/proxy/edge.ts). */
  readonly status: number
}

const post = (headers: string, body: string): string => `POST /x HTTP/1.1\r\nHost: a\r\n${headers}\r\n${body}`
const rows: Row[] = [
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

let backend: TestUpstream
let raw = ''
let sy: SwitchyardProcess
let port = 0

before(async () => {
  backend = await new TestUpstream().listen()
  backend.server.on('connection', (s) => s.on('data', (d: Buffer) => (raw += d.toString('latin1'))))
  port = await freePort()
  sy = (await startSwitchyard(`events {}\nhttp {\n server {\n  listen 127.0.0.1:${port};\n  location / { proxy_pass http://127.0.0.1:${backend.port}; }\n }\n}\n`)).proc
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** Write `bytes` on a new connection; resolve with everything read until the server
 *  closes it (bounded: 2 s). */
function exchange(p: number, bytes: string): Promise<string> {
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

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

for (const row of rows) {
  // Each row: the refusal's status, the connection closed with nothing after it, and no
  // byte of the hidden request (or the canary behind it) forwarded.
  test(`refused: ${row.what}`, async () => {
    const before = backend.seen.length
    raw = ''
    const got = await exchange(port, row.bytes + CANARY)
    assert.deepEqual(statuses(got), [row.status], got)
    assert.doesNotMatch(raw, /smuggled/)
    assert.equal(backend.seen.length, before, `forwarded: ${backend.seen.slice(before).map((s) => s.url).join(', ')}`)
    // A new connection is served normally.
    const fresh = await send(port, { path: '/canary' })
    assert.equal(fresh.status, 200)
  })
}

// Well-formed framing that looks odd still works, and pipelined requests come back in order.
test('accepted: OWS around values, CHUNKED, chunk extensions, trailers, pipelining in order', async () => {
  raw = ''
  const got = await exchange(port, [
    post('Content-Length:  5 \r\n', 'hello'),
    post('Transfer-Encoding: CHUNKED\r\n', '5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n'),
    'GET /third HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  ].join(''))
  assert.deepEqual(statuses(got), [200, 200, 200, 200])
  const urls = [...got.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
  assert.deepEqual(urls, ['/x', '/x', '/third', '/last'])
  assert.doesNotMatch(raw, /smuggled/)
})

// Absolute-form targets are served as origin-form with the Host they carry (RFC 9112 §3.2.2).
test('absolute-form target becomes origin-form', async () => {
  const before = backend.seen.length
  const got = await exchange(port, 'GET http://example.test/abs?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n')
  assert.deepEqual(statuses(got), [200])
  assert.equal(backend.seen[before]?.url, '/abs?q=1')
})

// When switchyard answers itself (413 from Content-Length) while the body is on the wire,
// the body is never parsed as a request.
test('413 with a body on the wire: the body is not read as the next request', async () => {
  const big = 2 * 1024 * 1024
  raw = ''
  const got = await exchange(port, `POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: ${big}\r\n\r\n${SMUGGLED}${CANARY}`)
  assert.deepEqual(statuses(got), [413])
  assert.doesNotMatch(raw, /smuggled|canary/)
})

// Upstream responses with conflicting framing are never relayed: 502, connection dropped.
test('upstream CL+TE, two Content-Lengths, an unrequested 101, a bad status line → 502', async () => {
  const answers = [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
  ]
  let next = 0
  let connections = 0
  const bad: Server = createServer((s) => {
    connections++
    s.on('error', () => undefined)
    s.once('data', () => s.write(answers[next++ % answers.length]!))
  })
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r))
  const badPort = (bad.address() as { port: number }).port
  const p = await freePort()
  const proc = (await startSwitchyard(`events {}\nhttp {\n server {\n  listen 127.0.0.1:${p};\n  location / { proxy_pass http://127.0.0.1:${badPort}; }\n }\n}\n`)).proc
  try {
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < answers.length; i++) {
      const r = await send(p, { path: `/${i}`, agent, timeout: 5000 })
      assert.equal(r.status, 502, `answer ${i}`)
    }
    agent.destroy()
    // Each bad answer cost its upstream connection: none was reused.
    assert.equal(connections, answers.length)
  } finally {
    await proc.stop()
    bad.close()
  }
})
