// limit_req and limit_conn through real sockets: per client address (127.0.0.x sources),
// nginx's status codes, $limit_req_status / $limit_conn_status in the access log, delays,
// dry runs, slots held by requests in progress and by upgraded tunnels, real_ip keys,
// zones kept across a reload. Rates of 1r/m keep buckets from draining during a test.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, Agent, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { freePort, send, TestUpstream, type Reply } from '../helpers/net.js'
import { startSwitchyard, tempDir, type SwitchyardProcess } from '../helpers/switchyard.js'

/** A backend that holds requests to `/…hold…` until `release()`, answers others at
 *  once, and accepts WebSocket-style upgrades (echoing bytes). */
class HoldingBackend {
  readonly upstream = new TestUpstream()
  readonly held: ServerResponse[] = []
  readonly tunnels: Duplex[] = []

  async listen(): Promise<this> {
    this.upstream.handler = (req, res) => {
      if (req.url?.includes('hold')) this.held.push(res)
      else res.end('ok')
    }
    this.upstream.server.on('upgrade', (req, socket: Duplex) => {
      this.tunnels.push(socket)
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      socket.on('data', (d: Buffer) => socket.write(d))
      socket.on('error', () => undefined)
    })
    await this.upstream.listen()
    return this
  }

  get port(): number {
    return this.upstream.port
  }

  release(): void {
    for (const res of this.held.splice(0)) res.end('released')
  }

  async close(): Promise<void> {
    this.release()
    for (const t of this.tunnels) t.destroy()
    await this.upstream.close()
  }
}

/** Poll `check` every 20 ms until it holds (bounded: `ms`). */
async function until(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Statuses of `n` requests one after another from `from`, each on a new connection. */
async function statuses(port: number, path: string, from: string, n: number, headers?: Record<string, string>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await send(port, { path, localAddress: from, timeout: 10_000, ...(headers ? { headers } : {}) })).status)
  return out
}

let backend: HoldingBackend
let sy: SwitchyardProcess
let port = 0
let logFile = ''

