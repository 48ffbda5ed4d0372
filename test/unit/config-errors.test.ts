// Bad configs and their exact errors, FILE:LINE included. Rows marked `nginx` carry
// nginx's own text; when an nginx binary is installed, each of those rows is also run
// through `nginx -t` and must fail with the same message (differential test).
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/config/errors.js'

const BAD = fileURLToPath(new URL('../../../test/fixtures/config/bad/', import.meta.url))
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p)) ?? null

/** No DNS in these tests: `known` resolves, every other name is "not found". */
const resolveHost = async (host: string): Promise<string[]> => (host === 'known' ? ['10.0.0.1'] : [])

// Wrappers whose lines are fixed: H body at line 3; SV body 4; S body 5; L body 6; U body 4.
const H = (body: string): string => `events {}\nhttp {\n${body}\n}\n`
const SV = (body: string): string => H(`server {\n${body}\n}`)
const S = (body: string): string => SV(`listen 8080;\n${body}`)
const L = (body: string): string => S(`location / {\n${body}\n}`)
const U = (body: string): string => H(`upstream u {\n${body}\n}`)
/** Limit zones at line 3, a location's limits at line 7. */
const LZ = (zones: string, limits: string): string => H(`${zones}\nserver {\nlisten 8080;\nlocation / {\n${limits}\n}\n}`)
const REQ_ZONE = 'limit_req_zone $binary_remote_addr zone=x:1m rate=1r/s;'
const CONN_ZONE = 'limit_conn_zone $binary_remote_addr zone=c:1m;'

interface Case {
  /** What the row protects. */
  readonly what: string
  /** Config text (written to a temp file) or a fixture under bad/. */
  readonly text?: string
  readonly fixture?: string
  /** The whole message; `{file}` is the config's path, `{dir}` its directory. */
  readonly error: string
  /** True when nginx prints exactly this for the same file. */
  readonly nginx?: boolean
}

