// Bounded fuzzing with fast-check: (a) the config loader on mutated example configs and
// token soups — a model or a ConfigError naming file:line, nothing else, never a hang;
// (b) the request path on mutated raw HTTP/1.1 — switchyard never crashes, every
// connection gets well-formed responses or a close in time, and no request hidden in a
// body ever reaches the backend as a request (no desync).
//
// SWITCHYARD_FUZZ_RUNS scales the number of inputs (default 1 = the CI size, ~15 s in all);
// SWITCHYARD_FUZZ_SEED replays a run: the seed is printed at the start of each property.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { DIRECTIVES } from '../../src/config/directives.js'
import { rawLoggingBackend } from '../helpers/edge-corpus.js'
import type { LoadOutcome } from '../helpers/config-fuzz-worker.js'
import { freePort, send } from '../helpers/net.js'
import { ROOT, startSwitchyard, type SwitchyardProcess } from '../helpers/switchyard.js'

const SCALE = Math.max(0.01, Number(process.env.SWITCHYARD_FUZZ_RUNS ?? 1))
const SEED = Number(process.env.SWITCHYARD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
/** Inputs per property at scale 1. */
const CONFIG_RUNS = Math.round(1000 * SCALE)
const REQUEST_CASES = Math.round(600 * SCALE)
/** Wall-clock caps, whatever the scale: a slow machine runs fewer inputs, never longer. */
const CONFIG_TIME_MS = 20_000 * Math.max(1, SCALE)
const REQUEST_TIME_MS = 40_000 * Math.max(1, SCALE)
/** One config load may take this long before it counts as a hang (a loaded machine is slow). */
const LOAD_BUDGET_MS = 3000
/** One fuzzed connection must be answered or closed within this (timeouts in the config: 1 s). */
const CONNECTION_BUDGET_MS = 6000

// ── (a) the config loader ─────────────────────────────────────────────────────

/** Loads texts in a worker thread; an input that takes longer than LOAD_BUDGET_MS is a
 *  hang: the worker is terminated (a new one serves the next input) and the input reported. */
class Loader {
  private worker: Worker | null = null
  private next = 0
  private readonly waiting = new Map<number, (o: LoadOutcome) => void>()

  private get live(): Worker {
    if (this.worker === null) {
      const w = new Worker(new URL('../helpers/config-fuzz-worker.js', import.meta.url))
      w.on('message', (o: LoadOutcome) => {
        this.waiting.get(o.id)?.(o)
        this.waiting.delete(o.id)
      })
      this.worker = w
    }
    return this.worker
  }

  async load(text: string): Promise<LoadOutcome | 'hang'> {
    const id = this.next++
    const worker = this.live
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        this.worker = null
        void worker.terminate()
        resolve('hang')
      }, LOAD_BUDGET_MS)
      this.waiting.set(id, (o) => {
        clearTimeout(timer)
        resolve(o)
      })
      worker.postMessage({ id, text, file: FUZZ_FILE })
    })
  }

  async close(): Promise<void> {
    await this.worker?.terminate()
  }
}

const FUZZ_FILE = '/fuzz/switchyard.conf'
const seeds = [
  ...readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.conf')).map((f) => join(ROOT, 'examples', f)),
  join(ROOT, 'docker', 'switchyard.conf'),
].map((f) => readFileSync(f, 'utf8'))

