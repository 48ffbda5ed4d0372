// `return` in server and location blocks: texts with variables, redirects made absolute
// as nginx makes them, error pages, 444, the phase order (server return before location
// matching, return before allow/deny), a body still on the wire, Upgrade requests and
// HTTP/2.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { connect as connectHttp2, constants as h2 } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { createLogger } from '../../src/log.js'
import { startSwitchyard, type Switchyard } from '../../src/runtime/switchyard.js'
import { freePorts, send, TestUpstream } from '../helpers/net.js'
import { tempDir } from '../helpers/switchyard.js'
import { selfSignedCert } from '../helpers/tls.js'

let dir = ''
let backend: TestUpstream
let sy: Switchyard
let port = 0
let redirectPort = 0
let tlsPort = 0

const config = (): string => `events {}
http {
  server {
    listen 127.0.0.1:${port};
    location /text { return 200 "hi $host $request_uri from $remote_addr\\n"; }
    location /page.html { return 200 "<b>x</b>"; }
    location /moved { return 301 /new$request_uri; }
    location /away { return https://example.com/there; }
    location /see { return 303 $scheme://$host/other; }
    location /forbidden { return 403; }
    location /teapot { return 418; }
    location /nothing { return 204; }
    location /close { return 444; }
    location /denied { deny all; return 200 "returned before access\\n"; }
    location /proxied { proxy_pass http://127.0.0.1:${backend.port}; }
    location /ws {
      return 200 "no tunnel\\n";
      proxy_pass http://127.0.0.1:${backend.port};
      proxy_http_version 1.1;
    }
  }
  server {
    listen 127.0.0.1:${redirectPort};
    return 301 https://$host$request_uri;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    http2 on;
    ssl_certificate a.crt;
    ssl_certificate_key a.key;
    location /text { return 200 "h2 $scheme $host\\n"; }
    location /moved { return 302 /elsewhere; }
    location /close { return 444; }
    location /info { return 100 "x"; }
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`

before(async () => {
  dir = await tempDir('switchyard-return-')
  selfSignedCert(dir, 'a', 'a.test')
  backend = await new TestUpstream().listen()
  ;[port, redirectPort, tlsPort] = (await freePorts(3)) as [number, number, number]
  const file = join(dir, 'switchyard.conf')
  await writeFile(file, config())
  sy = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** Write `bytes` on a new connection; resolve with everything read until the server
 *  closes it, or with what came so far after `ms` (bounded). */
function raw(bytes: string, ms = 3000, target = port): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(target, '127.0.0.1', () => s.write(bytes))
    let text = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed: false })
    }, ms)
    s.on('data', (c: Buffer) => (text += c.toString('latin1')))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
  })
}

// A text answer evaluates its variables per request and is text/plain (nginx's default_type).
test('return CODE TEXT answers the text with its variables', async () => {
  const r = await send(port, { path: '/text?a=1', headers: { host: 'Example.ORG:8080' } })
  assert.equal(r.status, 200)
  assert.equal(r.headers['content-type'], 'text/plain')
  assert.equal(r.body.toString(), 'hi example.org /text?a=1 from 127.0.0.1\n')
  assert.equal(r.headers['content-length'], String(r.body.length))
  const html = await send(port, { path: '/page.html' })
  assert.equal(html.headers['content-type'], 'text/html', 'nginx types .html by its built-in map')
})

// Relative redirects become absolute from the Host name and the listening port.
test('a relative redirect is made absolute like nginx (Host name, listening port)', async () => {
  const r = await send(port, { path: '/moved?x=1', headers: { host: 'shop.test:9999' } })
  assert.equal(r.status, 301)
  assert.equal(r.headers.location, `http://shop.test:${port}/new/moved?x=1`)
  assert.match(r.body.toString(), /<title>301 Moved Permanently<\/title>/)
  assert.equal(r.headers['content-type'], 'text/html')
  const away = await send(port, { path: '/away' })
  assert.equal(away.status, 302)
  assert.equal(away.headers.location, 'https://example.com/there')
  const see = await send(port, { path: '/see', headers: { host: 'b.test' } })
  assert.equal(see.status, 303)
  assert.equal(see.headers.location, 'http://b.test/other')
})

