// keepalive_requests on client connections (http/server/location) and keepalive_requests,
// keepalive_time, keepalive_timeout on pooled upstream connections: counted with real
// sockets, at the client and at the backend.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, get, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { freePort, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A backend that records, per request, which of its connections carried it. */
async function countingBackend(): Promise<{ up: TestUpstream; perConnection: number[] }> {
  const [up] = (await upstreams(1)) as [TestUpstream]
  const perConnection: number[] = []
  const ids = new WeakMap<Socket, number>()
  up.server.on('connection', (s: Socket) => ids.set(s, perConnection.push(0) - 1))
  up.server.on('request', (req: IncomingMessage) => {
    perConnection[ids.get(req.socket)!]!++
  })
  return { up, perConnection }
}

async function proxy(upstreamExtra: string, serverExtra: string, backendPort: number): Promise<number> {
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app { server 127.0.0.1:${backendPort}; ${upstreamExtra} }
  server { listen 127.0.0.1:${port}; ${serverExtra} location / { proxy_pass http://app; } }
}
`)
  cleanup.push(() => proc.stop())
  return port
}

/** GET through a keep-alive agent: status, Connection header, the client's local port. */
function viaAgent(port: number, agent: Agent): Promise<{ status: number; connection: string | undefined; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      const localPort = res.socket.localPort!
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, localPort }))
    })
    req.on('error', reject)
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')))
  })
}

// keepalive_requests 3: seven sequential requests on keep-alive use connections of 3, 3
// and 1 requests; the third on each says `Connection: close`.
test('client keepalive_requests 3: the third response closes the connection', async () => {
  const { up } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await proxy('', 'keepalive_requests 3;', up.port)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const replies = []
    for (let i = 0; i < 7; i++) replies.push(await viaAgent(port, agent))
    assert.ok(replies.every((r) => r.status === 200))
    const ports = replies.map((r) => r.localPort)
    assert.equal(new Set(ports.slice(0, 3)).size, 1)
    assert.equal(new Set(ports.slice(3, 6)).size, 1)
    assert.equal(new Set(ports).size, 3, `local ports ${ports.join(' ')}`)
    assert.deepEqual(replies.map((r) => r.connection), ['keep-alive', 'keep-alive', 'close', 'keep-alive', 'keep-alive', 'close', 'keep-alive'])
  } finally {
    agent.destroy()
  }
})

// Five requests pipelined in one write with keepalive_requests 2 (set in the location):
// two answers, then the connection closes; the other three never reach the backend.
test('client keepalive_requests: requests pipelined past the limit are not served', async () => {
  const { up } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app { server 127.0.0.1:${up.port}; }
  server { listen 127.0.0.1:${port}; location / { keepalive_requests 2; proxy_pass http://app; } }
}
`)
  cleanup.push(() => proc.stop())
  const socket = connect({ host: '127.0.0.1', port })
  let text = ''
  socket.setEncoding('latin1').on('data', (c: string) => (text += c))
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('error', () => undefined)
  socket.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\nGET /5 HTTP/1.1\r\nHost: a\r\n\r\n')
  const timer = setTimeout(() => socket.destroy(), 5000)
  await closed
  clearTimeout(timer)
  assert.equal(text.match(/HTTP\/1\.1 200/g)?.length, 2, text)
  assert.match(text, /\r\nConnection: close\r\n/i)
  assert.deepEqual(up.seen.map((s) => s.url), ['/1', '/2'])
})

// Upstream keepalive_requests 3: seven sequential requests open three connections to the
// backend, none carrying more than three requests.
test('upstream keepalive_requests 3: a pooled connection carries at most three requests', async () => {
  const { up, perConnection } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await proxy('keepalive_requests 3;', '', up.port)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (let i = 0; i < 7; i++) assert.equal((await viaAgent(port, agent)).status, 200)
  } finally {
    agent.destroy()
  }
  assert.deepEqual(perConnection, [3, 3, 1])
})

// keepalive_requests 1: every upstream request on a new connection.
test('upstream keepalive_requests 1: one request per connection', async () => {
  const { up, perConnection } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await proxy('keepalive_requests 1;', '', up.port)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (let i = 0; i < 4; i++) assert.equal((await viaAgent(port, agent)).status, 200)
  } finally {
    agent.destroy()
  }
  assert.deepEqual(perConnection, [1, 1, 1, 1])
})

// keepalive_time 1s: as nginx, the request that finds its connection older than that is
// the connection's last (it says `Connection: close`); the next request gets a new one.
test('upstream keepalive_time: an old connection is replaced', async () => {
  const { up, perConnection } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await proxy('keepalive_time 1s;', '', up.port)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    assert.equal((await viaAgent(port, agent)).status, 200)
    assert.equal((await viaAgent(port, agent)).status, 200)
    await pause(1500)
    assert.equal((await viaAgent(port, agent)).status, 200)
    assert.equal((await viaAgent(port, agent)).status, 200)
  } finally {
    agent.destroy()
  }
  assert.deepEqual(perConnection, [3, 1])
})

// Upstream keepalive_timeout 300ms: a connection idle for 1 s is closed; one idle for
// a moment is reused.
test('upstream keepalive_timeout: idle connections close after it', async () => {
  const { up, perConnection } = await countingBackend()
  cleanup.push(() => up.close())
  const port = await proxy('keepalive_timeout 300ms;', '', up.port)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    assert.equal((await viaAgent(port, agent)).status, 200)
    await pause(20)
    assert.equal((await viaAgent(port, agent)).status, 200)
    await pause(1000)
    assert.equal((await viaAgent(port, agent)).status, 200)
  } finally {
    agent.destroy()
  }
  assert.deepEqual(perConnection, [2, 1])
})
