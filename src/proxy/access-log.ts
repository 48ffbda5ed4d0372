// `access_log PATH [FORMAT]`: one line per request through a buffered stream per file
// (shared by every location that names it); the line is formatted by a compiled
// `log_format` (config/log-format.ts).
import { createWriteStream, type WriteStream } from 'node:fs'
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

class BufferedFile {
  private readonly stream: WriteStream
  /** Lines are copied in as bytes at once, so the strings die young (a list of pending
   *  strings would outlive garbage collections and be promoted, costing more GC). */
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES)
  private used = 0
  private timer: NodeJS.Timeout | null = null

  constructor(path: string) {
    this.stream = createWriteStream(path, { flags: 'a' })
    this.stream.on('error', (err) => process.stderr.write(`switchyard: access log ${path}: ${err.message}\n`))
  }

  write(line: string): void {
    // Worst case 3 bytes per UTF-16 unit; a line that could not fit even alone is written as it is.
    if (this.used + line.length * 3 > BUFFER_BYTES) {
      this.flush()
      if (line.length * 3 > BUFFER_BYTES) {
        this.stream.write(line)
        return
      }
    }
    this.used += this.buffer.write(line, this.used)
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS)
      this.timer.unref()
    }
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.used === 0) return
    // The stream keeps the filled buffer until it is written; the next lines go to a new one.
    this.stream.write(this.buffer.subarray(0, this.used))
    this.buffer = Buffer.allocUnsafe(BUFFER_BYTES)
    this.used = 0
  }

  end(): Promise<void> {
    this.flush()
    return new Promise((resolve) => this.stream.end(resolve))
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
