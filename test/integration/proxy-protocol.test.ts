// `listen … proxy_protocol`: raw sockets send v1 and v2 PROXY headers (IPv4 and IPv6)
// before HTTP or TLS; $proxy_protocol_addr/port, `real_ip_header proxy_protocol` against
// the TCP peer's trust, ip_hash by the proxied address, the access log, broken and late
// headers, HTTP/2 over TLS, and a graceful quit with PROXY connections open. Last, the
// same v1 header through Debian's nginx and switchyard (differential).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { connect as connectHttp2 } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { connect as connectTls } from 'node:tls'
import { createLogger } from '../../src/log.js'
import { startSwitchyard, type Switchyard } from '../../src/runtime/switchyard.js'
import { NginxProcess } from '../helpers/nginx.js'
import { freePorts, TestUpstream, upstreams } from '../helpers/net.js'
import { tempDir } from '../helpers/switchyard.js'
import { selfSignedCert } from '../helpers/tls.js'

let dir = ''
let backend: TestUpstream
let hashed: TestUpstream[] = []
let sy: Switchyard
let trusted = 0
let untrusted = 0
let tlsPort = 0
let slow = 0
let log = ''

const config = (): string => `events {}
http {
  log_format pp '$remote_addr pp=$proxy_protocol_addr:$proxy_protocol_port "$request"';
  proxy_set_header X-Real-IP $remote_addr;
  proxy_set_header X-PP "$proxy_protocol_addr:$proxy_protocol_port";
  upstream by_client { ip_hash; server 127.0.0.1:${hashed[0]!.port}; server 127.0.0.1:${hashed[1]!.port}; server 127.0.0.1:${hashed[2]!.port}; }
  server {
    listen 127.0.0.1:${trusted} proxy_protocol;
    set_real_ip_from 127.0.0.0/8;
    real_ip_header proxy_protocol;
    access_log ${log} pp;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
    location /hash { proxy_pass http://by_client; }
    location /admin { allow 203.0.113.0/24; deny all; proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${untrusted} proxy_protocol;
    set_real_ip_from 10.0.0.0/8;
    real_ip_header proxy_protocol;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl proxy_protocol;
    http2 on;
    ssl_certificate a.crt;
    ssl_certificate_key a.key;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
  server {
    listen 127.0.0.1:${slow} proxy_protocol;
    client_header_timeout 1s;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`

before(async () => {
  dir = await tempDir('switchyard-pp-')
  selfSignedCert(dir, 'a', 'a.test')
  backend = await new TestUpstream().listen()
  hashed = await upstreams(3)
  ;[trusted, untrusted, tlsPort, slow] = (await freePorts(4)) as [number, number, number, number]
  log = join(dir, 'access.log')
  const file = join(dir, 'switchyard.conf')
  await writeFile(file, config())
  sy = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
})

after(async () => {
  await sy?.stop()
  await backend?.close()
  for (const u of hashed) await u.close()
})

const SIG = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')

function v2(command: number, family: number, addresses: Buffer): Buffer {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(addresses.length)
  return Buffer.concat([SIG, Buffer.from([0x20 | command, family]), len, addresses])
}

function v2ipv4(src: string, sport: number): Buffer {
  const b = Buffer.alloc(12)
  b.set(src.split('.').map(Number), 0)
  b.set([10, 0, 0, 1], 4)
  b.writeUInt16BE(sport, 8)
  b.writeUInt16BE(80, 10)
  return v2(1, 0x11, b)
}