const cases: Case[] = [
  // Fixtures.
  { what: "the tutorial's config byte for byte: its `#` comment swallows `proxy_connect_timeout 1;}}`", fixture: 'tutorial-exact.conf', error: 'unexpected end of file, expecting "}" in {file}:13', nginx: true },
  { what: 'unknown directive', fixture: 'unknown-directive.conf', error: 'unknown directive "frobnicate" in {file}:5', nginx: true },
  { what: 'proxy_pass outside a location', fixture: 'proxy-pass-in-server.conf', error: '"proxy_pass" directive is not allowed here in {file}:8', nginx: true },
  { what: 'empty upstream, reported at its closing brace', fixture: 'no-servers.conf', error: 'no servers are inside upstream in {file}:5', nginx: true },
  { what: 'proxy_pass to a name that is neither an upstream nor a host', fixture: 'host-not-found.conf', error: 'host not found in upstream "bakend_typo" in {file}:10', nginx: true },
  { what: 'a known nginx directive switchyard lacks', fixture: 'gzip.conf', error: '"gzip" directive is not supported by switchyard yet in {file}:3' },
  { what: 'include of a missing file', fixture: 'include-missing.conf', error: 'open() "{dir}/conf.d/missing.conf" failed (2: No such file or directory) in {file}:2', nginx: true },
  { what: 'a single-value directive twice on one level', fixture: 'duplicate-timeout.conf', error: '"proxy_read_timeout" directive is duplicate in {file}:8', nginx: true },
  { what: 'URI part in a regex location', fixture: 'regex-location-uri.conf', error: '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in {file}:6', nginx: true },
  { what: 'weight=0', fixture: 'invalid-weight.conf', error: 'invalid parameter "weight=0" in {file}:5', nginx: true },
  { what: 'listen ssl without a certificate, reported at its server block', fixture: 'ssl-listen.conf', error: 'no "ssl_certificate" is defined for the "listen ... ssl" directive in {file}:3' },

  // Which directive, where.
  { what: 'unknown directive at the top', text: 'frobnicate;\nevents {}', error: 'unknown directive "frobnicate" in {file}:1', nginx: true },
  { what: 'events directive at the top', text: 'events {}\nworker_connections 5;', error: '"worker_connections" directive is not allowed here in {file}:2', nginx: true },
  { what: 'listen in http', text: H('listen 80;'), error: '"listen" directive is not allowed here in {file}:3', nginx: true },
  { what: 'server_name in a location', text: L('server_name x;'), error: '"server_name" directive is not allowed here in {file}:6', nginx: true },
  { what: 'location in an upstream', text: U('server 127.0.0.1; location / {}'), error: '"location" directive is not allowed here in {file}:4', nginx: true },
  { what: 'a block directive without its block', text: 'events;', error: 'directive "events" has no opening "{" in {file}:1', nginx: true },
  { what: 'http server without a block', text: H('server 127.0.0.1;'), error: 'directive "server" has no opening "{" in {file}:3', nginx: true },
  { what: 'upstream server with a block', text: U('server {}'), error: 'directive "server" is not terminated by ";" in {file}:4', nginx: true },
  { what: 'arguments on a block that takes none', text: 'events x {}', error: 'invalid number of arguments in "events" directive in {file}:1', nginx: true },
  { what: 'proxy_pass without its URL', text: L('proxy_pass;'), error: 'invalid number of arguments in "proxy_pass" directive in {file}:6', nginx: true },
  { what: 'proxy_set_header with one argument', text: L('proxy_set_header Host;'), error: 'invalid number of arguments in "proxy_set_header" directive in {file}:6', nginx: true },
  { what: 'a timeout with two arguments', text: L('proxy_connect_timeout 1 2;'), error: 'invalid number of arguments in "proxy_connect_timeout" directive in {file}:6', nginx: true },
  { what: 'the default policy name is no directive', text: U('server 127.0.0.1;\nround_robin;'), error: 'unknown directive "round_robin" in {file}:5', nginx: true },
  { what: 'gzip in a location', text: L('gzip on;'), error: '"gzip" directive is not supported by switchyard yet in {file}:6' },
  { what: 'map block', text: H('map $a $b {}'), error: '"map" directive is not supported by switchyard yet in {file}:3' },
  { what: 'if block', text: L('if ($request_method = POST) { return 405; }'), error: '"if" directive is not supported by switchyard yet in {file}:6' },
  { what: 'stream block', text: 'events {}\nstream {}', error: '"stream" directive is not supported by switchyard yet in {file}:2' },
  { what: 'error_log where only nginx allows it', text: H('error_log x.log;'), error: '"error_log" directive is not supported inside "http" by switchyard yet in {file}:3' },
  { what: 'nested location', text: L('location /b {}'), error: '"location" directive is not supported inside "location" by switchyard yet in {file}:6' },
  { what: 'the client-side keepalive_timeout in a location (http and server only)', text: L('keepalive_timeout 5;'), error: '"keepalive_timeout" directive is not supported inside "location" by switchyard yet in {file}:6' },

  // Top level.
  { what: 'worker_processes not a number', text: 'worker_processes x;', error: '"worker_processes" directive invalid value in {file}:1', nginx: true },
  { what: 'worker_processes twice', text: 'worker_processes 1;\nworker_processes 2;', error: '"worker_processes" directive is duplicate in {file}:2', nginx: true },
  { what: 'pid twice', text: 'pid a;\npid b;', error: '"pid" directive is duplicate in {file}:2', nginx: true },
  { what: 'bad log level', text: 'error_log stderr foo;', error: 'invalid log level "foo" in {file}:1', nginx: true },
  { what: 'two log levels', text: 'error_log stderr warn error;', error: 'duplicate log level "error" in {file}:1', nginx: true },
  { what: 'syslog error log', text: 'error_log syslog:server=127.0.0.1;', error: '"error_log syslog:" is not supported by switchyard yet in {file}:1' },
  { what: 'two error logs', text: 'error_log a.log;\nerror_log b.log;', error: 'more than one "error_log" directive is not supported by switchyard yet in {file}:2' },
  { what: 'events twice', text: 'events {}\nevents {}', error: '"events" directive is duplicate in {file}:2', nginx: true },
  { what: 'worker_connections not a number', text: 'events { worker_connections x; }', error: 'invalid number "x" in {file}:1', nginx: true },
  { what: 'http twice', text: 'events {}\nhttp {}\nhttp {}', error: '"http" directive is duplicate in {file}:3', nginx: true },

  // Upstream blocks.
  { what: 'weight not a number', text: U('server 127.0.0.1 weight=x;'), error: 'invalid parameter "weight=x" in {file}:4', nginx: true },
  { what: 'unknown server parameter', text: U('server 127.0.0.1 foo;'), error: 'invalid parameter "foo" in {file}:4', nginx: true },
  { what: 'server parameters are case-sensitive', text: U('server 127.0.0.1 Weight=2;'), error: 'invalid parameter "Weight=2" in {file}:4', nginx: true },
  { what: 'fail_timeout counts in seconds (no ms)', text: U('server 127.0.0.1 fail_timeout=500ms;'), error: 'invalid parameter "fail_timeout=500ms" in {file}:4', nginx: true },
  { what: 'negative max_conns', text: U('server 127.0.0.1 max_conns=-1;'), error: 'invalid parameter "max_conns=-1" in {file}:4', nginx: true },
  { what: 'max_fails not a number', text: U('server 127.0.0.1 max_fails=abc;'), error: 'invalid parameter "max_fails=abc" in {file}:4', nginx: true },
  { what: 'port 0', text: U('server 127.0.0.1:0;'), error: 'invalid port in upstream "127.0.0.1:0" in {file}:4', nginx: true },
  { what: 'a URL as a server', text: U('server http://127.0.0.1;'), error: 'invalid host in upstream "http://127.0.0.1" in {file}:4', nginx: true },
  { what: 'a path after a server', text: U('server 127.0.0.1/x;'), error: 'invalid host in upstream "127.0.0.1/x" in {file}:4', nginx: true },
  { what: 'unclosed IPv6 bracket', text: U('server [::1;'), error: 'invalid host in upstream "[::1" in {file}:4', nginx: true },
  { what: 'not an IPv6 address', text: U('server [::zz]:80;'), error: 'invalid IPv6 address in upstream "[::zz]:80" in {file}:4', nginx: true },
  { what: 'unresolvable server host', text: U('server nosuchhost:8080;'), error: 'host not found in upstream "nosuchhost:8080" in {file}:4' },
  { what: 'unix socket server', text: U('server unix:/tmp/app.sock;'), error: 'a unix domain socket in upstream "unix:/tmp/app.sock" is not supported by switchyard yet in {file}:4' },
  { what: 'server resolve parameter', text: U('server known resolve;'), error: 'parameter "resolve" of the "server" directive is not supported by switchyard yet in {file}:4' },
  { what: 'keepalive 0', text: U('server 127.0.0.1;\nkeepalive 0;'), error: 'invalid value "0" in "keepalive" directive in {file}:5', nginx: true },
  { what: 'keepalive twice', text: U('server 127.0.0.1;\nkeepalive 1;\nkeepalive 2;'), error: '"keepalive" directive is duplicate in {file}:6', nginx: true },
  { what: 'upstream keepalive_timeout invalid', text: U('server 127.0.0.1;\nkeepalive_timeout x;'), error: '"keepalive_timeout" directive invalid value in {file}:5', nginx: true },
  { what: 'upstream keepalive_requests invalid', text: U('server 127.0.0.1;\nkeepalive_requests x;'), error: '"keepalive_requests" directive invalid number in {file}:5', nginx: true },
  { what: 'upstream keepalive_time invalid', text: U('server 127.0.0.1;\nkeepalive_time 1x;'), error: '"keepalive_time" directive invalid value in {file}:5', nginx: true },
  { what: 'upstream keepalive_requests twice', text: U('server 127.0.0.1;\nkeepalive_requests 1;\nkeepalive_requests 2;'), error: '"keepalive_requests" directive is duplicate in {file}:6', nginx: true },
  { what: 'proxy_request_buffering maybe', text: L('proxy_request_buffering maybe;'), error: 'invalid value "maybe" in "proxy_request_buffering" directive, it must be "on" or "off" in {file}:6', nginx: true },
  { what: 'client_body_buffer_size invalid', text: L('client_body_buffer_size 1x;'), error: '"client_body_buffer_size" directive invalid value in {file}:6', nginx: true },
  { what: 'client_body_buffer_size twice', text: L('client_body_buffer_size 8k;\nclient_body_buffer_size 16k;'), error: '"client_body_buffer_size" directive is duplicate in {file}:7', nginx: true },
  { what: 'client keepalive_requests invalid', text: L('keepalive_requests -1;'), error: '"keepalive_requests" directive invalid number in {file}:6', nginx: true },
  { what: 'client keepalive_time (not yet)', text: L('keepalive_time 1h;'), error: '"keepalive_time" directive is not supported inside "location" by switchyard yet in {file}:6' },
  { what: 'upstream names are case-insensitive', text: H('upstream u { server 127.0.0.1; }\nupstream U { server 127.0.0.1; }'), error: 'duplicate upstream "U" in {file}:4', nginx: true },

  // listen and server_name.
  { what: 'unknown listen parameter', text: SV('listen 80 foo;'), error: 'invalid parameter "foo" in {file}:4', nginx: true },
  { what: 'listen port 0', text: SV('listen 0;'), error: 'invalid port in "0" of the "listen" directive in {file}:4', nginx: true },
  { what: 'listen port too big', text: SV('listen 70000;'), error: 'invalid port in "70000" of the "listen" directive in {file}:4', nginx: true },
  { what: 'the same listen twice in one server', text: SV('listen [::1]:8080;\nlisten [::1]:8080;'), error: 'a duplicate listen [::1]:8080 in {file}:5', nginx: true },
  { what: 'two default servers on one address', text: H('server { listen 8080 default_server; }\nserver { listen *:8080 default_server; }'), error: 'a duplicate default server for 0.0.0.0:8080 in {file}:4', nginx: true },
  { what: 'listen on a unix socket', text: SV('listen unix:/tmp/lb.sock;'), error: 'a unix domain socket in "unix:/tmp/lb.sock" of the "listen" directive is not supported by switchyard yet in {file}:4' },
  { what: 'listen port range', text: SV('listen 8080-8090;'), error: 'a port range in "8080-8090" of the "listen" directive is not supported by switchyard yet in {file}:4' },
  // return (ngx_http_rewrite_module).
  { what: 'return with a word that is neither a code nor a URL', text: S('return x;'), error: 'invalid return code "x" in {file}:5', nginx: true },
  { what: 'return code over 999', text: L('return 1000;'), error: 'invalid return code "1000" in {file}:6', nginx: true },
  { what: 'return URL followed by a text', text: S('return http://a b;'), error: 'invalid return code "http://a" in {file}:5', nginx: true },
  { what: 'return with a scheme nginx does not take as a URL', text: S('return ftp://x;'), error: 'invalid return code "ftp://x" in {file}:5', nginx: true },
  { what: 'return of a variable other than $scheme', text: S('return $host;'), error: 'invalid return code "$host" in {file}:5', nginx: true },
  { what: 'return with three arguments', text: S('return 301 a b;'), error: 'invalid number of arguments in "return" directive in {file}:5', nginx: true },
  { what: 'return at http level', text: H('return 200;'), error: '"return" directive is not allowed here in {file}:3', nginx: true },
  { what: 'listen on an unresolvable host', text: SV('listen nosuchhost:80;'), error: 'host not found in "nosuchhost:80" of the "listen" directive in {file}:4' },
  { what: 'bad wildcard server name', text: S('server_name *x;'), error: 'server name "*x" is invalid in {file}:5', nginx: true },
  { what: 'empty regex server name', text: S('server_name ~;'), error: 'empty regex in server name "~" in {file}:5', nginx: true },
  { what: 'broken regex server name', text: S('server_name "~(";'), error: 'invalid regular expression "(": Unterminated group in {file}:5' },

  // location.
  { what: 'location with three arguments', text: S('location x y z {}'), error: 'invalid number of arguments in "location" directive in {file}:5', nginx: true },
  { what: 'unknown location modifier', text: S('location ! / {}'), error: 'invalid location modifier "!" in {file}:5', nginx: true },
  { what: 'broken location regex', text: S('location ~ ( {}'), error: 'invalid regular expression "(": Unterminated group in {file}:5' },
  { what: 'named location', text: S('location @fallback {}'), error: 'named location "@fallback" is not supported by switchyard yet in {file}:5' },
  { what: 'two prefix locations with one path', text: S('location / {}\nlocation ^~ / {}'), error: 'duplicate location "/" in {file}:6', nginx: true },
  { what: 'two exact locations with one path', text: S('location = /a {}\nlocation =/a {}'), error: 'duplicate location "/a" in {file}:6', nginx: true },
  { what: 'location without a block', text: S('location /;'), error: 'directive "location" has no opening "{" in {file}:5', nginx: true },

  // proxy_pass.
  { what: 'proxy_pass twice', text: L('proxy_pass http://127.0.0.1:1;\nproxy_pass http://127.0.0.1:2;'), error: '"proxy_pass" directive is duplicate in {file}:7', nginx: true },
  { what: 'proxy_pass to another scheme', text: L('proxy_pass ftp://x;'), error: 'invalid URL prefix in {file}:6', nginx: true },
  { what: 'proxy_pass port out of range', text: L('proxy_pass http://127.0.0.1:99999;'), error: 'invalid port in upstream "127.0.0.1:99999" in {file}:6', nginx: true },
  { what: 'proxy_pass with an empty port', text: L('proxy_pass http://127.0.0.1:;'), error: 'invalid port in upstream "127.0.0.1:" in {file}:6', nginx: true },
  { what: 'proxy_pass without a host', text: L('proxy_pass http://;'), error: 'no host in upstream "" in {file}:6', nginx: true },
  { what: 'proxy_pass unclosed IPv6', text: L('proxy_pass http://[::1;'), error: 'invalid host in upstream "[::1" in {file}:6', nginx: true },
  { what: 'proxy_pass https', text: L('proxy_pass https://known;'), error: '"proxy_pass https://" is not supported by switchyard yet in {file}:6' },
  { what: 'proxy_pass with variables', text: L('proxy_pass http://$host;'), error: 'a "proxy_pass" with variables is not supported by switchyard yet in {file}:6' },
  { what: 'proxy_pass to a unix socket', text: L('proxy_pass http://unix:/tmp/app.sock:/;'), error: '"proxy_pass" to a unix domain socket is not supported by switchyard yet in {file}:6' },
  { what: 'proxy_pass to an unresolvable host with a port', text: L('proxy_pass http://nosuchhost:8080/foo;'), error: 'host not found in upstream "nosuchhost" in {file}:6' },
  { what: 'a port on an upstream name', text: H('upstream u { server 127.0.0.1:1; }\nserver {\nlisten 8080;\nlocation / { proxy_pass http://u:8080; }\n}'), error: 'upstream "u" may not have port 8080 in {file}:6', nginx: true },
  { what: 'a port on an upstream defined later', text: H('server {\nlisten 8080;\nlocation / { proxy_pass http://u:8080; }\n}\nupstream u { server 127.0.0.1:1; }'), error: 'upstream "u" may not have port 8080 in {file}:5', nginx: true },

  // Settings values.
  { what: 'y is no unit for millisecond timeouts', text: L('proxy_read_timeout 1y;'), error: '"proxy_read_timeout" directive invalid value in {file}:6', nginx: true },
  { what: 'negative timeout', text: L('proxy_send_timeout -1;'), error: '"proxy_send_timeout" directive invalid value in {file}:6', nginx: true },
  { what: 'bad proxy_next_upstream value', text: L('proxy_next_upstream foo;'), error: 'invalid value "foo" in {file}:6', nginx: true },
  { what: 'off together with other values', text: L('proxy_next_upstream off error;'), error: '"off" cannot be combined with other values in "proxy_next_upstream" directive in {file}:6' },
  { what: 'unsupported HTTP version', text: L('proxy_http_version 2.0;'), error: 'invalid value "2.0" in {file}:6', nginx: true },
  { what: 'bad size', text: L('client_max_body_size 1x;'), error: '"client_max_body_size" directive invalid value in {file}:6', nginx: true },
  { what: 'bad tries', text: L('proxy_next_upstream_tries x;'), error: '"proxy_next_upstream_tries" directive invalid number in {file}:6', nginx: true },
  { what: 'bad next upstream timeout', text: L('proxy_next_upstream_timeout 1M;'), error: '"proxy_next_upstream_timeout" directive invalid value in {file}:6', nginx: true },
  { what: 'access_log off with more', text: L('access_log off x;'), error: 'invalid parameter "x" in {file}:6', nginx: true },
  { what: 'access_log with an undefined format', text: L('access_log /tmp/a.log main;'), error: 'unknown log format "main" in {file}:6', nginx: true },
  { what: 'access_log buffering', text: L('access_log /tmp/a.log combined buffer=32k;'), error: 'parameter "buffer=32k" of the "access_log" directive is not supported by switchyard yet in {file}:6' },
  { what: 'two access logs on one level', text: L('access_log /tmp/a.log;\naccess_log /tmp/b.log;'), error: 'more than one "access_log" directive on one level is not supported by switchyard yet in {file}:7' },
  { what: 'an unknown variable in a header value', text: L('proxy_set_header X-Id $nosuchvar;'), error: 'unknown "nosuchvar" variable in {file}:6' },
  // limit_req / limit_conn (zones at line 3, the limit at line 7 of LZ).
  { what: 'limit_req naming no zone (nginx says it without a line)', text: LZ('', 'limit_req zone=nope;'), error: 'zero size shared memory zone "nope" in {file}:7' },
  { what: 'limit_conn naming no zone', text: LZ('', 'limit_conn nope 1;'), error: 'zero size shared memory zone "nope" in {file}:7' },
  { what: 'burst=0', text: LZ(REQ_ZONE, 'limit_req zone=x burst=0;'), error: 'invalid burst value "burst=0" in {file}:7', nginx: true },
  { what: 'delay=0', text: LZ(REQ_ZONE, 'limit_req zone=x delay=0;'), error: 'invalid delay value "delay=0" in {file}:7', nginx: true },
  { what: 'an unknown limit_req parameter', text: LZ(REQ_ZONE, 'limit_req zone=x fast;'), error: 'invalid parameter "fast" in {file}:7', nginx: true },
  { what: 'limit_req without zone=', text: LZ(REQ_ZONE, 'limit_req burst=3;'), error: '"limit_req" must have "zone" parameter in {file}:7', nginx: true },
  { what: 'the same zone twice on one level', text: LZ(REQ_ZONE, 'limit_req zone=x; limit_req zone=x burst=2;'), error: '"limit_req" directive is duplicate in {file}:7', nginx: true },
  { what: 'nodelay and delay= and burst= and zone=: four arguments', text: LZ(REQ_ZONE, 'limit_req zone=x burst=5 nodelay delay=2;'), error: 'invalid number of arguments in "limit_req" directive in {file}:7', nginx: true },
  { what: 'a rate per hour', text: LZ('limit_req_zone $binary_remote_addr zone=x:1m rate=1r/h;', ''), error: 'invalid rate "rate=1r/h" in {file}:3', nginx: true },
  { what: 'rate=0', text: LZ('limit_req_zone $binary_remote_addr zone=x:1m rate=0r/s;', ''), error: 'invalid rate "rate=0r/s" in {file}:3', nginx: true },
  { what: 'a zone under 32k', text: LZ('limit_req_zone $binary_remote_addr zone=x:1k rate=1r/s;', ''), error: 'zone "zone=x:1k" is too small in {file}:3', nginx: true },
  { what: 'a zone without a size', text: LZ('limit_conn_zone $binary_remote_addr zone=x;', ''), error: 'invalid zone size "zone=x" in {file}:3', nginx: true },
  { what: 'limit_req_zone without zone=', text: LZ('limit_req_zone $binary_remote_addr rate=1r/s foo=1;', ''), error: 'invalid parameter "foo=1" in {file}:3', nginx: true },
  { what: 'an unknown variable in a zone key', text: LZ('limit_req_zone $nosuch zone=x:1m rate=1r/s;', ''), error: 'unknown "nosuch" variable in {file}:3' },
  { what: 'a zone name used twice', text: LZ(`${REQ_ZONE} limit_req_zone $uri zone=x:1m rate=2r/s;`, ''), error: 'limit_req_zone "x" is already bound to key "$binary_remote_addr" in {file}:3', nginx: true },
  { what: 'a zone name used by both modules', text: LZ(`${REQ_ZONE} limit_conn_zone $binary_remote_addr zone=x:1m;`, ''), error: 'the shared memory zone "x" is already declared for a different use in {file}:3', nginx: true },
  { what: 'a zone name with two sizes', text: LZ(`${REQ_ZONE} limit_req_zone $binary_remote_addr zone=x:2m rate=1r/s;`, ''), error: 'the size 2097152 of shared memory zone "x" conflicts with already declared size 1048576 in {file}:3', nginx: true },
  { what: 'limit_conn on a limit_req zone', text: LZ(REQ_ZONE, 'limit_conn x 1;'), error: 'the shared memory zone "x" is already declared for a different use in {file}:7', nginx: true },
  { what: 'limit_conn 0', text: LZ(CONN_ZONE, 'limit_conn c 0;'), error: 'invalid number of connections "0" in {file}:7', nginx: true },
  { what: 'limit_conn over 65535', text: LZ(CONN_ZONE, 'limit_conn c 65536;'), error: 'connection limit must be less 65536 in {file}:7', nginx: true },
  { what: 'limit_conn twice on one zone', text: LZ(CONN_ZONE, 'limit_conn c 1; limit_conn c 2;'), error: '"limit_conn" directive is duplicate in {file}:7', nginx: true },
  { what: 'limit_req_status out of range', text: LZ(REQ_ZONE, 'limit_req_status 600;'), error: 'value must be between 400 and 599 in {file}:7', nginx: true },
  { what: 'limit_conn_status not a number', text: LZ(CONN_ZONE, 'limit_conn_status abc;'), error: '"limit_conn_status" directive invalid number in {file}:7', nginx: true },
  { what: 'limit_req_log_level debug', text: LZ(REQ_ZONE, 'limit_req_log_level debug;'), error: 'invalid value "debug" in {file}:7', nginx: true },
  { what: 'limit_conn_dry_run maybe', text: LZ(CONN_ZONE, 'limit_conn_dry_run maybe;'), error: 'invalid value "maybe" in "limit_conn_dry_run" directive, it must be "on" or "off" in {file}:7', nginx: true },
  { what: 'limit_req_zone in a location', text: LZ(REQ_ZONE, 'limit_req_zone $uri zone=y:1m rate=1r/s;'), error: '"limit_req_zone" directive is not allowed here in {file}:7', nginx: true },
]

