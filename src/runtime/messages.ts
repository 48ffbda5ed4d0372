// What the primary and its workers say to each other over the cluster IPC channel.
import type { PeerChange, PeerView, UpstreamView } from '../admin/api.js'
import type { LimitAnswer, LimitAsk } from '../limits/remote-zones.js'

/** Primary → worker. */
export type ToWorker =
  | { type: 'sy:quit' }
  | { type: 'sy:reopen' }
  | { type: 'sy:views'; id: number }
  | { type: 'sy:patch'; id: number; upstream: string; peer: number; change: PeerChange }
  | { type: 'sy:limits'; answers: LimitAnswer[] }

/** Worker → primary. */
export type FromWorker =
  | { type: 'sy:ready' }
  | { type: 'sy:failed'; error: string }
  | { type: 'sy:views'; id: number; views: Record<string, UpstreamView> }
  | { type: 'sy:patched'; id: number; view: PeerView | null }
  // The limit zones live in the primary (src/limits/remote-zones.ts); what a worker asks
  // in one turn of its event loop goes in one message.
  | { type: 'sy:limits'; asks: LimitAsk[] }

/** Environment variables a worker is started with. */
export const WORKER_ENV = {
  config: 'SWITCHYARD_WORKER_CONFIG',
  changes: 'SWITCHYARD_WORKER_CHANGES',
  generation: 'SWITCHYARD_WORKER_GENERATION',
  /** '1' when the primary has an admin listener that will scrape the workers. */
  metrics: 'SWITCHYARD_WORKER_METRICS',
} as const

export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' && (value as { type: string }).type.startsWith('sy:')
}
