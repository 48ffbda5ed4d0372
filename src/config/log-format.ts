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

/** `$upstream_*`: one entry per try, joined by ", " like nginx; "-" when no try was made. */
const perTry = (pick: (t: UpstreamTry) => string): LogGetter => (v) => (v.tries.length === 0 ? '-' : v.tries.map(pick).join(', '))

/** Variables whose values are digits, dots, addresses and fixed punctuation only: they
 *  never need escaping, so the hot path skips the check for them. */
const plain = new Set(['status', 'body_bytes_sent', 'request_time', 'time_local', 'time_iso8601', 'msec',
  'upstream_addr', 'upstream_status', 'upstream_connect_time', 'upstream_header_time', 'upstream_response_time',
  'upstream_queue_time', 'remote_addr', 'remote_port', 'server_port', 'pid'])

const logOnly: Record<string, LogGetter> = {
  status: (v) => String(v.status),
  body_bytes_sent: (v) => String(v.bodyBytesSent),
  request_time: (v) => v.requestTime.toFixed(3),
  request: (v) => `${v.req.method} ${v.req.url} HTTP/${v.req.httpVersion}`,
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

/** Compile a log format. Throws `unknown "x" variable` for names nginx would not know. */
export function compileLogFormat(name: string, text: string, escape: Escape = 'default'): LogFormat {
  const esc = escapers[escape]
  const split = splitVariables(text)
  const used = new Set(split.flatMap((part) => (typeof part === 'string' ? [] : [part.variable])))
  const parts: Array<string | LogGetter> = split.map((part) => {
    if (typeof part === 'string') return part
    const getter: LogGetter = logOnly[part.variable] ?? (variableGetter(part.variable) as LogGetter)
    // An empty value is logged as "-", as nginx does for variables that are not found.
    if (plain.has(part.variable) || escape === 'none') {
      return (v: LogVariables) => getter(v) || '-'
    }
    return (v: LogVariables) => {
      const value = getter(v)
      return value === '' ? '-' : esc(value)
    }
  })
  return {
    name,
    escape,
    usesTries: [...used].some((name) => name.startsWith('upstream_')),
    usesRequestTime: used.has('request_time'),
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
