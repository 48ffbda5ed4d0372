// Good configs → the model: the tutorial's config, defaults, http → server → location
// inheritance, implicit upstreams, listen addresses and host name resolution.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { loadConfig, parseConfigText } from '../../src/config/load.js'
import { parseConfigFile } from '../../src/config/parser.js'
import type { Config, LocationSettings } from '../../src/config/model.js'
import type { RequestVariables } from '../../src/config/variables.js'

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/config/', import.meta.url))
const FILE = '/etc/switchyard/lb.conf'

/** Deterministic DNS for tests: these names resolve, everything else is "not found". */
const hosts: Record<string, string[]> = {
  backend: ['10.0.0.1'],
  twin: ['10.0.0.1', '10.0.0.2'],
  server1: ['10.0.1.1'],
  server2: ['10.0.1.2'],
  squid1: ['10.0.2.1'],
  squid2: ['10.0.2.2'],
}
const resolveHost = async (host: string): Promise<string[]> => hosts[host] ?? []

const build = (text: string): Promise<Config> => parseConfigText(text, FILE, { resolveHost })
const http = (body: string): Promise<Config> => build(`events {}\nhttp {\n${body}\n}\n`)

/** The settings of location `path` in the first server. */
function at(config: Config, path: string): LocationSettings {
  const location = config.http.servers[0]!.locations.find((l) => l.path === path)
  assert.ok(location, `location ${path}`)
  return location.settings
}

const vars = { req: { headers: { host: 'example.test' } }, remoteAddr: '192.0.2.7', scheme: 'http' } as unknown as RequestVariables

// The tutorial's nginx.conf (one newline restored, see the bad/ fixture) becomes the
// system the tutorial describes: weights 3/5/2, four headers, a 1 s connect timeout.
for (const [fixture, ip] of [['good/tutorial.conf', '192.168.14.93'], ['good/tutorial-local.conf', '127.0.0.1']] as const) {
  test(`tutorial config ${fixture} builds the tutorial's system`, async () => {
    const config = await loadConfig(join(FIXTURES, fixture))
    assert.equal(config.file, join(FIXTURES, fixture))
    assert.equal(config.events.workerConnections, 1024)
    const upstream = config.http.upstreams.get('servers_list')!
    assert.equal(upstream.implicit, false)
    assert.equal(upstream.balancer.method, 'round_robin')
    assert.deepEqual(
      upstream.servers.map((s) => [s.name, s.host, s.port, s.weight, s.maxFails, s.failTimeout]),
      [
        [`${ip}:4000`, ip, 4000, 3, 1, 10_000],
        [`${ip}:4001`, ip, 4001, 5, 1, 10_000],
        [`${ip}:4002`, ip, 4002, 2, 1, 10_000],
      ],
    )
    const [server] = config.http.servers
    assert.deepEqual(server!.listen.map((l) => [l.host, l.port, l.defaultServer]), [['0.0.0.0', 80, false]])
    const settings = at(config, '/')
    assert.deepEqual(settings.proxyPass && { ...settings.proxyPass, source: null }, {
      source: null,
      upstream: 'servers_list',
      uri: null,
      proxyHost: 'servers_list',
    })
    assert.deepEqual(
      settings.proxySetHeaders.map((h) => [h.name, h.key, h.value.text]),
      [
        ['Host', 'host', '$host'],
        ['X-Real-IP', 'x-real-ip', '$remote_addr'],
        ['X-Forwarded-For', 'x-forwarded-for', '$proxy_add_x_forwarded_for'],
        ['X-Forwarded-Proto', 'x-forwarded-proto', '$scheme'],
      ],
    )
    assert.equal(settings.proxySetHeaders[1]!.value.evaluate(vars), '192.0.2.7')
    assert.equal(settings.proxyConnectTimeout, 1000)
    assert.equal(settings.proxyReadTimeout, 60_000)
  })
}

