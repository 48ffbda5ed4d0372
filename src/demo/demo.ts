// `switchyard demo` (`npm start`): the tutorial end to end on one machine. Three services,
// the tutorial's nginx.conf, requests counted per port, then one service dies and every
// request still succeeds.
import { Agent, request } from 'node:http'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, styleText } from 'node:util'
import type { Config } from '../config/model.js'
import { AdminListenError } from '../admin/server.js'
import { parseAdminAddress } from '../cli/main.js'
import { createLogger } from '../log.js'
import { startSwitchyard, type Switchyard } from '../runtime/switchyard.js'
import { createBackend, listenErrorMessage, parsePort, untilStopped, type Backend } from './backend.js'

/** The services' address; the tutorial's 192.168.14.93 became this in examples/. */
const backendHost = '127.0.0.1'
/** examples/tutorial.conf, from dist/src/demo/ up to the package root. */
const tutorialConfig = fileURLToPath(new URL('../../../examples/tutorial.conf', import.meta.url))
/** The tutorial's five balancing snippets, each in examples/policy-NAME.conf. */
export const demoPolicies = ['round-robin', 'weight', 'ip-hash', 'fair', 'url-hash'] as const
export type DemoPolicy = (typeof demoPolicies)[number]
const policyConfig = (policy: DemoPolicy): string =>
  fileURLToPath(new URL(`../../../examples/policy-${policy}.conf`, import.meta.url))
/** Client addresses for the ip_hash run: ip_hash keys on the first three octets, so they
 *  differ in the third (all of 127/8 is loopback on Linux). */
const clientAddresses = Array.from({ length: 8 }, (_, i) => `127.0.${i}.1`)
/** URIs for the url_hash run: `$request_uri` includes the query, and the services answer
 *  only `/` (and `/start1`), as the tutorial's Flask app does. */
const hashUris = Array.from({ length: 8 }, (_, i) => `/?item=${i + 1}`)
/** The ports and `listen` written in examples/tutorial.conf. */
const configPorts = [4000, 4001, 4002] as const
const configListen = 8080
/** The dashboard's address while the demo serves. */
const defaultAdmin = { host: '127.0.0.1', port: 9090 }
/** Per request; the failover being shown costs milliseconds, so this only stops a hang. */
const requestTimeout = 10_000

export interface DemoOptions {
  /** The three services' ports, in the config's order; default 4000, 4001, 4002. */
  readonly ports: readonly number[]
  /** The balancer's `listen` port; default 8080. */
  readonly listen: number
  /** Requests before and again after the kill; default 10. */
  readonly requests: number
  /** The service to stop; default the second one (4001, weight 5). */
  readonly kill: number
  /** A config to use as it is instead of examples/tutorial.conf; its upstream should name
   *  the `ports`, which is what the demo starts. */
  readonly config?: string
  /** Run examples/policy-NAME.conf and show how that method spreads requests (ip_hash by
   *  client address, url_hash by URI) instead of the tutorial's failover. */
  readonly policy?: DemoPolicy
  /** Exit after the tables instead of serving until Ctrl-C. */
  readonly once: boolean
  /** The admin listener, for the dashboard; none when null. */
  readonly admin?: { readonly host: string; readonly port: number } | null
  /** Services print a line per request; the balancer logs at `info`. */
  readonly verbose: boolean
  /** Where the report goes; default stdout. */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean }
  /** Ends the serving phase when aborted; SIGINT and SIGTERM always do. */
  readonly signal?: AbortSignal
}

/** What one request through the balancer came back with. */
interface Outcome {
  /** The port named in the answer (the service that served it). */
  readonly port?: number
  /** Why it failed: an HTTP status other than 200, or the client error. */
  readonly error?: string
  readonly ms: number
}

