// Limits shared by every worker (worker_processes > 1): the primary owns the zones
// (`ZoneHost`) and each worker asks it over the cluster IPC channel (`RemoteZones`), one
// message per decision with an id to match the answer. nginx shares the same state
// through shared memory and a mutex; here the primary's single thread is the mutex.
import type { FromWorker, ToWorker } from '../runtime/messages.js'
import { monotonicNow, ZoneSet, type ConnItem, type ConnVerdict, type LimitZones, type ReqItem, type ReqVerdict } from './zones.js'

type Answer = ReqVerdict | ConnVerdict

/** A worker's view of the primary's zones. */
export class RemoteZones implements LimitZones {
  private readonly send: (message: FromWorker) => void
  /** Questions in flight, with the answer to give if the primary goes away. */
  private readonly pending = new Map<number, { resolve: (answer: Answer) => void; unlimited: Answer }>()
  private nextId = 0
  private connected = true

  constructor(send: (message: FromWorker) => void) {
    this.send = send
  }

  limitRequest(items: readonly ReqItem[]): Promise<ReqVerdict> {
    return this.ask((id) => ({ type: 'sy:limit-req', id, items: [...items] }), { kind: 'declined' }) as Promise<ReqVerdict>
  }

  acquireConn(items: readonly ConnItem[]): Promise<ConnVerdict> {
    return this.ask((id) => ({ type: 'sy:conn-acquire', id, items: [...items] }), { ok: true }) as Promise<ConnVerdict>
  }

  releaseConn(items: readonly ConnItem[]): void {
    if (this.connected) this.send({ type: 'sy:conn-release', items: [...items] })
  }

  /** An answer from the primary; false when the message is not one. */
  receive(message: ToWorker): boolean {
    if (message.type !== 'sy:limit-req' && message.type !== 'sy:conn-acquire') return false
    const waiting = this.pending.get(message.id)
    this.pending.delete(message.id)
    waiting?.resolve(message.verdict)
    return true
  }

  /** The primary is gone (the worker is finishing on its own): nothing limits any more. */
  disconnected(): void {
    this.connected = false
    for (const [id, waiting] of this.pending) {
      this.pending.delete(id)
      waiting.resolve(waiting.unlimited)
    }
  }

  private ask(make: (id: number) => FromWorker, unlimited: Answer): Promise<Answer> {
    if (!this.connected) return Promise.resolve(unlimited)
    const id = ++this.nextId
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, unlimited })
      this.send(make(id))
    })
  }
}

/** The primary's side: answers workers from its zones, and remembers the connection
 *  slots each worker holds, so a worker that dies gives them back. */
export class ZoneHost<Owner> {
  zones: ZoneSet
  private readonly now: () => number
  private readonly held = new Map<Owner, Map<string, { item: ConnItem; count: number }>>()

  constructor(zones: ZoneSet, now: () => number = monotonicNow) {
    this.zones = zones
    this.now = now
  }

  /** Handle a worker's message; returns the answer to send back, or null (none due, or
   *  not a limits message). */
  handle(owner: Owner, message: FromWorker): ToWorker | null {
    switch (message.type) {
      case 'sy:limit-req':
        return { type: 'sy:limit-req', id: message.id, verdict: this.zones.limitRequest(message.items, this.now()) }
      case 'sy:conn-acquire': {
        const verdict = this.zones.acquireConn(message.items)
        if (verdict.ok) this.hold(owner, message.items, 1)
        return { type: 'sy:conn-acquire', id: message.id, verdict }
      }
      case 'sy:conn-release':
        this.zones.releaseConn(this.hold(owner, message.items, -1))
        return null
      default:
        return null
    }
  }

  /** The worker exited: release every slot it still held. */
  gone(owner: Owner): void {
    const slots = this.held.get(owner)
    this.held.delete(owner)
    if (slots === undefined) return
    for (const { item, count } of slots.values()) for (let i = 0; i < count; i++) this.zones.releaseConn([item])
  }

  /** Count slots per owner; on release, returns only the items the owner did hold. */
  private hold(owner: Owner, items: readonly ConnItem[], delta: 1 | -1): ConnItem[] {
    let slots = this.held.get(owner)
    if (slots === undefined) {
      // A release from an owner already gone (its slots were freed then).
      if (delta === -1) return []
      this.held.set(owner, (slots = new Map()))
    }
    const out: ConnItem[] = []
    for (const item of items) {
      const key = `${item.zone}\0${item.key}`
      const slot = slots.get(key)
      if (delta === 1) {
        if (slot === undefined) slots.set(key, { item, count: 1 })
        else slot.count++
      } else if (slot !== undefined) {
        out.push(item)
        if (--slot.count === 0) slots.delete(key)
      }
    }
    return out
  }
}
