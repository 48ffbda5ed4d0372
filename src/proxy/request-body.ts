// The client's request body as one attempt's upload. It reads from the client only when
// undici pulls, so an attempt that fails while connecting has taken nothing and the next
// peer gets the whole body; and destroying it (undici does, on error) never destroys the
// client's request.
import { Readable } from 'node:stream'
import type { IncomingMessage } from 'node:http'

export class BodyTooLargeError extends Error {
  readonly code = 'SY_BODY_TOO_LARGE'
}

export class AttemptBody extends Readable {
  /** Bytes handed to the upstream so far. */
  consumed = 0
  private readonly source: IncomingMessage
  private readonly limit: number

  /** `limit` is client_max_body_size in bytes (0 = none): a chunked body that grows past
   *  it fails with BodyTooLargeError. */
  constructor(source: IncomingMessage, limit: number) {
    super()
    this.source = source
    this.limit = limit
    source.pause()
    source.on('data', this.onData)
    source.on('end', this.onEnd)
    source.on('error', this.onError)
    source.on('aborted', this.onAborted)
  }

  override _read(): void {
    this.source.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.detach()
    callback(err)
  }

  private detach(): void {
    this.source.off('data', this.onData)
    this.source.off('end', this.onEnd)
    this.source.off('error', this.onError)
    this.source.off('aborted', this.onAborted)
    this.source.pause()
  }

  private readonly onData = (chunk: Buffer): void => {
    this.consumed += chunk.length
    if (this.limit !== 0 && this.consumed > this.limit) {
      this.destroy(new BodyTooLargeError('client intended to send too large body'))
      return
    }
    if (!this.push(chunk)) this.source.pause()
  }

  private readonly onEnd = (): void => {
    this.push(null)
  }

  private readonly onError = (err: Error): void => {
    this.destroy(err)
  }

  private readonly onAborted = (): void => {
    this.destroy(Object.assign(new Error('client closed the request body'), { code: 'SY_CLIENT_ABORTED' }))
  }
}
