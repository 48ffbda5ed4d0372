// The dashboard's server side, without a browser: its files (offline, small, locked down
// by CSP), the event stream (one poll per tick for any number of clients, none while
// nobody watches, aggregated over workers), and the demo's admin listener.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { createServer, get, request, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { upstreamView, type UpstreamView } from '../../src/admin/api.js'
import { startAdmin, type AdminBackend } from '../../src/admin/server.js'
import type { LiveFrame, LiveHello } from '../../src/admin/dashboard/wire.js'
import { createLogger } from '../../src/log.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { freePorts, send, upstreams } from '../helpers/net.js'
import { BIN, ROOT, startSwitchyard } from '../helpers/switchyard.js'
import { upstreamConfig } from '../helpers/upstream-config.js'

const DASHBOARD = join(ROOT, 'dist', 'dashboard')
const notBuilt = existsSync(join(DASHBOARD, 'index.html')) ? false : 'the dashboard is not built (npm run build)'

/** An admin backend over one in-memory upstream, counting its polls. */
function fakeBackend(): AdminBackend & { polls: number } {
  const upstream = new Upstream(upstreamConfig([{ name: 'a:1', weight: 3 }, { name: 'b:1', weight: 5 }]))
  const backend = {
    polls: 0,
    log: createLogger('stderr', 'emerg'),
    upstreams: async (): Promise<Record<string, UpstreamView>> => {
      backend.polls++
      return { test: upstreamView(upstream, Date.now()) }
    },
    patch: async () => null,
    metrics: async () => ({ contentType: 'text/plain', text: '' }),
    reloads: async () => ({ ok: 0, error: 0 }),
  }
  return backend
}

interface SseClient {
  readonly events: Array<{ event: string; data: unknown }>
  close(): void
}