/** Words that mean something to the tokenizer, the parser or the builder. */
const vocabulary = [
  '{', '}', ';', '"', "'", '\\', '$', '${', '#', '\n', '\r\n', '\0', '\t', ' ', 'include', '*.conf',
  '0', '-1', '1', '65536', '99999999999999999999', '1s', '500ms', '1m', '1h', '1d', '10k', '1g', '0x10', '1.5',
  'weight=0', 'weight=', 'max_fails=3', 'fail_timeout=0', 'max_conns=1', 'backup', 'down', 'slow_start=10s', 'resolve',
  '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '[::1]:80', '[::1', 'unix:/tmp/x.sock', 'localhost', 'example.invalid',
  'http://', 'http://up', 'https://up/x', 'http://127.0.0.1:1', '$remote_addr', '$request_uri', '$host$uri',
  '~', '~*', '^~', '=', '(', ')', 'on', 'off', 'default_server', 'ssl', 'http2', 'consistent', 'none', 'é', '😀',
  ...DIRECTIVES.map((d) => d.name),
]

/** A config text cut into tokens and the separators between them (joined again, the same text). */
const pieces = (text: string): string[] => text.split(/(\s+|[{};])/).filter((p) => p !== '')

type Mutation =
  | { op: 'delete' | 'duplicate'; at: number }
  | { op: 'insert' | 'replace'; at: number; word: string }
  | { op: 'swap'; at: number; with: number }
  | { op: 'char'; at: number; char: string }
  | { op: 'truncate'; at: number }

const word = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...vocabulary) }, { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) })
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom('delete' as const, 'duplicate' as const), at: fc.nat() }),
  fc.record({ op: fc.constantFrom('insert' as const, 'replace' as const), at: fc.nat(), word }),
  fc.record({ op: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
  fc.record({ op: fc.constant('char' as const), at: fc.nat(), char: fc.constantFrom('{', '}', ';', '"', "'", '\\', '#', '$', '\n', '\0', ' ', 'x') }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
)

function mutate(text: string, mutations: readonly Mutation[]): string {
  let ps = pieces(text)
  for (const m of mutations) {
    if (ps.length === 0) ps = ['']
    const i = m.at % ps.length
    switch (m.op) {
      case 'delete': ps.splice(i, 1); break
      case 'duplicate': ps.splice(i, 0, ps[i]!); break
      case 'insert': ps.splice(i, 0, ' ', m.word, ' '); break
      case 'replace': ps[i] = m.word; break
      case 'swap': { const j = m.with % ps.length; [ps[i], ps[j]] = [ps[j]!, ps[i]!]; break }
      case 'char': { const p = ps[i]!; const k = m.at % (p.length + 1); ps[i] = p.slice(0, k) + m.char + p.slice(k); break }
      case 'truncate': ps = ps.slice(0, Math.max(1, i)); break
    }
  }
  return ps.join('')
}

const mutatedExample = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([s, ms]) => mutate(seeds[s]!, ms))
/** Token soups, bare and inside the skeleton every config has. */
const tokenSoup = fc.tuple(fc.array(word, { maxLength: 60 }), fc.boolean())
  .map(([ws, wrapped]) => (wrapped ? `events {}\nhttp {\n server {\n ${ws.join(' ')}\n }\n}\n` : ws.join(' ')))

/** What the loader must do with any text: a model, or a ConfigError whose message ends
 *  with ` in FILE:LINE` (the file the text was loaded as, or an included one). */
async function checkLoad(loader: Loader, text: string): Promise<'model' | 'error'> {
  const got = await loader.load(text)
  if (got === 'hang') assert.fail(`no answer within ${LOAD_BUDGET_MS} ms (a hang?)`)
  if (got.kind === 'model') return 'model'
  assert.equal(got.kind, 'config-error', `not a ConfigError: ${got.message}\n${got.stack}`)
  assert.ok(got.file !== null && got.line !== null && got.line >= 1, `no file:line in "${got.message}"`)
  assert.ok(got.message.endsWith(` in ${got.file}:${got.line}`), `message does not end with file:line: "${got.message}"`)
  assert.doesNotMatch(got.message, /undefined|NaN|\[object /, `a message with a program value in it: "${got.message}"`)
  return 'error'
}

function fuzzConfig(name: string, arbitrary: fc.Arbitrary<string>, offset: number): void {
  test(`config fuzz: ${name} → a model or a ConfigError naming file:line`, { timeout: CONFIG_TIME_MS + 60_000 }, async () => {
    const loader = new Loader()
    const seed = SEED + offset
    console.log(`# config fuzz (${name}): seed ${seed} (SWITCHYARD_FUZZ_SEED=${SEED}), up to ${CONFIG_RUNS} inputs or ${CONFIG_TIME_MS / 1000} s`)
    const kinds = { model: 0, error: 0 }
    try {
      await fc.assert(fc.asyncProperty(arbitrary, async (text) => {
        kinds[await checkLoad(loader, text)]++
      }), { seed, numRuns: CONFIG_RUNS, interruptAfterTimeLimit: CONFIG_TIME_MS, markInterruptAsFailure: false, endOnFailure: false })
    } finally {
      await loader.close()
    }
    console.log(`# config fuzz (${name}): ${kinds.model} models, ${kinds.error} config errors`)
    assert.ok(kinds.model + kinds.error > 0)
  })
}

fuzzConfig('mutated example configs', mutatedExample, 0)
fuzzConfig('token soups', tokenSoup, 1)

// The unmutated seeds load, so the mutations above start from valid configs.
test('config fuzz: every seed config loads as it is', async () => {
  const loader = new Loader()
  try {
    for (const text of seeds) {
      const got = await loader.load(text)
      assert.ok(got !== 'hang' && got.kind === 'model', JSON.stringify(got))
    }
  } finally {
    await loader.close()
  }
})

// ── (b) the request path ──────────────────────────────────────────────────────

/** A request hidden in a body: it must never reach the backend as a request. The padding
 *  (no token characters, longer than any one-digit length) keeps it off every request
 *  boundary a mutated Content-Length or chunk size could land on: a parser that lands
 *  inside the padding sees `@…`, which is no method. */
const PAD = '@'.repeat(12)
const hidden = (id: number): string => `${PAD}GET /hidden-${id} HTTP/1.1\r\nHost: a\r\n\r\n${PAD}`

type Framing =
  | { kind: 'none'; trailing: boolean }
  | { kind: 'cl'; spell: string; delta: number; dup: boolean }
  | { kind: 'te'; spell: string; dup: boolean; alsoCl: boolean; size: string; last: string }

interface Template {
  method: string
  target: string
  version: string
  host: string[]
  headers: Array<[string, string]>
  framing: Framing
  /** Byte edits inside the head (request line and headers), never in the body. */
  edits: Array<[number, string]>
}

const framing: fc.Arbitrary<Framing> = fc.oneof(
  fc.record({ kind: fc.constant('none' as const), trailing: fc.boolean() }),
  fc.record({
    kind: fc.constant('cl' as const),
    spell: fc.constantFrom('N', 'N', 'N', ' N ', '+N', 'N,N', '0xN', '-N', '', 'N N', '0N', 'N\t'),
    delta: fc.constantFrom(0, 0, 0, -1, 1, -1000, 1e12),
    dup: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('te' as const),
    spell: fc.constantFrom('chunked', 'chunked', 'chunked', 'CHUNKED', 'Chunked', 'chunked, identity', 'gzip, chunked', 'identity, chunked', ' chunked', 'chunked ', '"chunked"', 'xchunked', '\x0bchunked', 'chunked\t', 'chunked,'),
    dup: fc.boolean(),
    alsoCl: fc.boolean(),
    size: fc.constantFrom('hex', 'hex', 'HEX', '00hex', 'hex ', 'hex;', 'hex;a=b', 'hex;a="b"', 'hex\n', '+hex', '0xhex', 'FFFFFFFFFFFFFFFFFFFF', 'minus1', 'plus1', '0'),
    last: fc.constantFrom('0\r\n\r\n', '0\r\n\r\n', '0\r\nX-T: 1\r\n\r\n', '0\r\n', '00\r\n\r\n', '0;x\r\n\r\n', '0\n\n', ''),
  }),
)

/** Three in four picks from `usual`, the rest from `odd`: most requests get far enough to
 *  test the framing behind their first line. */
const mostly = <T>(usual: readonly T[], odd: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...usual) }, { weight: 1, arbitrary: fc.constantFrom(...odd) })

