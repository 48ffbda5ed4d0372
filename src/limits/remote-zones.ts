// Limits shared by every worker (worker_processes > 1): the primary owns the zones
// (`ZoneHost`) and each worker asks it over the cluster IPC channel (`RemoteZones`).
// nginx shares the same state through shared memory and a mutex; here the primary's
// single thread is the mutex. A worker's questions from one turn of its event loop travel
// in one message, and their answers come back in one: under load that is one IPC round
// trip for many requests instead of one each.
import type { FromWorker, ToWorker } from '../runtime/messages.js'
import { monotonicNow, ZoneSet, type CheckVerdict, type ConnItem, type ConnVerdict, type LimitZones, type ReqItem } from './zones.js'

/** One question (or a release, which needs no answer) from a worker. */
export type LimitAsk =
  | { readonly op: 'check'; readonly id: number; readonly req: readonly ReqItem[]; readonly conn: readonly ConnItem[]; readonly dry: boolean }
  | { readonly op: 'conn'; readonly id: number; readonly items: readonly ConnItem[] }
  | { readonly op: 'release'; readonly items: readonly ConnItem[] }

export interface LimitAnswer {
  readonly id: number
  readonly verdict: CheckVerdict | ConnVerdict
}

type Verdict = CheckVerdict | ConnVerdict

/** A worker's view of the primary's zones. */
export class RemoteZones implements LimitZones {
  private readonly send: (message: FromWorker) => void
  /** Questions in flight, with the answer to give if the primary goes away. */
  private readonly pending = new Map<number, { resolve: (verdict: Verdict) => void; unlimited: Verdict }>()
  private queue: LimitAsk[] = []
  private nextId = 0
  private connected = true

  constructor(send: (message: FromWorker) => void) {
    this.send = send
  }

  check(req: readonly ReqItem[], conn: readonly ConnItem[], reqDryRun: boolean): Promise<CheckVerdict> {
    return this.ask((id) => ({ op: 'check', id, req, conn, dry: reqDryRun }), { req: { kind: 'declined' }, conn: conn.length === 0 ? null : { ok: true } }) as Promise<CheckVerdict>
  }

  acquireConn(items: readonly ConnItem[]): Promise<ConnVerdict> {
    return this.ask((id) => ({ op: 'conn', id, items }), { ok: true }) as Promise<ConnVerdict>
  }

  releaseConn(items: readonly ConnItem[]): void {
    if (this.connected) this.enqueue({ op: 'release', items })
  }

  /** Answers from the primary; false when the message is not theirs. */
  receive(message: ToWorker): boolean {
    if (message.type !== 'sy:limits') return false
    for (const { id, verdict } of message.answers) {
      const waiting = this.pending.get(id)
      this.pending.delete(id)
      waiting?.resolve(verdict)
    }
    return true
  }

  /** The primary is gone (the worker is finishing on its own): nothing limits any more. */
  disconnected(): void {
    this.connected = false
    this.queue = []
    for (const [id, waiting] of this.pending) {
      this.pending.delete(id)
      waiting.resolve(waiting.unlimited)
    }
  }

  private ask(make: (id: number) => LimitAsk, unlimited: Verdict): Promise<Verdict> {
    if (!this.connected) return Promise.resolve(unlimited)
    const id = ++this.nextId
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, unlimited })
      this.enqueue(make(id))
    })
  }

  private enqueue(ask: LimitAsk): void {
    this.queue.push(ask)
    if (this.queue.length === 1) setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    if (this.queue.length === 0 || !this.connected) return
    const asks = this.queue
    this.queue = []
    this.send({ type: 'sy:limits', asks })
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

  /** Handle a worker's message, in order; returns the answers to send back, or null
   *  (none due, or not a limits message). */
  handle(owner: Owner, message: FromWorker): ToWorker | null {
    if (message.type !== 'sy:limits') return null
    const answers: LimitAnswer[] = []
    const now = this.now()
    for (const ask of message.asks) {
      switch (ask.op) {
        case 'check': {
          const verdict = this.zones.check(ask.req, ask.conn, ask.dry, now)
          if (verdict.conn?.ok === true) this.hold(owner, ask.conn, 1)
          answers.push({ id: ask.id, verdict })
          break
        }
        case 'conn': {
          const verdict = this.zones.acquireConn(ask.items)
          if (verdict.ok) this.hold(owner, ask.items, 1)
          answers.push({ id: ask.id, verdict })
          break
        }
        case 'release':
          this.zones.releaseConn(this.hold(owner, ask.items, -1))
          break
      }
    }
    return answers.length === 0 ? null : { type: 'sy:limits', answers }
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