/**
 * Runs the demo. Returns 0 when every request succeeded (or on Ctrl-C while serving),
 * 1 when a port was taken, the balancer would not start or a request failed.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const color = out.isTTY === true && process.env.NO_COLOR === undefined
  const paint = (format: Parameters<typeof styleText>[0], text: string): string =>
    color ? styleText(format, text) : text
  const say = (line = ''): void => void out.write(`${line}\n`)
  const fail = (message: string): number => {
    process.stderr.write(`switchyard demo: ${message}\n`)
    return 1
  }

  const backends = new Map<number, Backend>()
  let tempDir: string | null = null
  let balancer: Switchyard | null = null
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (const port of options.ports) {
      try {
        const log = options.verbose ? (line: string) => say(`  ${line}`) : undefined
        backends.set(port, await createBackend({ host: backendHost, port, log }))
      } catch (err) {
        return fail(`cannot start the service on port ${port}: ${listenErrorMessage(err, backendHost, port)}`)
      }
    }

    const template = options.policy === undefined ? tutorialConfig : policyConfig(options.policy)
    let configFile = options.config ?? template
    if (options.config === undefined && !usesTutorialPorts(options)) {
      tempDir = await mkdtemp(join(tmpdir(), 'switchyard-demo-'))
      configFile = join(tempDir, basename(template))
      await writeFile(configFile, withPorts(await readFile(template, 'utf8'), options))
    }
    try {
      const admin = options.admin ?? undefined
      balancer = await startSwitchyard({ configFile, logger: createLogger('stderr', options.verbose ? 'info' : 'warn'), admin })
    } catch (err) {
      if (err instanceof AdminListenError) {
        const where = `${options.admin?.host}:${options.admin?.port}`
        const why = err.code === 'EADDRINUSE' ? `${where} is already in use` : err.message
        return fail(`cannot start the dashboard (admin listener): ${why}; choose another address with --admin HOST:PORT`)
      }
      const port = options.config === undefined ? options.listen : undefined
      const taken = (err as NodeJS.ErrnoException | null)?.code === 'EADDRINUSE' && port !== undefined
      const why = taken ? `port ${port} is already in use` : err instanceof Error ? err.message : String(err)
      return fail(`cannot start the balancer with ${configFile}: ${why}`)
    }
    const url = balancerUrl(balancer.addresses())
    const weights = weightsByPort(balancer.config, options.ports)

    say(paint('bold', `Three services on ${backendHost} ports ${options.ports.join(', ')}; switchyard on ${url}`))
    say(`config: ${configFile}`)
    const admin = balancer.adminAddress()
    if (admin !== null) say(`dashboard: ${paint('bold', `http://${admin.host.includes(':') ? `[${admin.host}]` : admin.host}:${admin.port}/`)} (live; keep it open and send traffic)`)
    say()
    if (options.policy !== undefined) {
      const ok = await showPolicy(options.policy, url, options, weights, say, paint)
      if (options.once) return ok ? 0 : 1
      say(`switchyard is serving ${url}. Ctrl-C to stop.`)
      await untilStopped(options.signal)
      return 0
    }
    say(paint('bold', `${options.requests} requests to ${url}`))
    const before = await send(url, options.requests, agent)
    for (const line of table(before, options.ports, weights, new Set())) say(`  ${line}`)
    say(`  ${summary(before, paint)}`)
    say()

    const victim = backends.get(options.kill)
    const weight = weights.get(options.kill)
    say(paint('bold', `Stopping the service on port ${options.kill}${weight === undefined ? '' : ` (weight ${weight})`}: listener and open connections closed`))
    await victim?.close()
    say(paint('bold', `${options.requests} more requests to ${url}`))
    const after = await send(url, options.requests, agent)
    const first = after[0]
    if (first !== undefined) {
      const served = first.port === undefined ? `failed: ${first.error ?? 'unknown'}` : `served by ${first.port}`
      say(`  first request after the stop took ${first.ms.toFixed(1)} ms (${served})`)
    }
    for (const line of table(after, options.ports, weights, new Set([options.kill]))) say(`  ${line}`)
    say(`  ${summary(after, paint)}`)
    say()

    const failed = [...before, ...after].some((o) => o.error !== undefined)
    if (options.once) return failed ? 1 : 0

    say(`switchyard is serving ${url} (the service on ${options.kill} stays stopped). Ctrl-C to stop.`)
    if (admin !== null) say(`Send it traffic and watch the dashboard; \`switchyard backend --port ${options.kill}\` in another terminal brings the service back.`)
    await untilStopped(options.signal)
    return 0
  } finally {
    agent.destroy()
    // Each step runs even if an earlier one fails: a service left listening would keep
    // the process alive.
    await Promise.allSettled([balancer?.stop()])
    await Promise.allSettled([...backends.values()].map((b) => b.close()))
    if (tempDir !== null) await rm(tempDir, { recursive: true, force: true })
  }
}

/**
 * One balancing method's distribution, over the services its config names: ip_hash with
 * two requests from each of several client addresses, url_hash with two requests for each
 * of several URIs (each key must land on one port both times), the others with
 * `requests` plain requests counted per port. True when every request succeeded.
 */
