// The command line, shaped like nginx's: `-c FILE`, `-t`, `-s SIGNAL`, flags in any
// order; plus `backend` and `demo` for the tutorial's services.
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/model.js'
import { createLogger, type Logger } from '../log.js'
import { tuneHeapForProxy } from '../runtime/heap.js'
import { Primary, workerCount } from '../runtime/primary.js'
import { startSwitchyard } from '../runtime/switchyard.js'

export const DEFAULT_CONFIG = '/etc/switchyard/switchyard.conf'

const usage = `Usage: switchyard [-h] [-v] [-t] [-q] [-c FILE] [-s SIGNAL]
       switchyard backend --port N      the tutorial's demo service
       switchyard demo [options]         three services, the balancer, a distribution table

Options:
  -h, -?         this help
  -v, -V         show version and exit
  -t             test the configuration and exit
  -q             with -t, print errors only
  -c FILE        configuration file (default: ${DEFAULT_CONFIG})
  -s SIGNAL      send a signal to the running master: stop, quit, reopen, reload
  --admin [HOST:]PORT   admin listener: /metrics and /api/upstreams (HOST defaults to 127.0.0.1)
  --admin-token TOKEN   bearer token required for changes through the admin API
                        (or SWITCHYARD_ADMIN_TOKEN in the environment)
`

const signals: Record<string, NodeJS.Signals> = { stop: 'SIGTERM', quit: 'SIGQUIT', reopen: 'SIGUSR1', reload: 'SIGHUP' }

interface Flags {
  config: string
  admin: { host: string; port: number; token?: string } | null
  test: boolean
  quiet: boolean
  signal: string | null
  help: boolean
  version: boolean
}

/** Parse nginx-style flags (`-c FILE`, `-cFILE`, `-tq`, any order). */
export function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = { config: DEFAULT_CONFIG, admin: null, test: false, quiet: false, signal: null, help: false, version: false }
  let token = process.env.SWITCHYARD_ADMIN_TOKEN || undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--admin' || arg === '--admin-token') {
      const value = argv[++i]
      if (value === undefined) throw new Error(`option "${arg}" requires a value`)
      if (arg === '--admin') flags.admin = parseAdminAddress(value)
      else token = value
      continue
    }
    if (!arg.startsWith('-') || arg.length < 2 || arg.startsWith('--')) throw new Error(`invalid option: "${arg}"`)
    for (let j = 1; j < arg.length; j++) {
      const f = arg[j]!
      switch (f) {
        case 'h': case '?': flags.help = true; break
        case 'v': case 'V': flags.version = true; break
        case 't': flags.test = true; break
        case 'q': flags.quiet = true; break
        case 'c': case 's': {
          const value = arg.length > j + 1 ? arg.slice(j + 1) : argv[++i]
          if (value === undefined) throw new Error(`option "-${f}" requires ${f === 'c' ? 'file name' : 'signal name'}`)
          if (f === 'c') flags.config = value
          else {
            if (!(value in signals)) throw new Error(`invalid option: "-s ${value}"`)
            flags.signal = value
          }
          j = arg.length
          break
        }
        default: throw new Error(`invalid option: "${f}"`)
      }
    }
  }
  flags.config = resolve(flags.config)
  if (token !== undefined) {
    if (flags.admin === null) throw new Error('"--admin-token" needs "--admin"')
    flags.admin.token = token
  }
  return flags
}

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; the host defaults to loopback. */
export function parseAdminAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(text)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new Error(`invalid admin address "${text}" (expected [HOST:]PORT)`)
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port }
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

export async function main(argv: string[]): Promise<number> {
  const command = argv[0]
  if (command === 'backend') return (await import('../demo/backend.js')).backendCommand(argv.slice(1))
  if (command === 'demo') return (await import('../demo/demo.js')).demoCommand(argv.slice(1))

  let flags: Flags
  try {
    flags = parseFlags(argv)
  } catch (err) {
    process.stderr.write(`switchyard: ${(err as Error).message}\n\n${usage}`)
    return 1
  }
  if (flags.help) {
    process.stdout.write(usage)
    return 0
  }
  if (flags.version) {
    process.stdout.write(`switchyard version: switchyard/${await version()} (node ${process.version})\n`)
    return 0
  }
  if (flags.test) return testConfig(flags.config, flags.quiet)
  if (flags.signal !== null) return sendSignal(flags.config, flags.signal)
  return run(flags.config, flags.admin)
}

/** `-t`: nginx's wording, exit 0 or 1. */
async function testConfig(file: string, quiet: boolean): Promise<number> {
  try {
    await loadConfig(file)
  } catch (err) {
    process.stderr.write(`switchyard: [emerg] ${(err as Error).message}\nswitchyard: configuration file ${file} test failed\n`)
    return 1
  }
  if (!quiet) {
    process.stderr.write(`switchyard: the configuration file ${file} syntax is ok\nswitchyard: configuration file ${file} test is successful\n`)
  }
  return 0
}