function v2ipv6(srcHex: string, sport: number): Buffer {
  const ports = Buffer.alloc(4)
  ports.writeUInt16BE(sport, 0)
  ports.writeUInt16BE(443, 2)
  return v2(1, 0x21, Buffer.concat([Buffer.from(srcHex, 'hex'), Buffer.alloc(16), ports]))
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: pp.test\r\n${extra}\r\n`

/** Write `bytes` on a new connection; what came back, and whether the server closed it
 *  (bounded by `ms`). */
function raw(port: number, bytes: Buffer | string, ms = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => s.write(bytes))
    let text = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed: false })
    }, ms)
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      // One whole answer with a body: enough for these tests.
      if (/\r\n\r\n[^]*\}$/.test(text) && !text.includes('keep-alive-more')) s.end()
    })
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
  })
}

/** The headers the backend saw for the last request. */
const lastSeen = (): Record<string, unknown> => backend.seen.at(-1)!.headers

// v1 TCP4, header and request in one write: the address reaches variables and realip.
test('v1 TCP4: $proxy_protocol_addr/port and real_ip_header proxy_protocol', async () => {
  const r = await raw(trusted, `PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n${GET('/one', 'Connection: close\r\n')}`)
  assert.match(r.text, /^HTTP\/1\.1 200 OK/)
  assert.equal(lastSeen()['x-real-ip'], '203.0.113.7')
  assert.equal(lastSeen()['x-pp'], '203.0.113.7:5555')
})

// v1 TCP6, header and request in separate writes.
test('v1 TCP6 sent apart from the request', async () => {
  const answer = await new Promise<string>((resolve) => {
    const s = connect(trusted, '127.0.0.1', () => {
      s.write('PROXY TCP6 2001:db8::7 ::1 6000 443\r\n')
      setTimeout(() => s.write(GET('/six', 'Connection: close\r\n')), 100)
    })
    let text = ''
    s.on('data', (c: Buffer) => (text += c.toString()))
    s.on('close', () => resolve(text))
    s.on('error', () => undefined)
    setTimeout(() => s.destroy(), 5000)
  })
  assert.match(answer, /^HTTP\/1\.1 200 OK/)
  assert.equal(lastSeen()['x-real-ip'], '2001:db8::7')
  assert.equal(lastSeen()['x-pp'], '2001:db8::7:6000')
})

// v2 binary headers, IPv4 and IPv6.
test('v2 PROXY over TCP/IPv4 and TCP/IPv6', async () => {
  await raw(trusted, Buffer.concat([v2ipv4('198.51.100.20', 40000), Buffer.from(GET('/v2', 'Connection: close\r\n'))]))
  assert.equal(lastSeen()['x-real-ip'], '198.51.100.20')
  assert.equal(lastSeen()['x-pp'], '198.51.100.20:40000')
  await raw(trusted, Buffer.concat([v2ipv6('20010db8000000000000000000000042', 50000), Buffer.from(GET('/v2six', 'Connection: close\r\n'))]))
  assert.equal(lastSeen()['x-real-ip'], '2001:db8::42')
  assert.equal(lastSeen()['x-pp'], '2001:db8::42:50000')
})

// LOCAL (a balancer's own health check) and UNKNOWN carry no address: the peer stays.
test('v2 LOCAL and v1 UNKNOWN keep the TCP peer as the client', async () => {
  await raw(trusted, Buffer.concat([v2(0, 0, Buffer.alloc(0)), Buffer.from(GET('/local', 'Connection: close\r\n'))]))
  assert.equal(lastSeen()['x-real-ip'], '127.0.0.1')
  assert.equal(lastSeen()['x-pp'], ':')
  await raw(trusted, `PROXY UNKNOWN\r\n${GET('/unknown', 'Connection: close\r\n')}`)
  assert.equal(lastSeen()['x-real-ip'], '127.0.0.1')
})

// The trust check is on the TCP peer: an untrusted one keeps its own address for
// $remote_addr, while $proxy_protocol_addr is still what the header said.
test('an untrusted peer: realip ignores the header, $proxy_protocol_addr still set', async () => {
  await raw(untrusted, `PROXY TCP4 203.0.113.9 10.0.0.1 7777 80\r\n${GET('/u', 'Connection: close\r\n')}`)
  assert.equal(lastSeen()['x-real-ip'], '127.0.0.1')
  assert.equal(lastSeen()['x-pp'], '203.0.113.9:7777')
})

// allow/deny see the proxied address.
test('allow/deny apply to the address from the PROXY header', async () => {
  const ok = await raw(trusted, `PROXY TCP4 203.0.113.50 10.0.0.1 1 80\r\n${GET('/admin', 'Connection: close\r\n')}`)
  assert.match(ok.text, /^HTTP\/1\.1 200 /)
  const denied = await raw(trusted, `PROXY TCP4 192.0.2.50 10.0.0.1 1 80\r\n${GET('/admin', 'Connection: close\r\n')}`)
  assert.match(denied.text, /^HTTP\/1\.1 403 /)
})

// Keep-alive: the header comes once, every request on the connection keeps its address.
test('two requests on one PROXY connection both carry the address', async () => {
  const before = backend.seen.length
  await raw(trusted, `PROXY TCP4 203.0.113.77 10.0.0.1 1234 80\r\n${GET('/k1')}${GET('/k2', 'Connection: close\r\n')}`)
  const seen = backend.seen.slice(before)
  assert.deepEqual(seen.map((s) => [s.url, s.headers['x-real-ip']]), [['/k1', '203.0.113.77'], ['/k2', '203.0.113.77']])
})

// No PROXY header, or garbage: the connection is closed and nothing reaches a backend.
test('a missing or broken header closes the connection', async () => {
  const before = backend.seen.length
  for (const bytes of [GET('/plain'), 'PROXY TCP4 1.2.3.4\r\n' + GET('/x'), 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n' + GET('/x')]) {
    const r = await raw(trusted, bytes)
    assert.equal(r.closed, true, JSON.stringify(bytes))
    assert.equal(r.text, '')
  }
  assert.equal(backend.seen.length, before)
})

// client_header_timeout bounds the wait for the header.
test('a header that never comes is cut after client_header_timeout', async () => {
  const started = Date.now()
  const r = await raw(slow, 'PROXY TCP4 1.2.3', 10_000)
  assert.equal(r.closed, true)
  assert.ok(Date.now() - started < 9000, 'closed by the 1 s timeout, well before the test gives up')
})

// ip_hash keys on the proxied client: one address sticks to one peer, and different
// /24s spread (from 127.0.0.1 alone every request would go to one peer).
test('ip_hash picks by the address from the PROXY header', async () => {
  const peerOf = async (addr: string): Promise<number> => {
    const before = hashed.map((u) => u.seen.length)
    await raw(trusted, `PROXY TCP4 ${addr} 10.0.0.1 1 80\r\n${GET('/hash', 'Connection: close\r\n')}`)
    const i = hashed.findIndex((u, j) => u.seen.length > before[j]!)
    assert.notEqual(i, -1)
    return i
  }
  const picks = new Set<number>()
  for (let n = 1; n <= 12; n++) {
    const addr = `${20 + n * 13}.${(n * 29) % 256}.${(n * n) % 256}.9`
    const first = await peerOf(addr)
    assert.equal(await peerOf(addr.replace(/\.9$/, '.200')), first, 'the same /24 goes to the same peer')
    picks.add(first)
  }
  assert.ok(picks.size >= 2, `12 different /24s went to ${picks.size} peer(s)`)
})

// The access log shows the proxied address in $remote_addr and the PROXY variables.
test('the access log shows the address from the header', async () => {
  await raw(trusted, `PROXY TCP4 203.0.113.123 10.0.0.1 4321 80\r\n${GET('/logged', 'Connection: close\r\n')}`)
  const deadline = Date.now() + 5000
  let text = ''
  while (Date.now() < deadline) {
    text = await readFile(log, 'utf8').catch(() => '')
    if (text.includes('/logged')) break
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.match(text, /^203\.0\.113\.123 pp=203\.0\.113\.123:4321 "GET \/logged HTTP\/1\.1"$/m)
})

// TLS after the header: the header and the ClientHello arrive together, HTTP/1.1 and HTTP/2.
test('listen … ssl proxy_protocol: header before the TLS handshake, HTTP/1.1 and HTTP/2', async () => {
  const tcp = (header: string): Promise<Socket> => new Promise((resolve, reject) => {
    const s = connect(tlsPort, '127.0.0.1', () => {
      // Corked: the header and the ClientHello leave in one segment.
      s.cork()
      s.write(header)
      resolve(s)
      process.nextTick(() => s.uncork())
    })
    s.on('error', reject)
  })
  const socket = await tcp('PROXY TCP4 203.0.113.200 10.0.0.1 2222 443\r\n')
  const h1 = await new Promise<string>((resolve, reject) => {
    const t = connectTls({ socket, rejectUnauthorized: false, servername: 'a.test', ALPNProtocols: ['http/1.1'] }, () => t.write(GET('/tls', 'Connection: close\r\n')))
    let text = ''
    t.on('data', (c: Buffer) => (text += c.toString()))
    t.on('end', () => resolve(text))
    t.on('error', reject)
  })
  assert.match(h1, /^HTTP\/1\.1 200 OK/)
  assert.equal(lastSeen()['x-real-ip'], '203.0.113.200')
  assert.equal(lastSeen()['x-pp'], '203.0.113.200:2222')

  const raw2 = await tcp('PROXY TCP6 2001:db8::99 ::1 3333 443\r\n')
  const session = connectHttp2(`https://127.0.0.1:${tlsPort}`, {
    createConnection: () => connectTls({ socket: raw2, rejectUnauthorized: false, servername: 'a.test', ALPNProtocols: ['h2'] }),
  })
  try {
    for (const path of ['/h2a', '/h2b']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': path })
        let s = 0
        req.on('response', (h) => (s = Number(h[':status'])))
        req.resume()
        req.on('end', () => resolve(s))
        req.on('error', reject)
      })
      assert.equal(status, 200)
      assert.equal(lastSeen()['x-real-ip'], '2001:db8::99')
      assert.equal(lastSeen()['x-pp'], '2001:db8::99:3333')
    }
  } finally {
    session.close()
  }
})

