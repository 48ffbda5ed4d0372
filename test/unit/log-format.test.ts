import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { COMBINED, compileLogFormat, escapeDefault, escapeJson, timeIso8601, timeLocal, type LogVariables } from '../../src/config/log-format.js'
import { RequestVars } from '../../src/proxy/request-vars.js'

function vars(extra: Partial<LogVariables> = {}, headers: Record<string, string> = {}): LogVariables {
  const req = { url: '/a?x=1', method: 'GET', httpVersion: '1.1', headers, socket: { remoteAddress: '::ffff:192.0.2.7', remotePort: 5555, localAddress: '127.0.0.1' } } as unknown as IncomingMessage
  const base = new RequestVars(req, { scheme: 'http', port: 8080 })
  return Object.assign(base, {
    status: 200, bodyBytesSent: 42, requestTime: 0.0123, ended: new Date(2026, 10, 26, 10, 5, 9).getTime(), tries: [],
    ...extra,
  }) as unknown as LogVariables
}

// The combined format, field for field as nginx writes it ("-" for absent values).
test('combined format', () => {
  const line = COMBINED.format(vars({}, { 'user-agent': 'curl/8', referer: 'http://r/' }))
  assert.equal(line, `192.0.2.7 - - [${timeLocal(new Date(2026, 10, 26, 10, 5, 9))}] "GET /a?x=1 HTTP/1.1" 200 42 "http://r/" "curl/8"\n`)
  assert.match(COMBINED.format(vars()), /"-" "-"\n$/)
})

// $upstream_* list every try, "-" when none; times in seconds with milliseconds.
test('upstream variables list every try', () => {
  const f = compileLogFormat('up', '$upstream_addr|$upstream_status|$upstream_connect_time|$upstream_response_time|$upstream_queue_time|$request_time')
  const tries = [
    { addr: '127.0.0.1:4001', status: 502, connectTime: null, headerTime: null, responseTime: 0.001, queueTime: 0.25 },
    { addr: '127.0.0.1:4000', status: 200, connectTime: 0.0004, headerTime: 0.002, responseTime: 0.0031, queueTime: 0 },
  ]
  assert.equal(f.format(vars({ tries })), '127.0.0.1:4001, 127.0.0.1:4000|502, 200|-, 0.000|0.001, 0.003|0.250, 0.000|0.012\n')
  assert.equal(f.format(vars()), '-|-|-|-|-|0.012\n')
})

// Values are strings of bytes (Node's parser reads the request as latin1, one char per
// byte): escape=default writes \xHH for quotes, backslashes, control bytes and bytes from
// 0x7f up; escape=json escapes as nginx's ngx_escape_json and leaves other bytes as sent.
test('escaping modes', () => {
  assert.equal(escapeDefault('a"b\\c\n'), 'a\\x22b\\x5Cc\\x0A')
  // UTF-8 "é" as it arrives from a client: two bytes, two escapes; a lone 0xE9 is one.
  assert.equal(escapeDefault('\xC3\xA9'), '\\xC3\\xA9')
  assert.equal(escapeDefault('\xE9\x7F'), '\\xE9\\x7F')
  // A char above 0xff can only come from the config's text: its UTF-8 bytes are escaped.
  assert.equal(escapeDefault('\u20AC'), '\\xE2\\x82\\xAC')
  const json = compileLogFormat('j', '{"ua":"$http_user_agent"}', 'json')
  assert.equal(json.format(vars({}, { 'user-agent': 'a"b\\\xC3\xA9' })), '{"ua":"a\\"b\\\\\xC3\xA9"}\n')
  assert.equal(json.format(vars({}, { 'user-agent': '\t\x01\x1F\x7F' })), '{"ua":"\\t\\u0001\\u001F\x7F"}\n')
  assert.equal(escapeJson('\b\f\n\r'), '\\b\\f\\n\\r')
  const none = compileLogFormat('n', '$http_user_agent', 'none')
  assert.equal(none.format(vars({}, { 'user-agent': 'a"b\xE9' })), 'a"b\xE9\n')
  // The format's own text is written as its UTF-8 bytes.
  assert.equal(compileLogFormat('u', 'état $status').format(vars()), '\xC3\xA9tat 200\n')
})

// $request escapes the target only; the method and version are tokens.
test('$request', () => {
  const f = compileLogFormat('r', '$request')
  const v = vars()
  Object.assign(v.req, { url: '/a"b\xFF' })
  assert.equal(f.format(v), 'GET /a\\x22b\\xFF HTTP/1.1\n')
})

// Times: $time_iso8601 and $msec.
test('time variables', () => {
  const d = new Date(2026, 10, 26, 10, 5, 9)
  const f = compileLogFormat('t', '$time_iso8601 $msec')
  assert.equal(f.format(vars({ ended: d.getTime() })), `${timeIso8601(d)} ${(d.getTime() / 1000).toFixed(3)}\n`)
  assert.match(timeIso8601(d), /^2026-11-26T10:05:09[+-]\d\d:\d\d$/)
})

// Unknown variables are config errors, as in nginx.
test('unknown variables are refused', () => {
  assert.throws(() => compileLogFormat('x', '$no_such_thing'), /unknown "no_such_thing" variable/)
})
