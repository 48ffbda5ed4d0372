// A pooled keep-alive connection that the backend closed: the backend here answers the
// first request on each connection (keep-alive, no `Connection: close`) and closes the
// connection as soon as a second request arrives on it, the race of a backend closing an
// idle connection just as it is reused. A GET goes out again on a new connection and
// succeeds, without counting against the server (max_fails=1 would take it out); a POST
// is never sent twice: 502, unless proxy_next_upstream lists non_idempotent.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { freePort, send } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

interface Received {
  /** Which connection (1, 2, …) carried it. */
  conn: number
  line: string
  /** Answered (true) or closed on (false). */
  answered: boolean
}

/** The backend: `how` closes with a FIN (`end`) or a reset (`reset`). */
async function closingBackend(how: 'end' | 'reset'): Promise<{ server: Server; port: number; received: Received[] }> {
  const received: Received[] = []
  let conns = 0
  const server = createServer((socket: Socket) => {
    const conn = ++conns
    let answered = false
    let buffer = Buffer.alloc(0)
    socket.on('error', () => undefined)
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      const line = buffer.toString('latin1').split('\r\n')[0]!
      if (answered) {
        received.push({ conn, line, answered: false })
        buffer = Buffer.alloc(0)
        if (how === 'reset') socket.resetAndDestroy()
        else socket.destroy()
        return
      }
      const end = buffer.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffer.subarray(0, end).toString('latin1'))?.[1] ?? 0)
      if (buffer.length < end + 4 + length) return
      answered = true
      received.push({ conn, line, answered: true })
      buffer = Buffer.alloc(0)
      const body = `${line} on ${conn}`
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise((resolve) => {
    server.close(() => resolve())
    server.unref()
  }))
  return { server, port: (server.address() as { port: number }).port, received }
}

/** switchyard in front of the backend; the second server is `down`, so the backend is not
 *  the upstream's only one and max_fails=1 applies to it (nginx never takes out a lone
 *  server). */
async function proxyTo(backend: number, location = ''): Promise<{ port: number; proc: SwitchyardProcess }> {
  const port = await freePort()
  const unused = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app {
    server 127.0.0.1:${backend} max_fails=1 fail_timeout=60s;
    server 127.0.0.1:${unused} down;
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; ${location} } }
}
`)
  cleanup.push(() => proc.stop())
  return { port, proc }
}

for (const how of ['end', 'reset'] as const) {
  // GETs on a connection closed under them (FIN or RST) are sent again on a new one: the
  // backend runs each exactly once, and the server is never taken out.
  test(`stale keep-alive connection (${how}): GET goes out again on a new connection`, async () => {
    const backend = await closingBackend(how)
    const { port, proc } = await proxyTo(backend.port)
    assert.equal((await send(port, { path: '/warm', timeout: 5000 })).status, 200)
    for (const path of ['/a', '/b', '/c']) {
      const reply = await send(port, { path, timeout: 5000 })
      assert.equal(reply.status, 200, `${path}: ${reply.body.toString()}`)
      const runs = backend.received.filter((r) => r.line === `GET ${path} HTTP/1.1`)
      assert.equal(runs.filter((r) => r.answered).length, 1, `${path} answered once: ${JSON.stringify(backend.received)}`)
      const [closed, answered] = [runs.find((r) => !r.answered), runs.find((r) => r.answered)]
      assert.ok(closed !== undefined, `${path} first went out on a reused connection`)
      assert.ok(answered!.conn > closed.conn, `${path} answered on a new connection`)
    }
    assert.match(proc.stderr, /upstream closed a kept-alive connection before answering .*sending the request again on a new connection/)
  })
}

// A POST on such a connection is not sent again (the backend may have run it): 502, and
// the server stays in (the next GET is served).
test('stale keep-alive connection: a POST is never sent twice', async () => {
  const backend = await closingBackend('end')
  const { port, proc } = await proxyTo(backend.port)
  assert.equal((await send(port, { path: '/warm', timeout: 5000 })).status, 200)
  const reply = await send(port, { method: 'POST', path: '/order', body: 'item=1', timeout: 5000 })
  assert.equal(reply.status, 502)
  const posts = backend.received.filter((r) => r.line.startsWith('POST /order'))
  assert.equal(posts.length, 1, JSON.stringify(backend.received))
  assert.match(proc.stderr, /upstream closed a kept-alive connection before answering .* not sent again/)
  assert.equal((await send(port, { path: '/next', timeout: 5000 })).status, 200, 'the server was not taken out')
})

// With non_idempotent listed, the POST goes out again like a GET (the config allows it).
test('stale keep-alive connection: non_idempotent lets a POST go out again', async () => {
  const backend = await closingBackend('end')
  const { port } = await proxyTo(backend.port, 'proxy_next_upstream error timeout non_idempotent;')
  assert.equal((await send(port, { path: '/warm', timeout: 5000 })).status, 200)
  const reply = await send(port, { method: 'POST', path: '/order', body: 'item=1', timeout: 5000 })
  assert.equal(reply.status, 200)
  assert.deepEqual(backend.received.filter((r) => r.line.startsWith('POST /order')).map((r) => r.answered), [false, true])
})
