// The client's request body, streamed to one attempt at a time. A reader takes from the
// client only when undici pulls, so an attempt that fails while connecting has taken
// nothing; bodies up to `replayLimit` bytes are also kept as they stream, so a retry
// (a connect failure, or `non_idempotent`) can send them again. Larger bodies stream
// without being held, and once part of one is gone it is never retried.
import { Readable } from 'node:stream'
import type { IncomingMessage } from 'node:http'

/** Emitted (with the status to answer) on a request whose body the HTTP parser refused
 *  (a bad chunk size, …) while the request was already being proxied: its exchange
 *  answers it in its turn among pipelined responses, then the connection closes. */
export const BAD_BODY = 'switchyard:bad-body'

export class BodyTooLargeError extends Error {
  readonly code = 'SY_BODY_TOO_LARGE'
}

const clientAborted = (message: string): Error => Object.assign(new Error(message), { code: 'SY_CLIENT_ABORTED' })

/** Bytes kept for a retry, like nginx's client_body_buffer_size (16k on 64-bit). */
export const REPLAY_LIMIT = 16 * 1024

export class RequestBody {
  /** Bytes read from the client so far. */
  bytes = 0
  /** True while every byte read so far is still held for a replay. */
  replayable = true
  readonly source: IncomingMessage
  private readonly limit: number
  private readonly replayLimit: number
  private readonly kept: Buffer[] = []
  private ended = false
  private current: AttemptBody | null = null

  /** `limit` is client_max_body_size in bytes (0 = none): a chunked body that grows past
   *  it fails with BodyTooLargeError. */
  constructor(source: IncomingMessage, limit: number, replayLimit = REPLAY_LIMIT) {
    this.source = source
    this.limit = limit
    this.replayLimit = replayLimit
    source.pause()
  }

  /** Can a new attempt still get the whole body? */
  get resendable(): boolean {
    return this.bytes === 0 || this.replayable
  }

  /** A fresh upload for the next attempt (the previous one is detached first). */
  reader(): AttemptBody {
    this.current?.destroy()
    const reader = new AttemptBody(this)
    this.current = reader
    return reader
  }

  /** Called by the active reader for each chunk from the client. */
  take(chunk: Buffer): Error | null {
    this.bytes += chunk.length
    if (this.limit !== 0 && this.bytes > this.limit) return new BodyTooLargeError('client intended to send too large body')
    if (this.replayable) {
      if (this.bytes <= this.replayLimit) this.kept.push(chunk)
      else {
        this.replayable = false
        this.kept.length = 0
      }
    }
    return null
  }

  markEnded(): void {
    this.ended = true
  }

  /** What a new reader sends before reading on: the kept bytes and whether the client is done. */
  replay(): { chunks: readonly Buffer[]; ended: boolean } {
    return { chunks: this.replayable ? this.kept : [], ended: this.ended }
  }
}

export class AttemptBody extends Readable {
  private readonly body: RequestBody
  private started = false
  private attached = false

  constructor(body: RequestBody) {
    super()
    this.body = body
  }

  override _read(): void {
    if (!this.started) {
      this.started = true
      const { chunks, ended } = this.body.replay()
      for (const c of chunks) this.push(c)
      if (ended) {
        this.push(null)
        return
      }
      const src = this.body.source
      src.on('data', this.onData)
      src.on('end', this.onEnd)
      src.on('error', this.onError)
      src.on('aborted', this.onAborted)
      this.attached = true
    }
    this.body.source.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.detach()
    callback(err)
  }

  private detach(): void {
    if (!this.attached) return
    this.attached = false
    const src = this.body.source
    src.off('data', this.onData)
    src.off('end', this.onEnd)
    src.off('error', this.onError)
    src.off('aborted', this.onAborted)
    src.pause()
  }

  private readonly onData = (chunk: Buffer): void => {
    const err = this.body.take(chunk)
    if (err !== null) {
      this.destroy(err)
      return
    }
    if (!this.push(chunk)) this.body.source.pause()
  }

  private readonly onEnd = (): void => {
    this.body.markEnded()
    this.push(null)
  }

  /** A failure on the client side is the client's, never the peer's. */
  private readonly onError = (err: Error): void => {
    this.destroy(clientAborted(`client request body: ${err.message}`))
  }

  private readonly onAborted = (): void => {
    this.destroy(clientAborted('client closed the request body'))
  }
}
