// `log_format NAME [escape=default|json|none] STRING…`: access-log lines compiled once
// into a function of the finished request, with nginx's variables, including the
// per-try `$upstream_*` lists.
import { splitVariables, variableGetter, type RequestVariables } from './variables.js'

/** One try of a request on one upstream server, as `$upstream_*` report it. */
export interface UpstreamTry {
  /** `host:port` tried. */
  readonly addr: string
  /** The status it answered, or the one switchyard answered for it (502, 504). */
  readonly status: number
  /** Seconds to connect, to the response header, to the end of the response; null = none. */
  readonly connectTime: number | null
  readonly headerTime: number | null
  readonly responseTime: number | null
  /** Seconds spent in the upstream's `queue` before this try (0 when it did not wait). */
  readonly queueTime: number
}

/** What a finished request offers to an access log line. */
export interface LogVariables extends RequestVariables {
  /** `$status`. */
  readonly status: number
  /** `$body_bytes_sent`. */
  readonly bodyBytesSent: number
  /** `$request_time` in seconds. */
  readonly requestTime: number
  /** When the request ended, epoch ms (`$time_local`, `$time_iso8601`, `$msec`). */
  readonly ended: number
  /** Every upstream try, in order. */
  readonly tries: readonly UpstreamTry[]
}

export type Escape = 'default' | 'json' | 'none'

export interface LogFormat {
  readonly name: string
  readonly escape: Escape
  /** Whether a `$upstream_*` variable is used: only then does the request path keep its
   *  tries and time them; likewise `$request_time` and the request's start. */
  readonly usesTries: boolean
  readonly usesRequestTime: boolean
  /** The line, newline included, as a string of bytes (one char per byte: write it as
   *  latin1). */
  format(v: LogVariables): string
}

type LogGetter = (v: LogVariables) => string

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number): string => (n < 10 ? `0${n}` : String(n))

function offset(d: Date, colon: boolean): string {
  const minutes = -d.getTimezoneOffset()
  const abs = Math.abs(minutes)
  return `${minutes >= 0 ? '+' : '-'}${pad(Math.floor(abs / 60))}${colon ? ':' : ''}${pad(abs % 60)}`
}

/** The last formatted second, per format function: a log line per request would
 *  otherwise format the same second thousands of times (nginx caches these too). */
function perSecond(format: (d: Date) => string): (ms: number) => string {
  let second = NaN
  let text = ''
  return (ms) => {
    const s = Math.floor(ms / 1000)
    if (s !== second) {
      second = s
      text = format(new Date(ms))
    }
    return text
  }
}

/** nginx's `$time_local`: `26/Nov/2026:10:00:00 +0000`. */
export function timeLocal(d: Date): string {
  return `${pad(d.getDate())}/${months[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${offset(d, false)}`
}

