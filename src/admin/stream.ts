// `GET /api/stream`: server-sent events for the dashboard. One poll of the backend per
// tick, shared by every connected client (with workers, one question to each worker per
// tick, however many pages are open), and no poll at all while nobody is connected.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log.js'
import { LiveState, type ReloadCounts } from './live.js'
import type { UpstreamView } from './api.js'

/** What the stream polls: the admin backend's reads. */
export interface LiveSource {
  upstreams(): Promise<Record<string, UpstreamView>>
  reloads(): Promise<ReloadCounts>
  readonly log: Logger
}

/** A client this far behind (bytes queued) is cut off rather than buffered for. */
const MAX_QUEUED = 1024 * 1024

export class LiveStream {
  private readonly clients = new Set<ServerResponse>()
  private readonly source: LiveSource
  private readonly tokenRequired: boolean
  readonly state: LiveState
  private timer: NodeJS.Timeout | null = null
  /** Which run of polls is current; a poll of an earlier run (stopped, then started
   *  again while it was asking) is dropped. 0 while stopped. */
  private run = 0
  private runs = 0

  constructor(source: LiveSource, tokenRequired: boolean, state: LiveState = new LiveState()) {
    this.source = source
    this.tokenRequired = tokenRequired
    this.state = state
  }

  /** Answer `req` with the stream; it ends when the client goes. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.write(`retry: ${this.state.interval}\n\n`)
    res.write(event('hello', this.state.hello(this.tokenRequired)))
    this.clients.add(res)
    const gone = (): void => {
      this.clients.delete(res)
      if (this.clients.size === 0) this.stop()
    }
    res.once('close', gone)
    req.once('close', gone)
    if (this.run === 0) this.start()
  }

  /** End every client's stream (the listener is closing). */
  close(): void {
    for (const res of this.clients) res.end()
    this.clients.clear()
    this.stop()
  }

  private start(): void {
    this.run = ++this.runs
    void this.tick(this.run)
  }

  private stop(): void {
    if (this.run === 0) return
    this.run = 0
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.state.pause()
  }

  private async tick(run: number): Promise<void> {
    this.timer = null
    const started = Date.now()
    try {
      const [upstreams, reloads] = await Promise.all([this.source.upstreams(), this.source.reloads()])
      // Stopped while asking: this snapshot would follow a pause, so it is not used.
      if (run !== this.run) return
      const text = event('frame', this.state.update(Date.now(), upstreams, reloads))
      for (const res of this.clients) {
        if (res.writableLength > MAX_QUEUED) res.destroy()
        else res.write(text)
      }
    } catch (err) {
      this.source.log.warn(`admin: live stream: ${(err as Error).message}`)
    }
    if (run !== this.run) return
    // A fixed rate, not a fixed gap: a slow poll (workers answering late) does not drift.
    const wait = Math.max(0, started + this.state.interval - Date.now())
    this.timer = setTimeout(() => void this.tick(run), wait)
    this.timer.unref()
  }
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`
}
