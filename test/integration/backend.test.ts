// The tutorial's service (src/demo/backend.ts) over real sockets on 127.0.0.1.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent } from 'node:http'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createBackend, type Backend } from '../../src/demo/backend.js'
import { send } from '../helpers/net.js'

/** Everything a raw socket receives until the server closes it (or `timeoutMs` passes). */
async function rawExchange(port: number, text: string, timeoutMs = 2000): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(text)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const timer = setTimeout(() => socket.destroy(), timeoutMs)
  await once(socket, 'close')
  clearTimeout(timer)
  return Buffer.concat(chunks).toString('utf8')
}

let backend: Backend
before(async () => {
  backend = await createBackend({ host: '127.0.0.1', port: 0 })
})
after(() => backend.close())

const expectedBody = (port: number): Buffer => Buffer.from(`{"code":200,"msg":"测试","port":${port}}\n`, 'utf8')

// Port 0 must report the port actually bound, or nobody can reach the service.
test('port 0 binds a free port and reports it', () => {
  assert.ok(backend.port > 0)
  const address = backend.server.address()
  assert.ok(address !== null && typeof address === 'object')
  assert.equal(address.port, backend.port)
})

// The tutorial's answer, byte for byte: raw UTF-8 Chinese (JSON_AS_ASCII = False), not \u escapes.
test('GET / answers the tutorial JSON as UTF-8 with application/json', async () => {
  const reply = await send(backend.port)
  assert.equal(reply.status, 200)
  assert.equal(reply.headers['content-type'], 'application/json')
  assert.deepEqual(reply.body, expectedBody(backend.port))
  assert.equal(reply.headers['content-length'], String(expectedBody(backend.port).length))
})

// The demo counts ports from these; both must name the serving port.
test('the serving port is in X-Served-By and the JSON port field', async () => {
  const reply = await send(backend.port, { path: '/start1?x=1' })
  assert.equal(reply.status, 200)
  assert.equal(reply.headers['x-served-by'], String(backend.port))
  assert.equal(JSON.parse(reply.body.toString('utf8')).port, backend.port)
})

// Every method the tutorial's routes declare (that Node can parse) answers the same JSON.
test('GET, POST, PUT and DELETE on / and /start1 all answer 200', async () => {
  for (const path of ['/', '/start1']) {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      const reply = await send(backend.port, { method, path })
      assert.equal(reply.status, 200, `${method} ${path}`)
      assert.deepEqual(reply.body, expectedBody(backend.port), `${method} ${path}`)
    }
  }
})

// HEAD comes with GET in Flask; headers only.
test('HEAD / answers 200 with the headers and no body', async () => {
  const reply = await send(backend.port, { method: 'HEAD' })
  assert.equal(reply.status, 200)
  assert.equal(reply.headers['content-length'], String(expectedBody(backend.port).length))
  assert.equal(reply.body.length, 0)
})

// flask_cors: `*` without an Origin, the Origin echoed (with Vary) when there is one.
test('CORS headers on every answer, like flask_cors', async () => {
  const plain = await send(backend.port)
  assert.equal(plain.headers['access-control-allow-origin'], '*')
  const withOrigin = await send(backend.port, { headers: { Origin: 'http://example.test' } })
  assert.equal(withOrigin.headers['access-control-allow-origin'], 'http://example.test')
  assert.equal(withOrigin.headers.vary, 'Origin')
  const missing = await send(backend.port, { path: '/missing' })
  assert.equal(missing.headers['access-control-allow-origin'], '*')
})

// A browser preflight must be allowed, or cross-origin pages cannot call the service.
test('OPTIONS preflight answers 200 with Allow-Methods and the requested headers', async () => {
  const reply = await send(backend.port, {
    method: 'OPTIONS',
    path: '/start1',
    headers: {
      Origin: 'http://example.test',
      'Access-Control-Request-Method': 'PUT',
      'Access-Control-Request-Headers': 'content-type, x-token',
    },
  })
  assert.equal(reply.status, 200)
  assert.equal(reply.body.length, 0)
  assert.equal(reply.headers['access-control-allow-origin'], 'http://example.test')
  const methods = String(reply.headers['access-control-allow-methods']).split(', ')
  for (const m of ['GET', 'POST', 'PUT', 'DELETE']) assert.ok(methods.includes(m), m)
  assert.equal(reply.headers['access-control-allow-headers'], 'content-type, x-token')
  assert.equal(reply.headers.allow, 'CATCH, DELETE, GET, HEAD, OPTIONS, POST, PUT')
})

// A request body is read to its end, so the kept-alive connection serves the next request.
test('POST with a body answers 200 and the connection is reused', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  let connections = 0
  const count = (): void => void connections++
  backend.server.on('connection', count)
  try {
    const body = 'x'.repeat(256 * 1024)
    const post = await send(backend.port, { method: 'POST', body, agent, headers: { 'Content-Type': 'text/plain' } })
    assert.equal(post.status, 200)
    assert.deepEqual(post.body, expectedBody(backend.port))
    const next = await send(backend.port, { agent })
    assert.equal(next.status, 200)
    assert.equal(connections, 1, 'both requests on one connection')
  } finally {
    backend.server.off('connection', count)
    agent.destroy()
  }
})

// Unknown paths are JSON 404s (Flask routes are exact: /start1/ is not /start1).
test('other paths answer 404 JSON', async () => {
  for (const path of ['/missing', '/start1/', '/start2']) {
    const reply = await send(backend.port, { path })
    assert.equal(reply.status, 404, path)
    assert.equal(reply.headers['content-type'], 'application/json')
    assert.equal(JSON.parse(reply.body.toString('utf8')).code, 404)
  }
})

// Methods the routes do not declare are 405 with Allow, as Flask answers.
test('other methods answer 405 with Allow', async () => {
  for (const method of ['PATCH', 'PROPFIND']) {
    const reply = await send(backend.port, { method, body: '{}' })
    assert.equal(reply.status, 405, method)
    assert.equal(reply.headers.allow, 'CATCH, DELETE, GET, HEAD, OPTIONS, POST, PUT')
    assert.equal(JSON.parse(reply.body.toString('utf8')).code, 405)
  }
})

// Documents a known limit: Node's HTTP parser refuses the tutorial's CATCH before any
// handler runs. If this starts failing, Node parses CATCH and the route already serves it.
test('CATCH is refused by the HTTP parser with 400', async () => {
  const text = await rawExchange(backend.port, 'CATCH / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.match(text, /^HTTP\/1\.1 400 /)
})

// The demo "kills" a service with close(): every connection must drop at once, a kept-alive
// one in the middle of its next request included (server.close() alone would wait for it).
test('close() drops kept-alive connections and stops listening', { timeout: 5000 }, async () => {
  const victim = await createBackend({ host: '127.0.0.1', port: 0 })
  const socket: Socket = connect(victim.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  const [first] = (await once(socket, 'data')) as [Buffer]
  assert.match(first.toString('utf8'), /^HTTP\/1\.1 200 /)
  // The next request on the same connection sends 10 of its 100 body bytes and stalls.
  socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789')
  await new Promise((resolve) => setTimeout(resolve, 50))

  const started = performance.now()
  const closed = once(socket, 'close')
  await victim.close()
  await closed
  assert.ok(performance.now() - started < 1000, 'the connection closed at once')

  const refused = connect(victim.port, '127.0.0.1')
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
  assert.equal(err.code, 'ECONNREFUSED')
})
