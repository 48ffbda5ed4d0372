// Statement trees from tokens, nginx's block-structure errors, and `include` with globs
// (spliced in place, each statement naming the file it came from).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseConfigFile, parseConfigString, type Statement } from '../../src/config/parser.js'
import { ConfigError } from '../../src/config/errors.js'

const FILE = '/etc/switchyard/lb.conf'

/** A tree in a compact form: `name arg…;` and `name arg… { … }`. */
function show(tree: readonly Statement[]): string {
  return tree
    .map((s) => [s.name, ...s.args].join(' ') + (s.block ? ` { ${show(s.block)} }` : ';'))
    .join(' ')
    .replaceAll('{  }', '{ }')
}

/** Files under a fresh temp dir; returns the dir. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

// The block structure: nesting, several statements per line, source lines.
test('parses blocks and statements with their lines', () => {
  const parsed = parseConfigString('events {worker_connections 1024;\n}http {upstream u {server a;}server {listen 80;}\n}\n', FILE)
  assert.equal(show(parsed), 'events { worker_connections 1024; } http { upstream u { server a; } server { listen 80; } }')
  const http = parsed[1]!
  assert.deepEqual(http.source, { file: FILE, line: 2 })
  assert.deepEqual(http.blockEnd, { file: FILE, line: 3 })
  assert.deepEqual(parsed[0]!.block![0]!.source, { file: FILE, line: 1 })
})

// A statement's line is where its `;` or `{` is, the line nginx reports for it.
test('a multi-line statement is reported at its terminator', () => {
  const [stmt] = parseConfigString('server 127.0.0.1\n    weight=3\n    ;', FILE)
  assert.deepEqual(stmt, { name: 'server', args: ['127.0.0.1', 'weight=3'], source: { file: FILE, line: 3 } })
})

// Block-structure errors, worded and placed as ngx_conf_parse() does.
const errors: Array<{ what: string; text: string; error: string }> = [
  { what: '; with no directive', text: 'a;\n;', error: `unexpected ";" in ${FILE}:2` },
  { what: '{ with no directive', text: '{}', error: `unexpected "{" in ${FILE}:1` },
  { what: '} at the top level', text: 'events {}\n}', error: `unexpected "}" in ${FILE}:2` },
  { what: '} before ;', text: 'http { server { listen 80 } }', error: `unexpected "}" in ${FILE}:1` },
  { what: 'unclosed block', text: 'http {\n server {\n}\n', error: `unexpected end of file, expecting "}" in ${FILE}:4` },
  { what: 'statement not terminated at end of file', text: 'http {}\nevents', error: `unexpected end of file, expecting ";" or "}" in ${FILE}:2` },
  { what: 'include with a block', text: 'include x {}', error: `directive "include" is not terminated by ";" in ${FILE}:1` },
  { what: 'include without a file', text: 'include;', error: `invalid number of arguments in "include" directive in ${FILE}:1` },
  { what: 'include with two files', text: 'include a b;', error: `invalid number of arguments in "include" directive in ${FILE}:1` },
]

for (const c of errors) {
  // Guards one block-structure error: the case's `what`.
  test(`parse error: ${c.what}`, () => {
    assert.throws(() => parseConfigString(c.text, FILE), (err: unknown) => err instanceof ConfigError && err.message === c.error)
  })
}

// The main file missing: nginx's open() error with no location.
test('a missing main file is an open() error without a line', () => {
  const dir = tree({})
  const file = join(dir, 'nope.conf')
  assert.throws(() => parseConfigFile(file), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, `open() "${file}" failed (2: No such file or directory)`)
    assert.equal(err.line, null)
    return true
  })
  rmSync(dir, { recursive: true })
})

// include splices a file where it stands, even inside a block, with its own file name.
test('include splices statements in place with their own file and line', () => {
  const dir = tree({
    'lb.conf': 'http {\n  upstream u {\n    include servers.conf;\n    keepalive 4;\n  }\n}\n',
    'servers.conf': '# two servers\nserver 10.0.0.1;\nserver 10.0.0.2;\n',
  })
  const parsed = parseConfigFile(join(dir, 'lb.conf'))
  assert.equal(show(parsed), 'http { upstream u { server 10.0.0.1; server 10.0.0.2; keepalive 4; } }')
  const servers = parsed[0]!.block![0]!.block!
  assert.deepEqual(servers[1]!.source, { file: join(dir, 'servers.conf'), line: 3 })
  assert.deepEqual(servers[2]!.source, { file: join(dir, 'lb.conf'), line: 4 })
  rmSync(dir, { recursive: true })
})

// Globs: sorted matches, hidden files skipped, classes and ?; a dir wildcard; no match is fine.
test('include globs match like glob(3), in sorted order', () => {
  const dir = tree({
    'lb.conf': [
      'include conf.d/*.conf;',
      'include extra/[ab].conf;',
      'include extra/?x.conf;',
      'include sites-*/site.conf;',
      'include nothing/*.conf;',
      'include conf.d/*.none;',
    ].join('\n'),
    'conf.d/20-b.conf': 'b;',
    'conf.d/10-a.conf': 'a;',
    'conf.d/.hidden.conf': 'hidden;',
    'conf.d/readme.txt': 'txt;',
    'extra/a.conf': 'ea;',
    'extra/b.conf': 'eb;',
    'extra/c.conf': 'ec;',
    'extra/1x.conf': 'e1x;',
    'extra/12x.conf': 'e12x;',
    'sites-on/site.conf': 'on;',
    'sites-off/site.conf': 'off;',
    'sites-none/other.conf': 'other;',
  })
  assert.equal(show(parseConfigFile(join(dir, 'lb.conf'))), 'a; b; ea; eb; e1x; off; on;')
  rmSync(dir, { recursive: true })
})

