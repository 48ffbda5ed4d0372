// nginx variables (`$host`, `$http_x_real_ip`, `${uri}` …) compiled once at config time
// into small functions, so the request path only calls them.
import type { IncomingMessage } from 'node:http'
import { hostname as osHostname } from 'node:os'

/** What a variable can read about the request being served. */
export interface RequestVariables {
  readonly req: IncomingMessage
  readonly remoteAddr: string
  readonly remotePort: number
  readonly scheme: string
  readonly serverAddr: string
  readonly serverPort: number
  /** The first `server_name` of the server block that took the request. */
  readonly serverName: string
  /** `$proxy_host`: the upstream name (or HOST:PORT) of the matched `proxy_pass`. */
  readonly proxyHost: string
  /** The request target up to `?`, as received. */
  readonly path: string
  /** The query string without `?`, '' when there is none. */
  readonly args: string
  /** The client address and port a PROXY protocol header gave (`listen … proxy_protocol`);
   *  null when the connection had none or the header carried no address. */
  readonly proxyProtocol: { readonly addr: string; readonly port: number } | null
  /** `$limit_req_status` / `$limit_conn_status` once the limits have run ('' before). */
  readonly limitReqStatus?: string
  readonly limitConnStatus?: string
}

type Getter = (v: RequestVariables) => string

/** A string with variables in it, evaluated per request. */
export interface Template {
  /** The text as written in the config. */
  readonly text: string
  /** The value when the text has no variables; null otherwise. */
  readonly constant: string | null
  /** Names of the variables used, without `$`. */
  readonly variables: readonly string[]
  evaluate(v: RequestVariables): string
}

const header = (v: RequestVariables, name: string): string => {
  const value = v.req.headers[name]
  if (value === undefined) return ''
  return Array.isArray(value) ? value.join(', ') : value
}

/** nginx's `$host`: the Host header without its port, lower-cased, else the server name. */
export function hostVariable(v: RequestVariables): string {
  const host = v.req.headers.host
  if (!host) return v.serverName
  let end = host.length
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1 || host.length
  } else {
    const colon = host.lastIndexOf(':')
    if (colon !== -1) end = colon
  }
  return host.slice(0, end).toLowerCase()
}

const hostName = osHostname()

const fixed: Record<string, Getter> = {
  host: hostVariable,
  remote_addr: (v) => v.remoteAddr,
  remote_port: (v) => String(v.remotePort),
  binary_remote_addr: (v) => v.remoteAddr,
  proxy_add_x_forwarded_for: (v) => {
    const xff = header(v, 'x-forwarded-for')
    return xff === '' ? v.remoteAddr : `${xff}, ${v.remoteAddr}`
  },
  scheme: (v) => v.scheme,
  https: (v) => (v.scheme === 'https' ? 'on' : ''),
  request_uri: (v) => v.req.url ?? '/',
  uri: (v) => normalizeUri(v.path),
  document_uri: (v) => normalizeUri(v.path),
  args: (v) => v.args,
  query_string: (v) => v.args,
  is_args: (v) => (v.args === '' ? '' : '?'),
  request_method: (v) => v.req.method ?? 'GET',
  server_protocol: (v) => `HTTP/${v.req.httpVersion}`,
  server_addr: (v) => v.serverAddr,
  server_port: (v) => String(v.serverPort),
  server_name: (v) => v.serverName,
  proxy_host: (v) => v.proxyHost,
  proxy_protocol_addr: (v) => v.proxyProtocol?.addr ?? '',
  proxy_protocol_port: (v) => (v.proxyProtocol === null ? '' : String(v.proxyProtocol.port)),
  content_length: (v) => header(v, 'content-length'),
  content_type: (v) => header(v, 'content-type'),
  hostname: () => hostName,
  pid: () => String(process.pid),
  msec: () => (Date.now() / 1000).toFixed(3),
  limit_req_status: (v) => v.limitReqStatus ?? '',
  limit_conn_status: (v) => v.limitConnStatus ?? '',
}

