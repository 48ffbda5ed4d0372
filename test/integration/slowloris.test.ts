// Slow clients at the edge: request headers that never finish (slowloris), request bodies
// that stall, and a client that stops reading a large response. Each must be cut by its
// timeout (client_header_timeout, client_body_timeout, send_timeout) without reaching or
// holding the backend, while a normal keep-alive client keeps being served quickly.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { rawLoggingBackend } from '../helpers/edge-corpus.js'
import { freePort, send } from '../helpers/net.js'
import { startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

/** client_header_timeout and client_body_timeout in the config, in seconds. */
const TIMEOUT_S = 3
/** send_timeout in the config, in seconds. */
const SEND_TIMEOUT_S = 2
/** Node checks header timeouts once a second (CHECK_INTERVAL), and a loaded 2-core
 *  machine may be late by a second or two more: every close must come within this. */
const MARGIN_MS = 3000
const SLOW_HEADERS = 200
const SLOW_BODIES = 20
/** A byte every 400 ms keeps each slow connection busy, so no idle timer can save us. */
const TRICKLE_MS = 400
/** Size of the response the slow reader never takes. */
const BIG = 64 * 1024 * 1024

let backend: Awaited<ReturnType<typeof rawLoggingBackend>>
let sy: SwitchyardProcess
let port = 0
let adminPort = 0
/** What the backend knows of the bodies it was sent: requests begun, bodies completed,
 *  requests aborted by switchyard before their end. */
const bodies = { begun: 0, completed: 0, aborted: 0 }
/** The big response: when the backend started it, whether it finished, and when its
 *  connection from switchyard was closed. */
const big = { startedAt: 0, finished: false, abortedAt: 0, written: 0 }

before(async () => {
  backend = await rawLoggingBackend()
  // Requests are seen here as soon as their head arrives (TestUpstream records only
  // complete ones): a slow body is visible while it is still being sent.
  backend.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/slow-body') {
      bodies.begun++
      req.on('end', () => bodies.completed++)
      req.on('close', () => {
        if (!req.complete) bodies.aborted++
      })
    }
    if (req.url === '/big') streamBig(res)
  })
  backend.handler = (req, res) => {
    if (req.url === '/big') return
    res.writeHead(200, { 'content-length': 2 })
    res.end('ok')
  }
  port = await freePort()
  adminPort = await freePort()
  // error_log at info: the timeouts' own log lines are part of what is checked.
  sy = (await startSwitchyard(`error_log stderr info;
events {}
http {
  client_header_timeout ${TIMEOUT_S}s;
  client_body_timeout ${TIMEOUT_S}s;
  send_timeout ${SEND_TIMEOUT_S}s;
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`, ['--admin', `127.0.0.1:${adminPort}`])).proc
})

after(async () => {
  await sy?.stop()
  await backend?.close()
})

/** The backend's large answer, written as fast as switchyard takes it (backpressure
 *  respected), so a stall upstream of the client shows here as a write that never drains. */
