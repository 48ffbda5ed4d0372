// The edge checks on the two paths that used to skip them: Upgrade (WebSocket) requests go
// through the same request checks, realip, return and allow/deny as plain ones, in the
// same order; HTTP/2 requests get large_client_header_buffers as nginx applies it to
// HTTP/2 (a field over SIZE, or the whole list over NUMBER × SIZE: GOAWAY
// ENHANCE_YOUR_CALM).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { connect as connectHttp2, constants as h2 } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { createLogger } from '../../src/log.js'
import { startSwitchyard, type Switchyard } from '../../src/runtime/switchyard.js'
import { NginxProcess } from '../helpers/nginx.js'
import { freePorts, TestUpstream } from '../helpers/net.js'
import { tempDir } from '../helpers/switchyard.js'
import { selfSignedCert } from '../helpers/tls.js'

let dir = ''
let sy: Switchyard
let port = 0
let tlsPort = 0
let backend: TestUpstream
/** A WebSocket-style backend: answers every Upgrade with 101 and echoes; counts them. */
let wsBackend: Server
let wsPort = 0
const upgradesSeen: string[] = []

const config = (): string => `events {}
http {
  server {
    listen 127.0.0.1:${port};
    large_client_header_buffers 4 1k;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    location /ws {
      deny 192.0.2.0/24;
      proxy_pass http://127.0.0.1:${wsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }
    location /closed-ws {
      deny all;
      proxy_pass http://127.0.0.1:${wsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    http2 on;
    ssl_certificate a.crt;
    ssl_certificate_key a.key;
    large_client_header_buffers 2 1k;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`

before(async () => {
  dir = await tempDir('switchyard-edge-up-')
  selfSignedCert(dir, 'a', 'a.test')
  backend = await new TestUpstream().listen()
  wsBackend = createServer((_req, res) => res.end('plain\n'))
  wsBackend.on('upgrade', (req, socket: Socket) => {
    upgradesSeen.push(`${req.url} ${String(req.headers['x-real-ip'] ?? '')}`)
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.on('data', (c) => socket.write(c))
    socket.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => wsBackend.listen(0, '127.0.0.1', resolve))
  wsPort = (wsBackend.address() as { port: number }).port
  ;[port, tlsPort] = (await freePorts(2)) as [number, number]
  const file = join(dir, 'switchyard.conf')
  await writeFile(file, config())
  sy = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
})

after(async () => {
  await sy?.stop()
  await backend?.close()
  wsBackend?.closeAllConnections()
  await new Promise((r) => wsBackend?.close(r))
})

const upgrade = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`

/** Send `bytes`; what comes back until the server closes or `ms` pass (bounded). With
 *  `after`, those bytes follow once the first answer has started. */
function raw(bytes: string, ms = 3000, after?: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => s.write(bytes))
    let text = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed: false })
    }, ms)
    s.on('data', (c: Buffer) => {
      const first = text === ''
      text += c.toString('latin1')
      if (first && after !== undefined) s.write(after)
    })
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
  })
}

// A trusted peer's X-Real-IP is the client for allow/deny on an Upgrade too: denied → 403
// and nothing reaches the backend; allowed → the tunnel opens and echoes.
test('an Upgrade request from a denied address gets 403 and never reaches the backend', async () => {
  const before = upgradesSeen.length
  const denied = await raw(upgrade('/ws', 'X-Real-IP: 192.0.2.10\r\n'))
  assert.match(denied.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
  assert.equal(denied.closed, true)
  const all = await raw(upgrade('/closed-ws'))
  assert.match(all.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
  assert.equal(upgradesSeen.length, before, 'no Upgrade reached the backend')
  const allowed = await raw(upgrade('/ws', 'X-Real-IP: 198.51.100.10\r\n'), 1500, 'ping')
  assert.match(allowed.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  assert.match(allowed.text, /ping$/)
  assert.deepEqual(upgradesSeen.slice(before), ['/ws 198.51.100.10'])
})

// The request checks of src/proxy/edge.ts apply to Upgrade requests; each answer closes and
// nothing is tunnelled.
test('smuggling-style framing on an Upgrade request is refused', async () => {
  const before = upgradesSeen.length
  const rows: Array<[string, string, number]> = [
    ['unknown Transfer-Encoding', upgrade('/ws', 'Transfer-Encoding: gzip, chunked\r\n') + '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n', 501],
    ['two Host lines', upgrade('/ws', 'Host: b\r\n'), 400],
    ['Transfer-Encoding in HTTP/1.0', upgrade('/ws', 'Transfer-Encoding: chunked\r\n').replace('HTTP/1.1', 'HTTP/1.0') + '0\r\n\r\n', 400],
    ['a request target with a fragment', upgrade('/ws#x'), 400],
    ['a request line over large_client_header_buffers', upgrade(`/ws?${'a'.repeat(1100)}`), 414],
    ['a header line over large_client_header_buffers', upgrade('/ws', `X-Big: ${'b'.repeat(1100)}\r\n`), 400],
  ]
  for (const [what, bytes, status] of rows) {
    const r = await raw(bytes)
    assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), what)
    assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, `${what}: one answer only`)
    assert.equal(r.closed, true, what)
  }
  assert.equal(upgradesSeen.length, before, 'no Upgrade reached the backend')
})

interface H2Result {
  status: number
  goaway: number | null
  error: string | null
}

/** One HTTP/2 request with `headers` to `target`; the status, or the GOAWAY code and
 *  stream error. */
function h2Request(headers: Record<string, string>, target = tlsPort): Promise<H2Result> {
  return new Promise((resolve) => {
    const session = connectHttp2(`https://127.0.0.1:${target}`, { rejectUnauthorized: false, servername: 'a.test', maxSendHeaderBlockLength: 1 << 20 })
    let goaway: number | null = null
    session.on('goaway', (code: number) => (goaway = code))
    session.on('error', () => undefined)
    const req = session.request({ ':path': '/h2', ...headers })
    let status = 0
    const timer = setTimeout(() => finish('timeout'), 5000)
    let done = false
    const finish = (error: string | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      // A GOAWAY is reported after the stream ends: wait (bounded) for the session to end
      // when the answer was not a status.
      const end = (): void => {
        session.destroy()
        resolve({ status, goaway, error: status === 0 ? error : null })
      }
      if (status !== 0 || session.destroyed) return end()
      const wait = setTimeout(end, 3000)
      session.once('close', () => {
        clearTimeout(wait)
        end()
      })
    }
    req.on('response', (h) => (status = Number(h[':status'])))
    req.resume()
    req.on('end', () => finish(null))
    req.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message))
    req.on('close', () => finish(status === 0 ? 'closed' : null))
  })
}

