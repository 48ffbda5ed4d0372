// `access_log PATH [FORMAT]`: one line per request through a buffer per file (shared by
// every location that names it); the line is formatted by a compiled `log_format`
// (config/log-format.ts).
import { close, open, write } from 'node:fs'
import type { AccessLog } from '../config/model.js'
import type { UpstreamTry } from '../config/log-format.js'
import type { RequestVars } from './request-vars.js'

/** The line for a finished request: the request's variables plus what the end adds. */
export function accessLine(log: AccessLog, vars: RequestVars, status: number, bodyBytesSent: number, requestTime: number, tries: readonly UpstreamTry[]): string {
  return log.format.format(vars.finished(status, bodyBytesSent, requestTime, tries))
}

/** Bytes collected per file before a write; a partly filled buffer is written within
 *  FLUSH_MS. One write per buffer instead of one per request keeps the file system off
 *  the request path (nginx's `buffer=`/`flush=` defaults are 64k and on exit). */
const BUFFER_BYTES = 64 * 1024
const FLUSH_MS = 200
/** Bytes of lines joined before they are copied into the buffer. */
const COPY_BYTES = 4096

/** A file written by appending whole buffers, one write at a time, with fs.write itself:
 *  an fs.WriteStream would run Node's Writable code, which the proxy's sockets run too,
 *  with a second kind of object, and V8 would then compile that code for both and make
 *  every proxied response pay (as the admin listener did, see admin/thread.ts). */
class AppendFile {
  private fd: number | null = null
  /** Buffers to write, each with the length of its part to write. */
  private readonly queue: Array<[Buffer, number]> = []
  private writing = false
  private ending: (() => void) | null = null
  private failed = false

  constructor(
    private readonly path: string,
    /** Called with each buffer once it is written (or dropped after an error). */
    private readonly written: (b: Buffer) => void,
  ) {
    open(path, 'a', (err, fd) => {
      if (err !== null) this.fail(err)
      else this.fd = fd
      this.next()
    })
  }

  /** Append the first `length` bytes of `b` (the file keeps it until they are written). */
  append(b: Buffer, length = b.length): void {
    this.queue.push([b, length])
    if (!this.writing) this.next()
  }

  /** Resolves once everything appended is written and the file is closed. */
  end(): Promise<void> {
    return new Promise((resolve) => {
      this.ending = resolve
      if (!this.writing) this.next()
    })
  }

  private next(): void {
    if (this.fd === null && !this.failed) return // still opening
    const next = this.queue.shift()
    if (next === undefined) {
      this.writing = false
      if (this.ending !== null) this.finish()
      return
    }
    const [b, length] = next
    if (this.failed) {
      this.written(b)
      return this.next()
    }
    this.writing = true
    this.writeAll(b, 0, length)
  }

  private writeAll(b: Buffer, from: number, to: number): void {
    write(this.fd!, b, from, to - from, null, (err, n) => {
      if (err !== null) this.fail(err)
      else if (from + n < to) return this.writeAll(b, from + n, to)
      this.written(b)
      this.next()
    })
  }

  private fail(err: Error): void {
    if (!this.failed) process.stderr.write(`switchyard: access log ${this.path}: ${err.message}\n`)
    this.failed = true
  }

  private finish(): void {
    const done = this.ending!
    this.ending = null
    if (this.fd === null) return done()
    close(this.fd, () => done())
    this.fd = null
  }
}

class BufferedFile {
  private readonly file: AppendFile
  /** The bytes of lines logged since the last write to the file. Lines are held as
   *  strings only briefly (`lines`): kept until the write, they would outlive garbage
   *  collections and be promoted, costing more GC. */
  private buffer: Buffer = Buffer.allocUnsafe(BUFFER_BYTES)
  private used = 0
  /** Lines not yet copied into `buffer`. */
  private lines = ''
  /** Buffers the file has been written from, free again. */
  private readonly spare: Buffer[] = []
  private timer: NodeJS.Timeout | null = null

  constructor(path: string) {
    this.file = new AppendFile(path, (b) => {
      if (b.length === BUFFER_BYTES && this.spare.length < 2) this.spare.push(b)
    })
  }

  /** `line` is a string of bytes (see config/log-format.ts), so its length is its size. */
  write(line: string): void {
    // Lines are joined into a short string first and copied into the buffer some at a
    // time: one copy per line cost more than the join. They are copied before they can
    // outlive a young-generation collection.
    this.lines += line
    if (this.lines.length >= COPY_BYTES) this.copy()
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS)
      this.timer.unref()
    }
  }

  private copy(): void {
    const lines = this.lines
    this.lines = ''
    if (this.used + lines.length > BUFFER_BYTES) {
      this.handOff()
      // More than the whole buffer goes out on its own.
      if (lines.length > BUFFER_BYTES) return this.file.append(Buffer.from(lines, 'latin1'))
    }
    this.used += this.buffer.write(lines, this.used, 'latin1')
  }

  /** Write what has been logged so far (the timer, a reopen, the end). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.copy()
    this.handOff()
  }

  /** The file keeps the filled buffer until it is written; the next lines go to another,
   *  a written one when there is one (a new 64 KiB buffer per write cost more than the
   *  write). */
  private handOff(): void {
    if (this.used === 0) return
    this.file.append(this.buffer, this.used)
    this.buffer = this.spare.pop() ?? Buffer.allocUnsafe(BUFFER_BYTES)
    this.used = 0
  }

  end(): Promise<void> {
    this.flush()
    return this.file.end()
  }
}

/** The open access log files, by path. */
export class AccessLogs {
  private readonly files = new Map<string, BufferedFile>()

  write(path: string, line: string): void {
    let file = this.files.get(path)
    if (file === undefined) {
      file = new BufferedFile(path)
      this.files.set(path, file)
    }
    file.write(line)
  }

  /** Flush and close every file; reopened on the next write (SIGUSR1, after rotation). */
  async close(): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map((f) => f.end()))
  }
}
