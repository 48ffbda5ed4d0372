// The client's request body, streamed to one attempt at a time. A reader takes from the
// client only when undici pulls, so an attempt that fails while connecting has taken
// nothing. What is kept for a retry:
// - proxy_request_buffering on (the default): up to client_body_buffer_size is read from
//   the client before the first pick (all of a body that small), and kept; a body that
//   fits is resent whole to any later attempt. The rest of a larger body streams with the
//   first attempt that connects and is not kept: once part of it is gone the request is
//   never retried (nginx would spool it to a temporary file instead).
// - proxy_request_buffering off: nothing is read ahead or kept; once any byte of the
//   body went to an attempt the request is never retried (nginx's rule for unbuffered
//   bodies).
// Each reader also enforces proxy_send_timeout: an upstream that takes none of the body
// for that long fails the attempt.
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

/** The upstream took none of the body within proxy_send_timeout. */
const sendTimedOut = (): Error => Object.assign(new Error('upstream timed out (110: Connection timed out)'), { code: 'SY_SEND_TIMEOUT' })

/** nginx's client_body_buffer_size default on 64-bit platforms. */
export const DEFAULT_BUFFER_SIZE = 16 * 1024

export interface BodyOptions {
  /** client_max_body_size in bytes (0 = none): a chunked body that grows past it fails
   *  with BodyTooLargeError. */
  readonly limit: number
  /** Bytes kept for a retry: client_body_buffer_size with buffering on, 0 with it off. */
  readonly replayLimit: number
  /** proxy_send_timeout in ms (0 = none). */
  readonly sendTimeout: number
}

export class RequestBody {
  /** Bytes read from the client so far. */
  bytes = 0
  /** True while every byte read so far is still held for a replay. */
  replayable = true
  readonly source: IncomingMessage
  readonly sendTimeout: number
  private readonly limit: number
  private replayLimit: number
  private readonly kept: Buffer[] = []
  private ended = false
  private current: AttemptBody | null = null

  constructor(source: IncomingMessage, options: BodyOptions) {
    this.source = source
    this.limit = options.limit
    this.replayLimit = options.replayLimit
    this.sendTimeout = options.sendTimeout
    source.pause()
  }

  /** Can a new attempt still get the whole body? */
  get resendable(): boolean {
    return this.bytes === 0 || this.replayable
  }

  /** proxy_request_buffering on: read up to `size` bytes (the whole body when it is
   *  smaller) before any attempt, and keep them. Resolves null, or the client's error. */
  preload(size: number): Promise<Error | null> {
    const src = this.source
    return new Promise((resolve) => {
      const done = (err: Error | null): void => {
        src.off('data', onData)
        src.off('end', onEnd)
        src.off('error', onError)
        src.off('aborted', onAborted)
        src.pause()
        // Everything read ahead stays kept, even a last chunk that went past `size`.
        this.replayLimit = Math.max(this.replayLimit, this.bytes)
        resolve(err)
      }
      const onData = (chunk: Buffer): void => {
        this.bytes += chunk.length
        if (this.limit !== 0 && this.bytes > this.limit) return done(new BodyTooLargeError('client intended to send too large body'))
        this.kept.push(chunk)
        if (this.bytes >= size) done(null)
      }
      const onEnd = (): void => {
        this.ended = true
        done(null)
      }
      const onError = (err: Error): void => done(clientAborted(`client request body: ${err.message}`))
      const onAborted = (): void => done(clientAborted('client closed the request body'))
      src.on('data', onData)
      src.on('end', onEnd)
      src.on('error', onError)
      src.on('aborted', onAborted)
      src.resume()
    })
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
  /** Armed while undici has stopped taking the body (proxy_send_timeout). */
  private stall: NodeJS.Timeout | null = null

  constructor(body: RequestBody) {
    super()
    this.body = body
    // All of it consumed by undici: nothing left for the upstream to refuse.
    this.once('end', () => this.unarm())
  }

  override _read(): void {
    this.unarm()
    if (!this.started) {
      this.started = true
      const { chunks, ended } = this.body.replay()
      let room = true
      for (const c of chunks) room = this.push(c)
      if (!room) this.arm()
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
      if (!room) return
    }
    this.body.source.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.unarm()
    this.detach()
    callback(err)
  }

  /** undici's writer pauses this stream while the socket will take no more (the kernel
   *  buffers are full): from then on the upstream has proxy_send_timeout to take some. */
  private arm(): void {
    const ms = this.body.sendTimeout
    if (ms === 0 || this.stall !== null) return
    this.stall = setTimeout(() => {
      this.stall = null
      this.destroy(sendTimedOut())
    }, ms)
  }

  private unarm(): void {
    if (this.stall === null) return
    clearTimeout(this.stall)
    this.stall = null
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
    if (!this.push(chunk)) {
      this.body.source.pause()
      this.arm()
    }
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