/** Read `GET /api/stream` on `port`, collecting events as they come. */
function subscribe(port: number): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const events: SseClient['events'] = []
    const req = get({ host: '127.0.0.1', port, path: '/api/stream' }, (res: IncomingMessage) => {
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/event-stream/)
      let buffer = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) })
        }
      })
      res.on('error', () => undefined)
      resolve({ events, close: () => req.destroy() })
    })
    req.on('error', reject)
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function waitUntil(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function fetchText(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, method }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

// Two pages open: one poll per tick between them; both closed: no polls at all.
test('the stream polls once per tick for every client, and not at all with none', { timeout: 20_000 }, async () => {
  const backend = fakeBackend()
  const server = await startAdmin(backend, { host: '127.0.0.1', port: 0 })
  const port = (server.address() as AddressInfo).port
  try {
    await sleep(1200)
    assert.equal(backend.polls, 0, 'no client, no poll')
    const a = await subscribe(port)
    const b = await subscribe(port)
    await waitUntil('three frames on both', () => [a, b].every((c) => c.events.filter((e) => e.event === 'frame').length >= 3))
    const polls = backend.polls
    const frames = Math.max(...[a, b].map((c) => c.events.filter((e) => e.event === 'frame').length))
    assert.ok(polls <= frames + 1, `${polls} polls for ${frames} frames to two clients`)
    assert.equal(a.events[0]!.event, 'hello')
    const hello = a.events[0]!.data as LiveHello
    assert.equal(hello.interval, 1000)
    assert.equal(hello.token_required, false)
    const frame = a.events.at(-1)!.data as LiveFrame
    assert.deepEqual(frame.upstreams[0]!.peers.map((p) => [p.server, p.weight, p.weight_share]), [['a:1', 3, 0.375], ['b:1', 5, 0.625]])
    a.close()
    b.close()
    await sleep(300)
    const after = backend.polls
    await sleep(2200)
    assert.equal(backend.polls, after, 'polling stopped with the last client')
    // A page opened later is told what happened before (history, events).
    const c = await subscribe(port)
    await waitUntil('hello', () => c.events.length > 0)
    assert.ok((c.events[0]!.data as LiveHello).history.length >= 3)
    c.close()
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})

// The page and its files come from switchyard itself, small, with a strict CSP.
test('the dashboard files: served offline, small, with a strict CSP', { skip: notBuilt }, async () => {
  const backend = fakeBackend()
  const server = await startAdmin(backend, { host: '127.0.0.1', port: 0 })
  const port = (server.address() as AddressInfo).port
  try {
    const page = await fetchText(port, '/')
    assert.equal(page.status, 200)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    const csp = String(page.headers['content-security-policy'])
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /script-src 'self'/)
    const html = page.body.toString()
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((r) => r.startsWith('assets/'))
    assert.ok(refs.length >= 4, `assets referenced: ${refs}`)
    assert.doesNotMatch(html, /https?:\/\/(?!127)/, 'no external URL')
    for (const ref of refs) {
      const r = await fetchText(port, `/${ref}`)
      assert.equal(r.status, 200, ref)
      assert.equal(r.headers['x-content-type-options'], 'nosniff')
      const again = await fetchText(port, `/${ref}`, { 'if-none-match': String(r.headers.etag) })
      assert.equal(again.status, 304, `${ref} revalidates`)
    }
    // Everything the page loads (JS and CSS): well under 100 KB.
    let bytes = 0
    for (const entry of await readdir(join(DASHBOARD, 'assets'), { recursive: true })) {
      if (/\.(js|css)$/.test(entry)) bytes += (await stat(join(DASHBOARD, 'assets', entry))).size
    }
    assert.ok(bytes < 100 * 1024, `${bytes} bytes of JS and CSS`)
    assert.equal((await fetchText(port, '/assets/nope.js')).status, 404)
    assert.equal((await fetchText(port, '/assets/../package.json')).status, 404)
    assert.equal((await fetchText(port, '/', {}, 'POST')).status, 405)
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})

// With workers the stream shows the primary's merged view: every worker's traffic.
test('the stream adds up the workers\' counters', { timeout: 30_000 }, async () => {
  const ups = await upstreams(2)
  const [port, admin] = await freePorts(2)
  const { proc } = await startSwitchyard(`worker_processes 2;
events {}
http {
  upstream pool { server 127.0.0.1:${ups[0]!.port} weight=1; server 127.0.0.1:${ups[1]!.port} weight=1; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://pool; } }
}
`, ['--admin', `127.0.0.1:${admin}`])
  try {
    await proc.waitFor('admin listener')
    const client = await subscribe(admin!)
    await waitUntil('a first frame', () => client.events.some((e) => e.event === 'frame'))
    for (let i = 0; i < 40; i++) assert.equal((await send(port!)).status, 200)
    const total = (): number => {
      const frames = client.events.filter((e) => e.event === 'frame')
      const last = frames.at(-1)?.data as LiveFrame | undefined
      return last?.upstreams[0]?.peers.reduce((n, p) => n + p.requests, 0) ?? 0
    }
    await waitUntil('40 requests counted', () => total() === 40)
    client.close()
  } finally {
    await proc.stop()
    await Promise.all(ups.map((u) => u.close()))
  }
})

// `npm start` with the dashboard's port taken: a clear message, exit 1, nothing left running.
test('the demo says so when the dashboard\'s port is taken', { timeout: 30_000 }, async () => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  const taken = (blocker.address() as AddressInfo).port
  const [a, b, c, listen] = await freePorts(4)
  try {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'demo', '--ports', `${a},${b},${c}`, '--listen', String(listen), '--admin', `127.0.0.1:${taken}`], { cwd: ROOT, timeout: 20_000 },
        (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }))
    })
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, new RegExp(`dashboard \\(admin listener\\): 127\\.0\\.0\\.1:${taken} is already in use; choose another address with --admin HOST:PORT`))
    // Its balancer port was released: something else can listen there now.
    const probe = createServer()
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(listen, '127.0.0.1', resolve))
    await new Promise((r) => probe.close(r))
  } finally {
    await new Promise((r) => blocker.close(r))
  }
})
