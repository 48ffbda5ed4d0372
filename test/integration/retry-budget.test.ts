// retry_budget (Envoy's semantics): a peer failing every request fast cannot turn each
// request into two and double the load on the healthy one; over budget the failing try's
// answer stands, and the denials are counted in /metrics.
import { test, after } from 'node:test'
import { Agent } from 'node:http'
import assert from 'node:assert/strict'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

/** `bad` answers 503 at once (max_fails=0: never taken out), `good` after 150 ms. */
async function setup(budget: string): Promise<{ bad: TestUpstream; good: TestUpstream; port: number; admin: number; proc: SwitchyardProcess }> {
  const [bad, good] = (await upstreams(2)) as [TestUpstream, TestUpstream]
  bad.handler = (_req, res) => res.writeHead(503, { 'content-length': '0' }).end()
  good.handler = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), 150)
  const port = await freePort()
  const admin = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app {
    server 127.0.0.1:${bad.port} max_fails=0;
    server 127.0.0.1:${good.port};
    ${budget}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_next_upstream error timeout http_503;
    }
  }
}
`, ['--admin', `127.0.0.1:${admin}`])
  await proc.waitFor('admin listener')
  cleanup.push(async () => {
    await proc.stop()
    await Promise.all([bad.close(), good.close()])
  })
  return { bad, good, port, admin, proc }
}

/** 40 requests at once; their statuses. */
async function burst(port: number): Promise<number[]> {
  const replies = await Promise.all(Array.from({ length: 40 }, () => send(port, { timeout: 10_000 })))
  return replies.map((r) => r.status)
}

const count = (list: number[], status: number): number => list.filter((s) => s === status).length

// Without a budget every failed try moves to the healthy peer: it serves all 40.
test('retry_budget off: the healthy peer takes every retry', async () => {
  const { good, port } = await setup('retry_budget off;')
  const statuses = await burst(port)
  assert.equal(count(statuses, 200), 40)
  assert.equal(good.seen.length, 40)
})

// With ratio=0.2 min=0, at most a fifth of the requests in flight may be retries: most of
// the bad peer's 503s pass through and the healthy peer's load stays well below double.
test('retry_budget ratio=0.2 min=0: the healthy peer is not doubled', async () => {
  const { bad, good, port, admin } = await setup('retry_budget ratio=0.2 min=0;')
  const statuses = await burst(port)
  assert.equal(count(statuses, 200) + count(statuses, 503), 40, `only 200 and 503: ${statuses.join(' ')}`)
  assert.equal(count(statuses, 200), good.seen.length)
  assert.equal(bad.seen.length, 20, 'round robin alternates the first tries')
  const retries = good.seen.length - 20
  assert.ok(good.seen.length <= 30, `healthy peer saw ${good.seen.length} of 40 (round robin gives it 20, retries at most 8)`)
  assert.ok(retries <= 8, `${retries} retries made`)
  const denied = count(statuses, 503)
  assert.ok(denied >= 12, `${denied} answered 503`)
  const metrics = (await send(admin, { path: '/metrics' })).body.toString()
  assert.match(metrics, new RegExp(`switchyard_upstream_retry_budget_exhausted_total\\{upstream="app"\\} ${denied}\\b`))
})

// The default budget and a peer dying under load (32 keep-alive clients, 3 peers): every
// request in flight on it fails at once, but it is out (max_fails) from the first, so
// moving the rest costs no budget and no request is lost.
test('default budget: a peer killed under load costs no request', async () => {
  const ups = await upstreams(3)
  for (const u of ups) u.handler = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), 5)
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app {
    ${ups.map((u) => `server 127.0.0.1:${u.port};`).join('\n    ')}
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`)
  const agent = new Agent({ keepAlive: true, maxSockets: 32 })
  cleanup.push(async () => {
    agent.destroy()
    await proc.stop()
    await Promise.all(ups.map((u) => u.close().catch(() => undefined)))
  })
  let sent = 0
  const statuses: number[] = []
  const client = async (): Promise<void> => {
    while (sent < 3000) {
      sent++
      statuses.push(await send(port, { agent, timeout: 5000 }).then((r) => r.status, () => 0))
    }
  }
  const kill = setTimeout(() => void ups[1]!.close(), 200)
  await Promise.all(Array.from({ length: 32 }, client))
  clearTimeout(kill)
  assert.ok(ups[1]!.seen.length > 0 && ups[1]!.seen.length < 1000, `the killed peer served ${ups[1]!.seen.length}`)
  assert.deepEqual(statuses.filter((s) => s !== 200), [])
})
