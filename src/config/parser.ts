// Tokens → statement tree, with `include` files spliced in place (nginx reads an include
// where it stands, so `include` works inside any block). Each statement remembers the
// file and line it came from; nothing here knows what a directive means.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ConfigError, systemErrorSuffix } from './errors.js'
import type { SourceRef } from './model.js'
import { readTokens, type Token } from './tokenizer.js'

/** One directive: `name args…;` or `name args… { block }`. */
export interface Statement {
  readonly name: string
  readonly args: readonly string[]
  /** File and line of the `;` or `{` that ends the directive (nginx reports that line). */
  readonly source: SourceRef
  /** Present for block directives; empty for `name { }`. */
  readonly block?: readonly Statement[]
  /** Where the block's closing `}` is (nginx reports block-level errors there). */
  readonly blockEnd?: SourceRef
}

export interface ParseOptions {
  /** Directory that relative `include` paths resolve against. nginx uses the main config
   *  file's directory (its "conf prefix") for every include, also in included files.
   *  Default: the directory of the file being parsed first. */
  readonly prefix?: string
  /** Reads one file as UTF-8 text (tests can stub it). Default: fs.readFileSync. */
  readonly readFile?: (path: string) => string
}

interface ParseState {
  readonly prefix: string
  readonly readFile: (path: string) => string
  /** Files being read, outermost first, to refuse an include loop. */
  readonly stack: string[]
}

const defaultRead = (path: string): string => readFileSync(path, 'utf8')

/** Read and parse a config file and everything it includes. `file` should be absolute. */
export function parseConfigFile(file: string, options: ParseOptions = {}): Statement[] {
  const state = newState(file, options)
  let text: string
  try {
    text = state.readFile(file)
  } catch (err) {
    throw new ConfigError(`open() "${file}" failed${systemErrorSuffix(err)}`, null, { cause: err })
  }
  return parseFileText(text, file, state)
}

/** Parse config text as if it were the content of `file` (used for error messages and as
 *  the base of relative includes). */
export function parseConfigString(text: string, file: string, options: ParseOptions = {}): Statement[] {
  return parseFileText(text, file, newState(file, options))
}

function newState(file: string, options: ParseOptions): ParseState {
  return { prefix: options.prefix ?? dirname(file), readFile: options.readFile ?? defaultRead, stack: [] }
}

function parseFileText(text: string, file: string, state: ParseState): Statement[] {
  state.stack.push(file)
  try {
    return parseTokens(readTokens(text, file), file, state)
  } finally {
    state.stack.pop()
  }
}

interface OpenBlock {
  readonly name: string
  readonly args: readonly string[]
  readonly source: SourceRef
  readonly block: Statement[]
}

function parseTokens(tokens: Iterable<Token>, file: string, state: ParseState): Statement[] {
  const top: Statement[] = []
  const open: OpenBlock[] = []
  let words: string[] = []
  const current = (): Statement[] => open[open.length - 1]?.block ?? top
  const fail = (reason: string, line: number): never => {
    throw new ConfigError(reason, { file, line })
  }

  for (const token of tokens) {
    switch (token.kind) {
      case 'word':
        words.push(token.text)
        break

      case ';': {
        if (words.length === 0) fail('unexpected ";"', token.line)
        const [name, ...args] = words as [string, ...string[]]
        const source = { file, line: token.line }
        words = []
        if (name === 'include') current().push(...include(args, source, state))
        else current().push({ name, args, source })
        break
      }

      case '{': {
        if (words.length === 0) fail('unexpected "{"', token.line)
        const [name, ...args] = words as [string, ...string[]]
        words = []
        if (name === 'include') fail('directive "include" is not terminated by ";"', token.line)
        const opened: OpenBlock = { name, args, source: { file, line: token.line }, block: [] }
        current().push(opened)
        open.push(opened)
        break
      }

      case '}': {
        if (words.length > 0 || open.length === 0) fail('unexpected "}"', token.line)
        const closed = open.pop()!
        // The statement object is already in its parent's list; record where it ends.
        ;(closed as { blockEnd?: SourceRef }).blockEnd = { file, line: token.line }
        break
      }

      case 'eof':
        if (words.length > 0) fail('unexpected end of file, expecting ";" or "}"', token.line)
        if (open.length > 0) fail('unexpected end of file, expecting "}"', token.line)
        break
    }
  }
  return top
}

/** `include PATH;`: the statements of the named file, or of every file a glob matches
 *  (in sorted order; no match is fine, as in nginx). A file that cannot be opened is
 *  nginx's `open() "…" failed (2: No such file or directory)` at the include line. */
function include(args: readonly string[], source: SourceRef, state: ParseState): Statement[] {
  if (args.length !== 1) throw new ConfigError('invalid number of arguments in "include" directive', source)
  const pattern = resolve(state.prefix, args[0]!)
  const files = /[*?[]/.test(pattern) ? expandGlob(pattern) : [pattern]
  const out: Statement[] = []
  for (const file of files) {
    if (state.stack.includes(file)) throw new ConfigError(`include of "${file}" makes a loop`, source)
    let text: string
    try {
      text = state.readFile(file)
    } catch (err) {
      throw new ConfigError(`open() "${file}" failed${systemErrorSuffix(err)}`, source, { cause: err })
    }
    out.push(...parseFileText(text, file, state))
  }
  return out
}

/** Paths matching an absolute glob pattern (`*`, `?`, `[…]` in any component), sorted.
 *  Like glob(3), a wildcard does not match a leading `.` unless the pattern has one. */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split('/').filter((p) => p !== '')
  let paths = ['/']
  for (const [index, part] of parts.entries()) {
    const last = index === parts.length - 1
    if (!/[*?[]/.test(part)) {
      paths = paths.map((p) => join(p, part))
      continue
    }
    const matcher = globPart(part)
    const next: string[] = []
    for (const dir of paths) {
      let names: string[]
      try {
        names = readdirSync(dir)
      } catch {
        continue
      }
      for (const name of names) {
        if (name.startsWith('.') && !part.startsWith('.')) continue
        if (matcher.test(name)) next.push(join(dir, name))
      }
    }
    paths = last ? next : next.filter(isDirectory)
  }
  return paths.filter(exists).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function exists(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch {
    return false
  }
}

/** One path component of a glob as a RegExp: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`. */
function globPart(part: string): RegExp {
  let source = ''
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!
    if (ch === '*') source += '.*'
    else if (ch === '?') source += '.'
    else if (ch === '[') {
      let j = i + 1
      if (part[j] === '!' || part[j] === '^') j++
      if (part[j] === ']') j++
      while (j < part.length && part[j] !== ']') j++
      if (j >= part.length) {
        source += '\\['
        continue
      }
      let body = part.slice(i + 1, j)
      const negate = body[0] === '!' || body[0] === '^'
      if (negate) body = body.slice(1)
      source += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`
      i = j
    } else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, 's')
}