before(async () => {
  backend = await new HoldingBackend().listen()
  port = await freePort()
  logFile = join(await tempDir('switchyard-limits-'), 'access.log')
  const b = backend.port
  sy = (await startSwitchyard(`events {}
http {
  log_format limits '$remote_addr $request_uri $status req=$limit_req_status conn=$limit_conn_status';
  access_log ${logFile} limits;
  limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;
  limit_req_zone $binary_remote_addr zone=perip2:1m rate=1r/m;
  limit_req_zone $binary_remote_addr zone=half:1m rate=2r/s;
  limit_req_zone $http_x_tenant zone=tenant:1m rate=1r/m;
  limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/m;
  limit_req_zone $binary_remote_addr zone=body:1m rate=1r/m;
  limit_conn_zone $binary_remote_addr zone=conns:1m;
  server {
    listen 127.0.0.1:${port};
    set_real_ip_from 127.0.0.0/8;
    location /req { limit_req zone=perip burst=2 nodelay; proxy_pass http://127.0.0.1:${b}; }
    location /status { limit_req zone=perip2; limit_req_status 429; proxy_pass http://127.0.0.1:${b}; }
    location /delay { limit_req zone=half burst=1; proxy_pass http://127.0.0.1:${b}; }
    location /dry { limit_req zone=tenant; limit_req_dry_run on; proxy_pass http://127.0.0.1:${b}; }
    location /tenant { limit_req zone=tenant; proxy_pass http://127.0.0.1:${b}; }
    location /conn { limit_conn conns 2; proxy_pass http://127.0.0.1:${b}; }
    location /slow { limit_req zone=slow burst=5; proxy_pass http://127.0.0.1:${b}; }
    location /body { limit_req zone=body; proxy_pass http://127.0.0.1:${b}; }
    location /conndry { limit_conn conns 1; limit_conn_dry_run on; proxy_pass http://127.0.0.1:${b}; }
    location /ws {
      limit_conn conns 1;
      proxy_pass http://127.0.0.1:${b};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }
  }
}
`)).proc
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** Access log lines that start with `from` (the buffered log is flushed within 200 ms). */
async function logLines(from: string, atLeast: number): Promise<string[]> {
  let lines: string[] = []
  await until(async () => {
    const text = await readFile(logFile, 'utf8').catch(() => '')
    lines = text.split('\n').filter((l) => l.startsWith(`${from} `))
    return lines.length >= atLeast
  }, 5000, `${atLeast} log lines from ${from}`)
  return lines
}

// burst=2 nodelay at 1r/m: three pass at once, the rest get 503 and never reach the backend.
test('limit_req counts per client address', async () => {
  const before = backend.upstream.seen.length
  assert.deepEqual(await statuses(port, '/req', '127.0.0.2', 5), [200, 200, 200, 503, 503])
  assert.deepEqual(await statuses(port, '/req', '127.0.0.3', 2), [200, 200], 'another address has its own bucket')
  assert.equal(backend.upstream.seen.length - before, 5, 'rejected requests never reach the backend')
  const lines = await logLines('127.0.0.2', 5)
  assert.deepEqual(lines.map((l) => l.split(' ').slice(2).join(' ')), [
    '200 req=PASSED conn=-', '200 req=PASSED conn=-', '200 req=PASSED conn=-', '503 req=REJECTED conn=-', '503 req=REJECTED conn=-',
  ])
  assert.match(sy.stderr, /\[error\] \d+#0: limiting requests, excess: 3\.\d{3} by zone "perip", client: 127\.0\.0\.2, server: , request: "GET \/req HTTP\/1\.1", host: "127\.0\.0\.1:\d+"/)
})

// limit_req_status picks the code; the page is nginx-shaped and the connection stays open.
test('limit_req_status 429, on a kept-alive connection that stays usable', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const from = '127.0.0.4'
  try {
    const first = await send(port, { path: '/status', agent, localAddress: from })
    const second = await send(port, { path: '/status', agent, localAddress: from })
    assert.deepEqual([first.status, second.status], [200, 429])
    assert.match(second.body.toString(), /<title>429 Too Many Requests<\/title>/)
    assert.notEqual(second.headers.connection, 'close')
    // The same socket serves the next request.
    const third = await send(port, { path: '/req', agent, localAddress: from })
    assert.equal(third.status, 200)
    assert.equal(Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length, 1, 'one connection served all three')
  } finally {
    agent.destroy()
  }
})

// A request over the rate within burst waits (excess / rate): at 2r/s, 500 ms.
test('limit_req delays a request within burst', async () => {
  const first = await send(port, { path: '/delay', localAddress: '127.0.0.5' })
  const second = await send(port, { path: '/delay', localAddress: '127.0.0.5' })
  assert.equal(first.status, 200)
  assert.equal(second.status, 200)
  assert.ok(second.ms >= 400, `the second request waited ${second.ms.toFixed(0)} ms`)
  const lines = await logLines('127.0.0.5', 2)
  assert.deepEqual(lines.map((l) => l.split(' ')[3]), ['req=PASSED', 'req=DELAYED'])
  assert.match(sy.stderr, /\[warn\] \d+#0: delaying request, excess: 0\.\d{3}, by zone "half"/)
})

// A client that leaves during its delay is never forwarded (499); the bucket still counts
// it, as nginx's does (a delayed request is accounted before it waits).
test('a delayed request whose client goes away is not forwarded', async () => {
  assert.equal((await send(port, { path: '/slow/1', localAddress: '127.0.0.14' })).status, 200)
  // At 1r/m the second request would wait about a minute; the client gives up first.
  await assert.rejects(send(port, { path: '/slow/2', localAddress: '127.0.0.14', timeout: 300 }))
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(backend.upstream.seen.filter((s) => s.url === '/slow/2').length, 0)
  const lines = await logLines('127.0.0.14', 2)
  assert.equal(lines[1], '127.0.0.14 /slow/2 499 req=DELAYED conn=-')
  await assert.rejects(send(port, { path: '/slow/3', localAddress: '127.0.0.14', timeout: 300 }))
  assert.match(sy.stderr, /delaying request, excess: 1\.\d{3}, by zone "slow"[^\n]*\n[^]*delaying request, excess: 1\.9\d{2}, by zone "slow"/)
})

// A request refused with its body unread closes the connection: the body (here hiding a
// second request) is never parsed as a request.
test('a rejected request with an unread body closes the connection', async () => {
  assert.equal((await send(port, { path: '/body', localAddress: '127.0.0.15' })).status, 200)
  const seen = backend.upstream.seen.length
  const reply = await new Promise<string>((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.15' })
    let data = ''
    const timer = setTimeout(() => s.destroy(), 5000)
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve(data)
    })
    const hidden = 'GET /req/hidden HTTP/1.1\r\nHost: x\r\n\r\n'
    s.write(`POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: ${hidden.length}\r\n\r\n`)
    setTimeout(() => s.write(hidden), 100)
  })
  assert.match(reply, /^HTTP\/1\.1 503 Service Unavailable\r\n/)
  assert.match(reply, /\r\nConnection: close\r\n/i)
  assert.equal(reply.match(/HTTP\/1\.1 /g)!.length, 1, 'one answer, nothing for the hidden request')
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(backend.upstream.seen.length, seen, 'nothing reached the backend')
})

// Dry run: nothing is refused, but the log says what would have been.
test('limit_req_dry_run lets every request through and logs REJECTED_DRY_RUN', async () => {
  const headers = { 'x-tenant': 'dry' }
  assert.deepEqual(await statuses(port, '/dry', '127.0.0.6', 3, headers), [200, 200, 200])
  const lines = await logLines('127.0.0.6', 3)
  assert.deepEqual(lines.map((l) => l.split(' ')[3]), ['req=PASSED', 'req=REJECTED_DRY_RUN', 'req=REJECTED_DRY_RUN'])
  assert.match(sy.stderr, /limiting requests, dry run, excess: 1\.000 by zone "tenant"/)
  // The dry run counted nothing against the bucket beyond the one that passed.
  assert.deepEqual(await statuses(port, '/tenant', '127.0.0.6', 2, headers), [503, 503])
})

// Keys are variables: X-Tenant keys the bucket, and a request without it is not limited.
test('an empty key is not limited', async () => {
  assert.deepEqual(await statuses(port, '/tenant', '127.0.0.7', 3, { 'x-tenant': 'acme' }), [200, 503, 503])
  assert.deepEqual(await statuses(port, '/tenant', '127.0.0.7', 3), [200, 200, 200])
  const lines = await logLines('127.0.0.7', 6)
  assert.deepEqual(lines.slice(3).map((l) => l.split(' ')[3]), ['req=-', 'req=-', 'req=-'])
})

// The key is the address real_ip gives ($binary_remote_addr after set_real_ip_from).
test('limit_req keys on the real client address', async () => {
  const a = await statuses(port, '/req', '127.0.0.8', 4, { 'x-real-ip': '10.1.1.1' })
  const b = await statuses(port, '/req', '127.0.0.8', 1, { 'x-real-ip': '10.1.1.2' })
  assert.deepEqual([a, b], [[200, 200, 200, 503], [200]])
})

// limit_conn counts requests in progress; a finished or abandoned one gives its slot back.
test('limit_conn: two requests in progress per address, released when they end', async () => {
  const held = [send(port, { path: '/conn/hold', localAddress: '127.0.0.9' }), send(port, { path: '/conn/hold', localAddress: '127.0.0.9' })]
  await until(() => backend.held.length === 2, 5000, 'two held requests')
  const third = await send(port, { path: '/conn/quick', localAddress: '127.0.0.9' })
  assert.equal(third.status, 503)
  assert.equal((await send(port, { path: '/conn/quick', localAddress: '127.0.0.10' })).status, 200, 'another address is not limited')
  backend.release()
  assert.deepEqual((await Promise.all(held)).map((r: Reply) => r.status), [200, 200])
  await until(async () => (await send(port, { path: '/conn/quick', localAddress: '127.0.0.9' })).status === 200, 5000, 'slots released')
  const lines = await logLines('127.0.0.9', 3)
  assert.ok(lines.some((l) => l.includes('/conn/quick 503 req=- conn=REJECTED')), lines.join('\n'))
  assert.match(sy.stderr, /limiting connections by zone "conns", client: 127\.0\.0\.9/)

  // A client that goes away mid-request frees its slot.
  const sockets: Socket[] = []
  for (let i = 0; i < 2; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.11' })
    s.on('error', () => undefined)
    s.write('GET /conn/hold HTTP/1.1\r\nHost: x\r\n\r\n')
    sockets.push(s)
  }
  await until(() => backend.held.length === 2, 5000, 'two held requests')
  assert.equal((await send(port, { path: '/conn/quick', localAddress: '127.0.0.11' })).status, 503)
  for (const s of sockets) s.destroy()
  await until(async () => (await send(port, { path: '/conn/quick', localAddress: '127.0.0.11' })).status === 200, 5000, 'slots of aborted requests released')
  backend.release()
})

// limit_conn_dry_run: over the limit the request goes on, holding no slot.
test('limit_conn_dry_run lets a request over the limit through', async () => {
  const first = send(port, { path: '/conndry/hold', localAddress: '127.0.0.16' })
  await until(() => backend.held.length === 1, 5000, 'the held request')
  assert.equal((await send(port, { path: '/conndry/quick', localAddress: '127.0.0.16' })).status, 200)
  backend.release()
  assert.equal((await first).status, 200)
  const lines = await logLines('127.0.0.16', 2)
  assert.deepEqual(lines.map((l) => l.split(' ').slice(1).join(' ')).sort(), [
    '/conndry/hold 200 req=- conn=PASSED', '/conndry/quick 200 req=- conn=REJECTED_DRY_RUN',
  ])
  assert.match(sy.stderr, /limiting connections, dry run, by zone "conns", client: 127\.0\.0\.16/)
})

// An upgraded tunnel holds its slot until it closes.
test('limit_conn holds a slot for an upgraded tunnel', async () => {
  const open = (): Promise<{ socket: Socket; head: string }> => new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.12' })
    let head = ''
    socket.on('error', () => undefined)
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1')
      if (head.includes('\r\n\r\n')) resolve({ socket, head })
    })
    socket.on('close', () => resolve({ socket, head }))
    socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  })
  const first = await open()
  assert.match(first.head, /^HTTP\/1\.1 101/)
  const second = await open()
  assert.match(second.head, /^HTTP\/1\.1 503 /)
  second.socket.destroy()
  first.socket.destroy()
  let third = await open()
  const deadline = Date.now() + 5000
  while (!third.head.startsWith('HTTP/1.1 101') && Date.now() < deadline) {
    third.socket.destroy()
    await new Promise((r) => setTimeout(r, 50))
    third = await open()
  }
  assert.match(third.head, /^HTTP\/1\.1 101/, 'the closed tunnel gave its slot back')
  third.socket.destroy()
})

