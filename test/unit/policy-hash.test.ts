// hash KEY [consistent]: nginx's Cache::Memcached mapping (crc32 of the key, rehashed as
// "1KEY", "2KEY", … past ineligible peers) and its ketama ring (160 points per weight unit
// from the server names as written), both round robin after 20 misses or on an empty key
// (ngx_http_upstream_hash_module.c). Golden rows were recorded from Debian's nginx 1.22 on
// the same servers and request URIs; ring points were checked against Python's zlib.crc32.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CRC32_INIT, crc32, crc32Final, crc32UpdateDecimal } from '../../src/balancer/shared/crc32.js'
import { buildRing, firstPointAtOrAfter, serverPoints } from '../../src/balancer/shared/ketama.js'
import { ConfigError } from '../../src/config/errors.js'
import { loadConfig } from '../../src/config/load.js'
import type { Peer } from '../../src/upstream/peer.js'
import { Harness, requestVars } from '../helpers/policy-harness.js'
import type { ServerSpec } from '../helpers/upstream-config.js'

// ---- crc32 and the ring -------------------------------------------------------------

// CRC-32 over the bytes nginx sees: ASCII; request text Node decoded as latin1 (one char
// per byte); other characters (config text) as UTF-8.
const checksums: Array<[what: string, input: string | number[], expect: number]> = [
  ['the standard check value', '123456789', 0xcbf43926],
  ['nothing', '', 0],
  ['raw bytes', [0xc3, 0xa9], 0x0e048d3e],
  ['a header holding the UTF-8 bytes of "é", latin1-decoded', 'Ã©', 0x0e048d3e],
  ['characters above 0xFF as UTF-8', '€😀aߢ', 0x96d09196],
]
for (const [what, input, expect] of checksums) {
  // Protects the checksum both hash modes are built on.
  test(`crc32: ${what}`, () => assert.equal(crc32(typeof input === 'string' ? input : new Uint8Array(input)), expect))
}

// The rehash prefix is the decimal number, fed without building a string.
test('crc32: decimal prefixes', () => {
  for (const n of [0, 1, 9, 10, 19, 20, 100, 1234567]) assert.equal(crc32Final(crc32UpdateDecimal(CRC32_INIT, n)), crc32(String(n)), String(n))
})

// Ring points: crc32(HOST "\0" PORT PREV), PREV the previous point as 4 little-endian bytes.
const points: Array<[name: string, expect: number[]]> = [
  ['127.0.0.1:8080', [0x6dca9547, 0x92c7adf9, 0xddbeb1b8]],
  // No port: the host and an empty port.
  ['backend', [451348769, 3789907620]],
  ['Backend.example', [1752548318, 741753268]],
  // Brackets stay in the host; the port is what follows the last colon.
  ['[::1]:80', [1028208324, 2639490794]],
  // A colon followed by a non-digit is part of the host.
  ['a:b', [810298113]],
  // unix: sockets hash their path.
  ['unix:/tmp/s', [880684646, 2296925598]],
]
for (const [name, expect] of points) {
  // Protects the ring's points for one way of writing a server.
  test(`ketama points of "${name}"`, () => assert.deepEqual([...serverPoints(name, expect.length)], expect))
}

// 160 points per weight unit, sorted; a key finds the first point at or after its hash.
test('ketama ring: size, order and lookup', () => {
  const ring = buildRing([{ name: 'a:1', weight: 1 }, { name: 'b:1', weight: 3 }])
  assert.equal(ring.hashes.length, 640)
  assert.equal(ring.owners.filter((o) => o === 1).length, 480)
  for (let i = 1; i < ring.hashes.length; i++) assert.ok(ring.hashes[i - 1]! < ring.hashes[i]!)
  assert.equal(firstPointAtOrAfter(ring.hashes, 0), 0)
  assert.equal(firstPointAtOrAfter(ring.hashes, ring.hashes[5]!), 5)
  assert.equal(firstPointAtOrAfter(ring.hashes, ring.hashes[5]! + 1), 6)
  assert.equal(firstPointAtOrAfter(ring.hashes, 0xffffffff), ring.hashes[639] === 0xffffffff ? 639 : 640)
})

