// access_log PATH writes nginx's combined format; `off` writes nothing; SIGQUIT flushes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, send, upstreams } from '../helpers/net.js'
import { startSwitchyard, tempDir } from '../helpers/switchyard.js'

// One combined line per request, with status, body bytes, referer and user agent;
// nothing for a location with access_log off.
test('access_log writes combined lines; off writes none', async () => {
  const [u] = await upstreams(1)
  const dir = await tempDir()
  const log = join(dir, 'access.log')
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  access_log ${log};
  upstream app { server 127.0.0.1:${u!.port}; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; }
    location /quiet/ { proxy_pass http://app; access_log off; }
    location /none/ { }
  }
}
`)
  try {
    const r = await send(port, { path: '/a?b=1', headers: { referer: 'http://ref.example/', 'user-agent': 'test-agent/1.0' } })
    await send(port, { path: '/quiet/x' })
    await send(port, { path: '/none/x' })
    proc.signal('SIGQUIT')
    assert.equal(await proc.exited, 0)
    const lines = (await readFile(log, 'utf8')).trim().split('\n')
    assert.equal(lines.length, 2, lines.join('\n'))
    assert.match(lines[0]!, new RegExp(`^127\\.0\\.0\\.1 - - \\[\\d{2}/[A-Z][a-z]{2}/\\d{4}:\\d{2}:\\d{2}:\\d{2} [+-]\\d{4}\\] "GET /a\\?b=1 HTTP/1\\.1" 200 ${r.body.length} "http://ref\\.example/" "test-agent/1\\.0"$`))
    assert.match(lines[1]!, /"GET \/none\/x HTTP\/1\.1" 404 \d+ "-" "-"$/)
    assert.ok((await stat(log)).size > 0)
  } finally {
    await proc.stop()
    await u!.close()
  }
})
