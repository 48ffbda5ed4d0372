// limit_req / limit_conn as config: nginx's units (milli-requests), defaults, and the
// array rule (a level with any limit_req replaces the outer list).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../src/config/load.js'

const FILE = '/etc/switchyard/limits.conf'
const build = (http: string) => parseConfigText(`events {}\nhttp {\n${http}\n}\n`, FILE, { resolveHost: async () => ['10.0.0.1'] })

// nginx keeps rates in thousandths (1r/m is 16), burst and delay as N × 1000.
test('zones and limits in nginx units, with their defaults', async () => {
  const c = await build(`limit_req_zone $binary_remote_addr zone=perip:10m rate=1r/m;
limit_req_zone $server_name zone=fast:1m rate=20r/s;
limit_req_zone "" zone=bare:32k rate=5;
limit_conn_zone $binary_remote_addr zone=conns:1m;
server { listen 8080; location / { limit_req zone=perip burst=5 delay=2; limit_req zone=fast nodelay; limit_conn conns 10; proxy_pass http://known:80; } }`)
  const zones = c.http.limitZones
  assert.deepEqual([...zones.values()].map((z) => [z.name, z.kind, z.size, z.kind === 'req' ? z.rate : null, z.key.text]), [
    ['perip', 'req', 10 * 1024 * 1024, 16, '$binary_remote_addr'],
    ['fast', 'req', 1024 * 1024, 20_000, '$server_name'],
    ['bare', 'req', 32 * 1024, 5000, ''],
    ['conns', 'conn', 1024 * 1024, null, '$binary_remote_addr'],
  ])
  const l = c.http.servers[0]!.locations[0]!.settings.limits
  assert.deepEqual(l.req.map((r) => [r.zone.name, r.burst, r.delay]), [['perip', 5000, 2000], ['fast', 0, Number.MAX_SAFE_INTEGER]])
  assert.deepEqual(l.conn.map((r) => [r.zone.name, r.conn]), [['conns', 10]])
  assert.deepEqual([l.reqStatus, l.reqLogLevel, l.reqDryRun, l.connStatus, l.connLogLevel, l.connDryRun], [503, 'error', false, 503, 'error', false])
})

// A zone may be defined after the limit that names it (nginx resolves zones at the end).
test('a limit may come before its zone', async () => {
  const c = await build(`server { listen 8080; limit_req zone=later; }
limit_req_zone $binary_remote_addr zone=later:1m rate=1r/s;`)
  assert.equal(c.http.servers[0]!.settings.limits.req[0]!.zone.name, 'later')
})

// limit_req and limit_conn are inherited only by a level with none of its own; the
// single-value ones inherit one by one.
test('inheritance: lists as a whole, single values one by one', async () => {
  const c = await build(`limit_req_zone $binary_remote_addr zone=a:1m rate=1r/s;
limit_req_zone $binary_remote_addr zone=b:1m rate=1r/s;
limit_conn_zone $binary_remote_addr zone=c:1m;
limit_req zone=a; limit_req_status 429; limit_conn c 5; limit_conn_dry_run on;
server { listen 8080;
  location /inherit { proxy_pass http://known:80; }
  location /own { limit_req zone=b burst=1; limit_req_log_level warn; proxy_pass http://known:80; }
}`)
  const [inherit, own] = c.http.servers[0]!.locations.map((l) => l.settings.limits)
  assert.deepEqual(inherit!.req.map((r) => r.zone.name), ['a'])
  assert.deepEqual(own!.req.map((r) => r.zone.name), ['b'])
  assert.deepEqual([own!.reqStatus, own!.reqLogLevel, own!.conn.length, own!.connDryRun], [429, 'warn', 1, true])
  assert.deepEqual([inherit!.reqStatus, inherit!.reqLogLevel], [429, 'error'])
})
