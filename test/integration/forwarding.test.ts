// What crosses the proxy: headers the backend sees, hop-by-hop hygiene both ways, bodies
// streamed intact both ways, bodiless responses, the proxy_pass URI rule, 413.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import { freePort, send, sha256, TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

let upstream: TestUpstream
let proc: SwitchyardProcess
let port: number

before(async () => {
  upstream = await new TestUpstream().listen()
  port = await freePort()
  ;({ proc } = await startSwitchyard(`events {}
http {
  upstream app { server 127.0.0.1:${upstream.port}; }
  server {
    listen 127.0.0.1:${port};
    server_name example.test;
    location / {
      proxy_pass http://app;
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Removed "";
      client_max_body_size 16m;
    }
    location /default-host/ {
      proxy_pass http://app;
    }
    location /api/ {
      proxy_pass http://app/v2/;
    }
    location = /exact {
      proxy_pass http://app/other;
    }
    location /small/ {
      proxy_pass http://app;
      client_max_body_size 10;
    }
    location /nowhere/ {
    }
  }
}
`))
})

after(async () => {
  await proc.stop()
  await upstream.close()
})

const last = () => upstream.seen.at(-1)!

// The tutorial's proxy_set_header lines reach the backend with nginx's values.
test('headers the backend sees: Host, X-Real-IP, X-Forwarded-For appended, X-Forwarded-Proto', async () => {
  const r = await send(port, { headers: { host: 'Example.Test:8080', 'x-forwarded-for': '203.0.113.7', 'x-removed': 'client value' } })
  assert.equal(r.status, 200)
  const h = last().headers
  assert.equal(h.host, 'example.test')
  assert.equal(h['x-real-ip'], '127.0.0.1')
  assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
  assert.equal(h['x-forwarded-proto'], 'http')
  assert.equal(h['x-removed'], undefined, 'proxy_set_header NAME "" removes the header')
})

// Without proxy_set_header Host, nginx sends Host: $proxy_host (the upstream name).
test('default Host is the upstream name', async () => {
  await send(port, { path: '/default-host/x', headers: { host: 'client.example' } })
  assert.equal(last().headers.host, 'app')
})

