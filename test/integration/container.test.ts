// There is no Docker engine here, so what the Dockerfile and compose.yaml run is tested
// outside a container: the same commands, the same config (service names pointed at
// local ports), the HEALTHCHECK command, and every path the Dockerfile copies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, send } from '../helpers/net.js'
import { ROOT, SwitchyardProcess, startSwitchyard } from '../helpers/switchyard.js'

/** Wait until something answers HTTP on `port` (bounded: 10 s). */
async function answering(port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await send(port)
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

const run = (args: string[]): Promise<number> =>
  new Promise((resolve) => execFile(process.execPath, args, { timeout: 10_000 }, (err) => resolve(err ? (err as { code?: number }).code ?? 1 : 0)))

// Every file and folder the Dockerfile copies from the repository exists.
test('the Dockerfile copies only paths that exist', async () => {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/))
  assert.ok(sources.length >= 5)
  for (const path of sources) assert.ok(existsSync(join(ROOT, path)), `${path} is missing`)
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /^EXPOSE 80$/m)
  assert.match(dockerfile, /\/etc\/switchyard\/switchyard\.conf/)
})

// compose.yaml's topology, run by hand: three `switchyard backend` services and the
// balancer on docker/switchyard.conf (service names → local ports): 3/5/2 over 10 requests;
// then the image's HEALTHCHECK command passes against the admin listener, and fails without it.
test('the compose topology and the HEALTHCHECK, run outside a container', async () => {
  const compose = await readFile(join(ROOT, 'compose.yaml'), 'utf8')
  const services = [...compose.matchAll(/command: \["backend", "--host", "0\.0\.0\.0", "--port", "(\d+)"\]/g)].map((m) => Number(m[1]))
  assert.deepEqual(services, [4000, 4001, 4002])
  const ports = [await freePort(), await freePort(), await freePort()]
  const backends = ports.map((p) => new SwitchyardProcess(['backend', '--host', '127.0.0.1', '--port', String(p)]))
  try {
    await Promise.all(ports.map((p) => answering(p)))
    let conf = await readFile(join(ROOT, 'docker', 'switchyard.conf'), 'utf8')
    services.forEach((p, i) => (conf = conf.replace(`backend${i + 1}:${p}`, `127.0.0.1:${ports[i]}`)))
    const listen = await freePort()
    conf = conf.replace('listen 80;', `listen 127.0.0.1:${listen};`)
    const admin = await freePort()
    const { proc } = await startSwitchyard(conf, ['--admin', `127.0.0.1:${admin}`])
    try {
      const counts = new Map<number, number>()
      for (let i = 0; i < 10; i++) {
        const r = await send(listen)
        assert.equal(r.status, 200)
        const port = JSON.parse(r.body.toString()).port as number
        counts.set(port, (counts.get(port) ?? 0) + 1)
      }
      assert.deepEqual(ports.map((p) => counts.get(p)), [3, 5, 2])
      const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
      const check = JSON.parse(/HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(dockerfile)![1]!) as string[]
      assert.equal(check[0], 'node')
      const script = check.at(-1)!.replace('127.0.0.1:9090', `127.0.0.1:${admin}`)
      assert.equal(await run(['-e', script]), 0, 'healthy with the admin listener up')
      await proc.stop()
      assert.notEqual(await run(['-e', script]), 0, 'unhealthy without it')
    } finally {
      await proc.stop()
    }
  } finally {
    await Promise.all(backends.map((b) => b.stop()))
  }
})
