// TLS and HTTP/2 from clients: `listen … ssl [http2]`, ssl_certificate per server block
// picked by SNI, $scheme https, HTTP/1.1 and HTTP/2 on one port, certificates re-read on
// reload without dropping connections, and the config errors for certificate files.
// Certificates are made at test time by openssl (self-signed, one day).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect as connectHttp2, constants as h2 } from 'node:http2'
import { Agent, request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { connect as connectTls } from 'node:tls'
import { loadConfig } from '../../src/config/load.js'
import { createLogger } from '../../src/log.js'
import { startSwitchyard, type Switchyard } from '../../src/runtime/switchyard.js'
import { freePorts, TestUpstream } from '../helpers/net.js'
import { SwitchyardProcess, tempDir } from '../helpers/switchyard.js'
import { selfSignedCert } from '../helpers/tls.js'

let dir = ''
let backend: TestUpstream
let sy: Switchyard
let port = 0
let plainPort = 0

/** A self-signed certificate for `name` as NAME.crt / NAME.key in the temp dir. */
const makeCert = (name: string, cn = name): void => selfSignedCert(dir, name, cn)

const config = (): string => `events {}
http {
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header Host $host;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_timeout 10m;
  server {
    listen 127.0.0.1:${port} ssl default_server;
    http2 on;
    server_name a.test;
    ssl_certificate a.crt;
    ssl_certificate_key a.key;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
    location /denied { deny all; proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name b.test;
    ssl_certificate b.crt;
    ssl_certificate_key b.key;
    ssl_ciphers HIGH:!aNULL;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${plainPort};
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`

before(async () => {
  execFileSync('openssl', ['version'], { stdio: 'ignore' })
  dir = await tempDir('switchyard-tls-')
  makeCert('a', 'a.test')
  makeCert('b', 'b.test')
  backend = await new TestUpstream().listen()
  ;[port, plainPort] = (await freePorts(2)) as [number, number]
  const file = join(dir, 'switchyard.conf')
  await writeFile(file, config())
  sy = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'error') })
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** The CN of the certificate served for `servername` (none: no SNI). */
function servedName(servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      const cn = s.getPeerCertificate().subject?.CN
      s.end()
      resolve(String(cn))
    })
    s.on('error', reject)
  })
}

interface Answer { status: number; body: string; socket: TLSSocket }

function get(path: string, options: { servername?: string; agent?: Agent; method?: string; body?: string; alpn?: string[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, path, method: options.method ?? 'GET', rejectUnauthorized: false,
      servername: options.servername ?? 'a.test', headers: { host: options.servername ?? 'a.test' },
      ...(options.agent ? { agent: options.agent } : {}),
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    }, (res) => {
      const socket = res.socket as TLSSocket
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket }))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

// $scheme is https on an ssl listener, so X-Forwarded-Proto tells the backend.
test('an HTTPS request reaches a plain HTTP backend with X-Forwarded-Proto https', async () => {
  const before = backend.seen.length
  const r = await get('/hello?x=1')
  assert.equal(r.status, 200)
  assert.equal(JSON.parse(r.body).url, '/hello?x=1')
  const seen = backend.seen[before]!
  assert.equal(seen.headers['x-forwarded-proto'], 'https')
  assert.equal(seen.headers.host, 'a.test')
  // and the plain listener still says http
  const plain = await fetch(`http://127.0.0.1:${plainPort}/p`)
  assert.equal(plain.status, 200)
  assert.equal(backend.seen.at(-1)!.headers['x-forwarded-proto'], 'http')
})

// SNI picks the server block by server_name; no or unknown names get the default server's.
test('SNI serves each server block its own certificate', async () => {
  assert.equal(await servedName('a.test'), 'a.test')
  assert.equal(await servedName('b.test'), 'b.test')
  assert.equal(await servedName('other.test'), 'a.test')
  assert.equal(await servedName(), 'a.test')
})

// HTTP/2 over ALPN with concurrent streams on one session, proxied to HTTP/1.1; an
// HTTP/1.1 client on the same port.
test('HTTP/2 and HTTP/1.1 clients share the TLS port', async () => {
  const session = connectHttp2(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'a.test' })
  try {
    const one = (path: string, body?: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path, ':authority': 'a.test', ':method': body === undefined ? 'GET' : 'POST', cookie: 'a=1', 'x-test': path }, { endStream: body === undefined })
      if (body !== undefined) stream.end(body)
      let status = 0
      let text = ''
      stream.on('response', (h) => (status = Number(h[h2.HTTP2_HEADER_STATUS])))
      stream.setEncoding('utf8').on('data', (c: string) => (text += c))
      stream.on('end', () => resolve({ status, body: text }))
      stream.on('error', reject)
    })
    const answers = await Promise.all([one('/h2/1'), one('/h2/2'), one('/h2/3', 'x'.repeat(100_000))])
    for (const a of answers) assert.equal(a.status, 200)
    assert.equal(JSON.parse(answers[2]!.body).bodyLength, 100_000)
    const seen = backend.seen.filter((s) => s.url.startsWith('/h2/'))
    assert.equal(seen.length, 3)
    for (const s of seen) {
      assert.equal(s.headers.host, 'a.test', 'Host comes from :authority')
      assert.equal(s.headers['x-forwarded-proto'], 'https')
      assert.equal(s.headers['x-test'], s.url)
      assert.equal(s.headers.cookie, 'a=1')
      assert.ok(!s.rawHeaders.some((h) => h.startsWith(':')), 'no pseudo-header is forwarded')
    }
    // An answer switchyard gives itself ends only that stream; the session goes on.
    assert.equal((await one('/denied')).status, 403)
    assert.equal((await one('/denied/post', 'body')).status, 403)
    assert.equal((await one('/h2/after')).status, 200)
    const post = seen.find((s) => s.url === '/h2/3')!
    assert.equal(post.method, 'POST')
    assert.equal(post.headers['transfer-encoding'], 'chunked')
  } finally {
    session.close()
  }
  // A client without ALPN, and one that offers only http/1.1.
  const plain = await get('/h1')
  assert.equal(plain.status, 200)
  assert.equal(plain.socket.alpnProtocol, false)
  const h1 = await get('/h1', { alpn: ['http/1.1'], agent: new Agent({ keepAlive: false }) })
  assert.equal(h1.status, 200)
  assert.equal(h1.socket.alpnProtocol, 'http/1.1')
})