// Hop-by-hop request headers and those named in Connection never reach the backend.
test('hop-by-hop request headers are stripped', async () => {
  await send(port, { headers: { connection: 'keep-alive, x-secret', 'x-secret': 's', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-connection': 'x', 'x-kept': 'yes' } })
  const h = last().headers
  assert.equal(h['x-secret'], undefined)
  assert.equal(h['keep-alive'], undefined)
  assert.equal(h.te, undefined)
  assert.equal(h['proxy-connection'], undefined)
  assert.equal(h['x-kept'], 'yes')
})

// A client cannot strip a header the proxy adds by naming it in Connection.
test('Connection: x-real-ip does not remove the proxy-added header', async () => {
  await send(port, { headers: { connection: 'x-real-ip, x-forwarded-for' } })
  assert.equal(last().headers['x-real-ip'], '127.0.0.1')
  assert.equal(last().headers['x-forwarded-for'], '127.0.0.1')
})

// Hop-by-hop response headers from the backend are stripped too.
test('hop-by-hop response headers are stripped', async () => {
  upstream.handler = (_req, res) => {
    res.writeHead(200, { connection: 'x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=99', 'x-public': 'ok', 'content-length': '2' })
    res.end('ok')
  }
  try {
    const r = await send(port)
    assert.equal(r.headers['x-internal'], undefined)
    assert.notEqual(r.headers['keep-alive'], 'timeout=99')
    assert.equal(r.headers['x-public'], 'ok')
  } finally {
    upstream.handler = null
  }
})

// An 8 MiB POST streams through intact (compared by SHA-256 on both sides).
test('8 MiB request body round trip by SHA-256', async () => {
  const body = randomBytes(8 * 1024 * 1024)
  const r = await send(port, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(r.status, 200)
  const seen = JSON.parse(r.body.toString())
  assert.equal(seen.bodyLength, body.length)
  assert.equal(seen.bodySha256, sha256(body))
})

// Chunked request bodies and chunked/streamed response bodies pass intact.
test('chunked request and response bodies', async () => {
  const parts = Array.from({ length: 20 }, () => randomBytes(10_000))
  async function* gen() {
    for (const p of parts) {
      yield p
      await new Promise((r) => setTimeout(r, 2))
    }
  }
  const r = await send(port, { method: 'PUT', body: gen() })
  const seen = JSON.parse(r.body.toString())
  assert.equal(seen.bodySha256, sha256(Buffer.concat(parts)))

  const big = randomBytes(3 * 1024 * 1024)
  upstream.handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }) // no length: chunked
    let i = 0
    const step = () => {
      while (i < big.length) {
        const more = res.write(big.subarray(i, i + 65536))
        i += 65536
        if (!more) return res.once('drain', step)
      }
      res.end()
    }
    step()
  }
  try {
    const down = await send(port)
    assert.equal(down.headers['transfer-encoding'], 'chunked')
    assert.equal(sha256(down.body), sha256(big))
  } finally {
    upstream.handler = null
  }
})

// HEAD, 204 and 304 carry no body and leave the connection usable.
test('HEAD, 204 and 304 carry no body', async () => {
  const head = await send(port, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body.length, 0)
  for (const status of [204, 304]) {
    upstream.handler = (_req, res) => {
      res.writeHead(status, { etag: '"x"' })
      res.end()
    }
    try {
      const r = await send(port)
      assert.equal(r.status, status)
      assert.equal(r.body.length, 0)
    } finally {
      upstream.handler = null
    }
  }
})

// nginx's proxy_pass URI rule: the matched location prefix is replaced by the URI part.
test('proxy_pass with a URI part rewrites the matched prefix', async () => {
  await send(port, { path: '/api/users?id=7' })
  assert.equal(last().url, '/v2/users?id=7')
  await send(port, { path: '/exact' })
  assert.equal(last().url, '/other')
  await send(port, { path: '/default-host/keep%20me?q=1' })
  assert.equal(last().url, '/default-host/keep%20me?q=1', 'without a URI part the request target passes unchanged')
})

// client_max_body_size: a declared Content-Length over the limit → 413, nothing forwarded.
test('client_max_body_size answers 413 and forwards nothing', async () => {
  const before = upstream.seen.length
  const r = await send(port, { method: 'POST', path: '/small/x', body: 'x'.repeat(11) })
  assert.equal(r.status, 413)
  assert.equal(upstream.seen.length, before)
  const ok = await send(port, { method: 'POST', path: '/small/x', body: 'x'.repeat(10) })
  assert.equal(ok.status, 200)
})

// A location without proxy_pass serves nothing: 404.
test('a location without proxy_pass answers 404', async () => {
  const r = await send(port, { path: '/nowhere/file' })
  assert.equal(r.status, 404)
})

// WebSocket-style upgrade: tunnelled both ways with nginx's recipe; closing one side closes the other.
test('upgrade requests are tunnelled when the config passes Upgrade', async () => {
  const { createServer } = await import('node:http')
  const ws = createServer()
  let backendSide: import('node:stream').Duplex | null = null
  ws.on('upgrade', (req, socket) => {
    backendSide = socket
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nX-Saw-Connection: ${req.headers.connection}\r\n\r\n`)
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])))
  })
  await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r))
  const wsPort = (ws.address() as { port: number }).port
  const listen = await freePort()
  const { proc: p } = await startSwitchyard(`events {}
http {
  server {
    listen 127.0.0.1:${listen};
    location /ws {
      proxy_pass http://127.0.0.1:${wsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }
  }
}
`)
  try {
    const sock = connect(listen, '127.0.0.1')
    let got = ''
    sock.on('data', (d) => (got += d.toString()))
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    const deadline = Date.now() + 5000
    while (!got.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.match(got, /^HTTP\/1.1 101/)
    assert.match(got, /X-Saw-Connection: upgrade/i)
    sock.write('hello')
    while (!got.includes('echo:hello') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.ok(got.includes('echo:hello'))
    // Closing the backend side closes the client side.
    const closed = new Promise((r) => sock.on('close', r))
    backendSide!.destroy()
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('client side not closed')), 3000))])
  } finally {
    await p.stop()
    ws.close()
  }
})

// Requests keep flowing over one kept-alive client connection.
test('client keep-alive: many requests on one connection', async () => {
  const { Agent } = await import('node:http')
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  for (let i = 0; i < 20; i++) {
    const r = await send(port, { agent })
    assert.equal(r.status, 200)
  }
  agent.destroy()
})
