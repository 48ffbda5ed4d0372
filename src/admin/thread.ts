// The admin listener on a thread of its own. In one process it would share Node's HTTP
// and stream code with the traffic listeners, and its sockets, requests and responses
// have other shapes than the proxy's: from its first request on, that code is compiled
// again for both shapes (V8 deoptimizes it with "wrong map") and every proxied request
// pays for it, 6–9% of a saturated core in `npm run bench:modes` whatever the scrape
// rate. A worker thread has its own V8 isolate, so the proxy's code keeps one shape. The
// thread asks the process for everything it serves (the AdminBackend calls, which are
// async anyway) over its message port; nothing on the request path waits for it.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import type { Server } from 'node:http'
import type { LogLevel } from '../config/model.js'
import type { Logger } from '../log.js'
import { AdminListenError, startAdmin, type AdminBackend, type AdminOptions } from './server.js'

type Call = 'upstreams' | 'patch' | 'metrics' | 'reloads'

/** Thread → process. */
type FromThread =
  | { type: 'call'; id: number; call: Call; args: unknown[] }
  | { type: 'log'; level: LogLevel; message: string }
  | { type: 'listening'; host: string; port: number }
  | { type: 'failed'; message: string; code: string | undefined }
  | { type: 'closed' }

/** Process → thread. */
type ToThread =
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; message: string }
  | { type: 'close' }

/** The admin listener running on its own thread, as the process sees it. */
export class AdminThread {
  private constructor(
    private readonly worker: Worker,
    private readonly bound: { host: string; port: number },
  ) {}

  /** Start the thread and its listener; rejects with AdminListenError when the address
   *  cannot be bound (the thread is gone then). */
  static async start(backend: AdminBackend, options: AdminOptions): Promise<AdminThread> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { options } })
    const answer = (id: number, run: () => Promise<unknown>): void => {
      run().then(
        (value) => worker.postMessage({ type: 'result', id, ok: true, value } satisfies ToThread),
        (err: Error) => worker.postMessage({ type: 'result', id, ok: false, message: err.message } satisfies ToThread),
      )
    }
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromThread) => {
        switch (m.type) {
          case 'call':
            return answer(m.id, () => callBackend(backend, m.call, m.args))
          case 'log':
            return backend.log.log(m.level, m.message)
          case 'listening':
            return resolve(new AdminThread(worker, { host: m.host, port: m.port }))
          case 'failed':
            void worker.terminate()
            return reject(new AdminListenError(options, Object.assign(new Error(m.message), { code: m.code })))
        }
      })
      worker.once('error', reject)
      worker.on('error', (err) => backend.log.error(`admin listener thread: ${err.message}`))
      // A thread that ends before it listens (it failed to load) must not leave us waiting.
      worker.once('exit', (code) => reject(new Error(`the admin listener thread exited with code ${code} before it listened`)))
    })
  }

  address(): { host: string; port: number } {
    return this.bound
  }

  /** Close the listener and every connection on it, then end the thread. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      this.worker.on('message', (m: FromThread) => {
        if (m.type === 'closed') resolve()
      })
      this.worker.once('exit', () => resolve())
    })
    this.worker.postMessage({ type: 'close' } satisfies ToThread)
    await closed
    await this.worker.terminate()
  }
}

function callBackend(backend: AdminBackend, call: Call, args: unknown[]): Promise<unknown> {
  switch (call) {
    case 'upstreams':
      return backend.upstreams()
    case 'patch':
      return backend.patch(args[0] as string, args[1] as number, args[2] as Parameters<AdminBackend['patch']>[2])
    case 'metrics':
      return backend.metrics()
    case 'reloads':
      return backend.reloads()
  }
}

/** The AdminBackend as the thread sees it: every call goes to the process. */
function backendOverPort(port: NonNullable<typeof parentPort>): AdminBackend {
  let next = 0
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  port.on('message', (m: ToThread) => {
    if (m.type !== 'result') return
    const w = waiting.get(m.id)
    waiting.delete(m.id)
    if (m.ok) w?.resolve(m.value)
    else w?.reject(new Error(m.message))
  })
  const call = <T>(name: Call, ...args: unknown[]): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = next++
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      port.postMessage({ type: 'call', id, call: name, args } satisfies FromThread)
    })
  const log = (level: LogLevel) => (message: string): void => port.postMessage({ type: 'log', level, message } satisfies FromThread)
  const logger: Logger = {
    log: (level, message) => log(level)(message),
    error: log('error'),
    warn: log('warn'),
    notice: log('notice'),
    info: log('info'),
    configure: () => undefined,
    close: async () => undefined,
  }
  return {
    upstreams: () => call('upstreams'),
    patch: (name, id, change) => call('patch', name, id, change),
    metrics: () => call('metrics'),
    reloads: () => call('reloads'),
    log: logger,
  }
}

async function runThread(port: NonNullable<typeof parentPort>, options: AdminOptions): Promise<void> {
  let server: Server
  try {
    server = await startAdmin(backendOverPort(port), options)
  } catch (err) {
    const e = err as Error & { code?: string }
    port.postMessage({ type: 'failed', message: e.message, code: e.code } satisfies FromThread)
    return
  }
  port.on('message', (m: ToThread) => {
    if (m.type !== 'close') return
    server.closeAllConnections()
    server.close(() => port.postMessage({ type: 'closed' } satisfies FromThread))
  })
  const a = server.address()
  if (a !== null && typeof a === 'object') port.postMessage({ type: 'listening', host: a.address, port: a.port } satisfies FromThread)
}

if (!isMainThread && parentPort !== null && (workerData as { options?: AdminOptions } | null)?.options !== undefined) {
  void runThread(parentPort, (workerData as { options: AdminOptions }).options)
}
