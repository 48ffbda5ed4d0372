// The error log, in nginx's line format (`2026/11/26 10:00:00 [warn] 123#0: message`),
// so the tools people already point at nginx logs keep working.
import { createWriteStream, type WriteStream } from 'node:fs'
import type { LogLevel } from './config/model.js'

const levels: Record<LogLevel, number> = { debug: 7, info: 6, notice: 5, warn: 4, error: 3, crit: 2, alert: 1, emerg: 0 }

export interface Logger {
  log(level: LogLevel, message: string): void
  error(message: string): void
  warn(message: string): void
  notice(message: string): void
  info(message: string): void
  /** Switch to another destination and threshold (error_log on reload, SIGUSR1 reopen). */
  configure(path: string, level: LogLevel): void
  close(): Promise<void>
}

const pad = (n: number): string => (n < 10 ? `0${n}` : String(n))

function timestamp(d: Date): string {
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** A logger writing to `path` ('stderr' or a file, appended) at `level` and above. */
export function createLogger(path = 'stderr', level: LogLevel = 'notice'): Logger {
  let threshold = levels[level]
  let file: WriteStream | null = null
  let target = path

  const open = (): void => {
    file = target === 'stderr' ? null : createWriteStream(target, { flags: 'a' })
    file?.on('error', (err) => process.stderr.write(`switchyard: error log ${target}: ${err.message}\n`))
  }
  const closeFile = (): Promise<void> =>
    new Promise((resolve) => {
      if (file === null) return resolve()
      const f = file
      file = null
      f.end(resolve)
    })
  open()

  const log = (lvl: LogLevel, message: string): void => {
    if (levels[lvl] > threshold) return
    const line = `${timestamp(new Date())} [${lvl}] ${process.pid}#0: ${message}\n`
    if (file) file.write(line)
    else process.stderr.write(line)
  }

  return {
    log,
    error: (m) => log('error', m),
    warn: (m) => log('warn', m),
    notice: (m) => log('notice', m),
    info: (m) => log('info', m),
    configure(newPath, newLevel) {
      threshold = levels[newLevel]
      if (newPath === target && file !== null) {
        // Reopen (SIGUSR1): a rotated file gets a fresh handle.
        void closeFile().then(open)
        return
      }
      target = newPath
      void closeFile().then(open)
    },
    close: closeFile,
  }
}
