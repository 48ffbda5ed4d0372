// ip_hash: nginx's hash over the client's /24 (whole IPv6 address), walked over the weights;
// an ineligible peer continues the hash, 20 times at most, then round robin
// (ngx_http_upstream_ip_hash_module.c). Golden rows were recorded from Debian's nginx 1.22
// on the same servers and client addresses.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clientAddressKey } from '../../src/balancer/policies/ip-hash.js'
import { ConfigError } from '../../src/config/errors.js'
import { loadConfig } from '../../src/config/load.js'
import { Harness, requestVars, short } from '../helpers/policy-harness.js'
import type { ServerSpec } from '../helpers/upstream-config.js'

const servers = (weights: number[], down: number[] = []): ServerSpec[] =>
  weights.map((weight, i) => ({ name: `${'abc'[i]}:1`, weight, down: down.includes(i) }))

// The bytes hashed for each client address form.
const keys: Array<[address: string, bytes: number[]]> = [
  ['192.0.2.33', [192, 0, 2]],
  ['10.255.0.1', [10, 255, 0]],
  // A dual-stack socket's view of an IPv4 client: nginx sees it on an AF_INET socket.
  ['::ffff:198.51.100.7', [198, 51, 100]],
  ['::1', [...Array(15).fill(0), 1]],
  ['2001:db8::8a2e:370:7334', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34]],
  ['2001:DB8:0:0:1:2:3:4', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4]],
  ['fe80::1%eth0', [0xfe, 0x80, ...Array(13).fill(0), 1]],
  ['64:ff9b::192.0.2.33', [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33]],
  ['1::', [0, 1, ...Array(14).fill(0)]],
  // No address (a unix socket): nginx's three zero bytes.
  ['', [0, 0, 0]],
  ['not-an-address', [0, 0, 0]],
]

for (const [address, bytes] of keys) {
  // Protects which bytes of the client address the hash sees.
  test(`ip_hash key of "${address}"`, () => {
    const out = new Uint8Array(16)
    const n = clientAddressKey(address, out)
    assert.deepEqual([...out.subarray(0, n)], bytes)
  })
}

const clients = ['127.0.0.1', '127.1.2.3', '127.1.2.250', '127.10.20.30', '127.200.100.50', '127.255.255.254', '127.3.1.4', '127.0.1.0', '127.99.0.7', '127.42.42.42']

// nginx 1.22's choice for each client, in the order of `clients` (a b c = servers 1 2 3).
const golden: Array<{ what: string; servers: ServerSpec[]; clients: string[]; expect: string }> = [
  { what: 'weights 1/1/1', servers: servers([1, 1, 1]), clients, expect: 'c a a a a a a a a b' },
  { what: 'weights 3/1/2', servers: servers([3, 1, 2]), clients, expect: 'a b b a a b a b b a' },
  // b's clients rehash; nobody else moves (127.42.42.42 was b's).
  { what: 'weights 1/1/1, b down', servers: servers([1, 1, 1], [1]), clients, expect: 'c a a a a a a a a a' },
  // IPv6 ::1 (all 16 bytes) under eight weightings.
  ...[[1, 1, 1, 'c'], [3, 1, 2, 'c'], [1, 2, 3, 'c'], [5, 1, 1, 'a'], [1, 1, 5, 'c'], [2, 3, 4, 'c'], [7, 2, 1, 'a'], [1, 7, 1, 'b']].map(
    ([x, y, z, peer]) => ({ what: `::1, weights ${x}/${y}/${z}`, servers: servers([x as number, y as number, z as number]), clients: ['::1'], expect: peer as string }),
  ),
]

for (const row of golden) {
  // Protects nginx's mapping of client addresses to servers.
  test(`ip_hash golden: ${row.what}`, () => {
    const h = new Harness(row.servers, 'ip_hash')
    assert.equal(row.clients.map((addr) => h.run(1, requestVars({ addr }))).join(' '), row.expect)
  })
}