// Every default from model.ts when nothing is written.
test('defaults match model.ts', async () => {
  const config = await build('http { server { location / { proxy_pass http://127.0.0.1:4000; } } }')
  assert.deepEqual(config.main, { workerProcesses: 1, pid: null, errorLog: { path: 'stderr', level: 'notice' }, admin: null })
  assert.equal(config.events.workerConnections, 512)
  const server = config.http.servers[0]!
  assert.deepEqual(server.serverNames, [''])
  assert.deepEqual(server.listen.map((l) => [l.host, l.port, l.defaultServer]), [['0.0.0.0', 80, false]])
  const s = at(config, '/')
  assert.equal(s.proxyConnectTimeout, 60_000)
  assert.equal(s.proxyReadTimeout, 60_000)
  assert.equal(s.proxySendTimeout, 60_000)
  assert.deepEqual(s.proxyNextUpstream, { error: true, timeout: true, invalidHeader: false, statuses: new Set(), nonIdempotent: false })
  assert.equal(s.proxyNextUpstreamTries, 0)
  assert.equal(s.proxyNextUpstreamTimeout, 0)
  assert.equal(s.proxyHttpVersion, '1.0')
  assert.equal(s.clientMaxBodySize, 1024 * 1024)
  assert.equal(s.clientBodyBufferSize, 16 * 1024)
  assert.equal(s.proxyRequestBuffering, true)
  assert.equal(s.edge.keepaliveRequests, 1000)
  assert.equal(s.accessLog, null)
  assert.deepEqual(s.proxySetHeaders, [])
  const upstream = config.http.upstreams.get('127.0.0.1:4000')!
  assert.equal(upstream.keepalive, null)
  assert.equal(upstream.keepaliveTimeout, 60_000)
  assert.equal(upstream.keepaliveRequests, 1000)
  assert.equal(upstream.keepaliveTime, 3_600_000)
  assert.deepEqual(upstream.balancer, { method: 'round_robin', options: null, source: null })
  const [peer] = upstream.servers
  assert.deepEqual(
    [peer!.weight, peer!.maxFails, peer!.failTimeout, peer!.maxConns, peer!.backup, peer!.down],
    [1, 1, 10_000, 0, false, false],
  )
})

// Main-level directives, with paths made absolute against the config's directory.
test('main, events and log directives', async () => {
  const config = await build(
    'worker_processes auto;\npid run/switchyard.pid;\nerror_log logs/error.log warn;\nevents { worker_connections 4096; }\n' +
      'http { server { access_log logs/access.log combined; location /a { access_log /var/log/a.log; } location /b { access_log off; } } }',
  )
  assert.deepEqual(config.main, {
    workerProcesses: 'auto',
    pid: '/etc/switchyard/run/switchyard.pid',
    errorLog: { path: '/etc/switchyard/logs/error.log', level: 'warn' },
    admin: null,
  })
  assert.equal(config.events.workerConnections, 4096)
  assert.equal(config.http.servers[0]!.settings.accessLog?.path, '/etc/switchyard/logs/access.log')
  assert.equal(config.http.servers[0]!.settings.accessLog?.format.name, 'combined')
  assert.equal(at(config, '/a').accessLog?.path, '/var/log/a.log')
  assert.equal(at(config, '/b').accessLog, null)
  // error_log without a level logs at `error`, as in nginx.
  assert.deepEqual((await build('error_log stderr;')).main.errorLog, { path: 'stderr', level: 'error' })
  assert.equal((await build('worker_processes 4;')).main.workerProcesses, 4)
})

// Inheritance: each setting comes from the innermost level that writes it; proxy_set_header
// is inherited as a whole list only by levels that have none of their own.
test('settings merge http → server → location', async () => {
  const config = await http(`
    proxy_read_timeout 5s;
    proxy_set_header X-From http;
    proxy_next_upstream error timeout http_502;
    client_max_body_size 10m;
    server {
      proxy_read_timeout 7s;
      proxy_connect_timeout 2;
      location /inherits { proxy_pass http://127.0.0.1:4000; }
      location /own {
        proxy_pass http://127.0.0.1:4000;
        proxy_read_timeout 9s;
        proxy_set_header X-Own 1;
        proxy_set_header X-Two 2;
        proxy_next_upstream off;
        proxy_http_version 1.1;
        client_max_body_size 0;
      }
    }
  `)
  const server = config.http.servers[0]!.settings
  assert.equal(server.proxyReadTimeout, 7000)
  assert.equal(server.proxyConnectTimeout, 2000)
  assert.equal(server.proxyPass, null)
  assert.deepEqual(server.proxySetHeaders.map((h) => h.name), ['X-From'])

  const inherits = at(config, '/inherits')
  assert.equal(inherits.proxyReadTimeout, 7000)
  assert.equal(inherits.proxyConnectTimeout, 2000)
  assert.deepEqual(inherits.proxySetHeaders.map((h) => h.name), ['X-From'])
  assert.deepEqual(inherits.proxyNextUpstream, { error: true, timeout: true, invalidHeader: false, statuses: new Set([502]), nonIdempotent: false })
  assert.equal(inherits.clientMaxBodySize, 10 * 1024 * 1024)
  assert.equal(inherits.proxyHttpVersion, '1.0')

  const own = at(config, '/own')
  assert.equal(own.proxyReadTimeout, 9000)
  assert.equal(own.proxyConnectTimeout, 2000)
  assert.deepEqual(own.proxySetHeaders.map((h) => [h.name, h.value.text]), [['X-Own', '1'], ['X-Two', '2']])
  assert.deepEqual(own.proxyNextUpstream, { error: false, timeout: false, invalidHeader: false, statuses: new Set(), nonIdempotent: false })
  assert.equal(own.proxyHttpVersion, '1.1')
  assert.equal(own.clientMaxBodySize, 0)
})

