// Upstream connections: kept alive and reused, and `keepalive N` caps how many stay
// open idle after a burst (nginx's keepalive cache size).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, upstreams } from '../helpers/net.js'
import { startSwitchyard } from '../helpers/switchyard.js'

const connections = (server: import('node:http').Server): Promise<number> =>
  new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))

async function burst(port: number, n: number): Promise<void> {
  const replies = await Promise.all(Array.from({ length: n }, () => send(port)))
  assert.ok(replies.every((r) => r.status === 200))
}

async function settle(server: import('node:http').Server, want: (n: number) => boolean): Promise<number> {
  const deadline = Date.now() + 3000
  let n = await connections(server)
  while (!want(n) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    n = await connections(server)
  }
  return n
}

// keepalive 2: after 12 concurrent requests, at most 2 connections stay open idle.
test('keepalive N caps idle upstream connections after a burst', async () => {
  const [u] = await upstreams(1)
  u!.handler = (_q, res) => setTimeout(() => res.end('ok'), 100)
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  upstream app { server 127.0.0.1:${u!.port}; keepalive 2; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`)
  try {
    await burst(port, 12)
    assert.ok((await connections(u!.server)) > 2, 'the burst opened more than two connections')
    assert.equal(await settle(u!.server, (n) => n <= 2), 2)
    // The kept connections are reused: another sequential request opens none.
    await send(port)
    assert.equal(await connections(u!.server), 2)
  } finally {
    await proc.stop()
    await u!.close()
  }
})

// Without keepalive, connections are still kept alive and reused (switchyard's default).
test('upstream connections are reused by default', async () => {
  const [u] = await upstreams(1)
  const port = await freePort()
  let opened = 0
  u!.server.on('connection', () => opened++)
  const { proc } = await startSwitchyard(`events {}
http {
  upstream app { server 127.0.0.1:${u!.port}; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`)
  try {
    for (let i = 0; i < 10; i++) assert.equal((await send(port)).status, 200)
    assert.equal(opened, 1)
  } finally {
    await proc.stop()
    await u!.close()
  }
})
