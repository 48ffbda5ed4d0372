// sticky (nginx 1.29.6+, ngx_http_upstream_sticky_module.c): a request naming an eligible
// server goes there, anything else is balanced by the wrapped method, and `sticky cookie`
// names the answering server on every response.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cookieTime, parseSticky, serverId } from '../../src/balancer/policies/sticky.js'
import { Harness, requestVars } from '../helpers/policy-harness.js'
import type { Peer } from '../../src/upstream/peer.js'
import type { ServerSpec } from '../helpers/upstream-config.js'

const equal: ServerSpec[] = [{ name: '10.0.0.1:80' }, { name: '10.0.0.2:80' }, { name: '10.0.0.3:80' }]
/** a, b, c for 10.0.0.1, .2, .3. */
const letter = (p: Peer | undefined): string => (p === undefined ? '-' : 'abc'[Number(p.address.split('.')[3]!.split(':')[0]) - 1]!)

/** The id nginx gives 10.0.0.N:80 (MD5 of the printable address). */
const idOf = (h: Harness, n: number): string => serverId(h.upstream.peers[n]!)

// nginx's server id is the MD5 in hex of the printable socket address.
test('sticky: the server id is the MD5 of its address, or its route=', () => {
  const h = new Harness([{ name: '127.0.0.1:4000' }, { name: '127.0.0.1:4001', route: 'blue' }], 'sticky', ['cookie', 'srv'])
  assert.equal(serverId(h.upstream.peers[0]!), '99ab61779bfb0faa85122ee2dd523ea8')
  assert.equal(serverId(h.upstream.peers[1]!), 'blue')
})

// Golden (round robin under sticky): bound requests go to c, and the round-robin weights
// move as if round robin had chosen c, until c is a whole round ahead; unbound requests
// keep rotating: c a c b c a (nginx's ngx_http_upstream_get_peer with a hint).
test('sticky over round robin: bound and unbound requests interleaved', () => {
  const h = new Harness(equal, 'sticky', ['cookie', 'srv'])
  const bound = requestVars({ headers: { cookie: `other=1; srv=${idOf(h, 2)}` } })
  const unbound = requestVars()
  const got: string[] = []
  for (let i = 0; i < 6; i++) {
    const peer = h.hold(i % 2 === 0 ? bound : unbound)!
    got.push(letter(peer))
    h.release(peer)
  }
  assert.equal(got.join(' '), 'c a c b c a')
})

// The bound server is taken over a less busy one (least_conn under sticky), and an unknown
// id is balanced as new.
test('sticky over least_conn: the cookie wins over load; an unknown id does not', () => {
  const h = new Harness(equal, 'sticky', ['cookie', 'srv'], { directive: 'least_conn' })
  const toA = requestVars({ headers: { cookie: `srv=${idOf(h, 0)}` } })
  assert.equal(letter(h.hold(toA)), 'a')
  assert.equal(letter(h.hold(toA)), 'a', 'a is busier but bound')
  assert.equal(letter(h.hold(requestVars({ headers: { cookie: 'srv=0123' } }))), 'b')
})

// A bound server that is down, failed, full or already tried: the request is balanced as
// new, and the response's cookie names the server that answered.
test('sticky: an ineligible bound server is replaced and the cookie re-issued', () => {
  const h = new Harness([{ name: '10.0.0.1:80', maxConns: 1 }, { name: '10.0.0.2:80' }], 'sticky', ['cookie', 'srv'])
  const toA = requestVars({ headers: { cookie: `srv=${idOf(h, 0)}` } })
  const first = h.selection(toA)
  const a = h.upstream.select(first)!
  assert.equal(letter(a), 'a')
  const second = h.selection(toA)
  const other = h.upstream.select(second)!
  assert.equal(letter(other), 'b', 'a is at max_conns')
  assert.deepEqual(h.upstream.responded(other, 5, second), ['set-cookie', `srv=${idOf(h, 1)}`])
  // The same request retried after a failed attempt on its bound server moves on too.
  const retry = h.selection(requestVars({ headers: { cookie: `srv=${idOf(h, 1)}` } }))
  const b = h.upstream.select(retry)!
  h.release(b, { failed: true })
  assert.equal(letter(h.upstream.select(retry)), '-', 'a is still full; b was tried')
})

