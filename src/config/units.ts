// Times and sizes as nginx reads them (ngx_parse_time, ngx_parse_offset).

/** Which nginx time parser a directive uses. `ms`: most timeouts (`proxy_read_timeout`,
 *  `keepalive_timeout`): units `ms s m h d w`, no `M`/`y`. `s`: second-granular values
 *  (`fail_timeout=`): units `s m h d w M y`, no `ms`. A bare number is seconds in both. */
export type TimeGranularity = 'ms' | 's'

const second = 1000
const minute = 60 * second
const hour = 60 * minute
const day = 24 * hour

// Units in the order nginx requires them (largest first); each may appear once.
const unitOrder = ['y', 'M', 'w', 'd', 'h', 'm', 's', 'ms'] as const
type Unit = (typeof unitOrder)[number]
const unitMs: Record<Unit, number> = {
  y: 365 * day,
  M: 30 * day,
  w: 7 * day,
  d: day,
  h: hour,
  m: minute,
  s: second,
  ms: 1,
}

/**
 * Parse an nginx time (`30`, `30s`, `1m30s`, `1h 30m`, `500ms`) into milliseconds.
 * Returns null when nginx would say "invalid value".
 *
 * Like nginx: units go from largest to smallest and each at most once (`1m30s`, not
 * `30s1m`); a trailing bare number counts as seconds (`1m30` = 90 s); spaces may
 * separate the parts. The result never exceeds Number.MAX_SAFE_INTEGER.
 */
export function parseTime(text: string, granularity: TimeGranularity = 'ms'): number | null {
  // nginx starts the ms parser past months, so `y` and `M` are rejected there.
  let step = granularity === 'ms' ? unitOrder.indexOf('M') : -1
  let total = 0
  let value = 0
  let digits = false
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (ch >= '0' && ch <= '9') {
      value = value * 10 + (ch.charCodeAt(0) - 48)
      if (value > Number.MAX_SAFE_INTEGER) return null
      digits = true
      i++
      continue
    }
    let unit: Unit | 'space'
    if (ch === 'm' && text[i + 1] === 's') {
      if (granularity === 's') return null
      unit = 'ms'
      i += 2
    } else if (ch === ' ') {
      unit = 'space'
      i++
    } else if (ch === 'y' || ch === 'M' || ch === 'w' || ch === 'd' || ch === 'h' || ch === 'm' || ch === 's') {
      unit = ch
      i++
    } else {
      return null
    }
    // A space closes a bare number as seconds; it may only come before the seconds.
    const index = unit === 'space' ? unitOrder.length : unitOrder.indexOf(unit)
    if (unit === 'space' ? step >= unitOrder.indexOf('s') : index <= step) return null
    step = index
    total += value * (unit === 'space' ? second : unitMs[unit])
    if (total > Number.MAX_SAFE_INTEGER) return null
    value = 0
    while (text[i] === ' ') i++
  }
  if (!digits) return null
  total += value * second
  return total > Number.MAX_SAFE_INTEGER ? null : total
}

const sizeScale: Record<string, number> = { k: 1024, K: 1024, m: 1024 ** 2, M: 1024 ** 2, g: 1024 ** 3, G: 1024 ** 3 }

/**
 * Parse an nginx size (`512`, `16k`, `1m`, `2G`) into bytes; null when invalid.
 * One optional unit suffix, k/K, m/M or g/G, after a plain decimal number (nginx's
 * ngx_parse_offset, which `client_max_body_size` uses).
 */
export function parseSize(text: string): number | null {
  const last = text[text.length - 1]
  const scale = last !== undefined ? sizeScale[last] : undefined
  const digits = scale === undefined ? text : text.slice(0, -1)
  const n = parseNumber(digits)
  if (n === null) return null
  const bytes = n * (scale ?? 1)
  return bytes > Number.MAX_SAFE_INTEGER ? null : bytes
}

/** nginx's ngx_atoi: a non-empty run of decimal digits, nothing else (no sign, no spaces). */
export function parseNumber(text: string): number | null {
  if (!/^[0-9]+$/.test(text)) return null
  const n = Number(text)
  return n > Number.MAX_SAFE_INTEGER ? null : n
}
