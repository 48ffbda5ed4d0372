// The balancing directives and server parameters of issue 3 in configs: what builds, and
// each bad form's exact error with FILE:LINE. Rows marked `nginx` carry nginx's own text and
// are also run through Debian's `nginx -t` (1.22: least_conn and random; least_time and
// sticky are newer than it, fair is a third-party module, slow_start is NGINX Plus).
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, parseConfigText } from '../../src/config/load.js'
import { ConfigError } from '../../src/config/errors.js'

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? null
const resolveHost = async (): Promise<string[]> => []

// An upstream whose body starts at line 4, used by a location so nginx checks it fully.
const U = (body: string): string =>
  `events {}\nhttp {\nupstream u {\n${body}\n}\nserver { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n}\n`

const cases: Array<{ what: string; body: string; error: string; nginx?: boolean }> = [
  { what: 'least_conn takes no arguments', body: 'least_conn x;\nserver 127.0.0.1;', error: 'invalid number of arguments in "least_conn" directive in {file}:4', nginx: true },
  { what: 'random: only "two" first', body: 'random one;\nserver 127.0.0.1;', error: 'invalid parameter "one" in {file}:4', nginx: true },
  { what: 'random two: an unknown method', body: 'random two fastest;\nserver 127.0.0.1;', error: 'invalid parameter "fastest" in {file}:4', nginx: true },
  { what: 'random: at most two arguments', body: 'random two least_conn x;\nserver 127.0.0.1;', error: 'invalid number of arguments in "random" directive in {file}:4', nginx: true },
  { what: 'random has no backup', body: 'random;\nserver 127.0.0.1 backup;', error: 'balancing method does not support parameter "backup" in {file}:5', nginx: true },
  { what: 'least_conn keeps nginx\'s server checks', body: 'least_conn;\nserver 127.0.0.1 max_conns=x;', error: 'invalid parameter "max_conns=x" in {file}:5', nginx: true },
  { what: 'random has no slow_start', body: 'random;\nserver 127.0.0.1 slow_start=10s;', error: 'balancing method does not support parameter "slow_start=10s" in {file}:5' },
  { what: 'a bad slow_start', body: 'server 127.0.0.1 slow_start=soon;', error: 'invalid parameter "slow_start=soon" in {file}:4' },
  { what: 'least_time needs a mode', body: 'least_time;\nserver 127.0.0.1;', error: 'invalid number of arguments in "least_time" directive in {file}:4' },
  { what: 'least_time: an unknown mode', body: 'least_time first_byte;\nserver 127.0.0.1;', error: 'invalid value "first_byte" in {file}:4' },
  { what: 'least_time: only inflight after the mode', body: 'least_time header slow;\nserver 127.0.0.1;', error: 'invalid parameter "slow" in {file}:4' },
  { what: 'two balancing methods', body: 'least_conn;\nrandom;\nserver 127.0.0.1;', error: 'load balancing method redefined in {file}:5' },
  { what: 'a method after sticky would silently drop it in nginx', body: 'sticky cookie srv;\nleast_conn;\nserver 127.0.0.1;', error: 'load balancing method redefined in {file}:5' },
  { what: 'sticky twice', body: 'sticky cookie a;\nsticky cookie b;\nserver 127.0.0.1;', error: '"sticky" directive is duplicate in {file}:5' },
  { what: 'sticky cookie needs a name', body: 'sticky cookie;\nserver 127.0.0.1;', error: 'invalid number of arguments in "sticky" directive in {file}:4' },
  { what: 'sticky: a bad attribute', body: 'sticky cookie srv expires=1h expires=2h;\nserver 127.0.0.1;', error: '"sticky" directive parameter "expires" is duplicate in {file}:4' },
  { what: 'sticky keeps the wrapped method\'s parameters', body: 'random;\nsticky cookie srv;\nserver 127.0.0.1 backup;', error: 'balancing method does not support parameter "backup" in {file}:6' },
  { what: 'fair: the module\'s own error', body: 'fair fast;\nserver 127.0.0.1;', error: 'Invalid `fair\' parameter `fast\' in {file}:4' },
  { what: 'fair has no backup', body: 'fair;\nserver 127.0.0.1 backup;', error: 'balancing method does not support parameter "backup" in {file}:5' },
  { what: 'fair has no max_conns', body: 'fair;\nserver 127.0.0.1 max_conns=2;', error: 'balancing method does not support parameter "max_conns=2" in {file}:5' },
  { what: 'an empty route', body: 'server 127.0.0.1 route=;', error: 'route is empty in {file}:4' },
  { what: 'a route longer than an MD5', body: `server 127.0.0.1 route=${'r'.repeat(33)};`, error: 'route is longer than 32 in {file}:4' },
]