// A reload re-reads the certificate files: new handshakes get the new certificate while
// a keep-alive connection opened before the reload goes on serving.
test('reload picks up a new certificate without dropping an open connection', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const first = await get('/before', { agent })
    assert.equal(first.status, 200)
    makeCert('a', 'a2.test')
    assert.deepEqual(await sy.reload(), { ok: true })
    const second = await get('/after', { agent })
    assert.equal(second.status, 200)
    assert.ok(first.socket !== null && first.socket !== undefined)
    assert.equal(second.socket, first.socket, 'the same connection served both requests')
    assert.ok(!first.socket.destroyed, 'and it is still open')
    assert.equal(await servedName('a.test'), 'a2.test')
    assert.equal(await servedName('b.test'), 'b.test')
  } finally {
    agent.destroy()
  }
})

// A reload with a missing certificate fails and the running certificates stay.
test('a reload with a missing certificate keeps the running config', async () => {
  const file = join(dir, 'switchyard.conf')
  await writeFile(file, config().replace('ssl_certificate b.crt;', 'ssl_certificate missing.crt;'))
  const result = await sy.reload()
  assert.equal(result.ok, false)
  assert.match((result as { error: string }).error, /cannot load certificate ".*missing\.crt"/)
  assert.equal(await servedName('b.test'), 'b.test')
  await writeFile(file, config())
})

// Config errors name the file and line, as nginx does.
test('certificate config errors', async () => {
  const cases: Array<[string, RegExp]> = [
    ['listen 127.0.0.1:1 ssl; ssl_certificate nope.crt; ssl_certificate_key a.key;', /^cannot load certificate ".*\/nope\.crt": .* in .*tls\.conf:3$/],
    ['listen 127.0.0.1:1 ssl; ssl_certificate a.crt; ssl_certificate_key nope.key;', /^cannot load certificate key ".*\/nope\.key": .* in .*tls\.conf:3$/],
    ['listen 127.0.0.1:1 ssl;', /^no "ssl_certificate" is defined for the "listen \.\.\. ssl" directive in .*tls\.conf:3$/],
    ['listen 127.0.0.1:1 ssl; ssl_certificate a.crt; ssl_certificate_key b.key;', /^cannot load certificate ".*\/a\.crt" with key ".*\/b\.key" \(SSL: .*\) in .*tls\.conf:3$/],
    ['listen 127.0.0.1:1 ssl; ssl_certificate a.key; ssl_certificate_key a.key;', /^cannot load certificate ".*\/a\.key": PEM_read_bio failed/],
    ['listen 127.0.0.1:1; ssl_protocols TLSv1.1;', /^"ssl_protocols" without TLSv1\.2 or TLSv1\.3 is not supported by switchyard yet/],
    ['listen 127.0.0.1:1; http2 maybe;', /^invalid value "maybe" in "http2" directive/],
    ['listen 127.0.0.1:1 quic;', /^parameter "quic" of the "listen" directive is not supported by switchyard yet/],
  ]
  for (const [server, expected] of cases) {
    const file = join(dir, 'tls.conf')
    await writeFile(file, `events {}\nhttp {\n  server { ${server} }\n}\n`)
    await assert.rejects(loadConfig(file), (err: Error) => {
      assert.match(err.message, expected)
      return true
    }, server)
  }
})

// With workers (node:cluster), each worker terminates TLS on the shared socket, and a
// SIGHUP's new workers serve the new certificate.
test('TLS with worker_processes 2, and a certificate reload by SIGHUP', async () => {
  const [wport] = (await freePorts(1)) as [number]
  makeCert('w', 'w1.test')
  const file = join(dir, 'workers.conf')
  await writeFile(file, `worker_processes 2;
events {}
http {
  server {
    listen 127.0.0.1:${wport} ssl http2;
    ssl_certificate w.crt;
    ssl_certificate_key w.key;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`)
  const proc = await new SwitchyardProcess(['-c', file]).ready()
  try {
    const cn = (): Promise<string> => new Promise((resolve, reject) => {
      const s = connectTls({ host: '127.0.0.1', port: wport, rejectUnauthorized: false, servername: 'w.test' }, () => {
        resolve(String(s.getPeerCertificate().subject?.CN))
        s.end()
      })
      s.on('error', reject)
    })
    assert.equal(await cn(), 'w1.test')
    const r = await fetch(`http://127.0.0.1:${plainPort}/`) // the in-process one is unaffected
    assert.equal(r.status, 200)
    makeCert('w', 'w2.test')
    proc.signal('SIGHUP')
    await proc.waitFor('reconfigured')
    assert.equal(await cn(), 'w2.test')
  } finally {
    await proc.stop()
  }
})
