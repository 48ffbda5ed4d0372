// The primary process when `worker_processes` is more than 1 (or `auto`): it owns the
// listening sockets (node:cluster shares them with the workers), the config, the pid
// file, the signals and the admin listener; the workers serve.
//
// Reload: validate the new config here; if valid, start a new set of workers with it,
// wait until every one listens, then ask the old ones to quit gracefully (stop
// accepting, finish in-flight requests, let kept-alive clients go with
// `Connection: close`). The listening sockets stay open in this process the whole time,
// so no connection is refused. If the new config is invalid, or a new worker fails to
// start, nothing changes. A worker that dies is replaced at once.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { rm, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { AggregatorRegistry, Registry } from 'prom-client'
import { mergeUpstreamViews, sameServers, type PeerChange, type PeerView, type UpstreamView } from '../admin/api.js'
import { reloadCounter, reloadCounts } from '../admin/metrics.js'
import type { AdminBackend, AdminOptions } from '../admin/server.js'
import { AdminEndpoint } from '../admin/endpoint.js'
import type { Config } from '../config/model.js'
import { loadConfig } from '../config/load.js'
import type { Logger } from '../log.js'
import { isMessage, WORKER_ENV, type FromWorker, type ToWorker } from './messages.js'
import { listenKey } from './generation.js'
import { ZoneHost } from '../limits/remote-zones.js'
import { ZoneSet } from '../limits/zones.js'

/** How many workers a config asks for (`auto`: one per CPU). */
export function workerCount(config: Config): number {
  const n = config.main.workerProcesses
  return n === 'auto' ? availableParallelism() : n
}

/** How long a new worker may take to listen before a start or reload is abandoned. */
const START_TIMEOUT = 15_000

interface WorkerInfo {
  generation: number
  /** Asked to quit (or stop): its exit is expected. */
  retiring: boolean
}

export class Primary {
  private readonly file: string
  private readonly log: Logger
  private config: Config
  private generation = 0
  private readonly workers = new Map<Worker, WorkerInfo>()
  /** API changes by `upstream\0server`, handed to every new worker. */
  private readonly changes = new Map<string, PeerChange>()
  private admin: AdminEndpoint | null = null
  private shuttingDown = false
  /** An admin listener will scrape the workers' metrics. */
  private scraped = false
  private reloading: Promise<void> = Promise.resolve()
  private requestId = 0
  private readonly registry = new Registry()
  private readonly countReload = reloadCounter(this.registry)
  private readonly aggregator = new AggregatorRegistry()
  /** The limit_req/limit_conn zones every worker asks about (src/limits/remote-zones.ts). */
  private readonly zones: ZoneHost<Worker>

