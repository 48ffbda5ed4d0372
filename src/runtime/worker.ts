// A worker process (worker_processes > 1): serves with the config the primary validated,
// listens through the primary's shared sockets, and answers the primary's questions.
import { AggregatorRegistry } from 'prom-client'
import type { PeerChange } from '../admin/api.js'
import { createLogger } from '../log.js'
import { tuneHeapForProxy } from './heap.js'
import { isMessage, WORKER_ENV, type FromWorker, type ToWorker } from './messages.js'
import { startSwitchyard } from './switchyard.js'
import { RemoteZones } from '../limits/remote-zones.js'

const send = (message: FromWorker): void => {
  process.send?.(message)
}

export async function runWorker(): Promise<void> {
  tuneHeapForProxy()
  const file = process.env[WORKER_ENV.config]!
  const log = createLogger()
  // limit_req/limit_conn state is the primary's, shared by every worker.
  const zones = new RemoteZones(send)
  process.on('message', (message: unknown) => {
    if (isMessage<ToWorker>(message)) zones.receive(message)
  })
  let sy
  try {
    sy = await startSwitchyard({ configFile: file, logger: log, role: 'worker', processMetrics: process.env[WORKER_ENV.metrics] === '1', limitZones: zones })
  } catch (err) {
    send({ type: 'sy:failed', error: (err as Error).message })
    process.exit(1)
  }
  const { errorLog } = sy.config.main
  log.configure(errorLog.path, errorLog.level)
  const changes = JSON.parse(process.env[WORKER_ENV.changes] ?? '[]') as Array<[string, PeerChange]>
  sy.adoptChanges(changes)
  // The primary aggregates every worker's metrics (prom-client's cluster protocol).
  new AggregatorRegistry()
  AggregatorRegistry.setRegistries([sy.metrics.registry])

  const instance = sy
  process.on('message', (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return
    switch (message.type) {
      case 'sy:quit':
        void instance.quit().then(() => process.exit(0))
        break
      case 'sy:reopen':
        log.configure(instance.config.main.errorLog.path, instance.config.main.errorLog.level)
        void instance.reopenLogs()
        break
      case 'sy:views':
        send({ type: 'sy:views', id: message.id, views: instance.upstreamViews() })
        break
      case 'sy:patch':
        send({ type: 'sy:patched', id: message.id, view: instance.patchPeer(message.upstream, message.peer, message.change) })
        break
    }
  })
  // Signals are the primary's business: a terminal's Ctrl-C reaches the whole process
  // group, and the primary decides how the workers end.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP', 'SIGUSR1'] as const) process.on(signal, () => undefined)
  // Orphaned (the primary died): finish what is in flight and go.
  process.on('disconnect', () => {
    zones.disconnected()
    void instance.quit().then(() => process.exit(0))
  })
  send({ type: 'sy:ready' })
}
