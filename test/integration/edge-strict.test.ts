// Strict HTTP/1.1 in front: a raw-byte corpus of ambiguous framing. Each request hides a
// second request (`/smuggled`) that a lenient parser would see; after each one a canary
// follows on the same connection and on a new one. The backend's raw byte log must never
// show the smuggled request line, and nothing after a refusal may reach it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { CANARY, exchange, post, rawLoggingBackend, rows, SMUGGLED, statuses } from '../helpers/edge-corpus.js'
import { freePort, send } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

let backend: Awaited<ReturnType<typeof rawLoggingBackend>>
let sy: SwitchyardProcess
let port = 0

before(async () => {
  backend = await rawLoggingBackend()
  port = await freePort()
  sy = (await startSwitchyard(`events {}\nhttp {\n server {\n  listen 127.0.0.1:${port};\n  location / { proxy_pass http://127.0.0.1:${backend.port}; }\n }\n}\n`)).proc
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

for (const row of rows) {
  // Each row: the refusal's status, the connection closed with nothing after it, and no
  // byte of the hidden request (or the canary behind it) forwarded.
  test(`refused: ${row.what}`, async () => {
    const before = backend.seen.length
    backend.raw = ''
    const got = await exchange(port, row.bytes + CANARY)
    assert.deepEqual(statuses(got), [row.status], got)
    assert.doesNotMatch(backend.raw, /smuggled/)
    assert.equal(backend.seen.length, before, `forwarded: ${backend.seen.slice(before).map((s) => s.url).join(', ')}`)
    // A new connection is served normally.
    const fresh = await send(port, { path: '/canary' })
    assert.equal(fresh.status, 200)
  })
}

// Well-formed framing that looks odd still works, and pipelined requests come back in order.
test('accepted: OWS around values, CHUNKED, chunk extensions, trailers, pipelining in order', async () => {
  backend.raw = ''
  const got = await exchange(port, [
    post('Content-Length:  5 \r\n', 'hello'),
    post('Transfer-Encoding: CHUNKED\r\n', '5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n'),
    'GET /third HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  ].join(''))
  assert.deepEqual(statuses(got), [200, 200, 200, 200])
  const urls = [...got.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
  assert.deepEqual(urls, ['/x', '/x', '/third', '/last'])
  assert.doesNotMatch(backend.raw, /smuggled/)
})

// A bad request pipelined behind good ones is answered after them, in order: answered
// first, the client would take the 400 for its first request's answer.
test('a bad request pipelined behind good ones: 200, 200, then 400 and close', async () => {
  backend.raw = ''
  const got = await exchange(port, `GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n${SMUGGLED}`)
  assert.deepEqual(statuses(got), [200, 200, 400], got)
  const urls = [...got.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
  assert.deepEqual(urls, ['/first', '/second'])
  assert.doesNotMatch(backend.raw, /smuggled/)
})

// The same when the bad bytes are in the body of a request already being proxied: its
// exchange answers the 400 in its turn, the upstream request is stopped.
test('a bad chunk size pipelined behind a good request: 200, then 400 and close', async () => {
  backend.raw = ''
  const got = await exchange(port, `GET /first HTTP/1.1\r\nHost: a\r\n\r\n${post('Transfer-Encoding: chunked\r\n', `5\r\nhello\r\nzz\r\n${SMUGGLED}`)}`)
  assert.deepEqual(statuses(got), [200, 400], got)
  assert.doesNotMatch(backend.raw, /smuggled/)
})

// An Upgrade request pipelined behind requests still being answered waits for their
// answers: Node hands its socket over as soon as it is parsed, and an answer written
// then would cut the responses before it (found by the request fuzzer).
test('a bad Upgrade request pipelined behind good ones: 200, 200, then 400 and close', async () => {
  backend.raw = ''
  const got = await exchange(port, `GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\nGET /up HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${SMUGGLED}`)
  assert.deepEqual(statuses(got), [200, 200, 400], got)
  const urls = [...got.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
  assert.deepEqual(urls, ['/first', '/second'])
  assert.doesNotMatch(backend.raw, /smuggled/)
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
  backend.raw = ''
  const got = await exchange(port, `POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: ${big}\r\n\r\n${SMUGGLED}${CANARY}`)
  assert.deepEqual(statuses(got), [413])
  assert.doesNotMatch(backend.raw, /smuggled|canary/)
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
