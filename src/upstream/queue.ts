// NGINX Plus's `queue N [timeout=60s]`: a request that finds no eligible peer on its
// first pick (all down or failed, or every one at max_conns) waits for one instead of
// failing at once. More than N waiting, or no peer within the timeout → 503 (NGINX Plus
// answers 502; a full queue is overload, which 503 says and clients know to retry).
// Waiters are served in arrival order whenever a peer is released or comes back up, and
// on a short poll (a peer out for fail_timeout returns with no event).
import type { QueueConfig } from '../config/model.js'
import type { Peer } from './peer.js'
import type { Selection } from './upstream.js'

/** How often waiters are looked at when nothing else happens (ms). */
const POLL = 100

interface Waiter {
  readonly selection: Selection
  readonly deadline: number
  readonly onPeer: (peer: Peer) => void
  readonly onTimeout: () => void
}

export class RequestQueue {
  readonly config: QueueConfig
  private readonly select: (selection: Selection) => Peer | undefined
  private waiters: Waiter[] = []
  private timer: NodeJS.Timeout | null = null
  private draining = false
  private again = false

  /** `select` is the upstream's pick (marks the peer busy when it returns one). */
  constructor(config: QueueConfig, select: (selection: Selection) => Peer | undefined) {
    this.config = config
    this.select = select
  }

  get length(): number {
    return this.waiters.length
  }

  /** Wait for a peer: `onPeer` with one already selected, or `onTimeout`. Returns the
   *  function that takes the request out of the queue (its client went away), or null
   *  when the queue is full. */
  enqueue(selection: Selection, onPeer: (peer: Peer) => void, onTimeout: () => void): (() => void) | null {
    if (this.waiters.length >= this.config.size) return null
    const waiter: Waiter = { selection, deadline: selection.now + this.config.timeout, onPeer, onTimeout }
    this.waiters.push(waiter)
    if (this.timer === null) {
      this.timer = setInterval(() => this.drain(), Math.max(1, Math.min(POLL, this.config.timeout)))
      this.timer.unref()
    }
    return () => this.remove(waiter)
  }

  /** Time out the waiters past their deadline, then hand peers to the rest in arrival
   *  order until no peer is eligible. */
  drain(): void {
    if (this.draining) {
      this.again = true
      return
    }
    this.draining = true
    try {
      do {
        this.again = false
        for (const waiter of [...this.waiters]) {
          waiter.selection.tick()
          if (waiter.selection.now < waiter.deadline) continue
          this.remove(waiter)
          waiter.onTimeout()
        }
        while (this.waiters.length !== 0) {
          const waiter = this.waiters[0]!
          waiter.selection.tick()
          const peer = this.select(waiter.selection)
          if (peer === undefined) break
          this.remove(waiter)
          waiter.onPeer(peer)
        }
      } while (this.again)
    } finally {
      this.draining = false
    }
  }

  private remove(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter)
    if (i !== -1) this.waiters.splice(i, 1)
    if (this.waiters.length === 0 && this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
    }
  }
}