// Graceful quit with one idle keep-alive PROXY connection and one still without its
// header: both are let go, quit ends (bounded), and the listener is closed.
test('quit ends with PROXY connections open (idle, and header not yet sent)', async () => {
  const file = join(dir, 'quit.conf')
  const [p] = (await freePorts(1)) as [number]
  await writeFile(file, `events {}\nhttp {\n  server {\n    listen 127.0.0.1:${p} proxy_protocol;\n    location / { proxy_pass http://127.0.0.1:${backend.port}; }\n  }\n}\n`)
  const own = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
  const idle = connect(p, '127.0.0.1')
  idle.on('error', () => undefined)
  const waiting = connect(p, '127.0.0.1')
  waiting.on('error', () => undefined)
  const answered = new Promise<string>((resolve) => {
    let text = ''
    idle.on('data', (c: Buffer) => {
      text += c.toString()
      if (text.includes('\r\n\r\n{')) resolve(text)
    })
  })
  idle.write(`PROXY TCP4 203.0.113.1 10.0.0.1 1 80\r\n${GET('/idle')}`)
  waiting.write('PROXY TCP4 ')
  assert.match(await answered, /^HTTP\/1\.1 200 /)
  const started = Date.now()
  await Promise.race([own.quit(), new Promise((_, reject) => setTimeout(() => reject(new Error('quit took over 20 s')), 20_000))])
  assert.ok(Date.now() - started < 20_000)
  const closed = (s: Socket): Promise<void> => new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())))
  await Promise.all([closed(idle), closed(waiting)])
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect(p, '127.0.0.1')
    s.on('error', () => resolve(true))
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
  })
  assert.equal(refused, true, 'nothing listens after quit')
})

