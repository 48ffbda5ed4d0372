// Two `upstream` directives that bound the load switchyard puts on its peers:
// `retry_budget` (a switchyard extension with Envoy's semantics) and `queue` (NGINX Plus).
import { ConfigError } from './errors.js'
import type { QueueConfig, RetryBudgetConfig } from './model.js'
import type { Statement } from './parser.js'
import { parseNumber, parseTime } from './units.js'

/** Envoy's defaults (budget_percent 20 %, min_retry_concurrency 3). */
export const DEFAULT_RETRY_BUDGET: RetryBudgetConfig = { ratio: 0.2, min: 3 }
/** NGINX Plus's default `timeout=` of `queue`. */
export const DEFAULT_QUEUE_TIMEOUT = 60_000

const fail = (reason: string, stmt: Statement): never => {
  throw new ConfigError(reason, stmt.source)
}

/** `retry_budget off` | `retry_budget [ratio=R] [min=N]` → null (off) or the budget. */
export function parseRetryBudget(stmt: Statement): RetryBudgetConfig | null {
  if (stmt.args[0] === 'off') {
    if (stmt.args.length > 1) fail(`invalid parameter "${stmt.args[1]}"`, stmt)
    return null
  }
  let { ratio, min } = DEFAULT_RETRY_BUDGET
  for (const arg of stmt.args) {
    if (arg.startsWith('ratio=')) {
      const text = arg.slice(6)
      // A plain decimal between 0 and 1 (Envoy's budget_percent / 100).
      const value = /^(0|1|0?\.\d+|[01]\.\d*)$/.test(text) ? Number(text) : NaN
      if (!(value >= 0 && value <= 1)) fail(`invalid ratio "${text}" in "retry_budget" directive, it must be between 0 and 1`, stmt)
      ratio = value
    } else if (arg.startsWith('min=')) {
      const value = parseNumber(arg.slice(4))
      if (value === null) fail(`invalid min "${arg.slice(4)}" in "retry_budget" directive`, stmt)
      min = value!
    } else {
      fail(`invalid parameter "${arg}"`, stmt)
    }
  }
  return { ratio, min }
}

/** `queue N [timeout=60s]`. */
export function parseQueue(stmt: Statement): QueueConfig {
  const size = parseNumber(stmt.args[0]!)
  if (size === null || size === 0) fail(`invalid value "${stmt.args[0]}" in "queue" directive`, stmt)
  let timeout = DEFAULT_QUEUE_TIMEOUT
  const param = stmt.args[1]
  if (param !== undefined) {
    const ms = param.startsWith('timeout=') ? parseTime(param.slice(8)) : null
    if (ms === null) fail(`invalid parameter "${param}"`, stmt)
    timeout = ms!
  }
  return { size: size!, timeout }
}