const work = mkdtempSync(join(tmpdir(), 'switchyard-bad-config-'))
after(() => rmSync(work, { recursive: true, force: true }))

/** The config file a row runs on. */
function fileFor(c: Case, index: number): string {
  if (c.fixture) return join(BAD, c.fixture)
  const file = join(work, `case-${index}.conf`)
  writeFileSync(file, c.text!)
  return file
}

const expected = (c: Case, file: string): string => c.error.replaceAll('{file}', file).replaceAll('{dir}', dirname(file))

for (const [index, c] of cases.entries()) {
  // Guards one config error's exact text and place: the row's `what`.
  test(`bad config: ${c.what}`, async () => {
    const file = fileFor(c, index)
    await assert.rejects(loadConfig(file, { resolveHost }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.message, expected(c, file))
      return true
    })
  })
}

/** nginx's first `[emerg]` message for `nginx -t` on `file`, without its prefix. */
function nginxError(file: string): string | null {
  const run = spawnSync(NGINX!, ['-t', '-p', work, '-c', file], { encoding: 'utf8', timeout: 20_000 })
  const match = /\[emerg\] \d+#\d+: (.*)$/m.exec(run.stderr ?? '')
  return match ? match[1]! : null
}

// Differential: where a row claims nginx's wording, real nginx agrees on the same file.
test('nginx -t gives the same errors', { skip: NGINX === null ? 'nginx is not installed' : false }, () => {
  for (const [index, c] of cases.entries()) {
    if (!c.nginx) continue
    const file = fileFor(c, index)
    assert.equal(nginxError(file), expected(c, file), c.what)
  }
})
