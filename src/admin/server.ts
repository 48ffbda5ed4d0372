// The admin listener: `/metrics` (Prometheus), `/api/…` (JSON, NGINX Plus's shape),
// runtime changes by PATCH, and the dashboard (`/`, its files, and the live stream at
// `/api/stream`). Never on a traffic port; loopback unless told otherwise; requests that
// change state need the bearer token when one is configured. It reads everything through
// an AdminBackend: the process itself, or (with workers) the primary asking every worker.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { Logger } from '../log.js'
import { describeChange, PeerChange, type PeerView, type UpstreamView } from './api.js'
import type { ReloadCounts } from './live.js'
import { DashboardFiles } from './static.js'
import { LiveStream } from './stream.js'

export interface AdminOptions {
  readonly host: string
  readonly port: number
  /** Bearer token required for PATCH (and the dashboard's actions); none when undefined. */
  readonly token?: string
}

/** Where the admin listener gets its answers. */
export interface AdminBackend {
  /** Every explicit upstream by name. */
  upstreams(): Promise<Record<string, UpstreamView>>
  /** Apply a change to peer `id` of upstream `name`; null when there is no such peer. */
  patch(name: string, id: number, change: PeerChange): Promise<PeerView | null>
  /** Prometheus text. */
  metrics(): Promise<{ contentType: string; text: string }>
  /** Config reloads so far, by outcome (the dashboard's timeline shows them). */
  reloads(): Promise<ReloadCounts>
  readonly log: Logger
}

/** The admin listener could not bind its address (`code`: EADDRINUSE, EACCES, …). */
export class AdminListenError extends Error {
  readonly code: string | undefined
  constructor(options: AdminOptions, cause: NodeJS.ErrnoException) {
    super(`bind() to ${options.host}:${options.port} failed (${cause.code ?? cause.message}) for the admin listener`)
    this.code = cause.code
  }
}

/** What one admin listener serves besides the backend's answers. */
interface Admin {
  readonly backend: AdminBackend
  readonly options: AdminOptions
  readonly stream: LiveStream
  readonly files: DashboardFiles
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

function problem(res: ServerResponse, status: number, code: string, text: string): void {
  json(res, status, { error: { status, code, text } })
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new Error('body too large')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true
  const given = Buffer.from(req.headers.authorization ?? '')
  const wanted = Buffer.from(`Bearer ${token}`)
  return given.length === wanted.length && timingSafeEqual(given, wanted)
}

export async function startAdmin(backend: AdminBackend, options: AdminOptions): Promise<Server> {
  const admin: Admin = { backend, options, stream: new LiveStream(backend, options.token !== undefined), files: new DashboardFiles() }
  const server = createServer((req, res) => {
    handle(admin, req, res).catch((err: Error) => {
      backend.log.error(`admin: ${err.message}`)
      if (!res.headersSent) problem(res, 500, 'Internal', err.message)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new AdminListenError(options, err)))
    server.listen(options.port, options.host, () => resolve())
  })
  server.once('close', () => admin.stream.close())
  return server
}

async function handle(admin: Admin, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { backend, options } = admin
  const url = new URL(req.url ?? '/', 'http://admin')
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  const method = req.method ?? 'GET'

  if (url.pathname === '/' || parts[0] === 'assets') {
    if (method !== 'GET' && method !== 'HEAD') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    if (await admin.files.serve(url.pathname, req, res)) return
    return problem(res, 404, 'NotFound', `no such file: ${url.pathname}`)
  }
  if (parts.length === 2 && parts[0] === 'api' && parts[1] === 'stream') {
    if (method !== 'GET') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    return admin.stream.attach(req, res)
  }

  if (parts.length === 1 && parts[0] === 'metrics') {
    if (method !== 'GET' && method !== 'HEAD') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    const { contentType, text } = await backend.metrics()
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
    res.end(method === 'HEAD' ? undefined : text)
    return
  }
  if (parts[0] !== 'api' || parts[1] !== 'upstreams' || parts.length > 5) return problem(res, 404, 'NotFound', `no such endpoint: ${url.pathname}`)
  const writing = parts.length === 5 && method === 'PATCH'
  if (method !== 'GET' && !writing) return problem(res, 405, 'MethodNotAllowed', parts.length === 5 ? 'use GET or PATCH' : 'use GET')

  const upstreams = await backend.upstreams()
  if (parts.length === 2) return json(res, 200, upstreams)
  const upstream = Object.hasOwn(upstreams, parts[2]!) ? upstreams[parts[2]!] : undefined
  if (upstream === undefined) return problem(res, 404, 'UpstreamNotFound', `upstream "${parts[2]}" not found`)
  if (parts.length === 3) return json(res, 200, upstream)
  if (parts[3] !== 'servers') return problem(res, 404, 'NotFound', `no such endpoint: ${url.pathname}`)
  if (parts.length === 4) return json(res, 200, upstream.peers)
  const id = Number(parts[4])
  const peer = Number.isInteger(id) ? upstream.peers.find((p) => p.id === id) : undefined
  if (peer === undefined) return problem(res, 404, 'ServerNotFound', `server "${parts[4]}" not found in upstream "${upstream.name}"`)
  if (!writing) return json(res, 200, peer)

  if (!authorized(req, options.token)) {
    res.setHeader('www-authenticate', 'Bearer')
    return problem(res, 401, 'Unauthorized', 'this admin listener needs "Authorization: Bearer TOKEN" for changes')
  }
  let body: unknown
  try {
    body = JSON.parse(await readBody(req))
  } catch (err) {
    return problem(res, 400, 'BadJSON', `the body is not JSON: ${(err as Error).message}`)
  }
  const parsed = PeerChange.safeParse(body)
  if (!parsed.success) return problem(res, 400, 'BadChange', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '))
  const changed = await backend.patch(upstream.name, id, parsed.data)
  if (changed === null) return problem(res, 404, 'ServerNotFound', `server "${id}" not found in upstream "${upstream.name}"`)
  backend.log.notice(`api: upstream "${upstream.name}" server ${changed.server} (id ${id}): ${describeChange(parsed.data)}`)
  return json(res, 200, changed)
}
