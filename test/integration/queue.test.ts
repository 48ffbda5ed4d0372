// queue N [timeout=] (NGINX Plus): with the only server at max_conns=1 and a slow backend,
// requests wait for the slot instead of failing; overflow and timeout answer 503 (NGINX
// Plus answers 502 for both); a waiting request whose client leaves gives its place up.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startSwitchyard, tempDir } from '../helpers/switchyard.js'

const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup) await c()
})

/** One backend answering after `delay` ms behind `max_conns=1` and `queue`. */
async function setup(queue: string, delay: number): Promise<{ up: TestUpstream; port: number }> {
  const [up] = (await upstreams(1)) as [TestUpstream]
  up.handler = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), delay)
  const port = await freePort()
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  upstream app {
    server 127.0.0.1:${up.port} max_conns=1;
    ${queue}
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`)
  cleanup.push(async () => {
    await proc.stop()
    await up.close()
  })
  return { up, port }
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// Without a queue the second request finds the only server full: 502 at once (nginx).
test('no queue: a full server answers 502 at once', async () => {
  const { port } = await setup('', 300)
  const first = send(port, { timeout: 5000 })
  await pause(50)
  const second = await send(port, { timeout: 5000 })
  assert.equal(second.status, 502)
  assert.ok(second.ms < 200, `${second.ms} ms`)
  assert.equal((await first).status, 200)
})

// Three requests, one slot, queue 2: all served, one after another.
test('queue 2: waiters are served in turn', async () => {
  const { up, port } = await setup('queue 2 timeout=5s;', 200)
  const started = performance.now()
  const replies = await Promise.all([0, 30, 60].map(async (d) => {
    await pause(d)
    return send(port, { timeout: 5000 })
  }))
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200])
  assert.equal(up.seen.length, 3)
  assert.ok(performance.now() - started >= 550, 'served one at a time')
})

// One more than the queue holds: 503 at once for the overflow, the rest are served.
test('queue 1: overflow answers 503 at once', async () => {
  const { port } = await setup('queue 1 timeout=5s;', 300)
  const first = send(port, { timeout: 5000 })
  await pause(50)
  const second = send(port, { timeout: 5000 })
  await pause(50)
  const third = await send(port, { timeout: 5000 })
  assert.equal(third.status, 503)
  assert.ok(third.ms < 200, `${third.ms} ms`)
  assert.deepEqual([(await first).status, (await second).status], [200, 200])
})

// No slot within timeout=200ms: 503 after about that long.
test('queue timeout answers 503', async () => {
  const { up, port } = await setup('queue 5 timeout=200ms;', 1000)
  const first = send(port, { timeout: 5000 })
  await pause(50)
  const second = await send(port, { timeout: 5000 })
  assert.equal(second.status, 503)
  assert.ok(second.ms >= 180 && second.ms < 800, `${second.ms} ms`)
  assert.equal((await first).status, 200)
  assert.equal(up.seen.length, 1)
})

// A client that gives up while waiting leaves the queue: its place goes to the next
// request, and the backend never sees the abandoned one.
test('queue: a client gone while waiting leaves the queue', async () => {
  const { up, port } = await setup('queue 1 timeout=5s;', 400)
  const first = send(port, { timeout: 5000 })
  await pause(50)
  await assert.rejects(send(port, { timeout: 100 }), /no answer within 100 ms/)
  await pause(50)
  const third = await send(port, { timeout: 5000 })
  assert.equal(third.status, 200, 'queued in the abandoned place, then served')
  assert.equal((await first).status, 200)
  assert.equal(up.seen.length, 2)
})

// $upstream_queue_time: the request that waited for the slot logs about how long it
// waited; the one served at once logs 0.000.
test('queue: $upstream_queue_time logs the wait', async () => {
  const [up] = (await upstreams(1)) as [TestUpstream]
  up.handler = (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), 400)
  const port = await freePort()
  const dir = await tempDir()
  const log = join(dir, 'access.log')
  const { proc } = await startSwitchyard(`worker_processes 1;
events {}
http {
  log_format q '$request_uri $status $upstream_queue_time';
  upstream app {
    server 127.0.0.1:${up.port} max_conns=1;
    queue 2 timeout=5s;
  }
  server { listen 127.0.0.1:${port}; access_log ${log} q; location / { proxy_pass http://app; } }
}
`)
  cleanup.push(async () => {
    await proc.stop()
    await up.close()
  })
  const first = send(port, { path: '/first', timeout: 5000 })
  await pause(50)
  const second = await send(port, { path: '/second', timeout: 5000 })
  assert.equal((await first).status, 200)
  assert.equal(second.status, 200)
  let text = ''
  for (let i = 0; i < 50 && text.split('\n').length < 3; i++) {
    await pause(100)
    text = await readFile(log, 'utf8').catch(() => '')
  }
  const wait = (uri: string): number => Number(new RegExp(`^${uri} 200 ([0-9.]+)$`, 'm').exec(text)?.[1] ?? NaN)
  assert.equal(wait('/first'), 0, text)
  assert.ok(wait('/second') >= 0.2 && wait('/second') < 3, text)
})
