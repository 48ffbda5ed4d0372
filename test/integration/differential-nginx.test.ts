// The same config and backends under switchyard and under Debian's nginx choose the same
// backend for every request: smooth weighted round robin, down, backup and failover.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { proxyConfig, underBoth } from '../helpers/nginx.js'

const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

/** Backend ports chosen for `n` sequential requests (0 for a non-200 answer). */
async function sequence(port: number, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const r = await send(port)
    out.push(r.status === 200 ? Number(r.headers['x-port']) : 0)
  }
  return out
}

async function compare(upstreamBody: (ports: number[], dead: number) => string, n = 20): Promise<{ nginx: number[]; switchyard: number[] }> {
  const ups = await upstreams(3)
  servers.push(...ups)
  const dead = await freePort()
  const ports = ups.map((u) => u.port)
  const config = (listen: number): string => proxyConfig('servers_list', upstreamBody(ports, dead), listen, 'proxy_connect_timeout 1;')
  return underBoth(config, (port) => sequence(port, n))
}

// The tutorial's weights 3/5/2.
test('differential: weights 3/5/2, 20 requests', async () => {
  const r = await compare(([a, b, c]) => `server 127.0.0.1:${a} weight=3; server 127.0.0.1:${b} weight=5; server 127.0.0.1:${c} weight=2;`)
  assert.deepEqual(r.switchyard, r.nginx)
})

// Weights 5/1/1 (nginx's documented a a b a c a a).
test('differential: weights 5/1/1', async () => {
  const r = await compare(([a, b, c]) => `server 127.0.0.1:${a} weight=5; server 127.0.0.1:${b}; server 127.0.0.1:${c};`)
  assert.deepEqual(r.switchyard, r.nginx)
})

// A dead peer among live ones: the failover and the order after it match nginx.
test('differential: a refused peer with weight 5 fails over identically', async () => {
  const r = await compare(([a, , c], dead) => `server 127.0.0.1:${a} weight=3; server 127.0.0.1:${dead} weight=5; server 127.0.0.1:${c} weight=2;`)
  assert.ok(!r.nginx.includes(0), 'nginx served every request')
  assert.deepEqual(r.switchyard, r.nginx)
})

// down and backup.
test('differential: down and backup peers', async () => {
  const r = await compare(([a, b, c]) => `server 127.0.0.1:${a} weight=2; server 127.0.0.1:${b} down; server 127.0.0.1:${c} backup;`)
  assert.deepEqual(r.switchyard, r.nginx)
})

// Every primary dead: the backup takes over the same way.
test('differential: all primaries refused, backup serves', async () => {
  const r = await compare(([, , c], dead) => `server 127.0.0.1:${dead}; server 127.0.0.1:${dead + 0} weight=2 max_fails=2; server 127.0.0.1:${c} backup;`)
  assert.deepEqual(r.switchyard, r.nginx)
})
