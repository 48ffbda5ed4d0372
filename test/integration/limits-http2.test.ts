// limit_req and limit_conn on HTTP/2: each stream is a request (nginx counts limit_conn
// per stream too); a refused stream ends alone and the session goes on.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { connect, type ClientHttp2Session } from 'node:http2'
import { join } from 'node:path'
import { freePort, TestUpstream } from '../helpers/net.js'
import { startSwitchyard, tempDir } from '../helpers/switchyard.js'
import { selfSignedCert } from '../helpers/tls.js'

/** One GET on the session; resolves with the status once the stream has ended. */
function get(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': 'GET' })
    let status = 0
    stream.on('response', (headers) => (status = Number(headers[':status'])))
    stream.on('data', () => undefined)
    stream.on('end', () => resolve(status))
    stream.on('error', reject)
    stream.setTimeout(10_000, () => stream.close())
  })
}

test('HTTP/2: streams are limited one by one on a session that stays open', async () => {
  const dir = await tempDir('switchyard-limits-h2-')
  selfSignedCert(dir, 'a', 'a.test')
  const backend = await new TestUpstream().listen()
  const held: ServerResponse[] = []
  backend.handler = (req, res) => (req.url?.includes('hold') ? held.push(res) : res.end('ok'))
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
  limit_conn_zone $binary_remote_addr zone=conns:1m;
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${join(dir, 'a.crt')};
    ssl_certificate_key ${join(dir, 'a.key')};
    location /req { limit_req zone=one burst=1 nodelay; proxy_pass http://127.0.0.1:${backend.port}; }
    location /conn { limit_conn conns 1; proxy_pass http://127.0.0.1:${backend.port}; }
  }
}
`)
  const session = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'a.test' })
  session.on('error', () => undefined)
  try {
    assert.deepEqual([await get(session, '/req'), await get(session, '/req'), await get(session, '/req')], [200, 200, 503])
    // One stream held open takes the one slot; a second stream on the same session is refused.
    const first = get(session, '/conn/hold')
    const deadline = Date.now() + 5000
    while (held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.equal(await get(session, '/conn/quick'), 503)
    for (const res of held.splice(0)) res.end('done')
    assert.equal(await first, 200)
    let after = 0
    for (let i = 0; i < 50 && after !== 200; i++) {
      after = await get(session, '/conn/quick')
      if (after !== 200) await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(after, 200, 'the ended stream gave its slot back, on the same session')
    assert.equal(session.closed, false)
  } finally {
    session.destroy()
    for (const res of held.splice(0)) res.end()
    await proc.stop()
    await backend.close()
  }
})