/** `-s SIGNAL`: signal the process whose pid the config's `pid` file holds. */
async function sendSignal(file: string, name: string): Promise<number> {
  try {
    const config = await loadConfig(file)
    const pidFile = config.main.pid
    if (pidFile === null) throw new Error(`no "pid" directive in ${file}: add \`pid FILE;\` to signal the running switchyard`)
    let text: string
    try {
      text = await readFile(pidFile, 'utf8')
    } catch (err) {
      throw new Error(`open() "${pidFile}" failed (${(err as NodeJS.ErrnoException).code})`)
    }
    const pid = Number.parseInt(text.trim(), 10)
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`invalid PID number "${text.trim()}" in "${pidFile}"`)
    process.kill(pid, signals[name]!)
    return 0
  } catch (err) {
    process.stderr.write(`switchyard: [error] ${(err as Error).message}\n`)
    return 1
  }
}

/** Serve in the foreground until a signal says otherwise: in this process when
 *  worker_processes is 1 (nginx's default), else as the primary of that many workers. */
async function run(file: string, adminFlag: Flags['admin']): Promise<number> {
  const log = createLogger()
  const signals = listenForSignals(log)
  let config
  try {
    config = await loadConfig(file)
  } catch (err) {
    log.log('emerg', (err as Error).message)
    return 1
  }
  log.configure(config.main.errorLog.path, config.main.errorLog.level)
  // `--admin` wins over the config's `admin_listen`, which is followed across reloads.
  const admin = adminFlag ?? null
  if (workerCount(config) > 1) return runPrimary(file, config, admin, log, signals)

  tuneHeapForProxy()
  let sy
  try {
    sy = await startSwitchyard({ configFile: file, logger: log, ...(admin ? { admin } : {}) })
  } catch (err) {
    log.log('emerg', (err as Error).message)
    return 1
  }
  const instance = sy
  return signals.serve({
    reload: () => void instance.reload(),
    quit: () => instance.quit(),
    stop: () => instance.stop(),
    reopen: () => {
      const current = instance.config.main.errorLog
      log.configure(current.path, current.level)
      void instance.reopenLogs()
    },
  })
}

async function runPrimary(file: string, config: Config, admin: Flags['admin'], log: Logger, signals: ReturnType<typeof listenForSignals>): Promise<number> {
  const primary = new Primary(file, config, log)
  try {
    await primary.start(admin)
  } catch (err) {
    log.log('emerg', (err as Error).message)
    await primary.stop()
    return 1
  }
  return signals.serve({
    reload: () => void primary.reload(),
    quit: () => primary.quit(),
    stop: () => primary.stop(),
    reopen: () => primary.reopenLogs(),
  })
}

/** What the signals do once switchyard is serving. */
interface SignalActions { reload(): void; quit(): Promise<void>; stop(): Promise<void>; reopen(): void }

/** nginx's signals: HUP reload, QUIT graceful, TERM/INT fast, USR1 reopen logs. The
 *  handlers are installed before switchyard starts (a signal that came between "started"
 *  in the log and the handlers would otherwise kill the process outright); a signal that
 *  arrives while starting is acted on once serving begins. */
function listenForSignals(log: Logger): { serve(on: SignalActions): Promise<number> } {
  let on: SignalActions | null = null
  const early: Array<(on: SignalActions) => void> = []
  const act = (f: (on: SignalActions) => void): void => (on === null ? void early.push(f) : f(on))
  let resolveExit: (code: number) => void = () => undefined
  const exited = new Promise<number>((resolve) => (resolveExit = resolve))
  let ending: 'quit' | 'stop' | null = null
  const end = (how: 'quit' | 'stop') => (actions: SignalActions): void => {
    // A second signal while quitting turns a graceful shutdown into a fast one.
    if (ending === 'stop' || (ending === 'quit' && how === 'quit')) return
    ending = how
    void (how === 'quit' ? actions.quit() : actions.stop()).then(async () => {
      await log.close()
      resolveExit(0)
    })
  }
  process.on('SIGHUP', () => {
    log.notice('signal SIGHUP received, reconfiguring')
    act((a) => a.reload())
  })
  process.on('SIGQUIT', () => act(end('quit')))
  process.on('SIGTERM', () => act(end('stop')))
  process.on('SIGINT', () => act(end('stop')))
  process.on('SIGUSR1', () => {
    log.notice('signal SIGUSR1 received, reopening logs')
    act((a) => a.reopen())
  })
  return {
    serve(actions) {
      on = actions
      for (const f of early.splice(0)) f(actions)
      return exited
    },
  }
}
