// The dashboard's files, served by the admin listener itself (no CDN, works offline):
// `dist/dashboard/`, built by `npm run build` from src/admin/dashboard/ plus uPlot's
// files. Only files found there at start are served, read once and kept in memory.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** dist/dashboard/, from dist/src/admin/. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url))

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
}

/** The page may load only its own files and talk only to this listener. uPlot styles
 *  elements through the CSSOM, which `style-src 'self'` allows. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

interface Asset {
  readonly body: Buffer
  readonly type: string
  readonly etag: string
}

export class DashboardFiles {
  private readonly dir: string
  private loaded: Promise<Map<string, Asset>> | null = null

  constructor(dir = DASHBOARD_DIR) {
    this.dir = dir
  }

  /** Serve `path` (`/` is the page) if it is one of the dashboard's files; false if not. */
  async serve(path: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const files = await this.files()
    const name = path === '/' ? 'index.html' : path.slice(1)
    const asset = files.get(name)
    if (asset === undefined) {
      if (path !== '/') return false
      const text = 'The dashboard is not built: run `npm run build` (the JSON API is at /api/upstreams).\n'
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
      res.end(text)
      return true
    }
    const headers = {
      'content-type': asset.type,
      'cache-control': 'no-cache',
      etag: asset.etag,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...(asset.type.startsWith('text/html') ? { 'content-security-policy': CSP } : {}),
    }
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers)
      res.end()
      return true
    }
    res.writeHead(200, { ...headers, 'content-length': asset.body.length })
    res.end(req.method === 'HEAD' ? undefined : asset.body)
    return true
  }

  private files(): Promise<Map<string, Asset>> {
    this.loaded ??= load(this.dir)
    return this.loaded
  }
}

async function load(dir: string): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>()
  let entries: string[]
  try {
    entries = await readdir(dir, { recursive: true })
  } catch {
    return out
  }
  for (const entry of entries) {
    const type = types[extname(entry)]
    if (type === undefined) continue
    const body = await readFile(join(dir, entry)).catch(() => null)
    if (body === null) continue
    const name = relative(dir, join(dir, entry)).split(sep).join('/')
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return out
}
