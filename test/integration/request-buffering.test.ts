// proxy_request_buffering and client_body_buffer_size: what of a request body is read
// ahead and kept, and so whether the request can go to a second server after the first
// failed. proxy_send_timeout: a server that takes none of a large body is given up on.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { freePort, send, sha256, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function rawServer(onSocket: (s: Socket) => void): Promise<{ port: number; accepted: () => number; received: () => number }> {
  let accepted = 0
  let received = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    accepted++
    sockets.add(s)
    s.on('error', () => undefined)
    s.on('data', (c: Buffer) => (received += c.length))
    onSocket(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as { port: number }).port, accepted: () => accepted, received: () => received }
}

/** A server that reads what comes for 100 ms, then resets the connection unanswered. */
const resetAfterReading = (): ReturnType<typeof rawServer> => rawServer((s) => void setTimeout(() => s.resetAndDestroy(), 100))

/** switchyard: `first`, then a good backend (round robin tries `first` first). */
async function proxy(first: number, good: number, location: string): Promise<{ port: number; proc: SwitchyardProcess }> {
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app {
    server 127.0.0.1:${first} max_fails=0;
    server 127.0.0.1:${good};
  }
  server { listen 127.0.0.1:${port}; client_max_body_size 64m; location / { proxy_pass http://app; ${location} } }
}
`)
  cleanup.push(() => proc.stop())
  return { port, proc }
}

async function goodBackend(): Promise<TestUpstream> {
  const [up] = (await upstreams(1)) as [TestUpstream]
  cleanup.push(() => up.close())
  return up
}

const bodyOf = (reply: { body: Buffer }): { bodySha256: string; bodyLength: number } => JSON.parse(reply.body.toString()) as { bodySha256: string; bodyLength: number }

// Buffering on (the default): a POST whose first server refuses the connection reaches
// the second one whole, for a body within client_body_buffer_size and for one larger
// (nothing of it had gone out yet).
for (const size of [10 * 1024, 1024 * 1024]) {
  test(`buffering on: a ${size / 1024} KiB POST fails over from a refused server, body intact`, async () => {
    const refused = await freePort()
    const good = await goodBackend()
    const { port } = await proxy(refused, good.port, '')
    const body = randomBytes(size)
    const reply = await send(port, { method: 'POST', path: '/upload', body, timeout: 10_000 })
    assert.equal(reply.status, 200)
    assert.deepEqual(bodyOf(reply), { ...bodyOf(reply), bodySha256: sha256(body), bodyLength: size })
    assert.equal(good.seen.length, 1)
  })
}

// A PUT whose first server read the body and then reset: with buffering on and the body
// within client_body_buffer_size, the kept body goes to the second server.
test('buffering on: a body within the buffer is sent again after a started attempt failed', async () => {
  const first = await resetAfterReading()
  const good = await goodBackend()
  const { port } = await proxy(first.port, good.port, '')
  const body = randomBytes(12 * 1024)
  const reply = await send(port, { method: 'PUT', body, timeout: 10_000 })
  assert.equal(reply.status, 200)
  assert.ok(first.received() > body.length, 'the first server got the body')
  assert.equal(good.seen[0]?.bodySha256, sha256(body))
})

// The same with a body larger than client_body_buffer_size: part of it streamed to the
// first server and was not kept, so it is never sent again: 502.
test('buffering on: a body larger than the buffer is not sent again once started', async () => {
  const first = await resetAfterReading()
  const good = await goodBackend()
  const { port } = await proxy(first.port, good.port, 'client_body_buffer_size 16k;')
  const body = randomBytes(1024 * 1024)
  const reply = await send(port, { method: 'PUT', body, timeout: 10_000 })
  assert.equal(reply.status, 502)
  assert.equal(good.seen.length, 0)
})

// client_body_buffer_size 2m keeps a 1 MiB body whole: the same request now fails over.
test('client_body_buffer_size 2m: a 1 MiB body is kept and sent again', async () => {
  const first = await resetAfterReading()
  const good = await goodBackend()
  const { port } = await proxy(first.port, good.port, 'client_body_buffer_size 2m;')
  const body = randomBytes(1024 * 1024)
  const reply = await send(port, { method: 'PUT', body, timeout: 10_000 })
  assert.equal(reply.status, 200)
  assert.equal(good.seen[0]?.bodySha256, sha256(body))
})

// Buffering off: the body streams; once the first server got some of it, the request is
// not sent again, even a small body: 502, and the second server never sees it.
test('buffering off: a started body is never sent again', async () => {
  const first = await resetAfterReading()
  const good = await goodBackend()
  const { port } = await proxy(first.port, good.port, 'proxy_request_buffering off;')
  const body = randomBytes(12 * 1024)
  const reply = await send(port, { method: 'PUT', body, timeout: 10_000 })
  assert.equal(reply.status, 502)
  assert.ok(first.received() > 0)
  assert.equal(good.seen.length, 0)
})

// Buffering off still fails over a refused connection (nothing of the body was read).
test('buffering off: a refused server is still failed over, body intact', async () => {
  const refused = await freePort()
  const good = await goodBackend()
  const { port } = await proxy(refused, good.port, 'proxy_request_buffering off;')
  const body = randomBytes(100 * 1024)
  const reply = await send(port, { method: 'POST', body, timeout: 10_000 })
  assert.equal(reply.status, 200)
  assert.equal(good.seen[0]?.bodySha256, sha256(body))
})

/** Send the request head and half the body, wait, then the rest; reports whether the
 *  backend had a connection while the body was incomplete. */
async function slowBody(location: string): Promise<{ status: number; connectedEarly: boolean }> {
  const good = await goodBackend()
  let connections = 0
  good.server.on('connection', () => connections++)
  const unused = await freePort()
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app { server 127.0.0.1:${good.port}; server 127.0.0.1:${unused} down; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; ${location} } }
}
`)
  cleanup.push(() => proc.stop())
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => undefined)
  let text = ''
  socket.setEncoding('latin1').on('data', (c: string) => (text += c))
  socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\nhalf')
  await pause(400)
  const connectedEarly = connections > 0
  socket.write('done')
  for (let i = 0; i < 100 && !/\r\n\r\n/.test(text); i++) await pause(50)
  socket.destroy()
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), connectedEarly }
}