// The cookie's attributes, in nginx's order: expires (relative, with max-age), domain,
// httponly, secure, samesite, path.
const cookies: Array<{ args: string[]; expect: string }> = [
  { args: ['cookie', 'srv'], expect: 'srv={id}' },
  {
    args: ['cookie', 'srv', 'path=/', 'samesite=lax', 'secure', 'httponly', 'domain=.example.com', 'expires=1h'],
    expect: 'srv={id}; expires=Thu, 01-Jan-70 01:16:40 GMT; max-age=3600; domain=.example.com; httponly; secure; samesite=lax; path=/',
  },
  { args: ['cookie', 'srv', 'expires=max'], expect: 'srv={id}; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000' },
  { args: ['cookie', 'srv', 'domain=$host'], expect: 'srv={id}; domain=h' },
]
for (const row of cookies) {
  test(`sticky ${row.args.join(' ')}: Set-Cookie as nginx writes it`, () => {
    const h = new Harness(equal, 'sticky', row.args)
    const sel = h.selection()
    const peer = h.upstream.select(sel)!
    // The clock stands at 1 000 000 ms: 00:16:40 on 1 January 1970.
    assert.deepEqual(h.upstream.responded(peer, 1, sel), ['set-cookie', row.expect.replace('{id}', serverId(peer))])
  })
}

// nginx's cookie dates: two-digit years up to 2037, four after.
test('sticky: cookie dates', () => {
  assert.equal(cookieTime(0), 'Thu, 01-Jan-70 00:00:00 GMT')
  assert.equal(cookieTime(Date.UTC(2037, 11, 31, 23, 55, 55) / 1000), 'Thu, 31-Dec-37 23:55:55 GMT')
  assert.equal(cookieTime(Date.UTC(2038, 0, 19, 3, 14, 8) / 1000), 'Tue, 19-Jan-2038 03:14:08 GMT')
})

// sticky route: the first non-empty variable names the server by its route=; no cookie.
test('sticky route $cookie_route $arg_route: route= ids, no cookie', () => {
  const h = new Harness([{ name: '10.0.0.1:80', route: 'a' }, { name: '10.0.0.2:80', route: 'b' }], 'sticky', ['route', '$cookie_route', '$arg_route'])
  const viaArg = h.selection(requestVars({ url: '/x?route=b' }))
  const peer = h.upstream.select(viaArg)!
  assert.equal(letter(peer), 'b')
  assert.equal(h.upstream.responded(peer, 1, viaArg), undefined)
  assert.equal(letter(h.hold(requestVars({ url: '/x?route=a', headers: { cookie: 'route=b' } }))), 'b', 'the cookie comes first')
})

// The directive's arguments: nginx's messages, word for word.
const errors: Array<{ args: string[]; message: string }> = [
  { args: ['cookie', ''], message: '"sticky" directive empty cookie name' },
  { args: ['cookie', 'srv', 'domain='], message: '"sticky" directive no value for "domain"' },
  { args: ['cookie', 'srv', 'path='], message: '"sticky" directive no value for "path"' },
  { args: ['cookie', 'srv', 'expires=soon'], message: '"sticky" directive invalid "expires" parameter value' },
  { args: ['cookie', 'srv', 'expires=1h', 'expires=2h'], message: '"sticky" directive parameter "expires" is duplicate' },
  { args: ['cookie', 'srv', 'secure', 'secure'], message: '"sticky" directive parameter "secure" is duplicate' },
  { args: ['cookie', 'srv', 'samesite=sometimes'], message: '"sticky" directive invalid "samesite" parameter value' },
  { args: ['cookie', 'srv', 'max-age=3'], message: 'unknown parameter "max-age=3"' },
  { args: ['route', 'cookie_x'], message: 'invalid variable name "cookie_x"' },
  { args: ['route', '$nosuch'], message: 'unknown "nosuch" variable' },
  { args: ['session', 'x'], message: 'unknown parameter "session"' },
  { args: ['learn', 'create=$x'], message: '"sticky learn" is not supported by switchyard yet' },
]
for (const row of errors) {
  test(`sticky ${row.args.join(' ')}: ${row.message}`, () => {
    assert.throws(() => parseSticky(row.args), { message: row.message })
  })
}
