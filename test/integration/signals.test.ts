// Reload and shutdown as nginx users expect: SIGHUP swaps the config with zero failed
// requests (a bad config changes nothing), SIGQUIT finishes in-flight requests, exit 0.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent } from 'node:http'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { runCli, startSwitchyard, tempDir } from '../helpers/switchyard.js'

const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

const conf = (port: number, backends: number[]): string => `events {}
http {
  upstream app {
    ${backends.map((p) => `server 127.0.0.1:${p};`).join(' ')}
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`

// A bounded load loop (keep-alive and fresh connections) runs through three reloads,
// one of them with a broken config: every request succeeds, and the new upstream set
// takes over after the valid reloads.
test('SIGHUP under load: zero failed requests; an invalid config keeps the old one', async () => {
  const [a, b] = await upstreams(2)
  servers.push(a!, b!)
  const port = await freePort()
  const { proc, file } = await startSwitchyard(conf(port, [a!.port]))
  let failures = 0
  let done = 0
  let stop = false
  const deadline = Date.now() + 15_000
  const worker = async (keepAlive: boolean): Promise<void> => {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
    for (let i = 0; i < 5000 && !stop && Date.now() < deadline; i++) {
      try {
        const r = await send(port, { agent, timeout: 10_000 })
        if (r.status !== 200) failures++
      } catch {
        failures++
      }
      done++
    }
    if (agent) agent.destroy()
  }
  const load = Promise.all([worker(true), worker(true), worker(false), worker(false)])
  try {
    await new Promise((r) => setTimeout(r, 300))
    await writeFile(file, conf(port, [b!.port]))
    proc.signal('SIGHUP')
    await proc.waitFor('reconfigured')
    await new Promise((r) => setTimeout(r, 300))
    await writeFile(file, 'events {}\nhttp { frobnicate on; }\n')
    proc.signal('SIGHUP')
    await proc.waitFor('unknown directive "frobnicate"')
    await new Promise((r) => setTimeout(r, 300))
    const servedByB = b!.seen.length
    assert.ok(servedByB > 0, 'the valid reload moved traffic to b')
    await writeFile(file, conf(port, [a!.port, b!.port]))
    proc.signal('SIGHUP')
    await new Promise((r) => setTimeout(r, 300))
  } finally {
    stop = true
    await load
    await proc.stop()
  }
  assert.equal(failures, 0, `${failures} of ${done} requests failed`)
  assert.ok(done > 50, `only ${done} requests ran`)
  assert.match(proc.stderr, /reload failed, the running configuration stays in force/)
})

// SIGQUIT: stop accepting, let the request in flight finish, exit 0.
test('SIGQUIT finishes the request in flight and exits 0', async () => {
  const [slow] = await upstreams(1)
  servers.push(slow!)
  slow!.handler = (_q, res) => setTimeout(() => res.end('finished'), 700)
  const port = await freePort()
  const { proc } = await startSwitchyard(conf(port, [slow!.port]))
  const inFlight = send(port)
  // Signal once the request has reached the backend (bounded wait).
  for (let i = 0; i < 200 && slow!.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  proc.signal('SIGQUIT')
  await new Promise((r) => setTimeout(r, 100))
  await assert.rejects(send(port), /ECONNREFUSED/, 'no new connections once quitting')
  const r = await inFlight
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'finished')
  assert.equal(await proc.exited, 0)
})

// SIGTERM: exit now.
test('SIGTERM exits at once', async () => {
  const [u] = await upstreams(1)
  servers.push(u!)
  const port = await freePort()
  const { proc } = await startSwitchyard(conf(port, [u!.port]))
  const started = Date.now()
  proc.signal('SIGTERM')
  assert.equal(await proc.exited, 0)
  assert.ok(Date.now() - started < 2000)
})

// `-s reload` signals the process whose pid the config's `pid` file holds.
test('-s reload finds the running switchyard through its pid file', async () => {
  const [u] = await upstreams(1)
  servers.push(u!)
  const port = await freePort()
  const dir = await tempDir()
  const text = `pid ${join(dir, 'switchyard.pid')};\n${conf(port, [u!.port])}`
  const { proc, file } = await startSwitchyard(text)
  try {
    assert.equal((await readFile(join(dir, 'switchyard.pid'), 'utf8')).trim(), String(proc.child.pid))
    const r = await runCli(['-s', 'reload', '-c', file])
    assert.equal(r.code, 0, r.stderr)
    await proc.waitFor('reconfigured')
    const q = await runCli(['-c', file, '-s', 'quit'])
    assert.equal(q.code, 0, q.stderr)
    assert.equal(await proc.exited, 0)
  } finally {
    await proc.stop()
  }
})
