// access_log PATH writes nginx's combined format; `off` writes nothing; SIGQUIT flushes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, rename, stat } from 'node:fs/promises'
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

// A log_format with the $upstream_* lists: a request that failed over shows both tries,
// parsed back and compared with what was sent; escape=json keeps a quote in the UA valid.
test('log_format with $upstream_* and escape=json, parsed back', async () => {
  const [u] = await upstreams(1)
  const dead = await freePort()
  const dir = await tempDir()
  const log = join(dir, 'json.log')
  const port = await freePort()
  const { proc } = await startSwitchyard(`events {}
http {
  log_format j escape=json '{"status":$status,"request":"$request","ua":"$http_user_agent",'
                           '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
                           '"upstream_response_time":"$upstream_response_time","request_time":$request_time,'
                           '"bytes":$body_bytes_sent,"time":"$time_iso8601"}';
  upstream app { server 127.0.0.1:${dead}; server 127.0.0.1:${u!.port}; }
  server {
    listen 127.0.0.1:${port};
    access_log ${log} j;
    location / { proxy_pass http://app; }
  }
}
`)
  try {
    const sent = [
      { path: '/first?x=1', ua: 'agent "one"' },
      { path: '/second', ua: 'agent two' },
    ]
    const replies: Array<{ body: Buffer }> = []
    for (const s of sent) replies.push(await send(port, { path: s.path, headers: { 'user-agent': s.ua } }))
    proc.signal('SIGQUIT')
    assert.equal(await proc.exited, 0)
    const lines = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.length, 2)
    lines.forEach((line, i) => {
      assert.equal(line.status, 200)
      assert.equal(line.request, `GET ${sent[i]!.path} HTTP/1.1`)
      assert.equal(line.ua, sent[i]!.ua)
      assert.equal(line.bytes, replies[i]!.body.length)
      assert.ok(line.request_time >= 0 && line.request_time < 5)
      assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/)
    })
    // The first request tried the dead server (502) and then the live one (200).
    assert.equal(lines[0].upstream_addr, `127.0.0.1:${dead}, 127.0.0.1:${u!.port}`)
    assert.equal(lines[0].upstream_status, '502, 200')
    assert.match(lines[0].upstream_response_time, /^\d+\.\d{3}, \d+\.\d{3}$/)
    // The dead server is out for fail_timeout: the second went straight to the live one.
    assert.equal(lines[1].upstream_addr, `127.0.0.1:${u!.port}`)
    assert.equal(lines[1].upstream_status, '200')
  } finally {
    await proc.stop()
    await u!.close()
  }
})

// log_format errors name file and line.
test('an access_log naming an undefined format is a config error', async () => {
  const { runCli, writeConfig } = await import('../helpers/switchyard.js')
  const file = await writeConfig('events {}\nhttp {\n  access_log /tmp/x.log nope;\n}\n')
  const r = await runCli(['-t', '-c', file])
  assert.equal(r.code, 1)
  assert.match(r.stderr, new RegExp(`unknown log format "nope" in ${file}:3`))
})

// Rotation as with nginx: move the file, SIGUSR1, and the next lines go to a new file at
// the path while the moved one keeps every line written before (one process, and two
// workers that each hold their own buffer).
for (const workers of [1, 2]) {
  test(`SIGUSR1 reopens the access log after a rotation (worker_processes ${workers})`, async () => {
    const [u] = await upstreams(1)
    const dir = await tempDir()
    const log = join(dir, 'access.log')
    const port = await freePort()
    const { proc } = await startSwitchyard(`worker_processes ${workers};
events {}
http {
  log_format path '$request_uri';
  access_log ${log} path;
  upstream app { server 127.0.0.1:${u!.port}; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`)
    try {
      for (let i = 0; i < 20; i++) await send(port, { path: `/before/${i}` })
      await rename(log, `${log}.1`)
      proc.signal('SIGUSR1')
      // The signal reaches every worker through the primary; lines sent after it settles
      // go to the new file.
      const deadline = Date.now() + 5000
      let i = 0
      while (Date.now() < deadline) {
        await send(port, { path: `/after/${i++}` })
        if ((await stat(log).catch(() => null)) !== null && i >= 20) break
        await new Promise((r) => setTimeout(r, 20))
      }
      proc.signal('SIGQUIT')
      assert.equal(await proc.exited, 0)
      const old = (await readFile(`${log}.1`, 'utf8')).trim().split('\n')
      const fresh = (await readFile(log, 'utf8')).trim().split('\n')
      // Every /before line is in the moved file, none in the new one.
      assert.deepEqual(old.filter((l) => l.startsWith('/before/')).sort(), Array.from({ length: 20 }, (_, k) => `/before/${k}`).sort())
      assert.ok(fresh.every((l) => l.startsWith('/after/')), fresh.join('\n'))
      // No line lost or written twice across the two files.
      const after = [...old, ...fresh].filter((l) => l.startsWith('/after/'))
      assert.equal(new Set(after).size, after.length)
      assert.equal(after.length, i)
      assert.ok(fresh.length > 0)
    } finally {
      await proc.stop()
      await u!.close()
    }
  })
}