const work = mkdtempSync(join(tmpdir(), 'switchyard-policy-config-'))
after(() => rmSync(work, { recursive: true, force: true }))
const fileFor = (index: number): string => join(work, `case-${index}.conf`)
for (const [index, c] of cases.entries()) writeFileSync(fileFor(index), U(c.body))

for (const [index, c] of cases.entries()) {
  // Guards one balancing config error's exact text and line: the row's `what`.
  test(`policy config: ${c.what}`, async () => {
    const file = fileFor(index)
    await assert.rejects(loadConfig(file, { resolveHost }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.message, c.error.replace('{file}', file))
      return true
    })
  })
}

// Differential: where a row claims nginx's wording, Debian's nginx -t agrees.
test('policy config: nginx -t gives the same errors', { skip: NGINX === null ? 'nginx is not installed' : false }, () => {
  for (const [index, c] of cases.entries()) {
    if (!c.nginx) continue
    const file = fileFor(index)
    const run = spawnSync(NGINX!, ['-t', '-p', work, '-c', file], { encoding: 'utf8', timeout: 20_000 })
    const match = /\[emerg\] \d+#\d+: (.*)$/m.exec(run.stderr ?? '')
    assert.equal(match?.[1], c.error.replace('{file}', file), c.what)
  }
})

const build = (body: string) => parseConfigText(U(body), '/etc/switchyard/lb.conf', { resolveHost })

// Each directive becomes its registry row with the parsed options.
test('policy config: the methods and their options build', async () => {
  const methods: Array<[body: string, method: string, options: unknown]> = [
    ['least_conn;', 'least_conn', null],
    ['fair;', 'fair', { noRoundRobin: false }],
    ['random two least_conn;', 'random', { two: true, method: 'least_conn' }],
    ['least_time last_byte inflight;', 'least_time', { mode: 'last_byte', inflight: true }],
  ]
  for (const [body, method, options] of methods) {
    const balancer = (await build(`${body}\nserver 127.0.0.1;`)).http.upstreams.get('u')!.balancer
    assert.equal(balancer.method, method, body)
    assert.deepEqual(balancer.options, options, body)
  }
})

// sticky wraps the method written before it (round robin when there is none), as nginx's
// sticky wraps `us->peer.init_upstream`.
test('policy config: sticky wraps the method before it', async () => {
  const over = (await build('least_conn;\nsticky cookie srv;\nserver 127.0.0.1;')).http.upstreams.get('u')!.balancer
  assert.equal(over.method, 'sticky')
  assert.equal(over.inner?.method, 'least_conn')
  const alone = (await build('sticky cookie srv;\nserver 127.0.0.1 backup;\nserver 127.0.0.2;')).http.upstreams.get('u')!.balancer
  assert.equal(alone.inner?.method, 'round_robin')
})

// slow_start and route= reach the model; the defaults are off and empty.
test('policy config: slow_start and route= on a server', async () => {
  const servers = (await build('server 127.0.0.1 slow_start=30s route=a;\nserver 127.0.0.2 slow_start=500ms;\nserver 127.0.0.3;')).http.upstreams.get('u')!.servers
  assert.deepEqual(servers.map((s) => [s.slowStart, s.route]), [[30_000, 'a'], [500, ''], [0, '']])
})
