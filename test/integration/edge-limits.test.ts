// Client limits, timeouts, allow/deny and real-ip, each with nginx's status code,
// through real sockets on loopback.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { freePort, send, TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

let backend: TestUpstream
let sy: SwitchyardProcess
let port = 0

before(async () => {
  backend = await new TestUpstream().listen()
  port = await freePort()
  sy = (await startSwitchyard(`events {}
http {
  client_header_timeout 1s;
  keepalive_timeout 1s;
  large_client_header_buffers 2 1k;
  server {
    listen 127.0.0.1:${port};
    set_real_ip_from 127.0.0.0/8;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    proxy_set_header X-Real-IP $remote_addr;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
    location /private { deny 10.9.9.9; allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`)).proc
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** Write `bytes` (optionally in timed parts); resolve with what came back by close (≤ 5 s). */
function rawExchange(parts: Array<string | number>): Promise<{ data: string; ms: number }> {
  const started = performance.now()
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => s.destroy(), 5000)
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ data, ms: performance.now() - started })
    })
    void (async () => {
      for (const p of parts) {
        if (typeof p === 'number') await new Promise((r) => setTimeout(r, p))
        else if (!s.destroyed) s.write(p)
      }
    })()
  })
}

// client_header_timeout: a header that never completes gets 408 and the connection closes.
test('client_header_timeout 1s → 408 and close', async () => {
  const { data, ms } = await rawExchange(['GET / HTTP/1.1\r\nHost: a\r\n', 3000, 'X: y\r\n\r\n'])
  assert.match(data, /^HTTP\/1\.1 408 /)
  assert.ok(ms < 2900, `took ${ms} ms`)
})

// keepalive_timeout: an idle kept-alive connection is closed after it.
test('keepalive_timeout 1s closes an idle connection', async () => {
  const { data, ms } = await rawExchange(['GET / HTTP/1.1\r\nHost: a\r\n\r\n'])
  assert.match(data, /^HTTP\/1\.1 200 /)
  assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`)
})

// large_client_header_buffers 2 1k: request line over 1k → 414, one header line over 1k →
// 400, all headers over 2×1k (+1k) → 431.
test('large_client_header_buffers: 414, 400, 431', async () => {
  const longLine = await rawExchange([`GET /${'a'.repeat(1100)} HTTP/1.1\r\nHost: a\r\n\r\n`])
  assert.match(longLine.data, /^HTTP\/1\.1 414 /)
  const longHeader = await rawExchange([`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(1100)}\r\n\r\n`])
  assert.match(longHeader.data, /^HTTP\/1\.1 400 /)
  const many = Array.from({ length: 8 }, (_, i) => `X-${i}: ${'c'.repeat(500)}\r\n`).join('')
  const tooMany = await rawExchange([`GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`])
  assert.match(tooMany.data, /^HTTP\/1\.1 431 /)
})

// allow/deny: first match wins; nothing is forwarded on 403. The client address comes
// from X-Forwarded-For because 127.0.0.1 is trusted (set_real_ip_from).
test('allow/deny by the real client address, first match wins', async () => {
  const before = backend.seen.length
  const denied = await send(port, { path: '/private', headers: { 'x-forwarded-for': '10.9.9.9' } })
  assert.equal(denied.status, 403)
  const other = await send(port, { path: '/private', headers: { 'x-forwarded-for': '192.0.2.1' } })
  assert.equal(other.status, 403)
  assert.equal(backend.seen.length, before)
  const allowed = await send(port, { path: '/private', headers: { 'x-forwarded-for': '10.1.2.3' } })
  assert.equal(allowed.status, 200)
  assert.equal(backend.seen.at(-1)!.headers['x-real-ip'], '10.1.2.3')
})

// real_ip_recursive on: trusted addresses at the right of X-Forwarded-For are skipped.
test('real_ip_recursive skips trusted hops', async () => {
  await send(port, { path: '/', headers: { 'x-forwarded-for': '203.0.113.7, 127.0.0.5' } })
  assert.equal(backend.seen.at(-1)!.headers['x-real-ip'], '203.0.113.7')
})

// An untrusted peer's X-Forwarded-For is ignored.
test('real-ip ignores the header from an untrusted peer', async () => {
  const p = await freePort()
  const proc = (await startSwitchyard(`events {}\nhttp {\n server {\n  listen 127.0.0.1:${p};\n  set_real_ip_from 192.0.2.0/24;\n  real_ip_header X-Forwarded-For;\n  proxy_set_header X-Real-IP $remote_addr;\n  location / { proxy_pass http://127.0.0.1:${backend.port}; }\n }\n}\n`)).proc
  try {
    await send(p, { path: '/', headers: { 'x-forwarded-for': '10.1.2.3' } })
    assert.equal(backend.seen.at(-1)!.headers['x-real-ip'], '127.0.0.1')
  } finally {
    await proc.stop()
  }
})

// send_timeout / client_body_timeout: a body that stops arriving closes the connection.
test('client_body_timeout closes a stalled upload', async () => {
  const p = await freePort()
  const proc = (await startSwitchyard(`events {}\nhttp {\n client_body_timeout 1s;\n server {\n  listen 127.0.0.1:${p};\n  location / { proxy_pass http://127.0.0.1:${backend.port}; }\n }\n}\n`)).proc
  try {
    const started = performance.now()
    const closed = await new Promise<number>((resolve) => {
      const s = connect(p, '127.0.0.1')
      s.on('error', () => undefined)
      s.on('close', () => resolve(performance.now() - started))
      s.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc')
      setTimeout(() => s.destroy(), 5000)
    })
    assert.ok(closed >= 900 && closed < 4000, `closed after ${closed} ms`)
  } finally {
    await proc.stop()
  }
})
