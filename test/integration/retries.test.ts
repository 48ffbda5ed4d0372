// proxy_next_upstream as nginx: what moves to another peer, what never does (an unsafe
// request that reached a peer, a response already started), the caps, 504 on timeout.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, sha256, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

async function setup(directives: string, n = 2): Promise<{ ups: TestUpstream[]; port: number; proc: SwitchyardProcess }> {
  const ups = await upstreams(n)
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  upstream app {
    ${ups.map((u) => `server 127.0.0.1:${u.port};`).join('\n    ')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      ${directives}
    }
  }
}
`)
  cleanup.push(async () => {
    await proc.stop()
    await Promise.all(ups.map((u) => u.close()))
  })
  return { ups, port, proc }
}

/** The first peer drops the connection after reading the request (it reached a backend). */
function dropAfterRead(u: TestUpstream): void {
  u.handler = (req) => req.socket.destroy()
}

// A POST that reached a peer is not sent to a second one (it might have run).
test('a POST already sent is not retried', async () => {
  const { ups: [a, b], port } = await setup('')
  dropAfterRead(a!)
  const r = await send(port, { method: 'POST', body: 'order=1' })
  assert.equal(r.status, 502)
  assert.equal(a!.seen.length, 1)
  assert.equal(b!.seen.length, 0)
})

// The same failure on a GET moves to the next peer: the client sees 200.
test('a GET whose peer dropped the connection is retried on the next peer', async () => {
  const { ups: [a, b], port } = await setup('')
  dropAfterRead(a!)
  const r = await send(port)
  assert.equal(r.status, 200)
  assert.equal(a!.seen.length, 1)
  assert.equal(b!.seen.length, 1)
})

// With non_idempotent listed, the POST may move on.
test('non_idempotent lets a sent POST move on', async () => {
  const { ups: [a, b], port } = await setup('proxy_next_upstream error timeout non_idempotent;')
  dropAfterRead(a!)
  const r = await send(port, { method: 'POST', body: 'x' })
  assert.equal(r.status, 200)
  assert.equal(b!.seen.length, 1)
})

/** A refused port first, then one live upstream; `serverLevel` goes into the server block. */
async function deadFirst(serverLevel = ''): Promise<{ port: number }> {
  const ups = await upstreams(1)
  const dead = await freePort()
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  upstream app { server 127.0.0.1:${dead}; server 127.0.0.1:${ups[0]!.port}; }
  server { listen 127.0.0.1:${port}; ${serverLevel} location / { proxy_pass http://app; } }
}
`)
  cleanup.push(async () => {
    await proc.stop()
    await ups[0]!.close()
  })
  return { port }
}

// A POST to a refused port was never sent: it always moves on.
test('a POST whose connect was refused moves on', async () => {
  const { port } = await deadFirst()
  const r = await send(port, { method: 'POST', body: 'payload' })
  assert.equal(r.status, 200)
  assert.equal(JSON.parse(r.body.toString()).bodyLength, 7)
})

// http_503 listed: a 503 moves on; not listed (default): the 503 is passed to the client.
test('proxy_next_upstream http_503 moves on; by default a 503 is passed through', async () => {
  const listed = await setup('proxy_next_upstream error timeout http_503;')
  listed.ups[0]!.handler = (_q, res) => res.writeHead(503).end('busy')
  assert.equal((await send(listed.port)).status, 200)

  const plain = await setup('')
  plain.ups[0]!.handler = (_q, res) => res.writeHead(503).end('busy')
  const r = await send(plain.port)
  assert.equal(r.status, 503)
  assert.equal(r.body.toString(), 'busy')
})

// On the last try, a listed status is the response the client gets.
test('the last try passes a listed status through', async () => {
  const { ups, port } = await setup('proxy_next_upstream http_502;')
  for (const u of ups) u.handler = (_q, res) => res.writeHead(502).end('from upstream')
  const r = await send(port)
  assert.equal(r.status, 502)
  assert.equal(r.body.toString(), 'from upstream')
  assert.equal(ups[0]!.seen.length + ups[1]!.seen.length, 2)
})

