// `return` under Debian's nginx and switchyard on the same config: the same requests must
// get the same status, the same Location, the same Content-Type, and for text answers the
// same body (error pages differ only in their footer, nginx's version vs `switchyard`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send } from '../helpers/net.js'
import { underBoth } from '../helpers/nginx.js'

const config = (listen: number): string => `events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 127.0.0.1:${listen};
    location / { return 200 "root $uri\\n"; }
    location /vars { return 200 "$scheme|$host|$request_uri|$uri|$args|$arg_a|$request_method|$server_port\\n"; }
    location /empty { return 200; }
    location /nothing { return 204; }
    location /notmod { return 304; }
    location /file.html { return 200 "html"; }
    location /text403 { return 403 "no\\n"; }
    location /p301 { return 301 /new$request_uri; }
    location /p302 { return 302 /x?$args; }
    location /p303 { return 303 other; }
    location /p307 { return 307 http://example.com:8080/a; }
    location /p308 { return 308 https://$host/b; }
    location /url { return http://example.org/y; }
    location /scheme { return $scheme://$host$uri; }
    location /e404 { return 404; }
    location /e410 { return 410; }
    location /e450 { return 450; }
    location /e502 { return 502; }
    location /close { return 444; }
    location /denied { deny all; return 200 "rewrite before access\\n"; }
  }
  server {
    listen 127.0.0.1:${listen};
    server_name redirect.test;
    return 301 https://$host$request_uri;
    location / { return 200 "never\\n"; }
  }
}
`

const requests: Array<{ path: string; host?: string; method?: string }> = [
  { path: '/' },
  { path: '/vars?a=1&b=2', host: 'Mixed.Case.test:8080' },
  { path: '/vars/%41/../b', method: 'POST' },
  { path: '/empty' },
  { path: '/nothing' },
  { path: '/notmod' },
  { path: '/file.html' },
  { path: '/text403' },
  { path: '/p301?q=1', host: 'shop.test' },
  { path: '/p302?a=b', host: 'shop.test:81' },
  { path: '/p303' },
  { path: '/p307' },
  { path: '/p308', host: 'h.test' },
  { path: '/url' },
  { path: '/scheme/x', host: 's.test' },
  { path: '/e404' },
  { path: '/e410' },
  { path: '/e450' },
  { path: '/e502' },
  { path: '/close' },
  { path: '/denied' },
  { path: '/anything?x=y', host: 'redirect.test' },
  { path: '/vars', method: 'HEAD' },
]

interface Seen {
  status: number | 'closed'
  location?: string
  contentType?: string
  body?: string
}

async function play(port: number): Promise<Seen[]> {
  const out: Seen[] = []
  for (const r of requests) {
    try {
      const reply = await send(port, { path: r.path, method: r.method ?? 'GET', headers: { host: r.host ?? 'diff.test' }, timeout: 10_000 })
      const seen: Seen = { status: reply.status }
      if (reply.headers.location !== undefined) seen.location = reply.headers.location.replace(String(port), 'PORT')
      if (reply.headers['content-type'] !== undefined) seen.contentType = reply.headers['content-type']
      // Text answers compare byte for byte; pages only by status (their footers differ).
      if (reply.headers['content-type'] !== 'text/html' || r.path === '/file.html') seen.body = reply.body.toString().replace(String(port), 'PORT')
      out.push(seen)
    } catch {
      out.push({ status: 'closed' })
    }
  }
  return out
}

// Every row of `requests` answered the same by both.
test('return: nginx and switchyard answer the same status, Location, type and text', async () => {
  const { nginx, switchyard } = await underBoth(config, play)
  if (process.env.SHOW) console.log(JSON.stringify(nginx, null, 0))
  for (const [i, r] of requests.entries()) {
    assert.deepEqual(switchyard[i], nginx[i], `${r.method ?? 'GET'} ${r.path} (Host ${r.host ?? 'diff.test'})`)
  }
  // The table is not trivially equal: it holds redirects, texts and a closed connection.
  assert.ok(nginx.some((s) => s.status === 'closed'))
  assert.ok(nginx.some((s) => s.location?.startsWith('http://shop.test:PORT/')))
})
