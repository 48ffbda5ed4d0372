// A worker thread that loads config texts for the config fuzzer, so that an input which
// made the parser loop forever could be stopped (terminate()) and reported, instead of
// hanging the test process.
import { parentPort } from 'node:worker_threads'
import { ConfigError, parseConfigText } from '../../src/config/load.js'

/** What the fuzzer learns of one load. */
export interface LoadOutcome {
  readonly id: number
  /** 'model': a Config came back; 'config-error': a ConfigError; 'other': anything else. */
  readonly kind: 'model' | 'config-error' | 'other'
  readonly message: string
  readonly file: string | null
  readonly line: number | null
  readonly stack: string
}

// Host names resolve to loopback and includes find nothing: the fuzzer tests the parser
// and the builder, not DNS or the file system.
const options = {
  resolveHost: async (): Promise<readonly string[]> => ['127.0.0.1'],
  readFile: (path: string): string => {
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
  },
}

// Outside a worker (`node --test dist/test/` also loads this file) it does nothing.
parentPort?.on('message', async ({ id, text, file }: { id: number; text: string; file: string }) => {
  let out: LoadOutcome
  try {
    await parseConfigText(text, file, options)
    out = { id, kind: 'model', message: '', file: null, line: null, stack: '' }
  } catch (err) {
    const e = err as Error
    out = err instanceof ConfigError
      ? { id, kind: 'config-error', message: e.message, file: err.file, line: err.line, stack: '' }
      : { id, kind: 'other', message: String(e?.message ?? err), file: null, line: null, stack: String(e?.stack ?? '') }
  }
  parentPort!.postMessage(out)
})