const template: fc.Arbitrary<Template> = fc.record({
  method: mostly(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'], ['get', 'PRI', 'CONNECT', 'TRACE', 'G\0T', 'GE T', 'G(T']),
  target: mostly(['/T', '/T?q=1&r=%20', 'http://a/T', 'https://a:8080/T?x', '//T', '/T/%00'], ['*', 'a.com:80', '/T#f', '/T x', '/T\x01', 'T', `/T?${'x'.repeat(1100)}`, '/T\x7f', '/T\xff']),
  version: mostly(['HTTP/1.1', 'HTTP/1.0'], ['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1', 'HTTP/11']),
  host: mostly([['a'], ['a:80'], ['[::1]']], [[], ['a', 'b'], [''], ['a b']]),
  headers: fc.array(fc.tuple(
    fc.constantFrom('X-Fuzz', 'Accept', 'Connection', 'Expect', 'Upgrade', 'TE', 'Trailer', 'Content-Type', `X-${'n'.repeat(60)}`, 'X Y', 'X:Y', ''),
    fc.oneof(fc.constantFrom('1', 'close', 'keep-alive', 'Upgrade', '100-continue', 'websocket', 'trailers', 'a'.repeat(1100), 'é'), fc.string({ maxLength: 12, unit: 'binary-ascii' })),
  ), { maxLength: 4 }),
  framing,
  edits: fc.oneof(
    { weight: 2, arbitrary: fc.constant<Array<[number, string]>>([]) },
    { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), fc.constantFrom('\r', '\n', '\0', '\t', ' ', '\r\n', '\r\n ', '\n ', ':', '\x7f', '\xff', 'del')), { minLength: 1, maxLength: 3 }) },
  ),
})