// Buffering on: no server is picked (or connected to) until the body is in.
test('buffering on: the server is picked only once the body has arrived', async () => {
  const r = await slowBody('')
  assert.equal(r.status, 200)
  assert.equal(r.connectedEarly, false)
})

// Buffering off: the request goes to the server at once, the body follows.
test('buffering off: the request goes out before the body is complete', async () => {
  const r = await slowBody('proxy_request_buffering off;')
  assert.equal(r.status, 200)
  assert.equal(r.connectedEarly, true)
})

// proxy_send_timeout 1s: a server that takes the request head and then reads nothing of
// a 32 MiB body gets 1 s (after the socket buffers filled) before switchyard gives up: 504
// and nginx's log line.
test('proxy_send_timeout: a server that stops reading the body → 504', async () => {
  const stuck = await rawServer((s) => s.once('data', () => s.pause()))
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app { server 127.0.0.1:${stuck.port}; }
  server { listen 127.0.0.1:${port}; client_max_body_size 0; location / { proxy_pass http://app; proxy_send_timeout 1s; } }
}
`)
  cleanup.push(() => proc.stop())
  const started = performance.now()
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/big', agent: false }, (res) => {
      resolve(res.statusCode!)
      res.resume()
    })
    req.on('error', () => undefined)
    req.setTimeout(30_000, () => reject(new Error('no answer within 30 s')))
    req.end(Buffer.alloc(32 * 1024 * 1024, 1))
  })
  const ms = performance.now() - started
  assert.equal(status, 504)
  assert.ok(ms >= 900 && ms < 20_000, `${ms} ms`)
  await proc.waitFor('upstream timed out (110: Connection timed out) while sending request to upstream')
})