// ---- golden tables ------------------------------------------------------------------

/** The servers nginx ran with (their names feed the ring). */
const named = (ports: number[], extra: Array<Partial<ServerSpec>> = []): ServerSpec[] =>
  ports.map((port, i) => ({ name: `127.0.0.1:${port}`, ...extra[i] }))
const live = [18081, 18082, 18083]
const uris = ['/', '/index.html', '/item/1', '/item/2', '/item/3', '/search?q=nginx', '/a/b/c', '/static/app.js', '/x?y=1&z=2', '/%C3%A9t%C3%A9']

/** a b c for the first, second and third server. */
const letter = (h: Harness, peer: Peer | undefined): string => (peer === undefined ? '-' : 'abc'[h.upstream.peers.indexOf(peer)]!)

// nginx 1.22's choice for each of `uris` under `hash $request_uri [consistent]`.
const golden: Array<{ what: string; args: string[]; servers: ServerSpec[]; expect: string }> = [
  { what: 'weights 1/1/1', args: ['$request_uri'], servers: named(live), expect: 'c c b c c a b c b a' },
  { what: 'weights 1/2/1', args: ['$request_uri'], servers: named(live, [{}, { weight: 2 }]), expect: 'c b b a c b c a c b' },
  // c's keys rehash to "1KEY", "2KEY", …; the others stay.
  { what: 'weights 1/1/1, c down', args: ['$request_uri'], servers: named(live, [{}, {}, { down: true }]), expect: 'a a b b a a b b b a' },
  { what: 'consistent, weights 1/1/1', args: ['$request_uri', 'consistent'], servers: named(live), expect: 'a c c a c c a b a b' },
  { what: 'consistent, weights 1/1/2', args: ['$request_uri', 'consistent'], servers: named(live, [{}, {}, { weight: 2 }]), expect: 'c c c a c c a b c b' },
  // a's keys move to the next point's server; the others stay.
  { what: 'consistent, weights 1/1/1, a down', args: ['$request_uri', 'consistent'], servers: named(live, [{ down: true }]), expect: 'b c c c c c b b c b' },
]

for (const row of golden) {
  // Protects nginx's mapping of keys to servers.
  test(`hash golden: ${row.what}`, () => {
    const h = new Harness(row.servers, 'hash', row.args)
    const got = uris.map((url) => {
      const peer = h.hold(requestVars({ url }))
      if (peer) h.release(peer)
      return letter(h, peer)
    })
    assert.equal(got.join(' '), row.expect)
  })
}

// The order one request tries the servers in when each one fails (nginx's error log with
// every server refusing, max_fails=0): the plain rehash and the ring walk carry on.
const tries: Array<{ what: string; args: string[]; expect: string[] }> = [
  { what: 'plain', args: ['$request_uri'], expect: ['cab', 'cab', 'bac', 'cba', 'cab', 'abc', 'bca', 'cba', 'bac', 'abc'] },
  { what: 'consistent', args: ['$request_uri', 'consistent'], expect: ['cab', 'cba', 'acb', 'bac', 'cab', 'abc', 'acb', 'bac', 'acb', 'acb'] },
]

for (const row of tries) {
  // Protects the walk state carried from one try of a request to the next.
  test(`hash retries of one request (${row.what})`, () => {
    const h = new Harness(named([18091, 18092, 18093], [{ maxFails: 0 }, { maxFails: 0 }, { maxFails: 0 }]), 'hash', row.args)
    const got = uris.map((url) => {
      const sel = h.selection(requestVars({ url }))
      let order = ''
      for (let peer = h.upstream.select(sel); peer; peer = h.upstream.select(sel)) {
        order += letter(h, peer)
        h.release(peer, { failed: true })
      }
      return order
    })
    assert.deepEqual(got, row.expect)
  })
}

// ---- rehash limit, empty key, single server -------------------------------------------