// proxy_next_upstream values (any case), several lines on one level adding up as in nginx.
test('proxy_next_upstream values and statuses', async () => {
  const config = await http(`server { location / {
    proxy_pass http://127.0.0.1:1;
    proxy_next_upstream ERROR invalid_header http_500 http_503;
    proxy_next_upstream http_504 http_403 http_404 http_429 non_idempotent updating;
    proxy_next_upstream_tries 3;
    proxy_next_upstream_timeout 10s;
  } }`)
  const s = at(config, '/')
  assert.deepEqual(s.proxyNextUpstream, {
    error: true,
    timeout: false,
    invalidHeader: true,
    statuses: new Set([500, 503, 504, 403, 404, 429]),
    nonIdempotent: true,
  })
  assert.equal(s.proxyNextUpstreamTries, 3)
  assert.equal(s.proxyNextUpstreamTimeout, 10_000)
})

// proxy_set_header "" keeps an empty value (which removes the header downstream).
test('proxy_set_header with an empty value', async () => {
  const config = await http('server { location / { proxy_pass http://127.0.0.1:1; proxy_set_header Accept-Encoding ""; } }')
  const [rule] = at(config, '/').proxySetHeaders
  assert.deepEqual([rule!.name, rule!.key, rule!.value.constant], ['Accept-Encoding', 'accept-encoding', ''])
})

// proxy_pass: upstream names (also defined later, matched case-insensitively) versus
// addresses, which get one implicit upstream per HOST:PORT, shared between locations.
test('proxy_pass targets: upstreams and implicit upstreams', async () => {
  const config = await http(`
    server {
      location /named { proxy_pass http://Pool; }
      location /later { proxy_pass http://pool/base/; }
      location /ip { proxy_pass http://127.0.0.1:4000; }
      location /ip-again { proxy_pass http://127.0.0.1:4000/x?y=1; }
      location /host80 { proxy_pass http://backend; }
      location /host { proxy_pass http://twin:8080/; }
      location /v6 { proxy_pass http://[::1]:9000; }
    }
    upstream pool { server 10.1.1.1:80; }
  `)
  const pass = (path: string) => {
    const p = at(config, path).proxyPass!
    return [p.upstream, p.uri, p.proxyHost]
  }
  assert.deepEqual(pass('/named'), ['pool', null, 'Pool'])
  assert.deepEqual(pass('/later'), ['pool', '/base/', 'pool'])
  assert.deepEqual(pass('/ip'), ['127.0.0.1:4000', null, '127.0.0.1:4000'])
  assert.deepEqual(pass('/ip-again'), ['127.0.0.1:4000', '/x?y=1', '127.0.0.1:4000'])
  assert.deepEqual(pass('/host80'), ['backend:80', null, 'backend'])
  assert.deepEqual(pass('/host'), ['twin:8080', '/', 'twin:8080'])
  assert.deepEqual(pass('/v6'), ['[::1]:9000', null, '[::1]:9000'])

  assert.deepEqual([...config.http.upstreams.keys()], ['127.0.0.1:4000', 'backend:80', 'twin:8080', '[::1]:9000', 'pool'])
  const implicit = config.http.upstreams.get('127.0.0.1:4000')!
  assert.equal(implicit.implicit, true)
  assert.deepEqual(implicit.source, at(config, '/ip').proxyPass!.source)
  assert.deepEqual(implicit.servers.map((s) => [s.name, s.host, s.port]), [['127.0.0.1:4000', '127.0.0.1', 4000]])
  // A name that resolves to two addresses gives two peers, as in nginx.
  assert.deepEqual(config.http.upstreams.get('twin:8080')!.servers.map((s) => [s.name, s.host, s.port]), [
    ['twin:8080', '10.0.0.1', 8080],
    ['twin:8080', '10.0.0.2', 8080],
  ])
  assert.deepEqual(config.http.upstreams.get('backend:80')!.servers.map((s) => [s.name, s.host, s.port]), [['backend', '10.0.0.1', 80]])
  assert.deepEqual(config.http.upstreams.get('[::1]:9000')!.servers.map((s) => s.host), ['::1'])
})

