// The TLS and HTTP/2 directives of http and server blocks (ssl_certificate,
// ssl_certificate_key, ssl_protocols, ssl_ciphers, ssl_session_timeout, http2) read into
// ServerTls. Certificate files are read and checked when the config is built, so a bad
// file is a config error (and a reload with one keeps the running config); the runtime
// builds its secure contexts from the bytes kept here.
import { readFile } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { createSecureContext } from 'node:tls'
import { ConfigError, once, onOff } from './errors.js'
import type { ServerTls, SourceRef, TlsFile, VirtualServer } from './model.js'
import type { Statement } from './parser.js'
import { parseTime } from './units.js'

/** nginx's defaults (1.23.4+ for the protocols). */
export const DEFAULT_PROTOCOLS: readonly string[] = ['TLSv1.2', 'TLSv1.3']
export const DEFAULT_CIPHERS = 'HIGH:!aNULL:!MD5'
export const DEFAULT_SESSION_TIMEOUT = 5 * 60_000

/** TLS settings written at one level; undefined = inherit. */
export interface TlsDraft {
  certificate?: { path: string; source: SourceRef }
  certificateKey?: { path: string; source: SourceRef }
  protocols?: string[]
  ciphers?: string
  sessionTimeout?: number
  http2?: boolean
}

/** Directive names this module reads (in http or server). */
export const TLS_DIRECTIVES: ReadonlySet<string> = new Set([
  'ssl_certificate', 'ssl_certificate_key', 'ssl_protocols', 'ssl_ciphers', 'ssl_session_timeout', 'http2',
])

