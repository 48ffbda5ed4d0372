// The tutorial's Flask service (main1.py … main3.py) in Node: `/` and `/start1` answer
// `{"code":200,"msg":"测试"}` with flask_cors's headers, plus which port served, so the
// demo can count where the balancer sent each request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'

export interface BackendOptions {
  /** Address to bind; default 127.0.0.1 (the tutorial's `app.run` binds 0.0.0.0). */
  readonly host?: string
  /** Port to bind; 0 picks a free one (see `Backend.port`). */
  readonly port: number
  /** Receives one line per request (the tutorial's `print`); nothing is logged without it. */
  readonly log?: (line: string) => void
}

export interface Backend {
  readonly server: Server
  /** The bound port. */
  readonly port: number
  /** Stops listening and destroys every open connection at once, kept-alive ones
   *  included: to the balancer this service has died. */
  close(): Promise<void>
}

/** The tutorial's routes and what each one prints. */
const routes = new Map([
  ['/', '启动成功!'],
  ['/start1', '启动成功Start1!'],
])

/** The methods the tutorial's routes declare, plus what Flask adds on its own (HEAD with
 *  GET, OPTIONS), sorted as Flask lists them in `Allow`. Node's HTTP parser rejects the
 *  unregistered method CATCH with 400 before any handler runs, so CATCH is declared but
 *  can never arrive; a balancer built on Node's parser refuses it the same way. */
const routeMethods = ['CATCH', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']
const allow = routeMethods.join(', ')

/** Longer than the balancer's upstream `keepalive_timeout` (60 s), so the backend never
 *  closes a pooled connection just as the balancer reuses it. */
const keepAliveTimeout = 65_000

/** Starts one service; rejects with the listen error (e.g. EADDRINUSE) if it cannot bind. */
export async function createBackend(options: BackendOptions): Promise<Backend> {
  const host = options.host ?? '127.0.0.1'
  let port = options.port
  const server = createServer((req, res) => {
    // Always read the body to its end: a body left unread would stall a kept-alive
    // connection, and the answer comes after it as Flask's does.
    let bodyBytes = 0
    req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length))
    req.on('end', () => {
      const printed = respond(req, res, port)
      options.log?.(
        `[${port}] ${req.socket.remoteAddress ?? '-'} "${req.method} ${req.url} HTTP/${req.httpVersion}" ` +
          `${res.statusCode}${bodyBytes > 0 ? ` (${bodyBytes} bytes in)` : ''}${printed ? ` ${printed}` : ''}`,
      )
    })
  })
  server.keepAliveTimeout = keepAliveTimeout

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  if (address !== null && typeof address === 'object') port = address.port

  let closed: Promise<void> | null = null
  return {
    server,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closed
    },
  }
}

/** Writes the answer; returns what the tutorial's handler prints, if a handler ran. */
function respond(req: IncomingMessage, res: ServerResponse, port: number): string | undefined {
  res.setHeader('X-Served-By', String(port))
  setCorsHeaders(req, res)

  let path: string
  try {
    path = new URL(req.url ?? '/', 'http://backend').pathname
  } catch {
    path = ''
  }
  const printed = routes.get(path)
  const method = req.method ?? ''
  if (printed === undefined) {
    sendJson(res, 404, { code: 404, msg: 'Not Found', port })
    return undefined
  }
  if (!routeMethods.includes(method)) {
    res.setHeader('Allow', allow)
    sendJson(res, 405, { code: 405, msg: 'Method Not Allowed', port })
    return undefined
  }
  if (method === 'OPTIONS') {
    // Flask's automatic OPTIONS answer: 200, the route's methods, no body.
    res.setHeader('Allow', allow)
    res.setHeader('Content-Length', '0')
    res.writeHead(200).end()
    return undefined
  }
  sendJson(res, 200, { code: 200, msg: '测试', port })
  return printed
}

/** flask_cors with the tutorial's `CORS(app, resources=r'/*')`: every response, any origin.
 *  flask_cors echoes a request's Origin (its origin list is the regex `.*`, hence `Vary`)
 *  and sends `*` when there is none. A preflight is told the methods the route declares
 *  (flask_cors lists its own defaults, PATCH included, which this route would refuse) and
 *  gets the requested headers echoed back. */
