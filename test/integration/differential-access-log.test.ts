// Access log lines under Debian's nginx and switchyard on the same config and the same raw
// requests: byte for byte the same in escape=default, json and none, for quotes,
// backslashes, tabs, UTF-8 and lone high bytes in headers, percent-escapes in the target.
// (A raw high byte in the target is refused by switchyard's parser with 400, where nginx
// passes it on: not compared here.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, upstreams } from '../helpers/net.js'
import { exchange, statuses } from '../helpers/edge-corpus.js'
import { NginxProcess } from '../helpers/nginx.js'
import { startSwitchyard, tempDir } from '../helpers/switchyard.js'

// Nothing here depends on time, ports or the upstream's answer.
const FIELDS = '$remote_addr|$remote_user|$request|$status|$request_method|$request_uri|$args|$arg_q|"$http_user_agent"|"$http_referer"|$http_x_missing'

const config = (listen: number, upstream: number, dir: string): string => `events { worker_connections 64; }
http {
  log_format d '${FIELDS} lit:é';
  log_format j escape=json '{"request":"$request","ua":"$http_user_agent","referer":"$http_referer",'
                           '"args":"$args","user":"$remote_user","missing":"$http_x_missing","status":$status}';
  log_format n escape=none '${FIELDS}';
  upstream app { server 127.0.0.1:${upstream}; }
  server {
    listen 127.0.0.1:${listen};
    location /d/ { proxy_pass http://app; access_log ${dir}/d.log d; }
    location /j/ { proxy_pass http://app; access_log ${dir}/j.log j; }
    location /n/ { proxy_pass http://app; access_log ${dir}/n.log n; }
    location / { return 204; access_log off; }
  }
}
`

/** Raw requests: a target and header lines, each sent under /d/, /j/ and /n/ (strings of
 *  bytes, one char per byte). */
const cases: Array<{ target: string; headers: string }> = [
  { target: 'plain?q=1', headers: 'User-Agent: curl/8.0\r\nReferer: http://ref.example/page\r\n' },
  { target: 'q?q=a%22b&z', headers: 'User-Agent: say "hi" \\ bye\r\n' },
  { target: 'tab', headers: 'User-Agent: a\tb\r\nReferer: x y\r\n' },
  // "é" in UTF-8 (two bytes) and a lone 0xE9 (one byte, Latin-1 "é").
  { target: 'utf8', headers: 'User-Agent: caf\xC3\xA9\r\nReferer: \xE9t\xE9\r\n' },
  { target: 'h', headers: 'User-Agent: \xFF\x80\r\n' },
  { target: 'x%20y/../z?q=%E9', headers: '' },
]

async function play(port: number): Promise<number[]> {
  const out: number[] = []
  for (const prefix of ['d', 'j', 'n']) {
    for (const c of cases) {
      const answer = await exchange(port, `GET /${prefix}/${c.target} HTTP/1.1\r\nHost: a\r\n${c.headers}Connection: close\r\n\r\n`)
      out.push(...statuses(answer))
    }
  }
  return out
}

const readLogs = async (dir: string): Promise<Record<string, string>> => ({
  d: await readFile(join(dir, 'd.log'), 'latin1'),
  j: await readFile(join(dir, 'j.log'), 'latin1'),
  n: await readFile(join(dir, 'n.log'), 'latin1'),
})

// Every line, compared as bytes: the same statuses, the same lines in each format.
test('access log lines match nginx byte for byte (escape=default, json, none)', async () => {
  const [u] = await upstreams(1)
  try {
    const nginxDir = await tempDir('switchyard-nginx-log-')
    const nginxPort = await freePort()
    const nginx = await new NginxProcess().start(config(nginxPort, u!.port, nginxDir), nginxPort)
    let nginxStatuses: number[]
    try {
      nginxStatuses = await play(nginxPort)
    } finally {
      await nginx.stop()
    }
    const nginxLogs = await readLogs(nginxDir)

    const syDir = await tempDir('switchyard-log-')
    const syPort = await freePort()
    const { proc } = await startSwitchyard(config(syPort, u!.port, syDir))
    let syStatuses: number[]
    try {
      syStatuses = await play(syPort)
      proc.signal('SIGQUIT')
      assert.equal(await proc.exited, 0)
    } finally {
      await proc.stop()
    }
    const syLogs = await readLogs(syDir)

    assert.deepEqual(syStatuses, nginxStatuses)
    assert.ok(nginxStatuses.every((s) => s === 200), `nginx answered ${nginxStatuses.join(' ')}`)
    for (const name of ['d', 'j', 'n']) {
      const want = nginxLogs[name]!.split('\n')
      const got = syLogs[name]!.split('\n')
      assert.equal(got.length, cases.length + 1, `${name}.log:\n${syLogs[name]}`)
      want.forEach((line, i) => assert.equal(JSON.stringify(got[i]), JSON.stringify(line), `${name}.log line ${i + 1}`))
    }
    // The json lines are JSON, and a client's UTF-8 reads back as the text it sent.
    const json = syLogs.j!.trim().split('\n').map((l) => JSON.parse(Buffer.from(l, 'latin1').toString('utf8')) as Record<string, unknown>)
    assert.deepEqual(json[1], { request: 'GET /j/q?q=a%22b&z HTTP/1.1', ua: 'say "hi" \\ bye', referer: '', args: 'q=a%22b&z', user: '', missing: '', status: 200 })
    assert.equal(json[3]!.ua, 'café')
  } finally {
    await u!.close()
  }
})
