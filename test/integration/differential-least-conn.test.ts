// least_conn under Debian's nginx and under switchyard, same config, same backends, same
// script: requests are held open on the backends (so they count as connections) while
// short requests flow one after another; every request must land on the same backend.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { freePort, send, upstreams, type Reply, type TestUpstream } from '../helpers/net.js'
import { proxyConfig, underBoth } from '../helpers/nginx.js'

const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

/** Backends that answer at once with their port, except `/hold…`, which waits for `free`. */
async function backends(): Promise<{ ups: TestUpstream[]; held: Array<{ index: number; res: ServerResponse }> }> {
  const ups = await upstreams(3)
  servers.push(...ups)
  const held: Array<{ index: number; res: ServerResponse }> = []
  ups.forEach((u, index) => {
    u.handler = (req, res) => {
      if (req.url!.startsWith('/hold')) {
        held.push({ index, res })
        return
      }
      res.writeHead(200, { 'x-port': String(u.port), 'content-length': '2' })
      res.end('ok')
    }
  })
  return { ups, held }
}

/**
 * Run `script` against the balancer on `port`; returns which backend (a, b, c) took each
 * request. `hold` leaves a request open on its backend; `run N` sends N short requests one
 * after another; `free I` lets the I-th held request finish and waits for its answer.
 */
async function play(port: number, ups: TestUpstream[], held: Array<{ index: number; res: ServerResponse }>, script: string[]): Promise<string[]> {
  held.length = 0
  const letter = (p: number): string => 'abc'[ups.findIndex((u) => u.port === p)] ?? '?'
  const open: Array<Promise<Reply>> = []
  const out: string[] = []
  for (const step of script) {
    const [op, arg] = step.split(' ') as [string, string | undefined]
    if (op === 'hold') {
      const before = held.length
      open.push(send(port, { path: `/hold/${open.length}` }))
      // The balancer has chosen once the backend has the request.
      for (let i = 0; held.length === before; i++) {
        if (i > 500) throw new Error('a held request never reached a backend')
        await new Promise((r) => setTimeout(r, 10))
      }
      out.push(`hold:${'abc'[held[held.length - 1]!.index]}`)
    } else if (op === 'run') {
      const got: string[] = []
      for (let i = 0; i < Number(arg); i++) {
        const r = await send(port)
        got.push(r.status === 200 ? letter(Number(r.headers['x-port'])) : String(r.status))
      }
      out.push(got.join(''))
    } else {
      const i = Number(arg)
      held[i]!.res.writeHead(200, { 'content-length': '4' })
      held[i]!.res.end('done')
      assert.equal((await open[i]!).status, 200)
      out.push(`free:${i}`)
    }
  }
  return out
}

const script = ['run 3', 'hold', 'run 4', 'hold', 'run 4', 'hold', 'run 5', 'free 0', 'run 4', 'hold', 'run 3', 'free 1', 'free 2', 'free 3', 'run 6']

async function compare(weights: [number, number, number]): Promise<{ nginx: string[]; switchyard: string[] }> {
  const { ups, held } = await backends()
  const body = `least_conn;\n    ${ups.map((u, i) => `server 127.0.0.1:${u.port} weight=${weights[i]};`).join('\n    ')}`
  return underBoth((listen) => proxyConfig('held', body, listen), (port) => play(port, ups, held, script))
}

// Equal weights: busy backends are skipped, the idle ones rotate in nginx's order.
test('differential least_conn: equal weights with backends held busy', { timeout: 60_000 }, async () => {
  const r = await compare([1, 1, 1])
  assert.deepEqual(r.switchyard, r.nginx)
  assert.ok(r.nginx.includes('hold:a') && r.nginx.includes('hold:b') && r.nginx.includes('hold:c'), r.nginx.join(' '))
})

// Weights 1/3/2: connections are compared relative to weight, ties by weighted round robin.
test('differential least_conn: weights 1/3/2 with backends held busy', { timeout: 60_000 }, async () => {
  const r = await compare([1, 3, 2])
  assert.deepEqual(r.switchyard, r.nginx)
})
