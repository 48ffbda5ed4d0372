// Active health checks through real sockets: a backend whose health URI starts failing is
// taken out within interval × fails with no client request failing, and comes back after
// `passes`; `match` with status, header and body; `mandatory` keeps a never-passing peer
// out from the start; the API and /metrics show the reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard } from '../helpers/switchyard.js'

/** Answer `/health` with what `health()` says and everything else 200 with x-port. */
function withHealth(u: TestUpstream, health: () => { status: number; headers?: Record<string, string>; body?: string }): void {
  u.handler = (req, res) => {
    if (req.url === '/health') {
      const h = health()
      const body = h.body ?? ''
      res.writeHead(h.status, { 'content-length': Buffer.byteLength(body), ...h.headers })
      res.end(body)
      return
    }
    res.writeHead(200, { 'x-port': String(u.port), 'content-length': 2 })
    res.end('ok')
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const probes = (u: TestUpstream): number => u.seen.filter((s) => s.url === '/health').length
const served = (u: TestUpstream): number => u.seen.filter((s) => s.url !== '/health').length

function config(port: number, ups: TestUpstream[], check: string, extra = ''): string {
  return `events {}\nhttp {\n${extra}\nupstream app {\n${ups.map((u) => `server 127.0.0.1:${u.port};`).join('\n')}\n}\nserver {\nlisten 127.0.0.1:${port};\nlocation / {\nproxy_pass http://app;\n${check}\n}\n}\n}\n`
}

// The issue's scenario: a health URI that starts failing takes the peer out within
// interval × fails (here 2 × 150 ms) while a client loop keeps getting 200s, and it
// comes back after 2 passes.
test('a failing health URI takes the peer out without a failed request, and passes bring it back', async () => {
  const ups = await upstreams(2)
  const [a, b] = ups as [TestUpstream, TestUpstream]
  let bHealthy = true
  withHealth(a, () => ({ status: 200 }))
  withHealth(b, () => ({ status: bHealthy ? 200 : 500 }))
  const port = await freePort()
  const { proc } = await startSwitchyard(config(port, ups, 'health_check interval=150ms fails=2 passes=2 uri=/health;'))
  try {
    let failures = 0
    let requests = 0
    let stop = false
    const loop = (async () => {
      while (!stop && requests < 5000) {
        requests++
        const r = await send(port, { timeout: 2000 }).catch(() => null)
        if (r === null || r.status !== 200) failures++
        await sleep(5)
      }
    })()
    await sleep(300)
    assert.ok(served(b) > 0, 'b takes traffic while healthy')
    bHealthy = false
    const failedAt = Date.now()
    await proc.waitFor(`peer 127.0.0.1:${b.port} down (active: status 500, 2/2 fails) in upstream "app"`, 3000)
    const detected = Date.now() - failedAt
    // interval × fails = 300 ms, plus one interval of phase and scheduling slack.
    assert.ok(detected < 300 + 150 + 250, `taken out after ${detected} ms`)
    await sleep(50)
    const before = served(b)
    await sleep(400)
    assert.equal(served(b), before, 'no traffic to the unhealthy peer')
    bHealthy = true
    await proc.waitFor(`peer 127.0.0.1:${b.port} up (active: 2/2 passes) in upstream "app"`, 3000)
    await sleep(300)
    assert.ok(served(b) > before, 'b takes traffic again')
    stop = true
    await loop
    console.log(`# health URI failing: ${requests} requests, ${failures} failed, detected in ${detected} ms`)
    assert.equal(failures, 0)
    assert.ok(probes(b) >= 6)
  } finally {
    await proc.stop()
    await Promise.all(ups.map((u) => u.close()))
  }
})

// match: a peer whose health answer is 200 but misses the header or the body is out; the
// API says `unhealthy` with reason `active_check`, and /metrics has the reason's gauge.
test('match with status, header and body; the API and metrics show active_check', async () => {
  const ups = await upstreams(3)
  const [a, b, c] = ups as [TestUpstream, TestUpstream, TestUpstream]
  withHealth(a, () => ({ status: 200, headers: { 'x-health': 'ok' }, body: '{"state":"healthy"}' }))
  withHealth(b, () => ({ status: 200, headers: { 'x-health': 'ok' }, body: '{"state":"degraded"}' }))
  withHealth(c, () => ({ status: 200, body: '{"state":"healthy"}' }))
  const port = await freePort()
  const admin = await freePort()
  const match = 'match good { status 200-299; header X-Health = ok; body ~ "\\"state\\":\\"healthy\\""; }'
  const { proc } = await startSwitchyard(config(port, ups, 'health_check interval=200ms uri=/health match=good;', match), ['--admin', `127.0.0.1:${admin}`])
  try {
    await proc.waitFor(`peer 127.0.0.1:${b.port} down (active: body, 1/1 fails)`, 3000)
    await proc.waitFor(`peer 127.0.0.1:${c.port} down (active: header x-health, 1/1 fails)`, 3000)
    for (let i = 0; i < 10; i++) assert.equal((await send(port)).headers['x-port'], String(a.port))
    const api = JSON.parse((await send(admin, { path: '/api/upstreams/app/servers' })).body.toString()) as Array<{ server: string; state: string; reasons: string[] }>
    assert.deepEqual(api.map((p) => [p.state, p.reasons]), [['up', []], ['unhealthy', ['active_check']], ['unhealthy', ['active_check']]])
    const metrics = (await send(admin, { path: '/metrics' })).body.toString()
    assert.match(metrics, new RegExp(`switchyard_upstream_peer_unavailable\\{[^}]*server="127.0.0.1:${b.port}"[^}]*reason="active_check"[^}]*\\} 1`))
  } finally {
    await proc.stop()
    await Promise.all(ups.map((u) => u.close()))
  }
})

// mandatory: a peer that never passes never gets a request, not even the first ones.
test('mandatory keeps a never-passing peer out from the start', async () => {
  const ups = await upstreams(2)
  const [a, b] = ups as [TestUpstream, TestUpstream]
  withHealth(a, () => ({ status: 204 }))
  withHealth(b, () => ({ status: 503 }))
  const port = await freePort()
  const { proc } = await startSwitchyard(config(port, ups, 'health_check interval=200ms uri=/health mandatory;'))
  try {
    await proc.waitFor(`peer 127.0.0.1:${a.port} up (active: first check passed)`, 3000)
    for (let i = 0; i < 20; i++) assert.equal((await send(port)).status, 200)
    assert.equal(served(b), 0)
    assert.equal(served(a), 20)
    assert.ok(probes(b) >= 1)
  } finally {
    await proc.stop()
    await Promise.all(ups.map((u) => u.close()))
  }
})

// A dead backend (connection refused) is found by the probe before any client reaches it.
test('a backend that dies while idle is taken out before a client request reaches it', async () => {
  const ups = await upstreams(2)
  const [a, b] = ups as [TestUpstream, TestUpstream]
  withHealth(a, () => ({ status: 200 }))
  withHealth(b, () => ({ status: 200 }))
  const port = await freePort()
  const { proc } = await startSwitchyard(config(port, ups, 'health_check interval=100ms uri=/health;'))
  try {
    await sleep(250)
    await b.close()
    await proc.waitFor(`peer 127.0.0.1:${b.port} down (active: connect refused, 1/1 fails)`, 3000)
    for (let i = 0; i < 10; i++) assert.equal((await send(port)).status, 200)
    assert.doesNotMatch(proc.stderr, /connect\(\) failed/, 'no client request tried the dead peer')
  } finally {
    await proc.stop()
    await a.close()
  }
})

// A reload retires the old generation's checker: only the new config's probes go on.
test('a reload stops the old checker and starts the new one', async () => {
  const ups = await upstreams(1)
  const [a] = ups as [TestUpstream]
  withHealth(a, () => ({ status: 200 }))
  const port = await freePort()
  const { proc, file } = await startSwitchyard(config(port, ups, 'health_check interval=50ms uri=/health;'))
  try {
    await sleep(300)
    assert.ok(probes(a) >= 3, `fast probes before the reload (${probes(a)})`)
    const { writeFile } = await import('node:fs/promises')
    await writeFile(file, config(port, ups, 'health_check interval=5s uri=/health2;'))
    proc.signal('SIGHUP')
    await proc.waitFor('reconfigured from', 5000)
    await sleep(50)
    const after = probes(a)
    await sleep(600)
    assert.equal(probes(a), after, 'no probe of /health after the reload')
    assert.equal(a.seen.filter((s) => s.url === '/health2').length, 1)
  } finally {
    await proc.stop()
    await a.close()
  }
})