/** One request's bytes. `T` in the target becomes a marker naming the case and request. */
function render(t: Template, id: number, marker: string): string {
  const lines = [`${t.method} ${t.target.replace('T', marker)} ${t.version}`, ...t.host.map((h) => `Host: ${h}`), ...t.headers.map(([n, v]) => `${n}: ${v}`)]
  let body = ''
  const f = t.framing
  if (f.kind === 'none') {
    if (f.trailing) body = hidden(id)
  } else if (f.kind === 'cl') {
    body = hidden(id)
    const n = String(Math.max(0, body.length + f.delta))
    const value = f.spell.replaceAll('N', f.spell === '0xN' ? Math.max(0, body.length + f.delta).toString(16) : n)
    lines.push(`Content-Length: ${value}`)
    if (f.dup) lines.push(`Content-Length: ${value}`)
  } else {
    const data = hidden(id)
    const hex = data.length.toString(16)
    const size = f.size === 'minus1' ? (data.length - 1).toString(16)
      : f.size === 'plus1' ? (data.length + 1).toString(16)
        : f.size.replace('HEX', hex.toUpperCase()).replace('hex', hex)
    body = `${size}\r\n${data}\r\n${f.last}`
    lines.push(`Transfer-Encoding: ${f.spell}`)
    if (f.dup) lines.push(`Transfer-Encoding: ${f.spell}`)
    if (f.alsoCl) lines.push(`Content-Length: ${body.length}`)
  }
  let head = lines.join('\r\n') + '\r\n\r\n'
  for (const [at, edit] of t.edits) {
    const i = at % head.length
    head = edit === 'del' ? head.slice(0, i) + head.slice(i + 1) : head.slice(0, i) + edit + head.slice(i)
  }
  return head + body
}

/** A well-formed request the client means as a request. */
const plain = (marker: string): string => `GET /${marker} HTTP/1.1\r\nHost: a\r\n\r\n`

