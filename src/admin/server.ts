// The admin listener: `/metrics` (Prometheus), `/api/…` (JSON, NGINX Plus's shape) and
// runtime changes by PATCH. Never on a traffic port; loopback unless told otherwise;
// requests that change state need the bearer token when one is configured.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { Logger } from '../log.js'
import type { Peer } from '../upstream/peer.js'
import type { Upstream } from '../upstream/upstream.js'
import { applyChange, describeChange, PeerChange, peerView, upstreamView } from './api.js'
import type { Metrics } from './metrics.js'

export interface AdminOptions {
  readonly host: string
  readonly port: number
  /** Bearer token required for PATCH (and the dashboard's actions); none when undefined. */
  readonly token?: string
}

/** What the admin listener reads and changes. */
export interface AdminSource {
  upstreams(): ReadonlyMap<string, Upstream>
  now(): number
  readonly metrics: Metrics
  readonly log: Logger
  /** Remember a peer's API-set state so it survives a reload of an unchanged upstream. */
  remember(upstream: Upstream, peer: Peer): void
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

export async function startAdmin(source: AdminSource, options: AdminOptions): Promise<Server> {
  const server = createServer((req, res) => {
    handle(source, options, req, res).catch((err: Error) => {
      source.log.error(`admin: ${err.message}`)
      if (!res.headersSent) problem(res, 500, 'Internal', err.message)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`bind() to ${options.host}:${options.port} failed (${err.code ?? err.message}) for the admin listener`)))
    server.listen(options.port, options.host, () => resolve())
  })
  return server
}

async function handle(source: AdminSource, options: AdminOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin')
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  const method = req.method ?? 'GET'

  if (parts.length === 1 && parts[0] === 'metrics') {
    if (method !== 'GET' && method !== 'HEAD') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    const text = await source.metrics.registry.metrics()
    res.writeHead(200, { 'content-type': source.metrics.registry.contentType, 'cache-control': 'no-store' })
    res.end(method === 'HEAD' ? undefined : text)
    return
  }
  if (parts[0] !== 'api' || parts[1] !== 'upstreams') return problem(res, 404, 'NotFound', `no such endpoint: ${url.pathname}`)

  const now = source.now()
  const upstreams = source.upstreams()
  if (parts.length === 2) {
    if (method !== 'GET') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    return json(res, 200, Object.fromEntries([...upstreams].filter(([, u]) => !u.config.implicit).map(([name, u]) => [name, upstreamView(u, now)])))
  }
  const upstream = upstreams.get(parts[2]!)
  if (upstream === undefined || upstream.config.implicit) return problem(res, 404, 'UpstreamNotFound', `upstream "${parts[2]}" not found`)
  if (parts.length === 3) {
    if (method !== 'GET') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    return json(res, 200, upstreamView(upstream, now))
  }
  if (parts[3] !== 'servers') return problem(res, 404, 'NotFound', `no such endpoint: ${url.pathname}`)
  if (parts.length === 4) {
    if (method !== 'GET') return problem(res, 405, 'MethodNotAllowed', 'use GET')
    return json(res, 200, upstream.peers.map((p) => peerView(p, now)))
  }
  const id = Number(parts[4])
  const peer = Number.isInteger(id) ? upstream.peers[id] : undefined
  if (peer === undefined || parts.length > 5) return problem(res, 404, 'ServerNotFound', `server "${parts[4]}" not found in upstream "${upstream.name}"`)
  if (method === 'GET') return json(res, 200, peerView(peer, now))
  if (method !== 'PATCH') return problem(res, 405, 'MethodNotAllowed', 'use GET or PATCH')
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
  applyChange(peer, parsed.data)
  source.remember(upstream, peer)
  source.log.notice(`api: upstream "${upstream.name}" server ${peer.name} (id ${peer.id}): ${describeChange(parsed.data)}`)
  return json(res, 200, peerView(peer, source.now()))
}