/** nginx's `$time_iso8601`: `2026-11-26T10:00:00+00:00`. */
export function timeIso8601(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${offset(d, true)}`
}

const seconds = (s: number | null): string => (s === null ? '-' : s.toFixed(3))

/** `$upstream_*`: one entry per try, joined by ", " like nginx; none when no try was made. */
const perTry = (pick: (t: UpstreamTry) => string): LogGetter => (v) => (v.tries.length === 0 ? '' : v.tries.map(pick).join(', '))

/** Variables whose values are digits, dots, addresses and fixed punctuation only: they
 *  never need escaping, so the hot path skips the check for them. */
const plain = new Set(['status', 'body_bytes_sent', 'request_time', 'time_local', 'time_iso8601', 'msec',
  'upstream_status', 'upstream_connect_time', 'upstream_header_time', 'upstream_response_time',
  'upstream_queue_time', 'remote_addr', 'remote_port', 'server_port', 'pid'])

const logOnly: Record<string, LogGetter> = {
  status: (v) => String(v.status),
  body_bytes_sent: (v) => String(v.bodyBytesSent),
  request_time: (v) => v.requestTime.toFixed(3),
  time_local: ((cached) => (v: LogVariables) => cached(v.ended))(perSecond(timeLocal)),
  time_iso8601: ((cached) => (v: LogVariables) => cached(v.ended))(perSecond(timeIso8601)),
  msec: (v) => (v.ended / 1000).toFixed(3),
  remote_user: () => '',
  upstream_addr: perTry((t) => t.addr),
  upstream_status: perTry((t) => String(t.status)),
  upstream_connect_time: perTry((t) => seconds(t.connectTime)),
  upstream_header_time: perTry((t) => seconds(t.headerTime)),
  upstream_response_time: perTry((t) => seconds(t.responseTime)),
  // NGINX Plus: only a request's first pick can wait in the queue; later tries show 0.000.
  upstream_queue_time: perTry((t) => t.queueTime.toFixed(3)),
}

// A line is a string of bytes, one char per byte, written to the file as latin1. Node's
// HTTP parser hands over the request line and headers that way (each char is a byte the
// client sent), and nginx logs those bytes, so a client's UTF-8 stays UTF-8 and a stray
// 0xE9 stays one byte. Text from the config (the format's own text, a server name, an
// upstream address) was read as UTF-8, so it is turned back into its UTF-8 bytes.

/** Text read from the config as its UTF-8 bytes, one char per byte. */
export function utf8Bytes(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

// eslint-disable-next-line no-control-regex
const wide = /[^\x00-\xff]/

/** A request value as a string of bytes: unchanged when every char is a byte already (a
 *  char above 0xff can only come from a value computed from the config). */
function bytes(s: string): string {
  return wide.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s
}

/** Variables whose values come from the config, not the request. */
const fromConfig = new Set(['server_name', 'proxy_host', 'hostname', 'upstream_addr'])

const hex = '0123456789ABCDEF'

/** Escape each byte of `s` (a string of bytes) for which `needs` holds. */
function escapeBytes(s: string, needs: (b: number) => boolean, escape: (b: number) => string): string {
  let out = ''
  let from = 0
  for (let i = 0; i < s.length; i++) {
    const b = s.charCodeAt(i)
    if (!needs(b)) continue
    out += s.slice(from, i) + escape(b)
    from = i + 1
  }
  return from === 0 ? s : out + s.slice(from)
}

// eslint-disable-next-line no-control-regex
const needsDefault = /["\\\x00-\x1f\x7f-\uffff]/

/** nginx's default escaping: `"`, `\`, control bytes and bytes from 0x7f up become `\xHH`. */
export function escapeDefault(value: string): string {
  if (!needsDefault.test(value)) return value
  return escapeBytes(bytes(value), (b) => b === 0x22 || b === 0x5c || b < 0x20 || b >= 0x7f, (b) => `\\x${hex[b >> 4]}${hex[b & 15]}`)
}

// eslint-disable-next-line no-control-regex
const needsJson = /["\\\x00-\x1f\u0100-\uffff]/
const jsonShort: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r' }

/** escape=json as nginx does it: `\"`, `\\`, `\n`-style or `\u00XX` for control bytes;
 *  every other byte as it is (a client's UTF-8 stays UTF-8 inside the JSON string). */
export function escapeJson(value: string): string {
  if (!needsJson.test(value)) return value
  return escapeBytes(bytes(value), (b) => b === 0x22 || b === 0x5c || b < 0x20, (b) => {
    if (b >= 0x20) return `\\${String.fromCharCode(b)}`
    return jsonShort[b] ?? `\\u00${hex[b >> 4]}${hex[b & 15]}`
  })
}

const escapers: Record<Escape, (s: string) => string> = { default: escapeDefault, json: escapeJson, none: bytes }

/** Compile a log format. Throws `unknown "x" variable` for names nginx would not know. */
export function compileLogFormat(name: string, text: string, escape: Escape = 'default'): LogFormat {
  const esc = escapers[escape]
  // An empty value is logged as "-", as nginx does for variables that are not found;
  // with escape=json or none as nothing, as nginx does too (a JSON string stays a string).
  const none = escape === 'default' ? '-' : ''
  const split = splitVariables(text)
  const used = new Set(split.flatMap((part) => (typeof part === 'string' ? [] : [part.variable])))
  const values = (variable: string): LogGetter => {
    // The method and version are tokens the HTTP parser has checked: only the target can
    // need escaping.
    if (variable === 'request') return (v) => `${v.req.method} ${esc(v.req.url ?? '/')} HTTP/${v.req.httpVersion}`
    const value: LogGetter = logOnly[variable] ?? (variableGetter(variable) as LogGetter)
    const getter: LogGetter = fromConfig.has(variable) ? (v) => utf8Bytes(value(v)) : value
    if (plain.has(variable)) return (v) => getter(v) || none
    return (v) => {
      const value = getter(v)
      return value === '' ? none : esc(value)
    }
  }
  // The line is `head`, then each variable's value followed by the text after it.
  let head = ''
  const getters: LogGetter[] = []
  const tails: string[] = []
  for (const part of split) {
    if (typeof part === 'string') {
      if (getters.length === 0) head += utf8Bytes(part)
      else tails[tails.length - 1] += utf8Bytes(part)
    } else {
      getters.push(values(part.variable))
      tails.push('')
    }
  }
  if (tails.length === 0) head += '\n'
  else tails[tails.length - 1] += '\n'
  const n = getters.length
  return {
    name,
    escape,
    usesTries: [...used].some((name) => name.startsWith('upstream_')),
    usesRequestTime: used.has('request_time'),
    format(v) {
      let out = head
      for (let i = 0; i < n; i++) out += getters[i]!(v) + tails[i]!
      return out
    },
  }
}

/** nginx's predefined `combined` format. */
export const COMBINED = compileLogFormat(
  'combined',
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"',
)