// The order one request tries the servers in when each one fails (nginx's error log with
// every server refusing, max_fails=0): a retry continues the hash where the pick left it.
const tries: Array<[client: string, order: string]> = [
  ['127.0.0.1', 'cba'], ['127.1.2.3', 'abc'], ['127.10.20.30', 'abc'], ['127.200.100.50', 'acb'],
  ['127.3.1.4', 'acb'], ['127.42.42.42', 'bac'], ['::1', 'cab'],
]

for (const [addr, order] of tries) {
  // Protects the hash state carried from one try of a request to the next.
  test(`ip_hash retries of one request from ${addr}: ${order}`, () => {
    const h = new Harness(servers([1, 1, 1]).map((s) => ({ ...s, maxFails: 0 })), 'ip_hash')
    const sel = h.selection(requestVars({ addr }))
    let got = ''
    for (let peer = h.upstream.select(sel); peer; peer = h.upstream.select(sel)) {
      got += short(peer)
      h.release(peer, { failed: true })
    }
    assert.equal(got, order)
  })
}

// A whole /24 lands on one server, whatever the last octet.
test('ip_hash: the last IPv4 octet does not matter', () => {
  const h = new Harness(servers([2, 3, 1]), 'ip_hash')
  for (let net = 0; net < 64; net++) {
    const seen = new Set([1, 77, 128, 254].map((host) => h.run(1, requestVars({ addr: `10.${net}.${net * 3}.${host}` }))))
    assert.equal(seen.size, 1, `10.${net}.${net * 3}.0/24`)
  }
})

// A down server keeps its place in the walk: only its own clients move.
test('ip_hash: marking a server down moves only its clients', () => {
  const map = (down: number[]): string[] => {
    const h = new Harness(servers([1, 2, 1], down), 'ip_hash')
    return Array.from({ length: 300 }, (_, i) => h.run(1, requestVars({ addr: `10.${i % 256}.${(i * 7) % 256}.1` })))
  }
  const before = map([])
  const after = map([1])
  assert.ok(before.includes('b'))
  for (const [i, peer] of before.entries()) {
    if (peer === 'b') assert.notEqual(after[i], 'b')
    else assert.equal(after[i], peer, `client ${i} stays on ${peer}`)
  }
})

// nginx hashes 21 times (the pick and 20 rehashes) before round robin takes over: with a
// weight-60 down server and a weight-1 live one, these /24s first reach the live one on
// hash 20, 21 and 22 (found with a separate reference implementation).
const limit: Array<[client: string, policyTries: number]> = [['127.0.58.1', 19], ['127.0.56.1', 20], ['127.0.76.1', 21]]

for (const [addr, policyTries] of limit) {
  // Protects the exact rehash limit.
  test(`ip_hash: ${addr} stops after ${policyTries} ineligible picks`, () => {
    const h = new Harness([{ name: 'a:1', weight: 60, down: true }, { name: 'b:1' }], 'ip_hash')
    const sel = h.selection(requestVars({ addr }))
    assert.equal(short(h.upstream.select(sel)), 'b')
    assert.equal(sel.policyTries, policyTries)
  })
}

// After the limit the rest of the request is round robin: no more hashing on a retry.
test('ip_hash: a request past the limit retries by round robin', () => {
  const h = new Harness([{ name: 'a:1', weight: 60, down: true }, { name: 'b:1', maxFails: 0 }, { name: 'c:1', weight: 2, maxFails: 0 }], 'ip_hash')
  const sel = h.selection(requestVars({ addr: '127.0.0.1' }))
  sel.policyTries = 21
  const eligible = sel.eligible.bind(sel)
  let asked = 0
  sel.eligible = (peer) => (asked++, eligible(peer))
  // Smooth weighted round robin over b (1) and c (2): c first, asking every server once.
  assert.equal(short(h.upstream.select(sel)), 'c')
  assert.equal(asked, 3)
  assert.equal(sel.policyTries, 21)
})