// proxy_next_upstream off: an error is answered 502 without trying another peer.
test('proxy_next_upstream off: no second peer', async () => {
  const { ups: [a, b], port } = await setup('proxy_next_upstream off;')
  dropAfterRead(a!)
  const r = await send(port)
  assert.equal(r.status, 502)
  assert.equal(b!.seen.length, 0)
})

// proxy_next_upstream_tries caps the peers one request may use.
test('proxy_next_upstream_tries 2 stops after two peers', async () => {
  const { ups, port } = await setup('proxy_next_upstream_tries 2;', 3)
  for (const u of ups) dropAfterRead(u)
  const r = await send(port)
  assert.equal(r.status, 502)
  assert.equal(ups.reduce((n, u) => n + u.seen.length, 0), 2)
})

// proxy_read_timeout: a peer that never answers → 504 Gateway Time-out.
test('proxy_read_timeout on the last try → 504', async () => {
  const { ups, port } = await setup('proxy_read_timeout 300ms; proxy_next_upstream error;')
  for (const u of ups) u.handler = () => undefined // never answer
  const r = await send(port)
  assert.equal(r.status, 504)
  assert.match(r.body.toString(), /504 Gateway Time-out/)
  assert.ok(r.ms >= 250 && r.ms < 3000, `${r.ms} ms`)
})

// A response cut mid-body is never padded or retried: the client connection closes.
test('a response cut mid-body stays visibly cut', async () => {
  const { ups, port } = await setup('')
  for (const u of ups) {
    u.handler = (_q, res) => {
      res.writeHead(200, { 'content-length': '1000' })
      res.write('x'.repeat(100))
      setTimeout(() => res.socket?.destroy(), 50)
    }
  }
  await assert.rejects(send(port), /aborted|ECONNRESET|socket hang up|terminated/i)
  assert.equal(ups[0]!.seen.length + ups[1]!.seen.length, 1)
})

// A body larger than the replay buffer that partly went to a failed peer cannot be sent
// again, even with non_idempotent: 502, and the second peer never sees a truncated copy.
test('a large body already streamed to a failed peer is not replayed', async () => {
  const { ups: [a, b], port } = await setup('proxy_next_upstream error timeout non_idempotent; client_max_body_size 2m;')
  dropAfterRead(a!)
  const r = await send(port, { method: 'PUT', body: Buffer.alloc(1024 * 1024, 7) })
  assert.equal(r.status, 502)
  assert.equal(b!.seen.length, 0)
})

// A large body whose first peer refused the connection reaches the next peer whole.
test('a 1 MiB body moves intact past a refused peer', async () => {
  const { port } = await deadFirst('client_max_body_size 2m;')
  const body = Buffer.alloc(1024 * 1024, 9)
  const r = await send(port, { method: 'POST', body })
  assert.equal(r.status, 200)
  assert.equal(JSON.parse(r.body.toString()).bodySha256, sha256(body))
})

// A backend that answers with something that is not HTTP → 502, and the proxy lives on.
test('an invalid response from the only peer → 502, and the proxy keeps serving', async () => {
  const { createServer } = await import('node:net')
  const garbage = createServer((s) => {
    s.once('data', () => s.end('this is not http\r\n\r\n'))
  })
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r))
  const gport = (garbage.address() as { port: number }).port
  const [good] = await upstreams(1)
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  server {
    listen 127.0.0.1:${port};
    location /bad/ { proxy_pass http://127.0.0.1:${gport}; }
    location / { proxy_pass http://127.0.0.1:${good!.port}; }
  }
}
`)
  cleanup.push(async () => {
    await proc.stop()
    garbage.close()
    await good!.close()
  })
  const r = await send(port, { path: '/bad/x' })
  assert.equal(r.status, 502)
  assert.match(proc.stderr, /invalid header/)
  assert.equal((await send(port, { path: '/ok' })).status, 200)
})
