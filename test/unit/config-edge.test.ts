// The edge directives: defaults, inheritance (allow/deny as an array rule), errors with
// FILE:LINE, and the CIDR matcher they rely on.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../src/config/load.js'
import { addressWords, cidrMatches, parseCidr, type Cidr } from '../../src/config/cidr.js'
import { accessDenied } from '../../src/proxy/edge.js'

const FILE = '/etc/switchyard/edge.conf'
const build = (http: string) => parseConfigText(`events {}\nhttp {\n${http}\n}\n`, FILE, { resolveHost: async () => ['10.0.0.1'] })

// nginx's defaults when nothing is written.
test('defaults: 60s timeouts, keepalive 75s, buffers 4 8k, no rules, X-Real-IP', async () => {
  const c = await build('server { listen 8080; location / { proxy_pass http://known:80; } }')
  const e = c.http.servers[0]!.locations[0]!.settings.edge
  assert.deepEqual([e.clientHeaderTimeout, e.clientBodyTimeout, e.sendTimeout, e.keepaliveTimeout], [60_000, 60_000, 60_000, 75_000])
  assert.deepEqual(e.largeClientHeaderBuffers, { number: 4, size: 8192 })
  assert.deepEqual([e.access.length, e.realIp.from.length, e.realIp.header, e.realIp.recursive], [0, 0, 'x-real-ip', false])
})

// allow/deny at a level replace the outer list as a whole (nginx's array rule).
test('allow/deny inherit only when a level has none', async () => {
  const c = await build('deny 10.0.0.0/8; allow all;\nserver { listen 8080; send_timeout 5s;\n location /a { proxy_pass http://known:80; }\n location /b { allow 10.1.0.0/16; deny all; proxy_pass http://known:80; } }')
  const [a, b] = c.http.servers[0]!.locations.map((l) => l.settings.edge)
  assert.deepEqual(a!.access.map((r) => `${r.allow ? 'allow' : 'deny'} ${r.cidr.text}`), ['deny 10.0.0.0/8', 'allow all'])
  assert.deepEqual(b!.access.map((r) => `${r.allow ? 'allow' : 'deny'} ${r.cidr.text}`), ['allow 10.1.0.0/16', 'deny all'])
  assert.equal(a!.sendTimeout, 5000)
  assert.equal(accessDenied(a!.access, '10.1.2.3'), true)
  assert.equal(accessDenied(b!.access, '10.1.2.3'), false)
  assert.equal(accessDenied(b!.access, '10.2.0.1'), true)
})

const errors: Array<[string, string, string]> = [
  ['a bad CIDR', 'allow 10.0.0.0/33;', `invalid parameter "10.0.0.0/33" in ${FILE}:3`],
  ['a name in allow', 'deny example.com;', `invalid parameter "example.com" in ${FILE}:3`],
  ['client_header_timeout in location', 'server { location / { client_header_timeout 5s; } }', `"client_header_timeout" directive is not allowed here in ${FILE}:3`],
  ['keepalive_timeout in location', 'server { location / { keepalive_timeout 5s; } }', `"keepalive_timeout" directive is not supported inside "location" by switchyard yet in ${FILE}:3`],
  ['a bad time', 'send_timeout 5x;', `"send_timeout" directive invalid value in ${FILE}:3`],
  ['a duplicate', 'send_timeout 5s; send_timeout 6s;', `"send_timeout" directive is duplicate in ${FILE}:3`],
  ['real_ip_recursive maybe', 'real_ip_recursive maybe;', `invalid value "maybe" in "real_ip_recursive" directive, it must be "on" or "off" in ${FILE}:3`],
  ['large_client_header_buffers 0', 'large_client_header_buffers 0 8k;', `invalid value "0 8k" in ${FILE}:3`],
]
for (const [what, text, message] of errors) {
  // Each row: the exact nginx-style message with FILE:LINE.
  test(`config error: ${what}`, async () => {
    await assert.rejects(build(text), (err: Error) => {
      assert.equal(err.message, message)
      return true
    })
  })
}

// CIDR matching for both families, IPv4-mapped IPv6 as IPv4, host bits cleared.
test('cidr matching', () => {
  const m = (cidr: string, ip: string): boolean => cidrMatches(parseCidr(cidr) as Cidr, addressWords(ip)!)
  assert.equal(m('10.0.0.0/8', '10.255.1.1'), true)
  assert.equal(m('10.0.0.0/8', '11.0.0.1'), false)
  assert.equal(m('10.1.2.3/16', '10.1.99.1'), true)
  assert.equal(m('192.0.2.1', '192.0.2.1'), true)
  assert.equal(m('192.0.2.1', '192.0.2.2'), false)
  assert.equal(m('10.0.0.0/8', '::ffff:10.0.0.1'), true)
  assert.equal(m('2001:db8::/32', '2001:db8:1::5'), true)
  assert.equal(m('2001:db8::/32', '2001:db9::5'), false)
  assert.equal(m('::1', '::1'), true)
  assert.equal(m('10.0.0.0/8', '::1'), false)
  assert.equal(m('all', '::1'), true)
  assert.equal(m('0.0.0.0/0', '8.8.8.8'), true)
})