  constructor(file: string, config: Config, log: Logger) {
    this.file = file
    this.config = config
    this.log = log
    this.zones = new ZoneHost(ZoneSet.fromConfig(config))
    // Workers accept from the shared listening sockets themselves (SCHED_NONE) instead of
    // the primary accepting and handing each connection over IPC (SCHED_RR): no IPC per
    // connection, and a connection being handed to a worker that dies at that moment is
    // not left hanging in the primary, which Node's round-robin handoff can do.
    cluster.schedulingPolicy = cluster.SCHED_NONE
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)) })
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal))
  }

  /** Start the first workers; throws if they cannot start (nothing is left running). */
  /** `admin`: from the command line (fixed); otherwise the config's `admin_listen` is
   *  followed across reloads. */
  async start(admin: AdminOptions | null): Promise<void> {
    this.admin = new AdminEndpoint(this.backend(), this.log, admin)
    this.scraped = admin !== null || this.config.main.admin !== null
    await this.spawn(workerCount(this.config))
    await this.admin.apply(this.config.main.admin)
    await this.writePid()
    const listens = this.config.http.servers.flatMap((s) => s.listen.map((l) => listenKey(l.host, l.port)))
    this.log.notice(`switchyard started, ${this.current().length} workers, listening on ${[...new Set(listens)].join(', ')}`)
  }

  /** Workers of the current generation that are not retiring. */
  private current(): Worker[] {
    return [...this.workers].filter(([, info]) => info.generation === this.generation && !info.retiring).map(([w]) => w)
  }

  /** Fork `n` workers of a new generation and wait until each listens. On failure the
   *  new workers are stopped and the error is thrown; the old generation is untouched. */
  private async spawn(n: number): Promise<Worker[]> {
    const generation = this.generation + 1
    const started = Array.from({ length: n }, () => this.fork(generation))
    try {
      await Promise.all(started.map((w) => this.ready(w)))
    } catch (err) {
      for (const w of started) this.retire(w, 'stop')
      throw err
    }
    this.generation = generation
    return started
  }

  private fork(generation: number): Worker {
    const worker = cluster.fork({
      [WORKER_ENV.config]: this.file,
      [WORKER_ENV.changes]: JSON.stringify([...this.changes]),
      [WORKER_ENV.generation]: String(generation),
      [WORKER_ENV.metrics]: this.scraped ? '1' : '0',
    })
    this.workers.set(worker, { generation, retiring: false })
    worker.on('message', (message: unknown) => {
      if (!isMessage<FromWorker>(message)) return
      const answer = this.zones.handle(worker, message)
      if (answer !== null && worker.isConnected()) worker.send(answer)
    })
    return worker
  }

  private ready(worker: Worker): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`worker process ${worker.process.pid} did not start within ${START_TIMEOUT / 1000}s`)), START_TIMEOUT)
      const onMessage = (message: unknown): void => {
        if (!isMessage<FromWorker>(message)) return
        if (message.type === 'sy:ready') done()
        else if (message.type === 'sy:failed') done(new Error(message.error))
      }
      const onExit = (): void => done(new Error(`worker process ${worker.process.pid} exited while starting`))
      const done = (err?: Error): void => {
        clearTimeout(timer)
        worker.off('message', onMessage)
        worker.off('exit', onExit)
        if (err) reject(err)
        else resolve()
      }
      worker.on('message', onMessage)
      worker.once('exit', onExit)
    })
  }

  /** Ask a worker to end: `quit` finishes its requests first, `stop` does not. */
  private retire(worker: Worker, how: 'quit' | 'stop'): void {
    const info = this.workers.get(worker)
    if (info) info.retiring = true
    if (!worker.isConnected()) return
    if (how === 'quit') worker.send({ type: 'sy:quit' } satisfies ToWorker)
    else worker.process.kill('SIGKILL')
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    // Slots of requests the worker still had in progress are free again.
    this.zones.gone(worker)
    const info = this.workers.get(worker)
    this.workers.delete(worker)
    if (info === undefined || info.retiring || this.shuttingDown) return
    if (info.generation !== this.generation) return
    this.log.log('alert', `worker process ${worker.process.pid} exited ${signal ? `on signal ${signal}` : `with code ${code}`}; starting a new one`)
    const replacement = this.fork(this.generation)
    this.ready(replacement).catch((err: Error) => this.log.log('alert', `could not replace a worker: ${err.message}`))
  }

  // ── signals ─────────────────────────────────────────────────────────────────────

  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow())
    return this.reloading
  }

  private async reloadNow(): Promise<void> {
    if (this.shuttingDown) return
    let config: Config
    try {
      config = await loadConfig(this.file)
    } catch (err) {
      this.log.log('emerg', (err as Error).message)
      this.log.notice('reload failed, the running configuration stays in force')
      this.countReload('error')
      return
    }
    let zones: ZoneSet
    try {
      // Zones whose definition is unchanged keep their state (nginx keeps shared zones).
      zones = ZoneSet.fromConfig(config, this.zones.zones)
    } catch (err) {
      this.log.log('emerg', (err as Error).message)
      this.log.notice('reload failed, the running configuration stays in force')
      this.countReload('error')
      return
    }
    const old = [...this.workers.keys()]
    const previous = this.config
    try {
      await this.admin?.apply(config.main.admin)
    } catch (err) {
      this.log.log('emerg', (err as Error).message)
      this.log.notice('reload failed, the running configuration stays in force')
      this.countReload('error')
      return
    }
    const previousZones = this.zones.zones
    this.config = config
    this.zones.zones = zones
    this.forgetChangedUpstreams(previous, config)
    this.scraped ||= config.main.admin !== null
    try {
      await this.spawn(workerCount(config))
    } catch (err) {
      await this.admin?.apply(previous.main.admin).catch(() => undefined)
      this.config = previous
      this.zones.zones = previousZones
      this.log.log('emerg', (err as Error).message)
      this.log.notice('reload failed, the running configuration stays in force')
      this.countReload('error')
      return
    }
    for (const worker of old) this.retire(worker, 'quit')
    await this.writePid()
    this.countReload('ok')
    this.log.notice(`reconfigured from ${this.file}: ${this.current().length} new workers, ${old.length} old ones finishing`)
  }

  /** API changes survive a reload only for upstreams whose servers stayed the same. */
  private forgetChangedUpstreams(before: Config, after: Config): void {
    for (const key of [...this.changes.keys()]) {
      const name = key.split('\0')[0]!
      const a = before.http.upstreams.get(name)
      const b = after.http.upstreams.get(name)
      if (a === undefined || b === undefined || !sameServers(a, b)) this.changes.delete(key)
    }
  }

  async quit(): Promise<void> {
    if (this.shuttingDown) return
    this.shuttingDown = true
    this.log.notice('gracefully shutting down')
    const all = [...this.workers.keys()]
    const exited = all.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))))
    for (const w of all) this.retire(w, 'quit')
    await Promise.all(exited)
    await this.close()
    this.log.notice('exiting')
  }

  async stop(): Promise<void> {
    this.shuttingDown = true
    const all = [...this.workers.keys()]
    const exited = all.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))))
    for (const w of all) this.retire(w, 'stop')
    await Promise.all(exited)
    await this.close()
  }

  reopenLogs(): void {
    for (const w of this.workers.keys()) if (w.isConnected()) w.send({ type: 'sy:reopen' } satisfies ToWorker)
  }

  private async close(): Promise<void> {
    await this.admin?.close()
    if (this.config.main.pid !== null) await rm(this.config.main.pid, { force: true })
  }

  private async writePid(): Promise<void> {
    if (this.config.main.pid !== null) await writeFile(this.config.main.pid, `${process.pid}\n`)
  }

  // ── the admin API, answered by asking the workers ───────────────────────────────

  /** Send `make(id)` to every current worker and collect one reply each (2 s at most). */
  private ask<R>(make: (id: number) => ToWorker, pick: (m: FromWorker, id: number) => R | undefined): Promise<R[]> {
    const workers = this.current().filter((w) => w.isConnected())
    const id = ++this.requestId
    return new Promise((resolve) => {
      const replies: R[] = []
      const listeners = new Map<Worker, (m: unknown) => void>()
      const finish = (): void => {
        clearTimeout(timer)
        for (const [w, l] of listeners) w.off('message', l)
        resolve(replies)
      }
      const timer = setTimeout(finish, 2000)
      for (const w of workers) {
        const listener = (m: unknown): void => {
          if (!isMessage<FromWorker>(m)) return
          const value = pick(m, id)
          if (value === undefined) return
          replies.push(value)
          w.off('message', listener)
          listeners.delete(w)
          if (listeners.size === 0) finish()
        }
        listeners.set(w, listener)
        w.on('message', listener)
        w.send(make(id))
      }
      if (workers.length === 0) finish()
    })
  }

  private async views(): Promise<Record<string, UpstreamView>> {
    const replies = await this.ask((id) => ({ type: 'sy:views', id }), (m, id) => (m.type === 'sy:views' && m.id === id ? m.views : undefined))
    const out: Record<string, UpstreamView> = {}
    const names = new Set(replies.flatMap((r) => Object.keys(r)))
    for (const name of names) {
      const views = replies.map((r) => r[name]).filter((v): v is UpstreamView => v !== undefined)
      if (views.length > 0) out[name] = mergeUpstreamViews(views)
    }
    return out
  }

  private backend(): AdminBackend {
    return {
      log: this.log,
      upstreams: () => this.views(),
      patch: async (upstream, peer, change) => {
        const replies = await this.ask(
          (id) => ({ type: 'sy:patch', id, upstream, peer, change }),
          (m, id) => (m.type === 'sy:patched' && m.id === id ? { view: m.view } : undefined),
        )
        const view = replies.find((r) => r.view !== null)?.view ?? null
        if (view === null) return null
        this.changes.set(`${upstream}\0${view.server}`, stateOf(view))
        return (await this.views())[upstream]?.peers.find((p) => p.id === peer) ?? view
      },
      metrics: async () => {
        const workers = await this.aggregator.clusterMetrics()
        const own = await this.registry.metrics()
        return { contentType: this.registry.contentType, text: `${workers}\n${own}` }
      },
      reloads: () => reloadCounts(this.registry),
    }
  }
}

/** The API-set state a peer view shows, as a change that recreates it. */
function stateOf(view: PeerView): PeerChange {
  return { weight: view.weight, down: view.reasons.includes('api_down'), ...(view.reasons.includes('draining') ? { drain: true as const } : {}) }
}
