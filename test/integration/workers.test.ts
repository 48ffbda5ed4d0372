// worker_processes > 1: a primary owns the sockets and the config, workers serve; a dead
// worker is replaced; a reload under keep-alive load fails no request; the API and the
// metrics add the workers up.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { startSwitchyard } from '../helpers/switchyard.js'

const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

const conf = (workers: number, port: number, backends: number[], extra = ''): string => `worker_processes ${workers};
events {}
http {
  upstream app {
    ${backends.map((p) => `server 127.0.0.1:${p};`).join(' ')}
  }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; ${extra} } }
}
`

/** Worker pids named in the log lines "PID#0: switchyard worker started". */
const workerPids = (log: string): number[] => [...log.matchAll(/ (\d+)#0: switchyard worker started/g)].map((m) => Number(m[1]))

function getJson(port: number, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(path === '/metrics' ? text : JSON.parse(text)))
    }).on('error', reject).end()
  })
}

// Two workers serve; the API adds their counters up; a killed worker is replaced at once.
test('two workers serve, the API aggregates them, a dead worker is replaced', async () => {
  const [a, b] = await upstreams(2)
  servers.push(a!, b!)
  const port = await freePort()
  const admin = await freePort()
  const { proc } = await startSwitchyard(conf(2, port, [a!.port, b!.port]), ['--admin', String(admin)])
  try {
    assert.equal(workerPids(proc.stderr).length, 2)
    for (let i = 0; i < 20; i++) assert.equal((await send(port)).status, 200)
    const api = await getJson(admin, '/api/upstreams/app')
    assert.equal(api.peers[0].requests + api.peers[1].requests, 20)
    const metrics: string = await getJson(admin, '/metrics')
    const counted = [...metrics.matchAll(/switchyard_upstream_requests_total\{[^}]*code="200"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
    assert.equal(counted, 20)

    const victim = workerPids(proc.stderr)[0]!
    process.kill(victim, 'SIGKILL')
    await proc.waitFor(`worker process ${victim} exited on signal SIGKILL; starting a new one`)
    const deadline = Date.now() + 10_000
    while (workerPids(proc.stderr).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.equal(workerPids(proc.stderr).length, 3, 'a replacement worker started')
    for (let i = 0; i < 10; i++) assert.equal((await send(port)).status, 200)
  } finally {
    await proc.stop()
  }
})

// The zero-loss reload: keep-alive and fresh-connection clients in a bounded loop while
// the config is reloaded three times (one of them invalid): no request fails, and the
// old workers go away.
test('reload with workers under keep-alive load: zero failed requests', async () => {
  const [a, b] = await upstreams(2)
  servers.push(a!, b!)
  const port = await freePort()
  const { proc, file } = await startSwitchyard(conf(2, port, [a!.port]))
  let failures = 0
  let done = 0
  let stop = false
  const errors: string[] = []
  const deadline = Date.now() + 30_000
  const worker = async (keepAlive: boolean): Promise<void> => {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
    for (let i = 0; i < 20_000 && !stop && Date.now() < deadline; i++) {
      try {
        const r = await send(port, { agent, timeout: 10_000 })
        if (r.status !== 200) {
          failures++
          errors.push(`status ${r.status}`)
        }
      } catch (err) {
        failures++
        errors.push((err as Error).message)
      }
      done++
    }
    if (agent) agent.destroy()
  }
  const load = Promise.all([worker(true), worker(true), worker(true), worker(false)])
  try {
    await new Promise((r) => setTimeout(r, 500))
    await writeFile(file, conf(2, port, [b!.port]))
    proc.signal('SIGHUP')
    await proc.waitFor('reconfigured')
    await new Promise((r) => setTimeout(r, 2500))
    assert.ok(b!.seen.length > 0, 'traffic moved to the new upstream')
    await writeFile(file, 'worker_processes 2;\nevents {}\nhttp { frobnicate on; }\n')
    proc.signal('SIGHUP')
    await proc.waitFor('unknown directive "frobnicate"')
    await writeFile(file, conf(2, port, [a!.port, b!.port]))
    proc.signal('SIGHUP')
    await new Promise((r) => setTimeout(r, 2500))
  } finally {
    stop = true
    await load
  }
  try {
    assert.equal(failures, 0, `${failures} of ${done} failed: ${[...new Set(errors)].join('; ')}`)
    assert.ok(done > 200, `only ${done} requests ran`)
    // Old workers finished and exited: only the newest two remain.
    const pids = workerPids(proc.stderr)
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    })
    assert.equal(alive.length, 2, `alive workers: ${alive} of ${pids}`)
  } finally {
    await proc.stop()
  }
})

// SIGQUIT to the primary: in-flight requests finish, every process exits 0.
test('SIGQUIT with workers finishes the request in flight', async () => {
  const [slow] = await upstreams(1)
  servers.push(slow!)
  slow!.handler = (_q, res) => setTimeout(() => res.end('finished'), 700)
  const port = await freePort()
  const { proc } = await startSwitchyard(conf(2, port, [slow!.port]))
  const inFlight = send(port)
  // Signal once the request has reached the backend (bounded wait).
  for (let i = 0; i < 200 && slow!.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  proc.signal('SIGQUIT')
  const r = await inFlight
  assert.equal(r.body.toString(), 'finished')
  assert.equal(await proc.exited, 0)
  for (const pid of workerPids(proc.stderr)) assert.throws(() => process.kill(pid, 0), 'worker gone')
})

// A worker killed under load: only requests that worker held can fail (at most one per
// client connection), the rest go on, and a replacement starts.
test('a worker killed under load loses only what it held', async () => {
  const [a] = await upstreams(1)
  servers.push(a!)
  const port = await freePort()
  const { proc } = await startSwitchyard(conf(2, port, [a!.port]))
  const clients = 4
  let failures = 0
  let done = 0
  let stop = false
  const deadline = Date.now() + 20_000
  const client = async (keepAlive: boolean): Promise<void> => {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
    for (let i = 0; i < 20_000 && !stop && Date.now() < deadline; i++) {
      try {
        if ((await send(port, { agent, timeout: 10_000 })).status !== 200) failures++
      } catch {
        failures++
      }
      done++
    }
    if (agent) agent.destroy()
  }
  const load = Promise.all([client(true), client(true), client(false), client(false)])
  try {
    await new Promise((r) => setTimeout(r, 500))
    const victim = workerPids(proc.stderr)[1]!
    process.kill(victim, 'SIGKILL')
    await proc.waitFor(`worker process ${victim} exited`)
    await new Promise((r) => setTimeout(r, 1000))
    const before = done
    await new Promise((r) => setTimeout(r, 500))
    assert.ok(done > before, 'requests keep flowing after the kill')
  } finally {
    stop = true
    await load
    await proc.stop()
  }
  assert.ok(failures <= clients, `${failures} failed (at most ${clients} were held by the killed worker)`)
  assert.ok(done > 200, `only ${done} requests ran`)
  assert.equal(workerPids(proc.stderr).length, 3, 'a replacement started')
})
