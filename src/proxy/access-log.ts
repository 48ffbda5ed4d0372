// `access_log PATH [combined]`: one line per request in nginx's combined format, written
// through a buffered stream per file (shared by every location that names it).
import { createWriteStream, type WriteStream } from 'node:fs'
import type { IncomingMessage } from 'node:http'

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number): string => (n < 10 ? `0${n}` : String(n))

/** nginx's `$time_local`: `26/Nov/2026:10:00:00 +0000`. */
export function timeLocal(d: Date): string {
  const offset = -d.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  return `${pad(d.getDate())}/${months[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
}

/** nginx escapes `"`, `\` and bytes outside printable ASCII as \xHH in log variables. */
function escape(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/["\\\x00-\x1f\x7f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0)
    return code > 0xff ? encodeURIComponent(c).replaceAll('%', '\\x') : `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
  })
}

const header = (req: IncomingMessage, name: string): string => {
  const v = req.headers[name]
  return v === undefined ? '-' : escape(Array.isArray(v) ? v.join(', ') : v)
}

/** One combined-format line. */
export function combinedLine(req: IncomingMessage, remoteAddr: string, status: number, bodyBytes: number, at: Date): string {
  const request = escape(`${req.method} ${req.url} HTTP/${req.httpVersion}`)
  return `${remoteAddr} - - [${timeLocal(at)}] "${request}" ${status} ${bodyBytes} "${header(req, 'referer')}" "${header(req, 'user-agent')}"\n`
}

/** The open access log files, by path. */
export class AccessLogs {
  private readonly files = new Map<string, WriteStream>()

  write(path: string, line: string): void {
    let file = this.files.get(path)
    if (file === undefined) {
      file = createWriteStream(path, { flags: 'a' })
      file.on('error', (err) => process.stderr.write(`switchyard: access log ${path}: ${err.message}\n`))
      this.files.set(path, file)
    }
    file.write(line)
  }

  /** Close every file (flushing what is buffered); reopened on the next write (SIGUSR1). */
  async close(): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map((f) => new Promise<void>((resolve) => f.end(resolve))))
  }
}