// A weight changed at run time (the admin API) takes effect at once, as if configured.
test('ip_hash: a runtime weight change maps like that weight in the config', () => {
  const changed = new Harness(servers([1, 1, 1]), 'ip_hash')
  changed.peer('b').setWeight(5)
  const configured = new Harness(servers([1, 5, 1]), 'ip_hash')
  for (let i = 0; i < 100; i++) {
    const addr = `10.${i}.${(i * 13) % 256}.1`
    assert.equal(changed.run(1, requestVars({ addr })), configured.run(1, requestVars({ addr })), addr)
  }
})

// One primary server: nginx does not hash at all (peers->single).
test('ip_hash: a single server is round robin', () => {
  const h = new Harness([{ name: 'a:1' }], 'ip_hash')
  const sel = h.selection(requestVars({ addr: '192.0.2.1' }))
  assert.equal(short(h.upstream.select(sel)), 'a')
  assert.equal(sel.policyTries, 0)
})

// Config: the directive and the server parameters ip_hash takes, with nginx's errors.
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? null
const U = (body: string): string =>
  `events {}\nhttp {\nupstream u {\n${body}\n}\nserver { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n}\n`
const errors: Array<{ what: string; body: string; error: string; nginx?: boolean }> = [
  { what: 'ip_hash takes no arguments', body: 'ip_hash on;\nserver 127.0.0.1;', error: 'invalid number of arguments in "ip_hash" directive in {file}:4', nginx: true },
  { what: 'ip_hash has no backup', body: 'ip_hash;\nserver 127.0.0.1;\nserver 127.0.0.2 backup;', error: 'balancing method does not support parameter "backup" in {file}:6', nginx: true },
  { what: 'ip_hash has no slow_start', body: 'ip_hash;\nserver 127.0.0.1 slow_start=10s;', error: 'balancing method does not support parameter "slow_start=10s" in {file}:5' },
  { what: 'ip_hash is a balancing method like the others', body: 'least_conn;\nip_hash;\nserver 127.0.0.1;', error: 'load balancing method redefined in {file}:5' },
  { what: 'ip_hash only inside upstream', body: 'server 127.0.0.1;\n}\nserver {\nip_hash;', error: '"ip_hash" directive is not allowed here in {file}:7', nginx: true },
]
const work = mkdtempSync(join(tmpdir(), 'switchyard-ip-hash-'))
after(() => rmSync(work, { recursive: true, force: true }))
const fileFor = (i: number): string => join(work, `case-${i}.conf`)
for (const [i, c] of errors.entries()) writeFileSync(fileFor(i), U(c.body))

for (const [i, c] of errors.entries()) {
  // Protects one config error's exact text and line: the row's `what`.
  test(`ip_hash config: ${c.what}`, async () => {
    await assert.rejects(loadConfig(fileFor(i), { resolveHost: async () => [] }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.message, c.error.replace('{file}', fileFor(i)))
      return true
    })
  })
}

// Where a row claims nginx's wording, Debian's nginx -t agrees.
test('ip_hash config: nginx -t gives the same errors', { skip: NGINX === null ? 'nginx is not installed' : false }, () => {
  for (const [i, c] of errors.entries()) {
    if (!c.nginx) continue
    const run = spawnSync(NGINX!, ['-t', '-p', work, '-c', fileFor(i)], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(/\[emerg\] \d+#\d+: (.*)$/m.exec(run.stderr ?? '')?.[1], c.error.replace('{file}', fileFor(i)), c.what)
  }
})

// The tutorial's ip_hash snippet builds, with every server parameter ip_hash accepts.
test('ip_hash config: builds with weight, max_fails, fail_timeout, max_conns and down', async () => {
  const file = join(work, 'good.conf')
  writeFileSync(file, U('ip_hash;\nserver 127.0.0.1:88 weight=2 max_fails=3 fail_timeout=5s max_conns=10;\nserver 127.0.0.2:80 down;'))
  const upstream = (await loadConfig(file)).http.upstreams.get('u')!
  assert.equal(upstream.balancer.method, 'ip_hash')
  assert.deepEqual(upstream.servers.map((s) => [s.weight, s.maxFails, s.failTimeout, s.maxConns, s.down]), [[2, 3, 5000, 10, false], [1, 1, 10_000, 0, true]])
})