// nginx keeps a shared zone across a reload when its definition stays; so does switchyard.
test('zones keep their state across a reload; a changed key refuses the reload', async () => {
  const b = await new TestUpstream().listen()
  const p = await freePort()
  const config = (key: string, extra: string): string => `events {}
http {
  limit_req_zone ${key} zone=one:1m rate=1r/m;
  server { listen 127.0.0.1:${p}; location / { limit_req zone=one; proxy_pass http://127.0.0.1:${b.port}; } ${extra} }
}
`
  const { proc, file } = await startSwitchyard(config('$binary_remote_addr', ''))
  try {
    assert.deepEqual(await statuses(p, '/', '127.0.0.13', 2), [200, 503])
    await writeFile(file, config('$binary_remote_addr', 'location /other { proxy_pass http://127.0.0.1:1; }'))
    proc.signal('SIGHUP')
    await proc.waitFor('reconfigured from')
    assert.deepEqual(await statuses(p, '/', '127.0.0.13', 1), [503], 'the bucket survived the reload')
    await writeFile(file, config('$remote_addr', ''))
    proc.signal('SIGHUP')
    await proc.waitFor('reload failed')
    assert.match(proc.stderr, /limit_req "one" uses the "\$remote_addr" key while previously it used the "\$binary_remote_addr" key/)
  } finally {
    await proc.stop()
    await b.close()
  }
})