function setCorsHeaders(req: IncomingMessage, res: ServerResponse): void {
  const origin = req.headers.origin
  if (origin !== undefined) {
    res.setHeader('Access-Control-Allow-Origin', origin)
    res.setHeader('Vary', 'Origin')
  } else {
    res.setHeader('Access-Control-Allow-Origin', '*')
  }
  if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
    res.setHeader('Access-Control-Allow-Methods', allow)
    const requested = req.headers['access-control-request-headers']
    if (requested !== undefined) res.setHeader('Access-Control-Allow-Headers', requested)
  }
}

/** Flask's `jsonify` with `JSON_AS_ASCII = False`: raw UTF-8, a trailing newline. */
function sendJson(res: ServerResponse, status: number, body: object): void {
  const bytes = Buffer.from(`${JSON.stringify(body)}\n`, 'utf8')
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length })
  res.end(bytes)
}

/** Resolves on the first SIGINT or SIGTERM (or when `signal` aborts), then removes its
 *  handlers, so Ctrl-C closes everything cleanly instead of killing the process. */
export function untilStopped(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done)
      process.off('SIGTERM', done)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    if (signal?.aborted) return resolve()
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** A message naming the address when `err` is a listen failure, else the error's text. */
export function listenErrorMessage(err: unknown, host: string, port: number): string {
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code === 'EADDRINUSE') return `port ${port} on ${host} is already in use`
  if (code === 'EACCES') return `no permission to listen on port ${port} on ${host}`
  if (code === 'EADDRNOTAVAIL') return `address ${host} is not available on this machine (port ${port})`
  return err instanceof Error ? err.message : String(err)
}

export interface RunBackendOptions {
  readonly host: string
  readonly port: number
  readonly verbose: boolean
  /** Stops the service when aborted; SIGINT and SIGTERM always do. */
  readonly signal?: AbortSignal
}

/** `switchyard backend`: one service in the foreground until Ctrl-C. Returns the exit code. */
export async function runBackend(options: RunBackendOptions): Promise<number> {
  let backend: Backend
  try {
    backend = await createBackend({
      host: options.host,
      port: options.port,
      log: options.verbose ? (line) => process.stdout.write(`${line}\n`) : undefined,
    })
  } catch (err) {
    process.stderr.write(`switchyard backend: ${listenErrorMessage(err, options.host, options.port)}\n`)
    return 1
  }
  const shown = options.host.includes(':') ? `[${options.host}]` : options.host
  process.stdout.write(`backend listening on http://${shown}:${backend.port}/ (Ctrl-C to stop)\n`)
  await untilStopped(options.signal)
  await backend.close()
  return 0
}

const backendUsage = `Usage: switchyard backend [--port N] [--host H] [--verbose]

Runs one of the tutorial's three Flask services (main1.py, main2.py, main3.py).
GET, POST, PUT and DELETE on / and /start1 answer {"code":200,"msg":"测试","port":N},
with CORS headers like flask_cors and the serving port in X-Served-By.
(The tutorial also lists the method CATCH, which Node's HTTP parser refuses with 400.)

Options:
  --port N      port to listen on (default 4000; 0 picks a free one)
  --host H      address to bind (default 127.0.0.1; the tutorial binds 0.0.0.0)
  --verbose     print one line per request, like the tutorial's print()
  -h, --help    show this help
`

/** Parses `switchyard backend` flags and runs the service; returns the exit code. */
export async function backendCommand(argv: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string', default: '4000' },
        host: { type: 'string', default: '127.0.0.1' },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (err) {
    process.stderr.write(`switchyard backend: ${(err as Error).message}\n\n${backendUsage}`)
    return 2
  }
  if (values.help) {
    process.stdout.write(backendUsage)
    return 0
  }
  const port = parsePort(values.port, { allowZero: true })
  if (port === undefined) {
    process.stderr.write(`switchyard backend: --port must be a port number (0-65535), got "${values.port}"\n`)
    return 2
  }
  return runBackend({ host: values.host, port, verbose: values.verbose })
}

/** A decimal port number, or undefined when `text` is not one. */
export function parsePort(text: string, { allowZero = false } = {}): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined
  const port = Number(text)
  return port <= 65535 && (allowZero || port > 0) ? port : undefined
}
