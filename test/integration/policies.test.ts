// Balancing policies over real sockets: max_conns skips a full peer (and nothing eligible is
// a 502), sticky cookies bind clients and re-bind them when their server goes away, and
// least_time learns real response times through the request path.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { freePort, send, upstreams, type Reply, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

/** Backends that answer with their port; `/hold…` waits until released; `delays[i]` ms
 *  before backend i answers anything else. */
async function backends(n: number, delays: number[] = []): Promise<{ ups: TestUpstream[]; held: ServerResponse[] }> {
  const ups = await upstreams(n)
  const held: ServerResponse[] = []
  ups.forEach((u, i) => {
    u.handler = (req, res) => {
      if (req.url!.startsWith('/hold')) return void held.push(res)
      setTimeout(() => {
        res.writeHead(200, { 'x-port': String(u.port), 'set-cookie': 'app=1', 'content-length': '2' })
        res.end('ok')
      }, delays[i] ?? 0)
    }
  })
  cleanup.push(async () => {
    for (const res of held) res.destroy()
    await Promise.all(ups.map((u) => u.close().catch(() => undefined)))
  })
  return { ups, held }
}

async function balancer(upstreamBody: string): Promise<{ port: number; proc: SwitchyardProcess }> {
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  upstream app {
    ${upstreamBody}
  }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_connect_timeout 1; }
  }
}
`)
  cleanup.push(() => proc.stop())
  return { port, proc }
}

const portOf = (r: Reply): number => Number(r.headers['x-port'])

// max_conns=1: a peer with a request in flight is skipped; with every peer full the request
// gets 502 at once ("no live upstreams"); a finished request frees the slot again.
test('max_conns: a full peer is skipped, nothing eligible is a 502', async () => {
  const { ups, held } = await backends(2)
  const [a, b] = ups as [TestUpstream, TestUpstream]
  const { port, proc } = await balancer(`server 127.0.0.1:${a.port} max_conns=1;\nserver 127.0.0.1:${b.port} max_conns=1;`)
  const first = send(port, { path: '/hold/1' })
  while (held.length < 1) await new Promise((r) => setTimeout(r, 10))
  const busy = a.seen.length === 1 ? a : b
  const other = busy === a ? b : a
  for (let i = 0; i < 3; i++) assert.equal(portOf(await send(port)), other.port, 'the full peer is skipped')
  const second = send(port, { path: '/hold/2' })
  while (held.length < 2) await new Promise((r) => setTimeout(r, 10))
  const refused = await send(port)
  assert.equal(refused.status, 502)
  assert.ok(refused.ms < 1000)
  // The log line comes over the child's stderr, maybe after the response.
  await proc.waitFor('no live upstreams')
  held[0]!.writeHead(200, { 'content-length': '0' }).end()
  assert.equal((await first).status, 200)
  assert.equal((await send(port)).status, 200, 'a slot is free again')
  held[1]!.writeHead(200, { 'content-length': '0' }).end()
  await second
})

const md5 = (text: string): string => createHash('md5').update(text).digest('hex')
/** The srv cookie's value in a response, or undefined. */
const srvCookie = (r: Reply): string | undefined => {
  const line = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith('srv='))
  return line?.slice(4).split(';')[0]
}

// sticky cookie: the first response names its server (MD5 of 127.0.0.1:PORT), requests with
// the cookie keep going there, and when that server dies the request is balanced as new
// and the cookie re-issued for the server that answered.
test('sticky cookie: issued, honoured, re-issued when its server is down', async () => {
  const { ups } = await backends(3)
  const { port } = await balancer(`sticky cookie srv path=/ httponly;\n${ups.map((u) => `server 127.0.0.1:${u.port};`).join('\n')}`)
  const first = await send(port)
  const home = portOf(first)
  assert.equal(srvCookie(first), md5(`127.0.0.1:${home}`))
  assert.ok(first.headers['set-cookie']!.includes(`srv=${md5(`127.0.0.1:${home}`)}; httponly; path=/`))
  assert.ok(first.headers['set-cookie']!.includes('app=1'), "the backend's own cookie is kept")

  const cookie = `srv=${srvCookie(first)}`
  for (let i = 0; i < 5; i++) {
    const r = await send(port, { headers: { cookie } })
    assert.equal(portOf(r), home, 'bound to its server')
    assert.equal(srvCookie(r), srvCookie(first), 'the same cookie again')
  }
  assert.notEqual(portOf(await send(port)), home, 'a request without the cookie is balanced as usual')

  await ups.find((u) => u.port === home)!.close()
  const moved = await send(port, { headers: { cookie } })
  assert.equal(moved.status, 200)
  assert.notEqual(portOf(moved), home)
  assert.equal(srvCookie(moved), md5(`127.0.0.1:${portOf(moved)}`), 're-issued for the new server')
  const again = await send(port, { headers: { cookie: `srv=${srvCookie(moved)}` } })
  assert.equal(portOf(again), portOf(moved))
})

// least_time header through the request path: the backends' real header times are learned
// (a answers at once, b after 150 ms); before any sample the two tie and take turns, after
// that every request goes to a.
test('least_time header: the fast backend takes the load once times are known', async () => {
  const { ups } = await backends(2, [0, 150])
  const [a, b] = ups as [TestUpstream, TestUpstream]
  const { port } = await balancer(`least_time header;\nserver 127.0.0.1:${a.port};\nserver 127.0.0.1:${b.port};`)
  for (let i = 0; i < 12; i++) assert.equal((await send(port)).status, 200)
  assert.deepEqual([a.seen.length, b.seen.length], [11, 1])
})