/** The protocol names nginx accepts; Node (OpenSSL 3) can only still speak the last two. */
const PROTOCOLS = new Set(['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])
const SUPPORTED_PROTOCOLS = new Set(['TLSv1.2', 'TLSv1.3'])

const fail = (reason: string, stmt: { source: SourceRef }): never => {
  throw new ConfigError(reason, stmt.source)
}

/** Read one TLS directive into `draft`. Relative paths are taken from the config's
 *  directory (nginx takes them from its prefix, which is that directory in practice). */
export function tlsSetting(stmt: Statement, draft: TlsDraft, seen: Set<string>, dir: string): void {
  once(stmt, seen)
  const [arg] = stmt.args as [string]
  switch (stmt.name) {
    case 'ssl_certificate':
    case 'ssl_certificate_key': {
      // nginx 1.15.9+ allows variables here (a certificate per request); switchyard
      // loads files once per config.
      if (arg.includes('$')) fail(`variables in "${stmt.name}" are not supported by switchyard yet`, stmt)
      const file = { path: resolvePath(dir, arg), source: stmt.source }
      if (stmt.name === 'ssl_certificate') draft.certificate = file
      else draft.certificateKey = file
      return
    }
    case 'ssl_protocols':
      for (const p of stmt.args) if (!PROTOCOLS.has(p)) fail(`invalid value "${p}" in "ssl_protocols" directive`, stmt)
      // Older protocols are left out, as OpenSSL 3 leaves them out at its default level.
      if (!stmt.args.some((p) => SUPPORTED_PROTOCOLS.has(p))) fail('"ssl_protocols" without TLSv1.2 or TLSv1.3 is not supported by switchyard yet', stmt)
      draft.protocols = [...stmt.args]
      return
    case 'ssl_ciphers':
      draft.ciphers = arg
      return
    case 'ssl_session_timeout': {
      const ms = parseTime(arg)
      if (ms === null) fail('"ssl_session_timeout" directive invalid value', stmt)
      draft.sessionTimeout = ms!
      return
    }
    case 'http2':
      draft.http2 = onOff(stmt)
      return
  }
}

/** A server block's effective TLS settings (its own over the http level's), with the
 *  certificate files read and checked. `cache` shares reads within one build. */
export async function completeTls(
  server: TlsDraft | undefined,
  http: TlsDraft | undefined,
  cache: Map<string, Promise<Buffer>>,
): Promise<ServerTls> {
  const pick = <K extends keyof TlsDraft>(key: K): TlsDraft[K] => server?.[key] ?? http?.[key]
  const cert = pick('certificate')
  const key = pick('certificateKey')
  if (cert !== undefined && key === undefined) fail(`no "ssl_certificate_key" is defined for certificate "${cert.path}"`, cert)
  const tls: ServerTls = {
    certificate: cert === undefined ? null : await load(cert, 'certificate', cache),
    certificateKey: key === undefined ? null : await load(key, 'certificate key', cache),
    protocols: pick('protocols') ?? DEFAULT_PROTOCOLS,
    ciphers: pick('ciphers') ?? DEFAULT_CIPHERS,
    sessionTimeout: pick('sessionTimeout') ?? DEFAULT_SESSION_TIMEOUT,
    http2: pick('http2') ?? false,
  }
  if (tls.certificate !== null) {
    try {
      createSecureContext(secureContextOptions(tls))
    } catch (err) {
      // nginx's SSL_CTX_use_PrivateKey / SSL_CTX_set_cipher_list failures.
      const what = /cipher/i.test((err as Error).message)
        ? `SSL_CTX_set_cipher_list("${tls.ciphers}") failed`
        : `cannot load certificate "${cert!.path}" with key "${key!.path}"`
      fail(`${what} (SSL: ${(err as Error).message})`, cert!)
    }
  }
  return tls
}

/** nginx's ngx_http_ssl_init: the default server of every `ssl` address must have a
 *  certificate; the other blocks there without one are served the default's. */
export function checkSslAddresses(servers: readonly VirtualServer[]): void {
  const slots = new Map<string, { ssl: boolean; server: VirtualServer; explicit: boolean }>()
  for (const server of servers) {
    for (const l of server.listen) {
      const key = `${l.host}\0${l.port}`
      const slot = slots.get(key)
      if (slot === undefined) slots.set(key, { ssl: l.ssl, server, explicit: l.defaultServer })
      else {
        slot.ssl ||= l.ssl
        if (l.defaultServer && !slot.explicit) Object.assign(slot, { server, explicit: true })
      }
    }
  }
  for (const { ssl, server } of slots.values()) {
    if (ssl && server.tls.certificate === null) fail('no "ssl_certificate" is defined for the "listen ... ssl" directive', server)
  }
}

async function load(file: { path: string; source: SourceRef }, what: string, cache: Map<string, Promise<Buffer>>): Promise<TlsFile> {
  let read = cache.get(file.path)
  if (read === undefined) cache.set(file.path, (read = readFile(file.path)))
  let pem: Buffer
  try {
    pem = await read
  } catch (err) {
    return fail(`cannot load ${what} "${file.path}": BIO_new_file() failed (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message})`, file)
  }
  const marker = what === 'certificate' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN [A-Z ]*PRIVATE KEY-----/
  if (!marker.test(pem.toString('latin1'))) fail(`cannot load ${what} "${file.path}": PEM_read_bio failed (no PEM data)`, file)
  return { path: file.path, pem }
}

/** Node's secure context options for a server block's TLS settings. */
export function secureContextOptions(tls: ServerTls): {
  cert?: Buffer
  key?: Buffer
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  maxVersion: 'TLSv1.2' | 'TLSv1.3'
  ciphers: string
  sessionTimeout: number
} {
  const versions = tls.protocols.filter((p) => SUPPORTED_PROTOCOLS.has(p)) as Array<'TLSv1.2' | 'TLSv1.3'>
  return {
    ...(tls.certificate === null ? {} : { cert: tls.certificate.pem }),
    ...(tls.certificateKey === null ? {} : { key: tls.certificateKey.pem }),
    minVersion: versions.includes('TLSv1.2') ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: versions.includes('TLSv1.3') ? 'TLSv1.3' : 'TLSv1.2',
    ciphers: tls.ciphers,
    // seconds in Node, as in OpenSSL.
    sessionTimeout: Math.max(1, Math.round(tls.sessionTimeout / 1000)),
  }
}