// nginx hashes 21 times (the pick and 20 rehashes) before round robin: with a weight-60
// down server and a weight-1 live one, these keys first reach the live one on hash 20,
// 21 and 22 (plain) or ring point 20, 21 and 22 (consistent), found with a separate
// reference implementation.
const limit: Array<[args: string[], url: string, policyTries: number]> = [
  [['$request_uri'], '/k/489', 19], [['$request_uri'], '/k/17', 20], [['$request_uri'], '/k/41', 21],
  [['$request_uri', 'consistent'], '/k/42', 19], [['$request_uri', 'consistent'], '/k/111', 20], [['$request_uri', 'consistent'], '/k/51', 21],
]

for (const [args, url, policyTries] of limit) {
  // Protects the exact rehash limit.
  test(`hash ${args.join(' ')}: ${url} stops after ${policyTries} ineligible picks`, () => {
    const h = new Harness([{ name: 'a:1', weight: 60, down: true }, { name: 'b:1' }], 'hash', args)
    const sel = h.selection(requestVars({ url }))
    assert.equal(letter(h, h.upstream.select(sel)), 'b')
    assert.equal(sel.policyTries, policyTries)
  })
}

// An empty key (here a missing query argument) is round robin, weights and all.
for (const args of [['$arg_user'], ['$arg_user', 'consistent']]) {
  // Protects nginx's `hp->key.len == 0` fallback.
  test(`hash ${args.join(' ')}: an empty key is smooth weighted round robin`, () => {
    const h = new Harness([{ name: 'a:1', weight: 5 }, { name: 'b:1' }, { name: 'c:1' }], 'hash', args)
    assert.equal(h.run(7, requestVars({ url: '/no-user' })), 'a a b a c a a')
    const sameKey = h.run(3, requestVars({ url: '/?user=alice' }))
    assert.equal(new Set(sameKey.split(' ')).size, 1, 'a non-empty key sticks')
  })
}

// A weight changed at run time (the admin API) takes effect at once, as if configured:
// the plain walk reads the weights per pick, and the ring is rebuilt.
for (const args of [['$request_uri'], ['$request_uri', 'consistent']]) {
  test(`hash ${args.join(' ')}: a runtime weight change maps like that weight in the config`, () => {
    const changed = new Harness(named(live), 'hash', args)
    changed.upstream.peers[1]!.setWeight(3)
    const configured = new Harness(named(live, [{}, { weight: 3 }]), 'hash', args)
    for (let i = 0; i < 200; i++) {
      const url = `/w/${i}`
      assert.equal(letter(changed, changed.hold(requestVars({ url }))), letter(configured, configured.hold(requestVars({ url }))), url)
    }
  })
}

// One primary server: nginx does not hash at all (peers->single).
test('hash: a single server is round robin', () => {
  const h = new Harness([{ name: 'a:1' }], 'hash', ['$request_uri', 'consistent'])
  const sel = h.selection(requestVars({ url: '/x' }))
  assert.equal(letter(h, h.upstream.select(sel)), 'a')
  assert.equal(sel.policyTries, 0)
})

// The key is the evaluated string, whatever variables built it.
test('hash: the same key from different variables maps the same', () => {
  for (const consistent of [[], ['consistent']]) {
    const byCookie = new Harness(named(live), 'hash', ['$cookie_user', ...consistent])
    const byArg = new Harness(named(live), 'hash', ['$arg_user', ...consistent])
    const byHost = new Harness(named(live), 'hash', ['$host$arg_id', ...consistent])
    for (let i = 0; i < 50; i++) {
      const user = `user-${i}`
      const want = letter(byArg, byArg.hold(requestVars({ url: `/p?user=${user}` })))
      assert.equal(letter(byCookie, byCookie.hold(requestVars({ url: '/', headers: { cookie: `a=1; user=${user}` } }))), want)
      assert.equal(letter(byHost, byHost.hold(requestVars({ url: `/?id=${i}`, headers: { host: 'User-:8080' } }))), want)
    }
  }
})