/** Rows for the HTTP/2 limit under `large_client_header_buffers 2 1k`. 'a' is 5 bits in
 *  HPACK's Huffman code, 'Z' 8: 1100 of 'a' fit in 1k on the wire, 1100 of 'Z' do not. */
const H2_ROWS: Array<[string, Record<string, string>, 'ok' | 'goaway']> = [
  ['a 900-byte field', { 'x-one': 'a'.repeat(900) }, 'ok'],
  ['a 1100-byte field that Huffman-codes under 1k', { 'x-big': 'a'.repeat(1100) }, 'ok'],
  ['a 1100-byte field that does not', { 'x-big': 'Z'.repeat(1100) }, 'goaway'],
  ['three 900-byte fields (over 2 × 1k together)', { 'x-a': 'a'.repeat(900), 'x-b': 'b'.repeat(900), 'x-c': 'c'.repeat(900) }, 'goaway'],
  ['a long :path', { ':path': `/h2?${'Z'.repeat(1100)}` }, 'goaway'],
]

const outcome = (r: H2Result): string => (r.status !== 0 ? `status ${r.status}` : `goaway ${String(r.goaway)}`)

// nginx ≥ 1.19.7 (ngx_http_v2_state_field_len / process_header): one field over SIZE as
// sent, or the whole decoded list over NUMBER × SIZE, is a connection error with
// ENHANCE_YOUR_CALM; nothing of such a request reaches the backend.
test('HTTP/2: large_client_header_buffers limits one field and the whole header list', async () => {
  const before = backend.seen.length
  let passed = 0
  for (const [what, headers, want] of H2_ROWS) {
    const r = await h2Request(headers)
    if (want === 'ok') {
      assert.equal(r.status, 200, what)
      passed++
    } else {
      assert.equal(r.status, 0, what)
      assert.equal(r.goaway, h2.NGHTTP2_ENHANCE_YOUR_CALM, what)
    }
  }
  assert.equal(backend.seen.length, before + passed, 'nothing over the limits reached the backend')
})

// The same rows through Debian's nginx (HTTP/2 over TLS) and switchyard: same outcomes.
test('HTTP/2 header limits: nginx and switchyard agree', async () => {
  const [ready, nginxTls, syReady, syTls] = (await freePorts(4)) as [number, number, number, number]
  const body = (readyPort: number, tls: number): string => `events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 127.0.0.1:${readyPort};
    listen 127.0.0.1:${tls} ssl http2;
    ssl_certificate ${join(dir, 'a.crt')};
    ssl_certificate_key ${join(dir, 'a.key')};
    large_client_header_buffers 2 1k;
    location / { return 200 "ok\n"; }
  }
}
`
  const nginx = await new NginxProcess().start(`worker_processes 1;\n${body(ready, nginxTls)}`, ready)
  const fromNginx: string[] = []
  try {
    for (const [, headers] of H2_ROWS) fromNginx.push(outcome(await h2Request(headers, nginxTls)))
  } finally {
    await nginx.stop()
  }
  const file = join(dir, 'h2-diff.conf')
  await writeFile(file, body(syReady, syTls))
  const own = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
  const fromSwitchyard: string[] = []
  try {
    for (const [, headers] of H2_ROWS) fromSwitchyard.push(outcome(await h2Request(headers, syTls)))
  } finally {
    await own.stop()
  }
  assert.deepEqual(fromSwitchyard, fromNginx)
  assert.deepEqual(fromNginx, H2_ROWS.map(([, , want]) => (want === 'ok' ? 'status 200' : 'goaway 11')))
})
