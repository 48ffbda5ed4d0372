// `log_format NAME [escape=default|json|none] STRING…`: access-log lines compiled once
// into a function of the finished request, with nginx's variables, including the
// per-try `$upstream_*` lists.
import { variableGetter, type RequestVariables } from '../config/variables.js'

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
}

/** What a finished request offers to an access log line. */
export interface LogVariables extends RequestVariables {
  /** `$status`. */
  readonly status: number
  /** `$body_bytes_sent`. */
  readonly bodyBytesSent: number
  /** `$request_time` in seconds. */
  readonly requestTime: number
  /** When the request ended (`$time_local`, `$time_iso8601`, `$msec`). */
  readonly ended: Date
  /** Every upstream try, in order. */
  readonly tries: readonly UpstreamTry[]
}

export type Escape = 'default' | 'json' | 'none'

export interface LogFormat {
  readonly name: string
  readonly escape: Escape
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

/** nginx's `$time_local`: `26/Nov/2026:10:00:00 +0000`. */
export function timeLocal(d: Date): string {
  return `${pad(d.getDate())}/${months[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${offset(d, false)}`
}

/** nginx's `$time_iso8601`: `2026-11-26T10:00:00+00:00`. */
export function timeIso8601(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${offset(d, true)}`
}

const seconds = (s: number | null): string => (s === null ? '-' : s.toFixed(3))

/** `$upstream_*`: one entry per try, joined by ", " like nginx; "-" when no try was made. */
const perTry = (pick: (t: UpstreamTry) => string): LogGetter => (v) => (v.tries.length === 0 ? '-' : v.tries.map(pick).join(', '))

const logOnly: Record<string, LogGetter> = {
  status: (v) => String(v.status),
  body_bytes_sent: (v) => String(v.bodyBytesSent),
  request_time: (v) => v.requestTime.toFixed(3),
  request: (v) => `${v.req.method} ${v.req.url} HTTP/${v.req.httpVersion}`,
  time_local: (v) => timeLocal(v.ended),
  time_iso8601: (v) => timeIso8601(v.ended),
  msec: (v) => (v.ended.getTime() / 1000).toFixed(3),
  remote_user: () => '',
  upstream_addr: perTry((t) => t.addr),
  upstream_status: perTry((t) => String(t.status)),
  upstream_connect_time: perTry((t) => seconds(t.connectTime)),
  upstream_header_time: perTry((t) => seconds(t.headerTime)),
  upstream_response_time: perTry((t) => seconds(t.responseTime)),
}

/** nginx's default escaping: `"`, `\` and bytes outside printable ASCII become `\xHH`
 *  (non-ASCII characters byte by byte, as UTF-8). */
export function escapeDefault(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/["\\\x00-\x1f\x7f-\uffff]/.test(value)) return value
  let out = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte === 0x22 || byte === 0x5c || byte < 0x20 || byte >= 0x7f ? `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte)
  }
  return out
}

/** JSON string escaping, for `escape=json` (the value goes between quotes the format writes). */
export function escapeJson(value: string): string {
  return JSON.stringify(value).slice(1, -1)
}

const escapers: Record<Escape, (s: string) => string> = { default: escapeDefault, json: escapeJson, none: (s) => s }

const nameChar = /[A-Za-z0-9_]/

/** Compile a log format. Throws `unknown "x" variable` for names nginx would not know. */
export function compileLogFormat(name: string, text: string, escape: Escape = 'default'): LogFormat {
  const esc = escapers[escape]
  const parts: Array<string | LogGetter> = []
  let literal = ''
  let i = 0
  while (i < text.length) {
    if (text[i] !== '$') {
      literal += text[i++]
      continue
    }
    let variable = ''
    let j = i + 1
    if (text[j] === '{') {
      const close = text.indexOf('}', j)
      if (close === -1) throw new Error(`the closing bracket in "${text.slice(i + 2)}" variable is missing`)
      variable = text.slice(j + 1, close)
      j = close + 1
    } else {
      while (j < text.length && nameChar.test(text[j]!)) variable += text[j++]
    }
    if (variable === '') throw new Error('invalid variable name')
    if (literal) parts.push(literal)
    literal = ''
    const own = logOnly[variable]
    const getter: LogGetter = own ?? (variableGetter(variable) as LogGetter)
    // An empty value is logged as "-", as nginx does for variables that are not found.
    parts.push((v) => {
      const value = getter(v)
      return value === '' ? '-' : esc(value)
    })
    i = j
  }
  if (literal) parts.push(literal)
  return {
    name,
    escape,
    format(v) {
      let out = ''
      for (const part of parts) out += typeof part === 'string' ? part : part(v)
      return out + '\n'
    },
  }
}

/** nginx's predefined `combined` format. */
export const COMBINED = compileLogFormat(
  'combined',
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"',
)