const prefixed: Array<[string, (suffix: string) => Getter]> = [
  ['http_', (name) => {
    const key = name.toLowerCase().replaceAll('_', '-')
    return (v) => header(v, key)
  }],
  ['arg_', (name) => (v) => queryArgument(v.args, name)],
  ['cookie_', (name) => (v) => cookieValue(header(v, 'cookie'), name)],
]

/** The getter for one variable name (without `$`), or an nginx-style error. */
export function variableGetter(name: string): Getter {
  const getter = fixed[name]
  if (getter) return getter
  for (const [prefix, make] of prefixed) {
    if (name.startsWith(prefix) && name.length > prefix.length) return make(name.slice(prefix.length))
  }
  throw new Error(`unknown "${name}" variable`)
}

/** True when the variable exists (used to validate configs). */
export function isKnownVariable(name: string): boolean {
  try {
    variableGetter(name)
    return true
  } catch {
    return false
  }
}

const nameChar = /[A-Za-z0-9_]/

/** Split an nginx string into literal text and `$name` / `${name}` references.
 *  Throws `invalid variable name` or the missing-bracket error like nginx. */
export function splitVariables(text: string): Array<string | { variable: string }> {
  const parts: Array<string | { variable: string }> = []
  let literal = ''
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (ch !== '$') {
      literal += ch
      i++
      continue
    }
    let name = ''
    let j = i + 1
    if (text[j] === '{') {
      const close = text.indexOf('}', j)
      if (close === -1) throw new Error(`the closing bracket in "${text.slice(i + 2)}" variable is missing`)
      name = text.slice(j + 1, close)
      j = close + 1
    } else {
      while (j < text.length && nameChar.test(text[j]!)) name += text[j++]
    }
    if (name === '') throw new Error('invalid variable name')
    if (literal) parts.push(literal)
    literal = ''
    parts.push({ variable: name })
    i = j
  }
  if (literal) parts.push(literal)
  return parts
}

/** Compile `text` (nginx string with `$name` / `${name}` references) into a Template.
 *  Throws `unknown "x" variable` or `invalid variable name` like nginx. */
export function compileTemplate(text: string): Template {
  const split = splitVariables(text)
  const variables = split.flatMap((p) => (typeof p === 'string' ? [] : [p.variable]))
  const parts: Array<string | Getter> = split.map((p) => (typeof p === 'string' ? p : variableGetter(p.variable)))
  if (variables.length === 0) {
    return { text, constant: text, variables, evaluate: () => text }
  }
  if (parts.length === 1) {
    const only = parts[0] as Getter
    return { text, constant: null, variables, evaluate: only }
  }
  return {
    text,
    constant: null,
    variables,
    evaluate(v) {
      let out = ''
      for (const part of parts) out += typeof part === 'string' ? part : part(v)
      return out
    },
  }
}

/** `$arg_NAME`: the first value of NAME in the query string, as sent (not decoded), like nginx. */
function queryArgument(args: string, name: string): string {
  if (args === '') return ''
  const lower = name.toLowerCase()
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=')
    const key = eq === -1 ? pair : pair.slice(0, eq)
    if (key.toLowerCase() === lower) return eq === -1 ? '' : pair.slice(eq + 1)
  }
  return ''
}

/** `$cookie_NAME`: the value of cookie NAME from the Cookie header. */
function cookieValue(cookies: string, name: string): string {
  if (cookies === '') return ''
  for (const part of cookies.split(/;\s*/)) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return ''
}

/** nginx's `$uri`: the path percent-decoded, with `//` merged and `.`/`..` segments
 *  resolved (it never climbs above `/`). */
export function normalizeUri(path: string): string {
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    decoded = path
  }
  const out: string[] = []
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') out.pop()
    else out.push(segment)
  }
  const trailing = decoded.endsWith('/') || decoded.endsWith('/.') || decoded.endsWith('/..')
  const joined = '/' + out.join('/')
  return trailing && joined !== '/' ? joined + '/' : joined
}