// A small HTTP server is enough for the workers test's backend.
let sharedBackend: Server | null = null
after(() => void sharedBackend?.close())

// worker_processes 2: the primary owns the zones, so requests that land on either worker
// count against one bucket and one set of slots.
test('workers share limit_req and limit_conn state', async () => {
  const held: ServerResponse[] = []
  sharedBackend = createServer((req, res) => (req.url?.includes('hold') ? held.push(res) : res.end('ok')))
  await new Promise<void>((r) => sharedBackend!.listen(0, '127.0.0.1', r))
  const b = (sharedBackend.address() as { port: number }).port
  const p = await freePort()
  const admin = await freePort()
  const log = join(await tempDir('switchyard-limits-'), 'access.log')
  const { proc } = await startSwitchyard(`worker_processes 2;
events {}
http {
  log_format pids '$pid $uri $status';
  access_log ${log} pids;
  limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
  limit_conn_zone $binary_remote_addr zone=conns:1m;
  server {
    listen 127.0.0.1:${p};
    location /req { limit_req zone=one; proxy_pass http://127.0.0.1:${b}; }
    location /conn { limit_conn conns 1; proxy_pass http://127.0.0.1:${b}; }
  }
}
`, ['--admin', `127.0.0.1:${admin}`])
  try {
    await proc.waitFor('2 workers')
    // Fresh connections until both workers have answered some (bounded by count and time).
    const codes: number[] = []
    const pids = async (): Promise<Set<string>> => new Set((await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('/req')).map((l) => l.split(' ')[0]!))
    const deadline = Date.now() + 20_000
    while (codes.length < 200 && Date.now() < deadline) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => send(p, { path: '/req', localAddress: '127.0.0.20', timeout: 10_000 })))
      codes.push(...batch.map((r) => r.status))
      if (codes.length >= 16 && (await pids()).size >= 2) break
    }
    await until(async () => (await pids()).size >= 2, 3000, 'both workers in the access log')
    assert.equal(codes.filter((c) => c === 200).length, 1, `exactly one of ${codes.length} requests across both workers passed`)
    assert.equal(codes.filter((c) => c === 503).length, codes.length - 1)
    // The metrics add up every worker's decisions.
    const metrics = (await send(admin, { path: '/metrics' })).body.toString()
    assert.match(metrics, /switchyard_limit_req_total\{zone="one",outcome="passed"\} 1\n/)
    assert.match(metrics, new RegExp(`switchyard_limit_req_total\\{zone="one",outcome="rejected"\\} ${codes.length - 1}\\n`))

    // limit_conn 1: one request held on some worker; every other one, on either worker, is refused.
    const first = send(p, { path: '/conn/hold', localAddress: '127.0.0.21', timeout: 15_000 })
    await until(() => held.length === 1, 5000, 'the held request')
    const others = await Promise.all(Array.from({ length: 16 }, () => send(p, { path: '/conn/quick', localAddress: '127.0.0.21', timeout: 10_000 })))
    assert.deepEqual([...new Set(others.map((r) => r.status))], [503])
    for (const res of held.splice(0)) res.end('done')
    assert.equal((await first).status, 200)
    await until(async () => (await send(p, { path: '/conn/quick', localAddress: '127.0.0.21' })).status === 200, 5000, 'the slot given back')
    const after = (await send(admin, { path: '/metrics' })).body.toString()
    // The 16 refused above, and any poll of the wait for the slot that came too early.
    const refused = Number(/switchyard_limit_conn_total\{zone="conns",outcome="rejected"\} (\d+)\n/.exec(after)?.[1])
    assert.ok(refused >= 16 && refused < 16 + 250, `limit_conn rejected ${refused}`)
  } finally {
    await proc.stop()
  }
})