interface Case {
  /** Requests in order on one connection: a fuzzed one (a template) or a plain one (null). */
  requests: Array<Template | null>
  /** Close our sending side after the bytes (otherwise switchyard's timeouts end it). */
  halfClose: boolean
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  requests: fc.array(fc.option(template, { freq: 4, nil: null }), { minLength: 1, maxLength: 3 }),
  // Mostly left open: switchyard's own timeouts (1 s) end those; a half-close makes Node
  // abort requests still in progress (nginx's 499 on a client EOF), so it is the rarer one.
  halfClose: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
})

/** Everything switchyard wrote, as a sequence of complete HTTP/1.1 responses; throws on
 *  anything else (a torn response, bytes between responses, a malformed head). */
function parseResponses(data: string): number[] {
  const out: number[] = []
  let rest = data
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) throw new Error(`torn response head: ${JSON.stringify(rest.slice(0, 200))}`)
    const [statusLine, ...headerLines] = rest.slice(0, end).split('\r\n')
    const m = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n\0]*$/.exec(statusLine!)
    if (m === null) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`)
    const status = Number(m[1])
    let length = 0
    let chunked = false
    for (const line of headerLines) {
      const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([^\r\n\0]*)$/.exec(line)
      if (h === null) throw new Error(`bad header line: ${JSON.stringify(line)}`)
      if (h[1]!.toLowerCase() === 'content-length') length = Number(h[2])
      if (h[1]!.toLowerCase() === 'transfer-encoding') chunked = /chunked/i.test(h[2]!)
    }
    rest = rest.slice(end + 4)
    out.push(status)
    if (status < 200 || status === 204 || status === 304) continue
    if (chunked) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n')
        if (lineEnd < 0) throw new Error('torn chunked body')
        const size = parseInt(rest.slice(0, lineEnd), 16)
        if (Number.isNaN(size)) throw new Error(`bad chunk size in a response: ${JSON.stringify(rest.slice(0, 20))}`)
        if (rest.length < lineEnd + 2 + size + 2) throw new Error('torn chunk')
        rest = rest.slice(lineEnd + 2 + size + 2)
        if (size === 0) break
      }
    } else {
      if (!Number.isSafeInteger(length) || rest.length < length) throw new Error(`torn body: ${rest.length} of ${length} bytes`)
      rest = rest.slice(length)
    }
  }
  return out
}

/** Send one case's bytes; resolve with what came back once switchyard closes (or null
 *  when it did not close within CONNECTION_BUDGET_MS). */
function play(p: number, bytes: string, halfClose: boolean): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(p, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ data, closed: false })
    }, CONNECTION_BUDGET_MS)
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ data, closed: true })
    })
    s.write(Buffer.from(bytes, 'latin1'))
    if (halfClose) s.end()
  })
}

describeRequests()

function describeRequests(): void {
  let backend: Awaited<ReturnType<typeof rawLoggingBackend>>
  let sy: SwitchyardProcess
  let port = 0
  const urls: string[] = []
  const backendParseErrors: string[] = []

  before(async () => {
    backend = await rawLoggingBackend()
    // Every request line the backend's own parser finds, as soon as it finds it; and
    // anything it cannot parse (switchyard sending it broken framing).
    backend.server.prependListener('request', (req) => urls.push(req.url ?? ''))
    // (A reset, or an end in the middle of a request, is no parse error: switchyard drops
    // the upstream connection of a request whose client went away.)
    backend.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'HPE_INVALID_EOF_STATE') backendParseErrors.push(`${err.code}: ${JSON.stringify((err as { rawPacket?: Buffer }).rawPacket?.toString('latin1') ?? '')}`)
      socket.destroy()
    })
    port = await freePort()
    sy = (await startSwitchyard(`events {}
