// The tutorial's system over real sockets: weights 3/5/2, a dead service skipped with no
// client error, a blackholed one costing one connect timeout, everything down → 502.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Blackhole, freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const running: SwitchyardProcess[] = []
const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(running.map((p) => p.stop()))
  await Promise.all(servers.map((s) => s.close()))
})

function config(listen: number, lines: string[], extra = ''): string {
  return `events { worker_connections 1024; }
http {
  upstream servers_list {
    ${lines.join('\n    ')}
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://servers_list;
      proxy_connect_timeout 1;
      ${extra}
    }
  }
}
`
}

async function portsServed(listen: number, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const r = await send(listen)
    assert.equal(r.status, 200, `request ${i}: ${r.body}`)
    out.push(JSON.parse(r.body.toString()).port)
  }
  return out
}

// 10 requests over weights 3/5/2 land 3/5/2, in nginx's smooth order.
test('weights 3/5/2: ten requests split 3/5/2 in nginx order', async () => {
  const [a, b, c] = await upstreams(3)
  servers.push(a!, b!, c!)
  const listen = await freePort()
  const { proc } = await startSwitchyard(config(listen, [
    `server 127.0.0.1:${a!.port} weight=3;`, `server 127.0.0.1:${b!.port} weight=5;`, `server 127.0.0.1:${c!.port} weight=2;`,
  ]))
  running.push(proc)
  const served = await portsServed(listen, 10)
  const name = (p: number): string => (p === a!.port ? 'a' : p === b!.port ? 'b' : 'c')
  assert.equal(served.map(name).join(' '), 'b a c b a b b c a b')
  assert.deepEqual([a!, b!, c!].map((u) => u.seen.length), [3, 5, 2])
})

// A closed port (connection refused) is skipped: zero client errors, others share the load.
test('a closed port is skipped with zero client errors', async () => {
  const [a, c] = await upstreams(2)
  servers.push(a!, c!)
  const dead = await freePort()
  const listen = await freePort()
  const { proc } = await startSwitchyard(config(listen, [
    `server 127.0.0.1:${a!.port} weight=3;`, `server 127.0.0.1:${dead} weight=5;`, `server 127.0.0.1:${c!.port} weight=2;`,
  ]))
  running.push(proc)
  const served = await portsServed(listen, 20)
  assert.ok(!served.includes(dead))
  assert.equal(a!.seen.length + c!.seen.length, 20)
  // max_fails=1: the dead peer was tried once, then skipped for fail_timeout (10 s).
  assert.equal(proc.stderr.match(/\[error\].*connect\(\) failed/g)?.length, 1, proc.stderr)
  assert.match(proc.stderr, /\[warn\].*upstream server temporarily disabled: 127.0.0.1:\d+ in upstream "servers_list"/)
})

// The tutorial's failover: proxy_connect_timeout 1 against a blackholed peer costs the
// first request about 1 s; later requests skip the peer and cost nothing.
test('a blackholed peer costs one connect timeout, then is skipped', async () => {
  const hole = await new Blackhole().listen()
  const [a] = await upstreams(1)
  servers.push(a!)
  const listen = await freePort()
  const { proc } = await startSwitchyard(config(listen, [
    `server 127.0.0.1:${hole.port} weight=5;`, `server 127.0.0.1:${a!.port} weight=1;`,
  ]))
  running.push(proc)
  try {
    const first = await send(listen)
    assert.equal(first.status, 200)
    assert.ok(first.ms >= 900 && first.ms < 3000, `first request took ${first.ms} ms`)
    for (let i = 0; i < 5; i++) {
      const r = await send(listen)
      assert.equal(r.status, 200)
      assert.ok(r.ms < 500, `later request took ${r.ms} ms`)
    }
    assert.match(proc.stderr, /upstream timed out/)
  } finally {
    await hole.close()
  }
})

// Nothing eligible → 502 at once, with nginx's error page.
test('all peers down → 502 quickly', async () => {
  const [p1, p2] = [await freePort(), await freePort()]
  const listen = await freePort()
  const { proc } = await startSwitchyard(config(listen, [`server 127.0.0.1:${p1};`, `server 127.0.0.1:${p2};`]))
  running.push(proc)
  const r = await send(listen)
  assert.equal(r.status, 502)
  assert.match(r.body.toString(), /502 Bad Gateway/)
  assert.ok(r.ms < 1000)
  // Both now marked failed: the next request finds no live upstream and fails at once.
  const again = await send(listen)
  assert.equal(again.status, 502)
  assert.match(proc.stderr, /no live upstreams/)
})

// A peer killed while connections to it sit in the pool: GETs fail over, no client error.
test('a backend killed under keep-alive: requests fail over with zero errors', async () => {
  const [a, b] = await upstreams(2)
  servers.push(a!)
  const listen = await freePort()
  const { proc } = await startSwitchyard(config(listen, [`server 127.0.0.1:${a!.port};`, `server 127.0.0.1:${b!.port};`]))
  running.push(proc)
  await portsServed(listen, 6)
  await b!.close()
  const served = await portsServed(listen, 10)
  assert.ok(served.every((p) => p === a!.port))
})
