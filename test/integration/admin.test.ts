// The admin listener: Prometheus metrics and the NGINX Plus-shaped JSON API over live
// state, and runtime changes (down, drain, weight) that steer traffic at once, need the
// token, and survive a reload of an unchanged upstream.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

let ups: TestUpstream[]
let proc: SwitchyardProcess
let port: number
let admin: number

function call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: admin, method, path, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
        let json: unknown = null
        try { json = JSON.parse(text) } catch { /* metrics text */ }
        resolve({ status: res.statusCode!, json, text })
      })
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body))
  })
}

async function served(n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const r = await send(port)
    assert.equal(r.status, 200)
    out.push(JSON.parse(r.body.toString()).port)
  }
  return out
}

before(async () => {
  ups = await upstreams(3)
  port = await freePort()
  admin = await freePort()
  ;({ proc } = await startSwitchyard(`events {}
http {
  upstream servers_list {
    server 127.0.0.1:${ups[0]!.port} weight=3;
    server 127.0.0.1:${ups[1]!.port} weight=5;
    server 127.0.0.1:${ups[2]!.port} weight=2;
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://servers_list; } }
}
`, ['--admin', `127.0.0.1:${admin}`, '--admin-token', 'sekret']))
  await proc.waitFor('admin listener')
})

after(async () => {
  await proc.stop()
  await Promise.all(ups.map((u) => u.close()))
})

// /api/upstreams: every peer as written, its weight, state and counters.
test('GET /api/upstreams reports peers, weights, states and counters', async () => {
  await served(10)
  const r = await call('GET', '/api/upstreams')
  assert.equal(r.status, 200)
  const peers = r.json.servers_list.peers
  assert.deepEqual(peers.map((p: any) => p.server), ups.map((u) => `127.0.0.1:${u.port}`))
  assert.deepEqual(peers.map((p: any) => p.weight), [3, 5, 2])
  assert.deepEqual(peers.map((p: any) => p.state), ['up', 'up', 'up'])
  assert.deepEqual(peers.map((p: any) => p.requests), [3, 5, 2])
  assert.deepEqual(peers.map((p: any) => p.responses['2xx']), [3, 5, 2])
  const one = await call('GET', '/api/upstreams/servers_list/servers/1')
  assert.equal(one.json.server, `127.0.0.1:${ups[1]!.port}`)
  assert.equal((await call('GET', '/api/upstreams/nope')).status, 404)
})

// /metrics: Prometheus text with the per-server counters and up gauges, labels as written.
test('GET /metrics exposes per-server requests, latency and up', async () => {
  const r = await call('GET', '/metrics')
  assert.equal(r.status, 200)
  const server = `127.0.0.1:${ups[1]!.port}`
  assert.match(r.text, new RegExp(`switchyard_upstream_requests_total\\{upstream="servers_list",server="${server}",code="200"\\} \\d+`))
  assert.match(r.text, new RegExp(`switchyard_upstream_peer_up\\{upstream="servers_list",server="${server}"\\} 1`))
  assert.match(r.text, new RegExp(`switchyard_upstream_response_seconds_count\\{upstream="servers_list",server="${server}"\\} \\d+`))
  assert.match(r.text, /switchyard_config_reloads_total\{outcome="ok"\} 0/)
  assert.doesNotMatch(r.text, /path=|client=/)
})

// Changes need the token; a bad body is a 400 that names the problem.
test('PATCH needs the bearer token and a valid body', async () => {
  assert.equal((await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: true })).status, 401)
  assert.equal((await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: true }, 'wrong')).status, 401)
  const bad = await call('PATCH', '/api/upstreams/servers_list/servers/1', { weight: -1 }, 'sekret')
  assert.equal(bad.status, 400)
  assert.match(bad.json.error.text, /weight/)
  assert.equal((await call('PATCH', '/api/upstreams/servers_list/servers/1', '{not json', 'sekret')).status, 400)
  assert.equal((await call('PATCH', '/api/upstreams/servers_list/servers/1', { colour: 'red' }, 'sekret')).status, 400)
})

// down / drain / weight take effect on the next request and are reported.
test('PATCH down, drain and weight steer traffic at once', async () => {
  const [a, b, c] = ups.map((u) => u.port)
  let r = await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: true }, 'sekret')
  assert.equal(r.status, 200)
  assert.equal(r.json.state, 'down')
  assert.ok(!(await served(10)).includes(b!))
  r = await call('PATCH', '/api/upstreams/servers_list/servers/2', { drain: true }, 'sekret')
  assert.equal(r.json.state, 'draining')
  assert.ok((await served(6)).every((p) => p === a))
  await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: false }, 'sekret')
  await call('PATCH', '/api/upstreams/servers_list/servers/2', { down: false }, 'sekret')
  r = await call('PATCH', '/api/upstreams/servers_list/servers/0', { weight: 1 }, 'sekret')
  assert.equal(r.json.weight, 1)
  const after = await served(8)
  assert.equal(after.filter((p) => p === b).length, 5, `weights 1/5/2 over 8: ${after}`)
  assert.equal(after.filter((p) => p === c).length, 2)
  assert.match(proc.stderr, /api: upstream "servers_list" server 127\.0\.0\.1:\d+ \(id 1\): down=true/)
})