async function showPolicy(
  policy: DemoPolicy,
  url: string,
  options: DemoOptions,
  weights: ReadonlyMap<number, number>,
  say: (line?: string) => void,
  paint: (format: 'bold' | 'green' | 'red', text: string) => string,
): Promise<boolean> {
  // Only the services the snippet names (the tutorial's snippets have two servers).
  const ports = options.ports.filter((port) => weights.has(port))
  const keyed = policy === 'ip-hash'
    ? { what: 'client', keys: clientAddresses, request: (key: string) => ({ localAddress: key }) }
    : policy === 'url-hash'
      ? { what: 'URI', keys: hashUris, request: (key: string) => ({ path: key }) }
      : null
  const outcomes: Outcome[] = []
  if (keyed === null) {
    say(paint('bold', `${options.requests} requests to ${url}`))
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      outcomes.push(...(await send(url, options.requests, agent)))
    } finally {
      agent.destroy()
    }
  } else {
    say(paint('bold', `2 requests for each of ${keyed.keys.length} ${keyed.what}s to ${url}`))
    const rows = [[keyed.what, 'served by']]
    for (const key of keyed.keys) {
      const both = [await get(url, false, keyed.request(key)), await get(url, false, keyed.request(key))]
      outcomes.push(...both)
      rows.push([key, both.map((o) => (o.port === undefined ? `failed: ${o.error ?? '?'}` : String(o.port))).join(' ')])
    }
    const width = Math.max(...rows.map((row) => displayWidth(row[0]!)))
    for (const row of rows) say(`  ${padEnd(row[0]!, width)}   ${row[1]}`)
    say()
  }
  for (const line of table(outcomes, ports, weights, new Set(), keyed !== null)) say(`  ${line}`)
  say(`  ${summary(outcomes, paint)}`)
  say()
  return outcomes.every((o) => o.error === undefined)
}

function usesTutorialPorts(options: DemoOptions): boolean {
  return options.listen === configListen && options.ports.every((port, i) => port === configPorts[i])
}

/** The tutorial config with the services' ports and `listen` replaced; the text keeps its
 *  shape, so what runs is still recognisably the tutorial's file. */
export function withPorts(text: string, options: Pick<DemoOptions, 'ports' | 'listen'>): string {
  const byPort = new Map<string, string>(configPorts.map((port, i) => [String(port), String(options.ports[i])]))
  return text
    .replace(/(\bserver\s+127\.0\.0\.1:)(\d+)/g, (whole, prefix: string, port: string) =>
      byPort.has(port) ? `${prefix}${byPort.get(port)}` : whole,
    )
    .replace(new RegExp(`\\blisten\\s+${configListen};`), `listen ${options.listen};`)
}

/** The configured weight of each service, looked up by port across the upstreams. */
function weightsByPort(config: Config, ports: readonly number[]): Map<number, number> {
  const weights = new Map<number, number>()
  for (const upstream of config.http.upstreams.values()) {
    for (const server of upstream.servers) {
      if (ports.includes(server.port) && !weights.has(server.port)) weights.set(server.port, server.weight)
    }
  }
  return weights
}

function balancerUrl(addresses: ReadonlyArray<{ host: string; port: number }>): string {
  const address = addresses[0]
  if (address === undefined) throw new Error('the balancer is not listening on any address')
  const wildcard = address.host === '0.0.0.0' || address.host === '::' || address.host === ''
  const host = wildcard ? '127.0.0.1' : address.host.includes(':') ? `[${address.host}]` : address.host
  return `http://${host}:${address.port}/`
}

