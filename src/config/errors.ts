// Config errors worded the way nginx words them, so `switchyard -t` reads like `nginx -t`:
// `unknown directive "frobnicate" in /abs/path/lb.conf:5`.

/** Where a config error was found. `line` is null for errors about a whole file
 *  (nginx's `open() "/x.conf" failed (2: No such file or directory)`). */
export interface ErrorLocation {
  readonly file: string
  readonly line?: number | null
}

/** A config file that cannot be used. `message` is the full nginx-style text;
 *  `reason` is the same without the ` in FILE:LINE` suffix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly reason: string
  readonly file: string | null
  readonly line: number | null

  constructor(reason: string, where?: ErrorLocation | null, options?: { cause?: unknown }) {
    super(formatConfigError(reason, where), options)
    this.reason = reason
    this.file = where?.file ?? null
    this.line = where?.line ?? null
  }
}

/** `reason in FILE:LINE`, `reason in FILE`, or just `reason` (nginx's ngx_conf_log_error). */
export function formatConfigError(reason: string, where?: ErrorLocation | null): string {
  if (!where) return reason
  if (where.line === undefined || where.line === null) return `${reason} in ${where.file}`
  return `${reason} in ${where.file}:${where.line}`
}

// strerror(3) texts for the errors a config read can meet; nginx prints `(errno: text)`.
const systemErrors: Record<string, [number, string]> = {
  ENOENT: [2, 'No such file or directory'],
  EACCES: [13, 'Permission denied'],
  EPERM: [1, 'Operation not permitted'],
  EISDIR: [21, 'Is a directory'],
  ENOTDIR: [20, 'Not a directory'],
  ELOOP: [40, 'Too many levels of symbolic links'],
  EMFILE: [24, 'Too many open files'],
  ENAMETOOLONG: [36, 'File name too long'],
  EIO: [5, 'Input/output error'],
}

/** nginx's ` (2: No such file or directory)` suffix for a Node fs error. */
export function systemErrorSuffix(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code && systemErrors[code]) {
    const [errno, text] = systemErrors[code]!
    return ` (${errno}: ${text})`
  }
  if (code) return ` (${code})`
  return err instanceof Error ? ` (${err.message})` : ''
}

/** nginx's flag directives (ngx_conf_set_flag_slot): `on` is true, `off` false, anything
 *  else its `invalid value "x" in "name" directive, it must be "on" or "off"`. */
export function onOff(stmt: { readonly name: string; readonly args: readonly string[]; readonly source: ErrorLocation }): boolean {
  const arg = stmt.args[0]
  if (arg === 'on' || arg === 'off') return arg === 'on'
  throw new ConfigError(`invalid value "${arg}" in "${stmt.name}" directive, it must be "on" or "off"`, stmt.source)
}

/** Throws nginx's `"x" directive is duplicate` the second time a name is seen at a level. */
export function once(stmt: { readonly name: string; readonly source: ErrorLocation }, seen: Set<string>): void {
  if (seen.has(stmt.name)) throw new ConfigError(`"${stmt.name}" directive is duplicate`, stmt.source)
  seen.add(stmt.name)
}
