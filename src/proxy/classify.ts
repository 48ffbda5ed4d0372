// What went wrong on an attempt, in proxy_next_upstream's terms, and whether the
// request may move on to another peer (nginx's ngx_http_upstream_next).
import type { NextUpstream } from '../config/model.js'

export type FailureType = 'error' | 'timeout' | 'invalid_header' | 'http_status'

export interface Failure {
  readonly type: FailureType
  /** Status switchyard answers with if this is the last failure (502, or 504 for timeouts). */
  readonly status: number
  /** True when no byte of the request can have reached the upstream (connect phase). */
  readonly beforeSend: boolean
  /** For http_status: the upstream's status. */
  readonly upstreamStatus?: number
  /** For logs: `connect() failed (ECONNREFUSED)`, `upstream timed out`… */
  readonly message: string
  /** What was going on, for the log's `while …` (default `connecting to upstream`). */
  readonly during?: string
}

interface ErrorLike {
  code?: string
  syscall?: string
  name?: string
  message?: string
}

/** Classify an undici/socket error from an attempt that produced no response header. */
export function classifyError(err: unknown): Failure {
  const e = (err ?? {}) as ErrorLike
  const code = e.code ?? ''
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return { type: 'timeout', status: 504, beforeSend: true, message: 'upstream timed out (connect)' }
  }
  if (code === 'SY_SEND_TIMEOUT') {
    return { type: 'timeout', status: 504, beforeSend: false, message: 'upstream timed out (110: Connection timed out)', during: 'sending request to upstream' }
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return { type: 'timeout', status: 504, beforeSend: false, message: 'upstream timed out while reading response header' }
  }
  if (e.syscall === 'connect' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return { type: 'error', status: 502, beforeSend: true, message: `connect() failed (${code || e.message})` }
  }
  if (e.name === 'HTTPParserError' || code.startsWith('HPE_')) {
    return { type: 'invalid_header', status: 502, beforeSend: false, message: `upstream sent invalid header (${code || e.message})` }
  }
  return { type: 'error', status: 502, beforeSend: false, message: `upstream connection failed (${code || e.message})` }
}

/** A response status listed in proxy_next_upstream, as a failure; null otherwise. */
export function classifyStatus(status: number, rules: NextUpstream): Failure | null {
  if (!rules.statuses.has(status)) return null
  return { type: 'http_status', status, beforeSend: false, upstreamStatus: status, message: `upstream answered ${status}` }
}

/** Does this failure count toward max_fails? (403 and 404 never do.) */
export function countsAsPeerFailure(failure: Failure): boolean {
  return !(failure.type === 'http_status' && (failure.upstreamStatus === 403 || failure.upstreamStatus === 404))
}

/** Is `failure` a kind that proxy_next_upstream lets move to another peer? */
export function listedInNextUpstream(failure: Failure, rules: NextUpstream): boolean {
  switch (failure.type) {
    case 'error': return rules.error
    case 'timeout': return rules.timeout
    case 'invalid_header': return rules.invalidHeader
    case 'http_status': return true // classifyStatus only returns listed statuses
  }
}

/** Methods nginx will not pass to a second peer once the request was sent, unless
 *  `non_idempotent` is listed (ngx_http_upstream_next). */
export function isNonIdempotent(method: string): boolean {
  return method === 'POST' || method === 'PATCH' || method === 'LOCK'
}
