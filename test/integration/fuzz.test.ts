// Bounded fuzzing with fast-check: (a) the config loader on mutated example configs and
// token soups — a model or a ConfigError naming file:line, nothing else, never a hang;
// (b) the request path on mutated raw HTTP/1.1 — switchyard never crashes, every
// connection gets well-formed responses or a close in time, and no request hidden in a
// body ever reaches the backend as a request (no desync).
//
// SWITCHYARD_FUZZ_RUNS scales the number of inputs (default 1 = the CI size, ~30 s in all);
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
const REQUEST_CASES = Math.round(240 * SCALE)
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
