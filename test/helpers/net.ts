// Real sockets on loopback for integration tests: free ports, scriptable upstream
// servers, a blackholed listener, and a small HTTP client that reports what it got.
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, connect, type Socket } from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = []
  while (out.length < n) {
    const p = await freePort()
    if (!out.includes(p)) out.push(p)
  }
  return out
}

/** What a test upstream saw of one request. */
export interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  bodySha256: string
  bodyLength: number
}

export type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void

/** An upstream that records each request and, by default, answers 200 with JSON
 *  `{port, method, url}` and header `x-port`. */
export class TestUpstream {
  readonly seen: Seen[] = []
  server: Server
  port = 0
  handler: Handler | null = null

  constructor() {
    this.server = createHttpServer((req, res) => {
      const hash = createHash('sha256')
      let length = 0
      req.on('data', (c: Buffer) => {
        hash.update(c)
        length += c.length
      })
      req.on('end', () => {
        const seen: Seen = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodySha256: hash.digest('hex'), bodyLength: length }
        this.seen.push(seen)
        if (this.handler) return this.handler(req, res, seen)
        const body = JSON.stringify({ port: this.port, method: req.method, url: req.url, bodySha256: seen.bodySha256, bodyLength: length })
        res.writeHead(200, { 'content-type': 'application/json', 'x-port': String(this.port), 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
    })
    this.server.keepAliveTimeout = 65_000
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => resolve())
    })
    this.port = (this.server.address() as { port: number }).port
    return this
  }

  /** Stop listening and drop every open connection (a dead service). */
  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

export async function upstreams(n: number): Promise<TestUpstream[]> {
  return Promise.all(Array.from({ length: n }, () => new TestUpstream().listen()))
}

/** A listener with backlog 1 that never accepts; its queue is filled so that further
 *  connects hang (the kernel drops their SYNs), as with a blackholed host. Node's own
 *  listeners always accept, so a tiny python3 process holds the socket. */
export class Blackhole {
  port = 0
  private child: ChildProcess | null = null
  private fillers: Socket[] = []

  async listen(): Promise<this> {
    const script = 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(1)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(300)\n'
    const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    this.child = child
    this.port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
      child.once('error', reject)
    })
    // Fill the accept queue; once full, new connects get no SYN-ACK.
    for (let i = 0; i < 4; i++) {
      const s = connect({ port: this.port, host: '127.0.0.1' })
      s.on('error', () => undefined)
      this.fillers.push(s)
    }
    await new Promise((r) => setTimeout(r, 200))
    return this
  }

  async close(): Promise<void> {
    for (const s of this.fillers) s.destroy()
    this.child?.kill('SIGKILL')
  }
}

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  ms: number
}

export interface RequestOptions {
  method?: string
  path?: string
  headers?: Record<string, string | string[]>
  body?: Buffer | string | AsyncIterable<Buffer> | null
  /** Reuse connections (default: a fresh one per request). */
  agent?: import('node:http').Agent | false
  localAddress?: string
  /** Fail the request if no complete answer came within this many ms (load loops use it
   *  so that a hung request is counted, never waited on forever). */
  timeout?: number
}

/** One HTTP request to 127.0.0.1:port; resolves with what came back. Rejects on a
 *  socket error (which a test counts as a failed request). */
export function send(port: number, options: RequestOptions = {}): Promise<Reply> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/',
      headers: options.headers, agent: options.agent ?? false, localAddress: options.localAddress,
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (options.timeout !== undefined) {
      req.setTimeout(options.timeout, () => req.destroy(new Error(`no answer within ${options.timeout} ms`)))
    }
    const body = options.body
    if (body === undefined || body === null) req.end()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else void (async () => {
      for await (const chunk of body) req.write(chunk)
      req.end()
    })()
  })
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