// Upstream blocks: every server form and parameter, keepalive, one peer per address.
test('upstream servers, parameters and keepalive', async () => {
  const config = await http(`
    upstream u {
      server 10.0.0.9;
      server 10.0.0.9:8080 weight=5 max_fails=3 fail_timeout=30s max_conns=100;
      server [::1]:8081 backup;
      server twin:7000 down max_fails=0 fail_timeout=1m;
      keepalive 16;
      keepalive_timeout 75s;
    }
    server { location / { proxy_pass http://u; } }
  `)
  const u = config.http.upstreams.get('u')!
  assert.deepEqual(
    u.servers.map((s) => [s.name, s.host, s.port, s.weight, s.maxFails, s.failTimeout, s.maxConns, s.backup, s.down, s.source.line]),
    [
      ['10.0.0.9', '10.0.0.9', 80, 1, 1, 10_000, 0, false, false, 5],
      ['10.0.0.9:8080', '10.0.0.9', 8080, 5, 3, 30_000, 100, false, false, 6],
      ['[::1]:8081', '::1', 8081, 1, 1, 10_000, 0, true, false, 7],
      ['twin:7000', '10.0.0.1', 7000, 1, 0, 60_000, 0, false, true, 8],
      ['twin:7000', '10.0.0.2', 7000, 1, 0, 60_000, 0, false, true, 8],
    ],
  )
  assert.equal(u.keepalive, 16)
  assert.equal(u.keepaliveTimeout, 75_000)
  assert.deepEqual(u.source, { file: FILE, line: 4 })
})

// The host name `localhost` resolves through the system resolver to one peer per address.
test('an upstream server named localhost resolves for real', async () => {
  const config = await parseConfigText('http { upstream u { server localhost:4000; } }', FILE)
  const servers = config.http.upstreams.get('u')!.servers
  assert.ok(servers.length >= 1)
  for (const s of servers) {
    assert.equal(s.name, 'localhost:4000')
    assert.equal(s.port, 4000)
    assert.ok(['127.0.0.1', '::1'].includes(s.host), s.host)
  }
})

// listen forms: port, address:port, *:port, [IPv6]:port, host name, default_server; and
// several servers on one address (name-based virtual hosts).
test('listen addresses and server names', async () => {
  const config = await http(`
    server { listen 8080 default_server; listen 127.0.0.1:8081; listen *:8082; listen [::1]:8083; listen [::]:8084 default; server_name a.test *.a.test; }
    server { listen 0.0.0.0:8080; listen backend:9000; listen 127.0.0.2; server_name .b.test www.b.* ~^c\\d+\\.test$ $hostname; }
  `)
  const [a, b] = config.http.servers
  assert.deepEqual(a!.listen.map((l) => [l.host, l.port, l.defaultServer]), [
    ['0.0.0.0', 8080, true],
    ['127.0.0.1', 8081, false],
    ['0.0.0.0', 8082, false],
    ['::1', 8083, false],
    ['::', 8084, true],
  ])
  assert.deepEqual(a!.serverNames, ['a.test', '*.a.test'])
  assert.deepEqual(b!.listen.map((l) => [l.host, l.port, l.defaultServer]), [
    ['0.0.0.0', 8080, false],
    ['10.0.0.1', 9000, false],
    ['127.0.0.2', 80, false],
  ])
  assert.equal(b!.serverNames.length, 4)
  assert.deepEqual(b!.serverNames.slice(0, 3), ['.b.test', 'www.b.*', '~^c\\d+\\.test$'])
  assert.notEqual(b!.serverNames[3], '$hostname')
})

// listen localhost:PORT goes through the system resolver.
test('listen localhost resolves for real', async () => {
  const config = await parseConfigText('http { server { listen localhost:8080; } }', FILE)
  const listen = config.http.servers[0]!.listen
  assert.ok(listen.length >= 1)
  for (const l of listen) assert.ok(['127.0.0.1', '::1'].includes(l.host) && l.port === 8080, `${l.host}:${l.port}`)
})

// Location modifiers, separate and glued to the path as nginx also allows.
test('location modifiers', async () => {
  const config = await http(`server {
    location / {} location = /exact {} location ^~ /static/ {} location ~ \\.php$ {} location ~* \\.(png|jpg)$ {}
    location =/glued {} location ^~/g2 {} location ~^/g3 {} location ~*^/g4 {} location = / {}
  }`)
  assert.deepEqual(
    config.http.servers[0]!.locations.map((l) => [l.modifier, l.path]),
    [
      ['', '/'],
      ['=', '/exact'],
      ['^~', '/static/'],
      ['~', '\\.php$'],
      ['~*', '\\.(png|jpg)$'],
      ['=', '/glued'],
      ['^~', '/g2'],
      ['~', '^/g3'],
      ['~*', '^/g4'],
      ['=', '/'],
    ],
  )
})