// A reload that keeps the upstream unchanged keeps the API's changes.
test('API changes survive a reload of an unchanged upstream', async () => {
  await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: true }, 'sekret')
  proc.signal('SIGHUP')
  await proc.waitFor('reconfigured')
  const r = await call('GET', '/api/upstreams/servers_list/servers/1')
  assert.equal(r.json.state, 'down')
  assert.ok(!(await served(6)).includes(ups[1]!.port))
  assert.match((await call('GET', '/metrics')).text, /switchyard_config_reloads_total\{outcome="ok"\} 1/)
  await call('PATCH', '/api/upstreams/servers_list/servers/1', { down: false }, 'sekret')
})

// A dead server shows as unavailable with its reason, in the API and in metrics.
test('a dead server is reported out with the reason max_fails', async () => {
  await ups[2]!.close()
  await served(10)
  const r = await call('GET', '/api/upstreams/servers_list/servers/2')
  assert.equal(r.json.state, 'unavail')
  assert.deepEqual(r.json.reasons, ['max_fails'])
  const m = await call('GET', '/metrics')
  assert.match(m.text, new RegExp(`switchyard_upstream_peer_unavailable\\{upstream="servers_list",server="127.0.0.1:${ups[2]!.port}",reason="max_fails"\\} 1`))
  assert.match(m.text, /switchyard_upstream_retries_total\{upstream="servers_list",cause="error"\} 1/)
})

// `admin_listen` is the config form of --admin (with its token).
test('admin_listen in the config starts the admin listener', async () => {
  const [u] = await upstreams(1)
  const p = await freePort()
  const a = await freePort()
  const { proc: other } = await startSwitchyard(`admin_listen 127.0.0.1:${a} token=t0k;
events {}
http {
  upstream app { server 127.0.0.1:${u!.port}; }
  server { listen 127.0.0.1:${p}; location / { proxy_pass http://app; } }
}
`)
  try {
    await other.waitFor('admin listener')
    const saved = admin
    admin = a
    try {
      assert.equal((await call('GET', '/api/upstreams')).json.app.peers.length, 1)
      assert.equal((await call('PATCH', '/api/upstreams/app/servers/0', { down: true })).status, 401)
      assert.equal((await call('PATCH', '/api/upstreams/app/servers/0', { down: true }, 't0k')).status, 200)
    } finally {
      admin = saved
    }
  } finally {
    await other.stop()
    await u!.close()
  }
})

// Without --admin, `admin_listen` is followed across reloads (one process and with
// workers): moved to a new address, its token changed, a reload whose address is taken
// fails and keeps the listener where it was, and removing the directive closes it.
for (const workers of [1, 2]) {
  test(`admin_listen follows reloads (worker_processes ${workers})`, async () => {
    const [u] = await upstreams(1)
    const p = await freePort()
    const [a, b] = [await freePort(), await freePort()]
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
    const busy = (taken.address() as { port: number }).port
    const conf = (admin: string): string => `worker_processes ${workers};
${admin}
events {}
http {
  upstream app { server 127.0.0.1:${u!.port}; }
  server { listen 127.0.0.1:${p}; location / { proxy_pass http://app; } }
}
`
    const { proc: sy, file } = await startSwitchyard(conf(`admin_listen 127.0.0.1:${a};`))
    const saved = admin
    const reload = async (text: string, marker: string): Promise<void> => {
      const before = sy.stderr.length
      await writeFile(file, text)
      sy.signal('SIGHUP')
      const deadline = Date.now() + 10_000
      while (!sy.stderr.slice(before).includes(marker)) {
        assert.ok(Date.now() < deadline, `no "${marker}" after the reload:\n${sy.stderr.slice(before)}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    try {
      await sy.waitFor(`admin listener on http://127.0.0.1:${a}/`)
      admin = a
      assert.equal((await call('PATCH', '/api/upstreams/app/servers/0', { weight: 2 })).status, 200)

      await reload(conf(`admin_listen 127.0.0.1:${b} token=n3w;`), `admin listener on http://127.0.0.1:${b}/`)
      await assert.rejects(call('GET', '/api/upstreams'), /ECONNREFUSED/)
      admin = b
      assert.equal((await call('PATCH', '/api/upstreams/app/servers/0', { weight: 3 })).status, 401)
      assert.equal((await call('PATCH', '/api/upstreams/app/servers/0', { weight: 3 }, 'n3w')).status, 200)

      await reload(conf(`admin_listen 127.0.0.1:${busy};`), 'reload failed')
      assert.match(sy.stderr, new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${busy} failed \\(EADDRINUSE\\) for the admin listener`))
      assert.equal((await call('GET', '/api/upstreams')).status, 200, 'the listener stays where the running config has it')
      assert.equal((await send(p)).status, 200)

      await reload(conf(''), 'admin listener closed')
      await assert.rejects(call('GET', '/api/upstreams'), /ECONNREFUSED/)
      assert.equal((await send(p)).status, 200)
    } finally {
      admin = saved
      taken.close()
      await sy.stop()
      await u!.close()
    }
  })
}
