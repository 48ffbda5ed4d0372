// The nginx config grammar at the character level, following ngx_conf_read_token():
// words separated by whitespace; `;`, `{` and `}` end statements and blocks; `#` starts a
// comment only where a new word could start; '…' and "…" quote; a backslash protects the
// next character. Text is handled as UTF-8 anywhere; only ASCII characters are special.
import { ConfigError } from './errors.js'

export type Token =
  | {
      readonly kind: 'word'
      /** The word after quote removal and escape processing. */
      readonly text: string
      /** True when the word was written in quotes ('' or ""). */
      readonly quoted: boolean
      /** Line where the word starts. */
      readonly line: number
    }
  | { readonly kind: ';' | '{' | '}'; readonly line: number }
  /** Always the last token; `line` is the line after the last newline, as nginx counts. */
  | { readonly kind: 'eof'; readonly line: number }

const isSpace = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n'

/**
 * Split config text into tokens. `file` is used only for error messages. Throws
 * ConfigError with nginx's wording: `unexpected "x"` (after a closing quote) and
 * `unexpected end of file, expecting ";" or "}"` (inside a word or quotes at the end).
 */
export function tokenize(text: string, file: string): Token[] {
  return [...readTokens(text, file)]
}

/** The same tokens, read lazily, so a parser sees errors in file order as nginx does
 *  (a stray `;` on line 3 is reported before an unclosed quote on line 9). */
export function* readTokens(text: string, file: string): Generator<Token, void, undefined> {
  // A UTF-8 byte order mark would otherwise become part of the first directive's name.
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let line = 1
  const fail = (reason: string): never => {
    throw new ConfigError(reason, { file, line })
  }

  while (i < text.length) {
    const ch = text[i]!
    if (ch === '\n') line++
    if (isSpace(ch)) {
      i++
      continue
    }
    if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++
      continue
    }
    if (ch === ';' || ch === '{' || ch === '}') {
      yield { kind: ch, line }
      i++
      continue
    }

    const startLine = line
    if (ch === '"' || ch === "'") {
      // Quoted: everything up to the matching unescaped quote, newlines included.
      const start = ++i
      for (;;) {
        if (i >= text.length) fail('unexpected end of file, expecting ";" or "}"')
        const c = text[i]!
        if (c === '\n') line++
        if (c === '\\') {
          if (text[i + 1] === '\n') line++
          i += 2
          continue
        }
        if (c === ch) break
        i++
      }
      yield { kind: 'word', text: unescape(text.slice(start, i)), quoted: true, line: startLine }
      i++
      // nginx wants a separator right after the closing quote (or `)`, for `if (…)`).
      const next = text[i]
      if (next === undefined || isSpace(next) || next === ';' || next === '{') continue
      if (next === ')') continue // `)` then starts the next word, as in nginx
      fail(`unexpected "${next}"`)
    }

    // Bare word: ends at whitespace, `;` or `{`. `}` and `#` inside a word are literal, and
    // `{` directly after `$` belongs to a `${name}` variable.
    const start = i
    let variable = false
    for (;;) {
      if (i >= text.length) fail('unexpected end of file, expecting ";" or "}"')
      const c = text[i]!
      if (c === '\\') {
        if (text[i + 1] === '\n') line++
        i += 2
        variable = false
        continue
      }
      if (c === '{' && variable) {
        i++
        continue
      }
      variable = c === '$'
      if (isSpace(c) || c === ';' || c === '{') break
      i++
    }
    yield { kind: 'word', text: unescape(text.slice(start, i)), quoted: false, line: startLine }
  }

  yield { kind: 'eof', line }
}

/** nginx's escapes: `\"` `\'` `\\` give the character, `\t` `\r` `\n` the control
 *  character; any other backslash is kept as written (so regexes keep `\d`, `\.`). */
function unescape(raw: string): string {
  if (!raw.includes('\\')) return raw
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    if (ch !== '\\' || i + 1 >= raw.length) {
      out += ch
      continue
    }
    const next = raw[i + 1]!
    if (next === '"' || next === "'" || next === '\\') {
      out += next
      i++
    } else if (next === 't') {
      out += '\t'
      i++
    } else if (next === 'r') {
      out += '\r'
      i++
    } else if (next === 'n') {
      out += '\n'
      i++
    } else {
      out += ch
    }
  }
  return out
}