// Codes of 400 and more without a text answer their error page; 204 has no body at all.
test('return CODE without a text: error page, empty page, or no body', async () => {
  const f = await send(port, { path: '/forbidden' })
  assert.equal(f.status, 403)
  assert.match(f.body.toString(), /<title>403 Forbidden<\/title>/)
  const t = await send(port, { path: '/teapot' })
  assert.equal(t.status, 418)
  assert.equal(t.body.length, 0, 'nginx has no page for 418')
  const n = await send(port, { path: '/nothing' })
  assert.equal(n.status, 204)
  assert.equal(n.headers['content-type'], undefined)
})

// 444 closes the connection without a byte.
test('return 444 closes the connection without an answer', async () => {
  const r = await raw('GET /close HTTP/1.1\r\nHost: a\r\n\r\n')
  assert.equal(r.closed, true)
  assert.equal(r.text, '')
})

// The server rewrite phase runs before any location is chosen: nothing reaches the backend.
test('a server-level return runs before location matching (HTTP to HTTPS redirect)', async () => {
  const before = backend.seen.length
  const r = await send(redirectPort, { path: '/a/b?c=d', headers: { host: 'www.shop.test' } })
  assert.equal(r.status, 301)
  assert.equal(r.headers.location, 'https://www.shop.test/a/b?c=d')
  assert.equal(backend.seen.length, before)
})

// nginx's rewrite phase comes before its access phase: `deny all` does not stop a return.
test('return runs before allow/deny', async () => {
  const r = await send(port, { path: '/denied' })
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'returned before access\n')
})

// A body that has not arrived yet is never read as the next request: the answer closes.
test('a request whose body is still arriving gets the answer and the connection closes', async () => {
  const before = backend.seen.length
  const hidden = 'GET /proxied/smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
  const r = await raw(`POST /text HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length + 100}\r\n\r\n${hidden}`)
  assert.equal(r.closed, true, 'the connection is closed after the answer')
  assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1)
  assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(r.text, /\r\nConnection: close\r\n/i)
  assert.equal(backend.seen.length, before)
  // A whole body framed by Content-Length is not a request either.
  const whole = await raw(`POST /text HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`)
  assert.equal(whole.text.match(/HTTP\/1\.1 /g)?.length, 1)
  assert.equal(backend.seen.length, before)
})

// Keep-alive goes on after a return without a body: two answers on one connection.
test('a return keeps the connection for the next request', async () => {
  const r = await raw('GET /text HTTP/1.1\r\nHost: a\r\n\r\nGET /moved HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  assert.match(r.text, /^HTTP\/1\.1 200 OK/)
  assert.match(r.text, /HTTP\/1\.1 301 Moved Permanently/)
})

// An Upgrade request goes through the same phases: the return answers, no tunnel opens.
test('an Upgrade request to a location with return gets the return', async () => {
  const before = backend.seen.length
  const r = await raw('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(r.text, /no tunnel\n$/)
  assert.equal(r.closed, true)
  assert.equal(backend.seen.length, before)
})

// HTTP/2: the same answers on a stream; 444 resets its stream only.
test('return over HTTP/2: text, absolute redirect, 444 resets only its stream', async () => {
  const session = connectHttp2(`https://127.0.0.1:${tlsPort}`, { rejectUnauthorized: false, servername: 'a.test' })
  session.on('error', () => undefined)
  const get = (path: string): Promise<{ status: number; location?: string; body: string; error?: string }> => new Promise((resolve) => {
    const req = session.request({ ':path': path, ':authority': 'h2.test' })
    let status = 0
    let location: string | undefined
    let body = ''
    req.on('response', (h) => {
      status = Number(h[':status'])
      location = h.location as string | undefined
    })
    req.setEncoding('utf8').on('data', (c: string) => (body += c))
    req.on('end', () => resolve({ status, ...(location === undefined ? {} : { location }), body }))
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status, body, error: err.code ?? err.message }))
  })
  try {
    const text = await get('/text')
    assert.equal(text.status, 200)
    assert.equal(text.body, 'h2 https h2.test\n')
    const moved = await get('/moved')
    assert.equal(moved.status, 302)
    assert.equal(moved.location, `https://h2.test:${tlsPort}/elsewhere`)
    const closed = await get('/close')
    assert.equal(closed.status, 0)
    assert.equal(closed.error, 'ERR_HTTP2_STREAM_ERROR')
    const info = await get('/info')
    assert.equal(info.error, 'ERR_HTTP2_STREAM_ERROR', 'a 1xx cannot be a final HTTP/2 status: the stream is reset')
    const again = await get('/text')
    assert.equal(again.status, 200, 'the session goes on after a 444 on one stream')
  } finally {
    session.close()
  }
  assert.equal(h2.NGHTTP2_INTERNAL_ERROR, 2)
})