// nginx and switchyard pass the same $proxy_protocol_addr/port and realip address upstream.
test('differential: the same v1 and v2 headers through nginx and switchyard', async () => {
  const seenBy = async (start: (ready: number, pp: number) => Promise<() => Promise<void>>): Promise<unknown[]> => {
    const [ready, pp] = (await freePorts(2)) as [number, number]
    const stop = await start(ready, pp)
    const out: unknown[] = []
    try {
      for (const header of [
        Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n'),
        Buffer.from('PROXY TCP6 2001:db8::7 ::1 6000 443\r\n'),
        v2ipv4('198.51.100.20', 40000),
        v2(0, 0, Buffer.alloc(0)),
      ]) {
        const before = backend.seen.length
        await raw(pp, Buffer.concat([header, Buffer.from(GET('/diff', 'Connection: close\r\n'))]))
        const s = backend.seen[before]
        out.push(s === undefined ? null : [s.headers['x-real-ip'], s.headers['x-pp']])
      }
    } finally {
      await stop()
    }
    return out
  }
  const body = (ready: number, pp: number): string => `events { worker_connections 64; }
http {
  access_log off;
  proxy_set_header X-Real-IP $remote_addr;
  proxy_set_header X-PP "$proxy_protocol_addr:$proxy_protocol_port";
  server {
    listen 127.0.0.1:${ready};
    listen 127.0.0.1:${pp} proxy_protocol;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`
  const fromNginx = await seenBy(async (ready, pp) => {
    const nginx = await new NginxProcess().start(`worker_processes 1;\n${body(ready, pp)}`, ready)
    return () => nginx.stop()
  })
  const fromSwitchyard = await seenBy(async (ready, pp) => {
    const file = join(dir, 'diff.conf')
    await writeFile(file, body(ready, pp))
    const own = await startSwitchyard({ configFile: file, logger: createLogger('stderr', 'crit') })
    return () => own.stop()
  })
  assert.deepEqual(fromSwitchyard, fromNginx)
  assert.deepEqual(fromNginx[0], ['203.0.113.7', '203.0.113.7:5555'])
})