/** `count` GET requests, one after another, each timed. */
async function send(url: string, count: number, agent: Agent): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  for (let i = 0; i < count; i++) outcomes.push(await get(url, agent))
  return outcomes
}

function get(url: string, agent: Agent | false, extra: { path?: string; localAddress?: string } = {}): Promise<Outcome> {
  const started = performance.now()
  const elapsed = (): number => performance.now() - started
  const target = extra.path === undefined ? url : new URL(extra.path, url).href
  return new Promise((resolve) => {
    const req = request(target, { agent, timeout: requestTimeout, localAddress: extra.localAddress }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (err) => resolve({ error: err.message, ms: elapsed() }))
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ error: `HTTP ${res.statusCode}`, ms: elapsed() })
        const port = servedBy(Buffer.concat(chunks).toString('utf8'), res.headers['x-served-by'])
        resolve(port === undefined ? { error: 'answer names no port', ms: elapsed() } : { port, ms: elapsed() })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer in ${requestTimeout / 1000} s`)))
    req.on('error', (err) => resolve({ error: err.message, ms: elapsed() }))
    req.end()
  })
}

/** The serving port from the JSON body's `port`, else from `X-Served-By`. */
function servedBy(body: string, header: string | string[] | undefined): number | undefined {
  try {
    const port = (JSON.parse(body) as { port?: unknown }).port
    if (typeof port === 'number') return port
  } catch {
    // Not the services' JSON; the header may still say.
  }
  const value = Number(Array.isArray(header) ? header[0] : header)
  return Number.isInteger(value) && value > 0 ? value : undefined
}

/**
 * The tutorial's 端口/次数 table plus each service's weight and its expected count: the
 * request count shared in proportion to the weights of the services still running (smooth
 * weighted round robin gives exactly that over a full cycle of the weights' sum).
 */
function table(
  outcomes: readonly Outcome[],
  ports: readonly number[],
  weights: ReadonlyMap<number, number>,
  stopped: ReadonlySet<number>,
  hashed = false,
): string[] {
  const counts = new Map<number, number>()
  for (const { port } of outcomes) if (port !== undefined) counts.set(port, (counts.get(port) ?? 0) + 1)
  const live = ports.filter((p) => !stopped.has(p))
  const liveWeight = live.reduce((sum, p) => sum + (weights.get(p) ?? 0), 0)

  // A hash follows the weights only on average over many keys; a few keys may not.
  const rows = [['端口 port', '次数 count', 'weight', hashed ? 'on average' : 'expected']]
  for (const port of ports) {
    const weight = weights.get(port)
    let expected = '?'
    if (stopped.has(port)) expected = '0 (stopped)'
    else if (weight !== undefined && liveWeight > 0) {
      const share = weight / liveWeight
      expected = `${formatCount(outcomes.length * share)} (${Math.round(share * 100)}%)`
    }
    rows.push([String(port), String(counts.get(port) ?? 0), weight === undefined ? '?' : String(weight), expected])
  }
  // A port that is not one of the demo's services answered: show it rather than hide it.
  for (const [port, count] of counts) if (!ports.includes(port)) rows.push([String(port), String(count), '-', '-'])

  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => displayWidth(row[col]!))))
  return rows.map((row) =>
    row
      .map((cell, col) => (col === 0 || col === row.length - 1 ? padEnd(cell, widths[col]!) : padStart(cell, widths[col]!)))
      .join('   ')
      .trimEnd(),
  )
}

function summary(outcomes: readonly Outcome[], paint: (format: 'green' | 'red', text: string) => string): string {
  const failures = outcomes.filter((o) => o.error !== undefined)
  const ok = outcomes.length - failures.length
  if (failures.length === 0) return paint('green', `${ok}/${outcomes.length} succeeded, 0 failed`)
  const reasons = [...new Set(failures.map((o) => o.error))].join('; ')
  return paint('red', `${ok}/${outcomes.length} succeeded, ${failures.length} failed (${reasons})`)
}

function formatCount(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

/** Terminal columns: CJK ideographs and fullwidth forms take two. */
function displayWidth(text: string): number {
  let width = 0
  for (const ch of text) width += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1
  return width
}

const padEnd = (text: string, width: number): string => text + ' '.repeat(width - displayWidth(text))
const padStart = (text: string, width: number): string => ' '.repeat(width - displayWidth(text)) + text

const demoUsage = `Usage: switchyard demo [options]

The tutorial on one machine: starts its three services (weights 3/5/2), runs
examples/tutorial.conf, counts which port answers each request, then stops one
service and shows that every request still succeeds.

Options:
  --ports A,B,C   the three services' ports (default 4000,4001,4002); other ports
                  than the default are written into a temporary copy of the config
  --listen N      the balancer's port (default 8080)
  --requests N    requests before and after the stop (default 10; 5 gives the
                  tutorial's own table, 2/2/1)
  --kill PORT     the service to stop (default the second, 4001, weight 5)
  --config FILE   run this config as it is instead of examples/tutorial.conf
  --policy NAME   run the tutorial's snippet for one balancing method instead
                  (examples/policy-NAME.conf: round-robin, weight, ip-hash, fair,
                  url-hash) and show how it spreads requests: ip-hash from
                  several client addresses, url-hash over several URIs
  --admin HOST:PORT  the admin listener with the live dashboard (default
                  127.0.0.1:9090; none with --once unless given)
  --once          exit after the tables instead of serving until Ctrl-C (alias --exit)
  -v, --verbose   services print each request; the balancer logs at info
  -h, --help      show this help
`

/** Parses `switchyard demo` flags and runs the demo; returns the exit code. */
export async function demoCommand(argv: string[]): Promise<number> {
  const usageError = (message: string): number => {
    process.stderr.write(`switchyard demo: ${message}\n\n${demoUsage}`)
    return 2
  }
  let values
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ports: { type: 'string', default: configPorts.join(',') },
        listen: { type: 'string', default: String(configListen) },
        requests: { type: 'string', default: '10' },
        kill: { type: 'string' },
        config: { type: 'string' },
        policy: { type: 'string' },
        admin: { type: 'string' },
        once: { type: 'boolean', default: false },
        exit: { type: 'boolean', default: false },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (err) {
    return usageError((err as Error).message)
  }
  if (values.help) {
    process.stdout.write(demoUsage)
    return 0
  }

  const ports = values.ports.split(',').map((p) => parsePort(p.trim()))
  if (ports.length !== 3 || ports.some((p) => p === undefined) || new Set(ports).size !== 3) {
    return usageError(`--ports takes three different port numbers, like 4000,4001,4002; got "${values.ports}"`)
  }
  const listen = parsePort(values.listen)
  if (listen === undefined) return usageError(`--listen takes a port number (1-65535); got "${values.listen}"`)
  if (ports.includes(listen)) return usageError(`--listen ${listen} is also one of the services' --ports`)
  const requests = /^\d{1,6}$/.test(values.requests) ? Number(values.requests) : 0
  if (requests < 1) return usageError(`--requests takes a whole number from 1 to 999999; got "${values.requests}"`)
  const kill = values.kill === undefined ? ports[1] : parsePort(values.kill)
  if (kill === undefined || !ports.includes(kill)) {
    return usageError(`--kill takes one of the services' ports (${ports.join(', ')}); got "${values.kill}"`)
  }

  const policy = values.policy
  if (policy !== undefined && !(demoPolicies as readonly string[]).includes(policy)) {
    return usageError(`--policy takes one of ${demoPolicies.join(', ')}; got "${policy}"`)
  }
  if (policy !== undefined && values.config !== undefined) return usageError('--policy and --config cannot be used together')

  const once = values.once || values.exit
  let admin: { host: string; port: number } | null = null
  try {
    if (values.admin !== undefined) admin = parseAdminAddress(values.admin)
    else if (!once) admin = defaultAdmin
  } catch (err) {
    return usageError(`--admin: ${(err as Error).message}`)
  }

  return runDemo({
    ports: ports as number[],
    listen,
    requests,
    kill,
    config: values.config,
    policy: policy as DemoPolicy | undefined,
    once,
    admin,
    verbose: values.verbose,
  })
}