// ---- consistent: stability -------------------------------------------------------------

/** Which server name each of 2000 keys goes to. */
function keyMap(servers: ServerSpec[]): string[] {
  const h = new Harness(servers, 'hash', ['$request_uri', 'consistent'])
  return Array.from({ length: 2000 }, (_, i) => {
    const peer = h.hold(requestVars({ url: `/object/${i}` }))
    if (peer) h.release(peer)
    return peer?.name ?? '-'
  })
}

// Taking a server down or out moves only its keys, and both move them to the same place
// (the ring depends on the names alone).
test('hash consistent: one server down or removed moves only its keys', () => {
  const all = named([8081, 8082, 8083, 8084], [{}, { weight: 2 }])
  const before = keyMap(all)
  const gone = '127.0.0.1:8082'
  const down = keyMap(all.map((s) => (s.name === gone ? { ...s, down: true } : s)))
  const removed = keyMap(all.filter((s) => s.name !== gone))
  assert.ok(before.filter((n) => n === gone).length > 600, 'weight 2 holds about 2/5 of the keys')
  for (const [i, name] of before.entries()) {
    if (name === gone) assert.notEqual(down[i], gone)
    else assert.equal(down[i], name, `key ${i} stays on ${name}`)
  }
  assert.deepEqual(down, removed)
})

// Adding a server takes keys only for itself.
test('hash consistent: adding a server moves keys only to it', () => {
  const before = keyMap(named([8081, 8082, 8083]))
  const after = keyMap(named([8081, 8082, 8083, 8084]))
  const moved = before.filter((name, i) => after[i] !== name)
  assert.ok(moved.length > 300 && moved.length < 700, `about a quarter moved (${moved.length})`)
  for (const [i, name] of after.entries()) assert.ok(name === before[i] || name === '127.0.0.1:8084')
})

// A name that resolved to several addresses is one ring entry; its keys alternate over
// the addresses by smooth weighted round robin.
test('hash consistent: a name with several addresses shares its points', () => {
  const h = new Harness([{ name: 'web:80', host: '10.0.0.1' }, { name: 'web:80', host: '10.0.0.2' }, { name: 'api:80', host: '10.0.0.3' }], 'hash', ['$request_uri', 'consistent'])
  const ring = buildRing([{ name: 'web:80', weight: 1 }, { name: 'api:80', weight: 1 }])
  const url = Array.from({ length: 100 }, (_, i) => `/w/${i}`).find((u) => ring.owners[firstPointAtOrAfter(ring.hashes, crc32(u)) % ring.hashes.length] === 0)!
  const got = Array.from({ length: 4 }, () => {
    const peer = h.hold(requestVars({ url }))!
    h.release(peer)
    return peer.server.host
  })
  assert.deepEqual(got, ['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2'])
})

// ---- config ----------------------------------------------------------------------------

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? null
const U = (body: string): string =>
  `events {}\nhttp {\nupstream u {\n${body}\n}\nserver { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n}\n`
