// ip_hash and hash under Debian's nginx and under switchyard, same config, same backends,
// same requests: every client address and every key must land on the same backend —
// users migrating from nginx keep their sessions and cache shards only if it does.
// Requests go one after another (a refused peer's failure state then evolves the same way
// in both), so each scenario is a few hundred loopback requests per balancer.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, send, upstreams, type TestUpstream } from '../helpers/net.js'
import { proxyConfig, underBoth } from '../helpers/nginx.js'

const servers: TestUpstream[] = []
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

/** One request: the client source address (null = 127.0.0.1) and the request target. */
interface Probe {
  readonly from: string | null
  readonly path: string
}

/** 240 client addresses 127.A.B.C with all three octets varying (Linux routes all of
 *  127/8 to lo, so a client may bind any of them). */
const clients: Probe[] = Array.from({ length: 240 }, (_, i) => ({
  from: `127.${1 + ((i * 37) % 254)}.${(i * 91 + 7) % 256}.${1 + ((i * 53) % 254)}`,
  path: '/',
}))

/** 320 request targets: paths, query strings, encoded bytes, repeats of a shape. */
const uris: Probe[] = Array.from({ length: 320 }, (_, i) => ({
  from: null,
  path: [`/item/${i}`, `/static/${i % 17}/app-${i}.js`, `/search?q=${i}&page=${i % 5}`, `/a%20b/${i}/%C3%A9`][i % 4]!,
}))

/** Which backend (0, 1, 2; -1 for anything but a 200) answered each probe. */
async function run(port: number, ports: number[], probes: readonly Probe[]): Promise<number[]> {
  const out: number[] = []
  for (const probe of probes) {
    const r = await send(port, probe.from === null ? { path: probe.path } : { path: probe.path, localAddress: probe.from })
    out.push(r.status === 200 ? ports.indexOf(Number(r.headers['x-port'])) : -1)
  }
  return out
}

/** Run `probes` through nginx, then through switchyard, on the same upstream block (the
 *  backends' ports and a refused `dead` port are filled in by `body`). */
async function compare(body: (ports: number[], dead: number) => string, probes: readonly Probe[]): Promise<{ nginx: number[]; switchyard: number[] }> {
  const ups = await upstreams(3)
  servers.push(...ups)
  const ports = ups.map((u) => u.port)
  const dead = await freePort()
  return underBoth((listen) => proxyConfig('pool', body(ports, dead), listen), (port) => run(port, ports, probes))
}

/** The probes whose backend differs, readable in a failure message. */
function differences(probes: readonly Probe[], r: { nginx: number[]; switchyard: number[] }): string[] {
  return probes.flatMap((p, i) => (r.nginx[i] === r.switchyard[i] ? [] : [`${p.from ?? ''} ${p.path}: nginx ${r.nginx[i]}, switchyard ${r.switchyard[i]}`]))
}

const scenarios: Array<{ what: string; body: (ports: number[], dead: number) => string; probes: readonly Probe[]; spread: number }> = [
  // ip_hash's /24 key and weight walk.
  { what: 'ip_hash, weights 1/1/1', probes: clients, spread: 3, body: ([a, b, c]) => `ip_hash; server 127.0.0.1:${a}; server 127.0.0.1:${b}; server 127.0.0.1:${c};` },
  // ip_hash rehashing past a down peer that keeps its place in the walk.
  { what: 'ip_hash, weights 3/1/2, the first down', probes: clients, spread: 2, body: ([a, b, c]) => `ip_hash; server 127.0.0.1:${a} weight=3 down; server 127.0.0.1:${b}; server 127.0.0.1:${c} weight=2;` },
  // ip_hash retrying after a refused connection (max_fails=0: on every request that maps
  // to it) continues the request's hash.
  { what: 'ip_hash, one peer refuses connections', probes: clients, spread: 2, body: ([a, , c], dead) => `ip_hash; server 127.0.0.1:${a}; server 127.0.0.1:${dead} weight=2 max_fails=0; server 127.0.0.1:${c};` },
  // A heavy refusing peer: retries often meet it 20 times and fall back to round robin,
  // so the request's count of rehashes must be nginx's to the one.
  { what: 'ip_hash, the 20-rehash limit', probes: clients, spread: 2, body: ([a, , c], dead) => `ip_hash; server 127.0.0.1:${a}; server 127.0.0.1:${dead} weight=30 max_fails=0; server 127.0.0.1:${c};` },
  // The Cache::Memcached mapping of $request_uri.
  { what: 'hash $request_uri, weights 1/2/1', probes: uris, spread: 3, body: ([a, b, c]) => `hash $request_uri; server 127.0.0.1:${a}; server 127.0.0.1:${b} weight=2; server 127.0.0.1:${c};` },
  // Its rehash ("1KEY", "2KEY", …) past a down peer.
  { what: 'hash $request_uri, the second down', probes: uris, spread: 2, body: ([a, b, c]) => `hash $request_uri; server 127.0.0.1:${a}; server 127.0.0.1:${b} down; server 127.0.0.1:${c};` },
  // Its rehash across retries of one request (max_fails=0: every request mapped there).
  { what: 'hash $request_uri, one peer refuses connections', probes: uris, spread: 2, body: ([a, , c], dead) => `hash $request_uri; server 127.0.0.1:${a}; server 127.0.0.1:${dead} max_fails=0; server 127.0.0.1:${c};` },
  // The 20-rehash limit (see ip_hash's).
  { what: 'hash $request_uri, the 20-rehash limit', probes: uris, spread: 2, body: ([a, , c], dead) => `hash $request_uri; server 127.0.0.1:${a}; server 127.0.0.1:${dead} weight=30 max_fails=0; server 127.0.0.1:${c};` },
  // The ketama ring built from the servers as written, weights included.
  { what: 'hash $request_uri consistent, weights 1/1/2', probes: uris, spread: 3, body: ([a, b, c]) => `hash $request_uri consistent; server 127.0.0.1:${a}; server 127.0.0.1:${b}; server 127.0.0.1:${c} weight=2;` },
  // The next ring point past a down server.
  { what: 'hash $request_uri consistent, the third down', probes: uris, spread: 2, body: ([a, b, c]) => `hash $request_uri consistent; server 127.0.0.1:${a}; server 127.0.0.1:${b}; server 127.0.0.1:${c} weight=2 down;` },
  // The next ring point across retries of one request (max_fails=0: every time).
  { what: 'hash $request_uri consistent, one peer refuses connections', probes: uris, spread: 2, body: ([a, b], dead) => `hash $request_uri consistent; server 127.0.0.1:${a}; server 127.0.0.1:${b}; server 127.0.0.1:${dead} max_fails=0;` },
  // The 20-point limit: runs of a down and a heavy refusing server's points end in round
  // robin, and a retry resumes at the point the first pick stopped at.
  { what: 'hash $request_uri consistent, the 20-point limit', probes: uris, spread: 2, body: ([a, b, c], dead) => `hash $request_uri consistent; server 127.0.0.1:${a}; server 127.0.0.1:${b} weight=10 down; server 127.0.0.1:${dead} weight=20 max_fails=0; server 127.0.0.1:${c};` },
]

for (const s of scenarios) {
  test(`differential: ${s.what} (${s.probes.length} ${s.probes === clients ? 'client addresses' : 'URIs'})`, async () => {
    const r = await compare(s.body, s.probes)
    assert.ok(!r.nginx.includes(-1), 'nginx answered every request')
    assert.equal(new Set(r.nginx).size, s.spread, 'the probes reach every live backend under nginx')
    assert.deepEqual(differences(s.probes, r), [])
  })
}
