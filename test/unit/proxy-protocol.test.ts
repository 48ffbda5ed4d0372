// The PROXY protocol header parser (v1 text, v2 binary) against nginx's rules
// (ngx_proxy_protocol.c): what is an address, what is "no address", what is broken, and
// when more bytes are needed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseProxyHeader, V2_MAX } from '../../src/proxy/proxy-protocol.js'

const SIG = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')

/** A v2 header: version/command byte, family/transport byte, then `body`. */
function v2(verCmd: number, famTrans: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(body.length)
  return Buffer.concat([SIG, Buffer.from([verCmd, famTrans]), len, body])
}

const ipv4Body = (src: number[], dst: number[], sport: number, dport: number): Buffer => {
  const b = Buffer.alloc(12)
  b.set(src, 0)
  b.set(dst, 4)
  b.writeUInt16BE(sport, 8)
  b.writeUInt16BE(dport, 10)
  return b
}

interface Row {
  readonly what: string
  readonly bytes: Buffer
  /** 'more', 'broken', or the expected [length, srcAddr, srcPort] (null address: none). */
  readonly want: 'more' | 'broken' | [number, string | null, number?]
}

const v1 = (s: string): Buffer => Buffer.from(s, 'latin1')
const line4 = 'PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n'
const v6body = Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from('00000000000000000000000000000001', 'hex'), Buffer.from([0x1f, 0x90, 0x01, 0xbb])])

const rows: Row[] = [
  { what: 'v1 TCP4', bytes: v1(`${line4}GET /`), want: [line4.length, '192.0.2.7', 56324] },
  { what: 'v1 TCP6', bytes: v1('PROXY TCP6 2001:db8::5 ::1 1000 80\r\n'), want: [36, '2001:db8::5', 1000] },
  { what: 'v1 UNKNOWN: accepted, no address', bytes: v1('PROXY UNKNOWN\r\nGET'), want: [15, null] },
  { what: 'v1 UNKNOWN with addresses after it', bytes: v1('PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n'), want: [35, null] },
  { what: 'v1 split before its CRLF needs more', bytes: v1('PROXY TCP4 192.0.2.7 10.0'), want: 'more' },
  { what: 'v1 only a prefix so far', bytes: v1('PRO'), want: 'more' },
  { what: 'a plain HTTP request is a broken header', bytes: v1('GET / HTTP/1.1\r\n\r\n'), want: 'broken' },
  { what: 'v1 with a bare LF', bytes: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), want: 'broken' },
  { what: 'v1 with a port over 65535', bytes: v1('PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n'), want: 'broken' },
  { what: 'v1 with a name for an address', bytes: v1('PROXY TCP4 host 5.6.7.8 1 2\r\n'), want: 'broken' },
  { what: 'v1 with UDP4', bytes: v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), want: 'broken' },
  { what: 'v1 with a missing port', bytes: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), want: 'broken' },
  { what: 'v1 line longer than 107 bytes without an end', bytes: v1(`PROXY TCP4 ${'1'.repeat(120)}`), want: 'broken' },
  { what: 'v2 PROXY TCP over IPv4', bytes: Buffer.concat([v2(0x21, 0x11, ipv4Body([203, 0, 113, 9], [10, 0, 0, 1], 40000, 80)), v1('GET')]), want: [28, '203.0.113.9', 40000] },
  { what: 'v2 PROXY TCP over IPv6', bytes: v2(0x21, 0x21, v6body), want: [52, '2001:db8::1', 8080] },
  { what: 'v2 with TLVs after the addresses', bytes: v2(0x21, 0x11, Buffer.concat([ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.from([0x02, 0, 3, 0x61, 0x62, 0x63])])), want: [34, '1.2.3.4', 1] },
  { what: 'v2 LOCAL: accepted, no address', bytes: v2(0x20, 0x00, Buffer.alloc(0)), want: [16, null] },
  { what: 'v2 UNSPEC family: no address', bytes: v2(0x21, 0x01, Buffer.alloc(4)), want: [20, null] },
  { what: 'v2 over UDP: no address', bytes: v2(0x21, 0x12, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), want: [28, null] },
  { what: 'v2 unix family: no address', bytes: v2(0x21, 0x31, Buffer.alloc(216)), want: [232, null] },
  { what: 'v2 version 1 in the version nibble', bytes: v2(0x11, 0x11, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), want: 'broken' },
  { what: 'v2 IPv4 block too short for its family', bytes: v2(0x21, 0x11, Buffer.alloc(6)), want: 'broken' },
  { what: 'v2 with a length past the buffer', bytes: v2(0x21, 0x11, Buffer.alloc(12)).subarray(0, 20), want: 'more' },
  { what: 'v2 signature only so far', bytes: SIG.subarray(0, 7), want: 'more' },
  { what: 'v2 longer than switchyard reads', bytes: (() => { const h = v2(0x21, 0x11, Buffer.alloc(12)); h.writeUInt16BE(V2_MAX, 14); return h })(), want: 'broken' },
]

for (const row of rows) {
  // One line per row: the parser's answer for this header shape.
  test(`PROXY header: ${row.what}`, () => {
    const got = parseProxyHeader(row.bytes)
    if (row.want === 'more' || row.want === 'broken') return assert.equal(got.kind, row.want)
    assert.equal(got.kind, 'done')
    if (got.kind !== 'done') return
    const [length, addr, port] = row.want
    assert.equal(got.length, length)
    assert.equal(got.header?.srcAddr ?? null, addr)
    if (port !== undefined) assert.equal(got.header?.srcPort, port)
  })
}

// nginx logs the bytes up to the first line end; operators grep for this.
test('a broken header is reported the way nginx logs it', () => {
  const got = parseProxyHeader(v1('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'))
  assert.deepEqual(got, { kind: 'broken', why: 'broken header: "GET /x HTTP/1.1"' })
})

// IPv6 text is RFC 5952 (as nginx prints it): longest zero run compressed, lower case.
test('v2 IPv6 addresses are written in their short form', () => {
  const body = Buffer.concat([Buffer.from('fe800000000000000000000000000a0b', 'hex'), Buffer.alloc(16), Buffer.from([0, 1, 0, 2])])
  const got = parseProxyHeader(v2(0x21, 0x21, body))
  assert.equal(got.kind === 'done' ? got.header?.srcAddr : null, 'fe80::a0b')
  const mapped = Buffer.concat([Buffer.from('00000000000000000000ffffc0000201', 'hex'), Buffer.alloc(16), Buffer.from([0, 1, 0, 2])])
  const got2 = parseProxyHeader(v2(0x21, 0x21, mapped))
  assert.equal(got2.kind === 'done' ? got2.header?.dstAddr : null, '::')
  assert.equal(got2.kind === 'done' ? got2.header?.srcAddr : null, '::ffff:192.0.2.1')
})