const errors: Array<{ what: string; body: string; error: string; nginx?: boolean }> = [
  { what: 'hash needs a key', body: 'hash;\nserver 127.0.0.1;', error: 'invalid number of arguments in "hash" directive in {file}:4', nginx: true },
  { what: 'hash takes at most two arguments', body: 'hash $request_uri consistent extra;\nserver 127.0.0.1;', error: 'invalid number of arguments in "hash" directive in {file}:4', nginx: true },
  { what: 'only "consistent" after the key', body: 'hash $request_uri ketama;\nserver 127.0.0.1;', error: 'invalid parameter "ketama" in {file}:4', nginx: true },
  // nginx checks the parameter first and the variables once the config is read.
  { what: 'the parameter before the variables', body: 'hash $nope ketama;\nserver 127.0.0.1;', error: 'invalid parameter "ketama" in {file}:4', nginx: true },
  // nginx says `unknown "nope" variable` without a line; switchyard names it.
  { what: 'an unknown variable in the key', body: 'hash $nope;\nserver 127.0.0.1;', error: 'unknown "nope" variable in {file}:4' },
  { what: 'hash has no backup', body: 'hash $request_uri;\nserver 127.0.0.1;\nserver 127.0.0.2 backup;', error: 'balancing method does not support parameter "backup" in {file}:6', nginx: true },
  { what: 'consistent hash has no backup', body: 'hash $request_uri consistent;\nserver 127.0.0.1 backup;', error: 'balancing method does not support parameter "backup" in {file}:5', nginx: true },
  { what: 'hash has no slow_start', body: 'hash $request_uri;\nserver 127.0.0.1 slow_start=1s;', error: 'balancing method does not support parameter "slow_start=1s" in {file}:5' },
  { what: 'two balancing methods', body: 'hash $uri;\nip_hash;\nserver 127.0.0.1;', error: 'load balancing method redefined in {file}:5' },
  // The tutorial's url_hash: CRC-32 is the only method.
  { what: 'hash_method other than crc32', body: 'hash $request_uri;\nhash_method md5;\nserver 127.0.0.1;', error: 'invalid value "md5" in "hash_method" directive, it must be "crc32" in {file}:5' },
  { what: 'hash_method twice', body: 'hash_method crc32;\nhash_method crc32;\nserver 127.0.0.1;', error: '"hash_method" directive is duplicate in {file}:5' },
  { what: 'hash_method takes one value', body: 'hash_method;\nserver 127.0.0.1;', error: 'invalid number of arguments in "hash_method" directive in {file}:4' },
  { what: 'hash_method only inside upstream', body: 'server 127.0.0.1;\n}\nserver {\nhash_method crc32;', error: '"hash_method" directive is not allowed here in {file}:7' },
]
const work = mkdtempSync(join(tmpdir(), 'switchyard-hash-'))
after(() => rmSync(work, { recursive: true, force: true }))
const fileFor = (i: number): string => join(work, `case-${i}.conf`)
for (const [i, c] of errors.entries()) writeFileSync(fileFor(i), U(c.body))

for (const [i, c] of errors.entries()) {
  // Protects one config error's exact text and line: the row's `what`.
  test(`hash config: ${c.what}`, async () => {
    await assert.rejects(loadConfig(fileFor(i), { resolveHost: async () => [] }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.message, c.error.replace('{file}', fileFor(i)))
      return true
    })
  })
}

// Where a row claims nginx's wording, Debian's nginx -t agrees.
test('hash config: nginx -t gives the same errors', { skip: NGINX === null ? 'nginx is not installed' : false }, () => {
  for (const [i, c] of errors.entries()) {
    if (!c.nginx) continue
    const run = spawnSync(NGINX!, ['-t', '-p', work, '-c', fileFor(i)], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(/\[emerg\] \d+#\d+: (.*)$/m.exec(run.stderr ?? '')?.[1], c.error.replace('{file}', fileFor(i)), c.what)
  }
})

// What builds: the key as written, the mode, the tutorial's url_hash with hash_method, and
// an empty key (nginx accepts `hash "";`, which balances by round robin).
test('hash config: the key, the mode and hash_method build', async () => {
  const rows: Array<[body: string, key: string, consistent: boolean]> = [
    ['hash $request_uri;\nhash_method crc32;', '$request_uri', false],
    ['hash_method crc32;\nhash "$host$uri" consistent;', '$host$uri', true],
    ['hash "";', '', false],
  ]
  for (const [i, [body, key, consistent]] of rows.entries()) {
    const file = join(work, `good-${i}.conf`)
    writeFileSync(file, U(`${body}\nserver 127.0.0.1 weight=2 max_fails=3 fail_timeout=5s max_conns=9;\nserver 127.0.0.2 down;`))
    const balancer = (await loadConfig(file)).http.upstreams.get('u')!.balancer
    assert.equal(balancer.method, 'hash', body)
    const options = balancer.options as { key: { text: string }; consistent: boolean }
    assert.deepEqual([options.key.text, options.consistent], [key, consistent], body)
  }
})
