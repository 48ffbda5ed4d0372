// The same limit_req config and request schedule through Debian's nginx and
// switchyard: the same statuses in the same order, and the same $limit_req_status.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { send, TestUpstream } from '../helpers/net.js'
import { NGINX, underBoth } from '../helpers/nginx.js'

const skip = existsSync(NGINX) ? false : 'nginx is not installed'

// 1r/m drains 16 thousandths a second, so the schedule's timing cannot change a verdict.
// (The readiness probe each server first gets comes from 127.0.0.1, another bucket.)
test('limit_req burst nodelay: same statuses as nginx', { skip }, async () => {
  const backend = await new TestUpstream().listen()
  try {
    const config = (listen: number): string => `events {}
http {
  access_log off;
  limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
  limit_req_zone $http_x_user zone=user:1m rate=1r/m;
  server {
    listen 127.0.0.1:${listen};
    location / { limit_req zone=one burst=3 nodelay; proxy_pass http://127.0.0.1:${backend.port}; }
    location /user { limit_req zone=user burst=1 nodelay; limit_req zone=one burst=9 nodelay; limit_req_status 429; proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`
    const play = async (port: number): Promise<string> => {
      const out: number[] = []
      for (let i = 0; i < 5; i++) out.push((await send(port, { path: '/', localAddress: '127.0.0.30' })).status)
      out.push((await send(port, { path: '/', localAddress: '127.0.0.31' })).status)
      // Two zones: `user` rejects its third request; `one` (burst 9, from a new address)
      // must not be charged for it, so the fifth request (a new user) still passes.
      for (const user of ['a', 'a', 'a', 'a', 'b']) out.push((await send(port, { path: '/user', localAddress: '127.0.0.32', headers: { 'x-user': user } })).status)
      return out.join(' ')
    }
    const { nginx, switchyard } = await underBoth(config, play)
    assert.equal(nginx, '200 200 200 200 503 200 200 200 429 429 200')
    assert.equal(switchyard, nginx)
  } finally {
    await backend.close()
  }
})

// Phase order and limit_conn: with a request held open, a second one from the same
// address meets limit_req first (nginx runs it before limit_conn), so the status it gets
// says which ran first: 429 (limit_req_status) or 503 (limit_conn_status). A third, under
// a location with only limit_conn, is refused until the held one ends.
test('limit_req runs before limit_conn, and limit_conn counts a held request, as in nginx', { skip }, async () => {
  const backend = await new TestUpstream().listen()
  const held: ServerResponse[] = []
  backend.handler = (req, res) => (req.url?.includes('hold') ? held.push(res) : res.end('ok'))
  try {
    const config = (listen: number): string => `events {}
http {
  access_log off;
  limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
  limit_conn_zone $binary_remote_addr zone=conns:1m;
  limit_req_status 429;
  server {
    listen 127.0.0.1:${listen};
    location /both { limit_conn conns 1; limit_req zone=one; proxy_pass http://127.0.0.1:${backend.port}; }
    location /conn { limit_conn conns 1; proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`
    const play = async (port: number): Promise<string> => {
      const first = send(port, { path: '/both/hold', localAddress: '127.0.0.33', timeout: 10_000 })
      const deadline = Date.now() + 5000
      while (held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      const second = await send(port, { path: '/both', localAddress: '127.0.0.33' })
      const third = await send(port, { path: '/conn', localAddress: '127.0.0.33' })
      for (const res of held.splice(0)) res.end('done')
      const done = await first
      let fourth = 0
      for (let i = 0; i < 50 && fourth !== 200; i++) {
        fourth = (await send(port, { path: '/conn', localAddress: '127.0.0.33' })).status
        if (fourth !== 200) await new Promise((r) => setTimeout(r, 20))
      }
      return [done.status, second.status, third.status, fourth].join(' ')
    }
    const { nginx, switchyard } = await underBoth(config, play)
    assert.equal(nginx, '200 429 503 200')
    assert.equal(switchyard, nginx)
  } finally {
    for (const res of held.splice(0)) res.end()
    await backend.close()
  }
})