http {
  client_header_timeout 1s;
  client_body_timeout 1s;
  keepalive_timeout 1s;
  large_client_header_buffers 2 1k;
  client_max_body_size 1k;
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`)).proc
  })

  after(async () => {
    await sy?.stop()
    await backend?.close()
  })

  // Mutated raw requests, alone and pipelined with plain ones: switchyard stays up, every
  // connection ends with well-formed responses, nothing hidden in a body is forwarded.
  test('request fuzz: mutated raw HTTP/1.1 → well-formed answers or a close, no desync, no crash', { timeout: REQUEST_TIME_MS + 60_000 }, async () => {
    const seed = SEED + 2
    console.log(`# request fuzz: seed ${seed} (SWITCHYARD_FUZZ_SEED=${SEED}), ${REQUEST_CASES} connections or ${REQUEST_TIME_MS / 1000} s`)
    const cases = fc.sample(caseArb, { seed, numRuns: REQUEST_CASES })
    const started = Date.now()
    const statusCounts = new Map<number, number>()
    let played = 0
    let next = 0
    // 16 connections at a time; each case waits at most CONNECTION_BUDGET_MS.
    const workers = Array.from({ length: 16 }, async () => {
      while (next < cases.length && Date.now() - started < REQUEST_TIME_MS) {
        const id = next++
        const c = cases[id]!
        const bytes = c.requests.map((t, j) => (t === null ? plain(`ok-${id}-${j}`) : render(t, id, `t-${id}-${j}`))).join('')
        const what = `case ${id} of seed ${seed}: ${JSON.stringify(bytes)} (halfClose ${c.halfClose})`
        const got = await play(port, bytes, c.halfClose)
        assert.equal(sy.child.exitCode, null, `switchyard exited — ${what}\n${sy.stderr.slice(-3000)}`)
        assert.ok(got.closed || got.data.length > 0, `neither an answer nor a close in ${CONNECTION_BUDGET_MS} ms — ${what}`)
        let codes: number[]
        try {
          codes = parseResponses(got.data)
        } catch (err) {
          assert.fail(`${(err as Error).message} — ${what}`)
        }
        if (process.env.SWITCHYARD_FUZZ_DUMP) console.log(JSON.stringify(bytes), c.halfClose, codes)
        // Plain requests before the first fuzzed one are answered, in order, before
        // anything the fuzzed one brings (unless our half-close aborted them, as nginx does).
        const fuzzedAt = c.requests.findIndex((r) => r !== null)
        const leading = fuzzedAt < 0 ? c.requests.length : fuzzedAt
        if (!c.halfClose) assert.deepEqual(codes.slice(0, leading), Array(leading).fill(200), `plain requests not answered first — ${what}`)
        for (const code of codes) statusCounts.set(code, (statusCounts.get(code) ?? 0) + 1)
        played++
      }
    })
    await Promise.all(workers)
    const counts = [...statusCounts].sort(([a], [b]) => a - b).map(([code, n]) => `${code}×${n}`).join(' ')
    console.log(`# request fuzz: ${played} connections in ${((Date.now() - started) / 1000).toFixed(1)} s; statuses ${counts}; backend saw ${urls.length} requests`)
    assert.ok(played >= Math.min(REQUEST_CASES, 20), `only ${played} cases ran`)
    // No desync: every request line the backend found is one the client sent as a
    // request: never one hidden in a body, and always with a case's marker in it (an
    // edit may have cut or widened the marker, the client still sent that target).
    const foreign = urls.filter((u) => /hidden/.test(u) || !/\d/.test(u))
    assert.deepEqual(foreign, [], 'the backend saw requests the client never sent as requests')
    assert.doesNotMatch(backend.raw, /(?<!@)GET \/hidden/, 'a hidden request reached the backend as a request line')
    assert.deepEqual(backendParseErrors, [], 'switchyard sent the backend bytes it could not parse')
    // switchyard is alive, and serves a canary on a fresh connection.
    const canary = await send(port, { path: '/canary', timeout: 5000 })
    assert.equal(canary.status, 200)
    assert.doesNotMatch(sy.stderr, /\n\s+at |Uncaught|TypeError|RangeError/, 'a stack trace in the error log')
  })
}
