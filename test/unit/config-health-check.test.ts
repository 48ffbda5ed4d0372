// `health_check` and `match` (NGINX Plus syntax) → the model, and their errors with FILE:LINE.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../../src/config/load.js'
import { ConfigError } from '../../src/config/errors.js'
import type { Config } from '../../src/config/model.js'

const FILE = '/etc/switchyard/lb.conf'
const resolveHost = async (host: string): Promise<string[]> => (host === 'backend' ? ['10.0.0.1'] : [])
const build = (text: string): Promise<Config> => parseConfigText(text, FILE, { resolveHost })

// http body starts at line 3; the location body at line 7.
const conf = (location: string, extra = '', server = 'listen 8080;'): string =>
  `events {}\nhttp {\nupstream u { server 127.0.0.1:4000; server 127.0.0.1:4001; }\n${extra}\nserver {\n${server}\nlocation / {\nproxy_pass http://u;\n${location}\n}\n}\n}\n`

// Defaults are NGINX Plus's: every 5 s, 1 fail, 1 pass, GET /, 2xx/3xx pass; timeouts and
// Host come from the location.
test('health_check with no parameters takes NGINX Plus defaults and the location settings', async () => {
  const config = await build(conf('health_check;\nproxy_connect_timeout 2s;'))
  const check = config.http.upstreams.get('u')!.healthCheck!
  assert.deepEqual({ ...check, source: null }, {
    source: null, interval: 5000, jitter: 0, fails: 1, passes: 1, uri: '/', port: null, match: null,
    mandatory: false, persistent: false, connectTimeout: 2000, readTimeout: 60_000, host: 'u',
  })
  assert.deepEqual(check.source, { file: FILE, line: 9 })
})

// Every parameter, a match block defined after its user, and proxy_set_header Host $host
// evaluated without a client (the server name).
test('every parameter, match resolved, Host from proxy_set_header', async () => {
  const config = await build(conf(
    'health_check interval=1s jitter=100ms fails=3 passes=2 uri=/healthz port=9000 match=ok mandatory persistent;\nproxy_set_header Host $host;',
    '',
    'listen 8080; server_name api.example.test;',
  ).replace('}\n}\n}\n', '}\n}\nmatch ok { status 200-299 304; header Content-Type ~ json; header ! X-Broken; body !~ "maintenance"; }\n}\n'))
  const check = config.http.upstreams.get('u')!.healthCheck!
  assert.equal(check.interval, 1000)
  assert.equal(check.jitter, 100)
  assert.equal(check.fails, 3)
  assert.equal(check.passes, 2)
  assert.equal(check.uri, '/healthz')
  assert.equal(check.port, 9000)
  assert.equal(check.mandatory, true)
  assert.equal(check.persistent, true)
  assert.equal(check.host, 'api.example.test')
  const match = check.match!
  assert.deepEqual(match.status, { negate: false, ranges: [[200, 299], [304, 304]] })
  assert.deepEqual(match.headers.map((h) => [h.name, h.op, h.value]), [['content-type', '~', 'json'], ['x-broken', 'absent', '']])
  assert.equal(match.body!.negate, true)
  assert.ok(match.body!.regex.test('under maintenance'))
})

// Two locations proxying to one upstream with the same check share one prober.
test('identical checks in two locations share the upstream check', async () => {
  const text = `events {}\nhttp {\nupstream u { server 127.0.0.1:4000; }\nserver {\nlisten 8080;\nlocation /a { proxy_pass http://u; health_check interval=2s; }\nlocation /b { proxy_pass http://u; health_check interval=2s; }\n}\n}\n`
  const config = await build(text)
  assert.equal(config.http.upstreams.get('u')!.healthCheck!.source.line, 6)
})

test('an upstream without health_check has none', async () => {
  const config = await build(conf(''))
  assert.equal(config.http.upstreams.get('u')!.healthCheck, undefined)
})

const bad: Array<{ what: string; text: string; error: string }> = [
  { what: 'unknown parameter', text: conf('health_check frobnicate;'), error: 'invalid parameter "frobnicate" in {file}:9' },
  { what: 'interval=0', text: conf('health_check interval=0;'), error: 'invalid parameter "interval=0" in {file}:9' },
  { what: 'fails=0', text: conf('health_check fails=0;'), error: 'invalid parameter "fails=0" in {file}:9' },
  { what: 'port out of range', text: conf('health_check port=70000;'), error: 'invalid parameter "port=70000" in {file}:9' },
  { what: 'persistent without mandatory', text: conf('health_check persistent;'), error: '"persistent" requires "mandatory" in {file}:9' },
  { what: 'gRPC checks', text: conf('health_check type=grpc;'), error: 'parameter "type=grpc" of the "health_check" directive is not supported by switchyard yet in {file}:9' },
  { what: 'match that is not defined', text: conf('health_check match=nope;'), error: 'match "nope" not found in {file}:9' },
  { what: 'health_check outside a location', text: conf('', '', 'listen 8080; health_check;'), error: '"health_check" directive is not allowed here in {file}:6' },
  { what: 'health_check where nothing is proxied', text: `events {}\nhttp {\nserver {\nlocation / { health_check; }\n}\n}\n`, error: '"health_check" requires "proxy_pass" in the same location in {file}:4' },
  { what: 'two checks in one location', text: conf('health_check;\nhealth_check uri=/x;'), error: 'more than one "health_check" directive in a location is not supported by switchyard yet in {file}:10' },
  {
    what: 'different checks for one upstream',
    text: `events {}\nhttp {\nupstream u { server 127.0.0.1:4000; }\nserver {\nlisten 8080;\nlocation /a { proxy_pass http://u; health_check; }\nlocation /b { proxy_pass http://u; health_check uri=/b; }\n}\n}\n`,
    error: `a second, different "health_check" for upstream "u" (the first is in ${FILE}:6) is not supported by switchyard yet in {file}:7`,
  },
  { what: 'match outside http', text: conf('match m { status 200; }'), error: '"match" directive is not allowed here in {file}:9' },
  { what: 'match defined twice', text: conf('', 'match m { status 200; }\nmatch m { status 204; }'), error: 'duplicate match "m" in {file}:5' },
  { what: 'bad status in match', text: conf('', 'match m { status 2xx; }'), error: 'invalid status "2xx" in {file}:4' },
  { what: 'status range upside down', text: conf('', 'match m { status 399-200; }'), error: 'invalid status "399-200" in {file}:4' },
  { what: 'bad header operator', text: conf('', 'match m { header X-A >= 1; }'), error: 'invalid operator ">=" in {file}:4' },
  { what: 'bad body regex', text: conf('', 'match m { body ~ "("; }'), error: 'invalid regular expression "(": Unterminated group in {file}:4' },
  { what: 'body without an operator', text: conf('', 'match m { body "x"; }'), error: 'invalid number of arguments in "body" directive in {file}:4' },
  { what: 'unknown directive in match', text: conf('', 'match m { frob 1; }'), error: 'unknown directive "frob" in {file}:4' },
  { what: 'stream-only send in match', text: conf('', 'match m { send "x"; }'), error: '"send" directive is not supported inside "match" by switchyard yet in {file}:4' },
]

for (const row of bad) {
  // Each bad config fails with this exact message and line.
  test(`error: ${row.what}`, async () => {
    await assert.rejects(build(row.text), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.message, row.error.replaceAll('{file}', FILE))
      return true
    })
  })
}