// A plain include path that does not exist: nginx's open() error at the include line.
test('a missing plain include fails at the include line', () => {
  const dir = tree({ 'lb.conf': 'events {}\ninclude missing.conf;\n' })
  assert.throws(
    () => parseConfigFile(join(dir, 'lb.conf')),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message === `open() "${join(dir, 'missing.conf')}" failed (2: No such file or directory) in ${join(dir, 'lb.conf')}:2`,
  )
  rmSync(dir, { recursive: true })
})

// nginx resolves every relative include against the main config's directory (its conf
// prefix), also inside included files: Debian's sites-enabled/* include `snippets/…`.
test('relative includes in included files resolve against the main config directory', () => {
  const dir = tree({
    'lb.conf': 'include sites/*.conf;',
    'sites/default.conf': 'include snippets/common.conf;',
    'snippets/common.conf': 'common;',
  })
  assert.equal(show(parseConfigFile(join(dir, 'lb.conf'))), 'common;')
  rmSync(dir, { recursive: true })
})

// Syntax errors inside an included file name that file; a block cannot span files.
test('errors in an included file name that file and line', () => {
  const dir = tree({
    'lb.conf': 'http {\n  include part.conf;\n}\n',
    'part.conf': 'server {\n  listen 80;\n}\n}\n',
  })
  assert.throws(
    () => parseConfigFile(join(dir, 'lb.conf')),
    (err: unknown) => err instanceof ConfigError && err.message === `unexpected "}" in ${join(dir, 'part.conf')}:4`,
  )
  rmSync(dir, { recursive: true })
})

// A file that includes itself is refused instead of recursing forever.
test('an include loop is an error', () => {
  const dir = tree({ 'lb.conf': 'include loop.conf;', 'loop.conf': 'a;\ninclude loop.conf;' })
  assert.throws(
    () => parseConfigFile(join(dir, 'lb.conf')),
    (err: unknown) =>
      err instanceof ConfigError && err.message === `include of "${join(dir, 'loop.conf')}" makes a loop in ${join(dir, 'loop.conf')}:2`,
  )
  rmSync(dir, { recursive: true })
})