function streamBig(res: ServerResponse): void {
  big.startedAt = performance.now()
  res.writeHead(200, { 'content-length': BIG })
  const chunk = Buffer.alloc(64 * 1024, 'x')
  res.on('close', () => {
    if (!res.writableFinished) big.abortedAt = performance.now()
  })
  const pump = (): void => {
    while (big.written < BIG) {
      big.written += chunk.length
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    big.finished = true
    res.end()
  }
  pump()
}

interface SlowResult {
  /** ms from connect until switchyard closed the connection; Infinity if it never did. */
  closedAfter: number
  data: string
}

/** A connection that sends `head`, then one byte of `drip` every TRICKLE_MS (never the
 *  end of it), and waits for switchyard to close it (bounded: `limit` ms). */
function slowClient(head: string, drip: string, limit: number): Promise<SlowResult> {
  return new Promise((resolve) => {
    const started = performance.now()
    const s = connect(port, '127.0.0.1')
    let data = ''
    let i = 0
    const dripper = setInterval(() => {
      if (!s.destroyed && s.writable) s.write(drip[i++ % drip.length]!)
    }, TRICKLE_MS)
    const give = setTimeout(() => finish(Infinity), limit)
    const finish = (closedAfter: number): void => {
      clearInterval(dripper)
      clearTimeout(give)
      s.destroy()
      resolve({ closedAfter, data })
    }
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('end', () => finish(performance.now() - started))
    s.on('close', () => finish(performance.now() - started))
    s.write(head)
  })
}

/** switchyard_requests_in_flight once it settles back to 0 (bounded: 5 s), else its last
 *  value: every request a timeout ended must have been counted out exactly once. */
async function inFlightSettled(): Promise<number> {
  const deadline = Date.now() + 5000
  for (;;) {
    const text = (await send(adminPort, { path: '/metrics' })).body.toString()
    const value = Number(/^switchyard_requests_in_flight (\S+)$/m.exec(text)?.[1])
    if (value === 0 || Date.now() > deadline) return value
    await new Promise((r) => setTimeout(r, 100))
  }
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

// 200 slowloris connections are each closed within client_header_timeout (+ the check
// interval and load), none of their requests reaches the backend, and a normal keep-alive
// client meanwhile is served with p99 under 100 ms.
test(`slowloris: ${SLOW_HEADERS} header tricklers closed by client_header_timeout; a normal client keeps p99 < 100 ms`, { timeout: 60_000 }, async () => {
  const limit = TIMEOUT_S * 1000 + MARGIN_MS
  const slow: Array<Promise<SlowResult>> = []
  for (let i = 0; i < SLOW_HEADERS; i++) {
    slow.push(slowClient(`GET /slow-${i} HTTP/1.1\r\nHost: a\r\n`, 'X-Slow: abcdefghijklmnopqrstuvwxyz', limit + 2000))
    // Connect in small groups so the test does not measure its own connect storm.
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20))
  }
  // The normal client: one keep-alive connection, 20 requests a second (modest, so a
  // busy machine's scheduling noise is not what p99 measures), for as long as the slow
  // connections live.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const latencies: number[] = []
  let failed = 0
  let running = true
  const normal = (async () => {
    const until = performance.now() + limit + 1000
    for (let n = 0; running && performance.now() < until && n < 400; n++) {
      try {
        const r = await send(port, { path: `/normal-${n}`, agent, timeout: 5000 })
        if (r.status === 200) latencies.push(r.ms)
        else failed++
      } catch {
        failed++
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  const results = await Promise.all(slow)
  running = false
  await normal
  agent.destroy()

  const closed = results.map((r) => r.closedAfter).sort((a, b) => a - b)
  const with408 = results.filter((r) => /^HTTP\/1\.1 408 /.test(r.data)).length
  const sorted = [...latencies].sort((a, b) => a - b)
  const p50 = percentile(sorted, 50)
  const p99 = percentile(sorted, 99)
  console.log(`# slowloris: ${SLOW_HEADERS} slow connections closed after min ${closed[0]!.toFixed(0)} / max ${closed.at(-1)!.toFixed(0)} ms (${with408} with 408, the rest closed); normal client ${latencies.length} ok, ${failed} failed, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`)

  for (const r of results) {
    assert.ok(r.closedAfter <= limit, `a slow connection was still open after ${limit} ms`)
    // Never before the timeout (a little slack: the timer starts at the first byte read).
    assert.ok(r.closedAfter >= TIMEOUT_S * 1000 - 200, `closed too early, after ${r.closedAfter.toFixed(0)} ms`)
    // Either nothing (a plain close) or exactly one 408.
    assert.ok(r.data === '' || /^HTTP\/1\.1 408 [^\r\n]*\r\n/.test(r.data), `unexpected answer: ${JSON.stringify(r.data.slice(0, 80))}`)
  }
  assert.doesNotMatch(backend.raw, /\/slow-\d/, 'a slow request reached the backend')
  assert.equal(failed, 0)
  assert.ok(latencies.length >= 50, `only ${latencies.length} normal requests`)
  // The slow connections cost switchyard a timer and a parser each; a normal request
  // waits behind none of them. 100 ms is ~50× the unloaded p99 on loopback, room for a
  // busy CI machine without hiding a real stall (which shows as seconds).
  assert.ok(p99 < 100, `normal client p99 ${p99.toFixed(1)} ms`)
})

// A body that stops arriving: client_body_timeout closes the connection, and the request
// switchyard had begun to forward is aborted at the backend (never completed).
test(`slow bodies: ${SLOW_BODIES} stalled uploads closed by client_body_timeout, upstream requests aborted`, { timeout: 30_000 }, async () => {
  const limit = TIMEOUT_S * 1000 + MARGIN_MS
  const started = performance.now()
  const results = await Promise.all(Array.from({ length: SLOW_BODIES }, (_, i) => new Promise<SlowResult>((resolve) => {
    const s = connect(port, '127.0.0.1')
    let data = ''
    const give = setTimeout(() => finish(Infinity), limit + 2000)
    const finish = (closedAfter: number): void => {
      clearTimeout(give)
      s.destroy()
      resolve({ closedAfter, data })
    }
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('end', () => finish(performance.now() - started))
    s.on('close', () => finish(performance.now() - started))
    // 10 of the 1000 bytes, then nothing.
    s.write(`POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nX-N: ${i}\r\n\r\n0123456789`)
  })))
  const closed = results.map((r) => r.closedAfter).sort((a, b) => a - b)
  console.log(`# slow bodies: ${SLOW_BODIES} closed after min ${closed[0]!.toFixed(0)} / max ${closed.at(-1)!.toFixed(0)} ms; backend: ${bodies.begun} begun, ${bodies.aborted} aborted, ${bodies.completed} completed`)
  for (const r of results) {
    assert.ok(r.closedAfter <= limit, `a stalled upload was still open after ${limit} ms`)
    assert.ok(r.closedAfter >= TIMEOUT_S * 1000 - 200, `closed too early, after ${r.closedAfter.toFixed(0)} ms`)
  }
  // The backend hears of every abort (bounded wait: its close event may trail ours).
  const deadline = Date.now() + 5000
  while (bodies.aborted < bodies.begun && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  assert.equal(bodies.completed, 0, 'a stalled body was completed at the backend')
  assert.equal(bodies.aborted, bodies.begun, 'a forwarded stalled upload was left open at the backend')
  assert.equal(await inFlightSettled(), 0)
})

// send_timeout: a client that stops reading a large response is disconnected once the
// response has waited send_timeout for it, and the upstream request is aborted (the
// backend's write stalls, then its connection closes) instead of being held open.
test('send_timeout: a client that stops reading is closed and the upstream request aborted', { timeout: 30_000 }, async () => {
  const s = connect(port, '127.0.0.1')
  s.on('error', () => undefined)
  let received = 0
  let ended = false
  s.on('data', (d: Buffer) => (received += d.length))
  s.on('end', () => (ended = true))
  s.on('close', () => (ended = true))
  s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  // Read the first bytes, then stop reading for good: the kernel buffers fill, then
  // switchyard's writes stop draining.
  await new Promise<void>((r) => s.once('data', () => r()))
  s.pause()
  const stalledAt = performance.now()
  const deadline = Date.now() + SEND_TIMEOUT_S * 1000 + MARGIN_MS + 5000
  while (big.abortedAt === 0 && !big.finished && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  console.log(`# send_timeout ${SEND_TIMEOUT_S}s: upstream aborted ${big.abortedAt === 0 ? 'never' : `${(big.abortedAt - stalledAt).toFixed(0)} ms after the client stopped reading`}, backend wrote ${(big.written / 1048576).toFixed(1)} of ${BIG / 1048576} MiB`)
  assert.equal(big.finished, false, 'the backend could write the whole response: the stall never reached it')
  assert.ok(big.abortedAt > 0, 'the upstream request was never aborted')
  const after = big.abortedAt - stalledAt
  assert.ok(after >= SEND_TIMEOUT_S * 1000 - 200, `aborted after ${after.toFixed(0)} ms, before send_timeout`)
  assert.ok(after <= SEND_TIMEOUT_S * 1000 + MARGIN_MS, `aborted after ${after.toFixed(0)} ms`)
  // Reading again, the client finds a cut response and the connection closed.
  s.resume()
  const readDeadline = Date.now() + 5000
  while (!ended && Date.now() < readDeadline) await new Promise((r) => setTimeout(r, 20))
  s.destroy()
  assert.ok(ended, 'the client connection was not closed')
  assert.ok(received < BIG, `the client received the whole response (${received} bytes)`)
  await sy.waitFor('client timed out (send_timeout) while sending response to client')
  // The client's going is not the upstream's fault, and the request is counted out once.
  assert.doesNotMatch(sy.stderr, /upstream prematurely closed/)
  assert.equal(await inFlightSettled(), 0)
  // switchyard itself is fine and serves the next client.
  const r = await send(port, { path: '/after' })
  assert.equal(r.status, 200)
})