// The tutorial's five upstream snippets (section 3) all build, with their servers and
// weights as written (ip_hash and url_hash through their balancer registry rows).
const snippets: Array<{ file: string; directive: string | null; line: number; servers?: Array<[string, number]> }> = [
  { file: 'round-robin.conf', directive: null, line: 4, servers: [['192.168.0.14', 1], ['192.168.0.15', 1]] },
  { file: 'weight.conf', directive: null, line: 4, servers: [['192.168.0.14', 3], ['192.168.0.15', 7]] },
  { file: 'ip-hash.conf', directive: null, line: 4, servers: [['192.168.0.14', 1], ['192.168.0.15', 1]] },
  { file: 'fair.conf', directive: null, line: 4, servers: [['10.0.1.1', 1], ['10.0.1.2', 1]] },
  { file: 'url-hash.conf', directive: null, line: 4, servers: [['10.0.2.1', 1], ['10.0.2.2', 1]] },
]

for (const s of snippets) {
  test(`tutorial snippet ${s.file}`, async () => {
    const file = join(FIXTURES, 'tutorial', s.file)
    const upstream = parseConfigFile(file)[1]!.block![0]!
    assert.equal(upstream.name, 'upstream')
    assert.deepEqual(upstream.args, ['backserver'])
    assert.ok(upstream.block!.some((st) => st.name === 'server'))
    if (s.directive === null) {
      const config = await loadConfig(file, { resolveHost })
      assert.deepEqual(config.http.upstreams.get('backserver')!.servers.map((p) => [p.host, p.weight]), s.servers)
    } else {
      assert.ok(upstream.block!.some((st) => st.name === s.directive))
      await assert.rejects(loadConfig(file, { resolveHost }), {
        message: `"${s.directive}" directive is not supported by switchyard yet in ${file}:${s.line}`,
      })
    }
  })
}

// admin_listen: the config form of --admin, with its token; bad addresses are config errors.
test('admin_listen', async () => {
  assert.deepEqual((await build('admin_listen 9090;\nevents {}\n')).main.admin, { host: '127.0.0.1', port: 9090 })
  assert.deepEqual((await build('admin_listen [::1]:9091 token=s3;\nevents {}\n')).main.admin, { host: '::1', port: 9091, token: 's3' })
  await assert.rejects(build('admin_listen nope;\nevents {}\n'), /invalid value "nope" in "admin_listen" directive/)
  await assert.rejects(build('admin_listen 9090 colour=red;\nevents {}\n'), /invalid parameter "colour=red"/)
})

// `return` belongs to the level it is written on (nginx's rewrite module inherits
// nothing); `return URL` is 302; the first of several wins.
test('return: parsed per level, never inherited', async () => {
  const c = await http(`server {
  listen 8080;
  return 301 https://$host$request_uri;
  location /a { return 200 "a $uri"; return 404; }
  location /b { return https://example.com/; }
  location /c { return 403; }
  location /d { }
}`)
  const server = c.http.servers[0]!
  assert.equal(server.settings.return?.code, 301)
  assert.equal(server.settings.return?.text.text, 'https://$host$request_uri')
  assert.deepEqual([at(c, '/a').return?.code, at(c, '/a').return?.hasText, at(c, '/a').return?.text.text], [200, true, 'a $uri'])
  assert.deepEqual([at(c, '/b').return?.code, at(c, '/b').return?.text.constant], [302, 'https://example.com/'])
  assert.deepEqual([at(c, '/c').return?.code, at(c, '/c').return?.hasText, at(c, '/c').return?.text.constant], [403, false, ''])
  assert.equal(at(c, '/d').return, null, 'a location does not inherit the server return')
})

// proxy_protocol is a listen flag; real_ip_header proxy_protocol keeps its spelling.
test('listen … proxy_protocol and real_ip_header proxy_protocol', async () => {
  const c = await http(`server {
  listen 127.0.0.1:8080 proxy_protocol;
  listen 127.0.0.1:8081;
  set_real_ip_from 10.0.0.0/8;
  real_ip_header proxy_protocol;
}`)
  const server = c.http.servers[0]!
  assert.deepEqual(server.listen.map((l) => [l.port, l.proxyProtocol]), [[8080, true], [8081, false]])
  assert.equal(server.settings.edge.realIp.header, 'proxy_protocol')
})
