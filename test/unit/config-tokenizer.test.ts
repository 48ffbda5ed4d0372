// The nginx grammar at the character level: what ngx_conf_read_token() splits where,
// and the exact errors (wording and line) it gives.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { tokenize, type Token } from '../../src/config/tokenizer.js'
import { ConfigError } from '../../src/config/errors.js'

const FILE = '/etc/switchyard/lb.conf'

/** Tokens in a compact form: words as JSON strings, punctuation bare, `@line` on request. */
function show(text: string, withLines = false): string {
  return tokenize(text, FILE)
    .filter((t) => t.kind !== 'eof')
    .map((t: Token) => {
      const body = t.kind === 'word' ? JSON.stringify(t.text) : t.kind
      return withLines ? `${body}@${t.line}` : body
    })
    .join(' ')
}

// How text splits into words and punctuation, nginx's way.
const splits: Array<{ what: string; text: string; want: string }> = [
  { what: 'several statements on one line', text: 'a 1;b 2;', want: '"a" "1" ; "b" "2" ;' },
  { what: 'block opened and closed with no spaces', text: 'a{b;}', want: '"a" { "b" ; }' },
  { what: '`}http {` needs no space', text: 'events {x 1;\n}http {y;}', want: '"events" { "x" "1" ; } "http" { "y" ; }' },
  { what: 'comment after statements, with Chinese text', text: 'a 1;# 服务宕机-配置 b 2;\nc;', want: '"a" "1" ; "c" ;' },
  { what: 'comment lines after the last }', text: 'a{}\n# 1.默认:worker_connections: 1024\n# 2.调大\n', want: '"a" { }' },
  { what: '# inside a word is literal', text: 'a b#c;', want: '"a" "b#c" ;' },
  { what: '} inside a word is literal (nginx needs a space or ;)', text: 'return 200};', want: '"return" "200}" ;' },
  { what: '${name} braces stay in the word', text: 'set ${a}b{;', want: '"set" "${a}b" { ;' },
  { what: 'double-quoted string with spaces and ;{}#', text: 'a "x y;{}#";', want: '"a" "x y;{}#" ;' },
  { what: 'single-quoted string', text: "a 'x \"y\"';", want: '"a" "x \\"y\\"" ;' },
  { what: 'empty quoted string is a word', text: 'proxy_set_header Accept-Encoding "";', want: '"proxy_set_header" "Accept-Encoding" "" ;' },
  { what: 'escaped quotes and backslash', text: 'a "q\\"q" \'s\\\'s\' "b\\\\s";', want: '"a" "q\\"q" "s\'s" "b\\\\s" ;' },
  { what: '\\n \\t \\r become control characters', text: 'a "1\\n2\\t3\\r";', want: '"a" "1\\n2\\t3\\r" ;' },
  { what: 'other escapes keep their backslash (regexes)', text: 'location ~ \\.php$ {}', want: '"location" "~" "\\\\.php$" { }' },
  { what: 'escaped space joins a bare word', text: 'a b\\ c;', want: '"a" "b\\\\ c" ;' },
  { what: 'closing quote then ) starts a new word (if conditions)', text: 'if ($a = "b") {}', want: '"if" "($a" "=" "b" ")" { }' },
  { what: 'CRLF line endings', text: 'a 1;\r\nb 2;\r\n', want: '"a" "1" ; "b" "2" ;' },
  { what: 'tabs separate words', text: 'a\t1\t;', want: '"a" "1" ;' },
  { what: 'UTF-8 in words', text: 'server_name 例子.中国 ünï.test;', want: '"server_name" "例子.中国" "ünï.test" ;' },
  { what: 'a byte order mark is skipped', text: '\ufeffevents {}', want: '"events" { }' },
  { what: 'quoted directive names are words too', text: '"listen" \'80\';', want: '"listen" "80" ;' },
  { what: 'only comments', text: '# nothing\n   # here\n', want: '' },
]

for (const c of splits) {
  // Guards one tokenizer rule: the case's `what`.
  test(`tokenize: ${c.what}`, () => {
    assert.equal(show(c.text), c.want)
  })
}

// Line numbers: nginx reports the line where each token is read; quoted newlines count.
test('tokens carry nginx line numbers', () => {
  assert.equal(show('a 1;\n\nb "x\ny"\n  ;\n}', true), '"a"@1 "1"@1 ;@1 "b"@3 "x\\ny"@3 ;@5 }@6')
  assert.equal(show('a\\\nb;', true), '"a\\\\\\nb"@1 ;@2')
  const tokens = tokenize('a;\nb;\n', FILE)
  assert.deepEqual(tokens.at(-1), { kind: 'eof', line: 3 })
})

// Syntax errors the tokenizer itself raises, with nginx's text and line.
const errors: Array<{ what: string; text: string; error: string }> = [
  { what: 'text right after a closing quote', text: 'a "b"c;', error: 'unexpected "c"' + ` in ${FILE}:1` },
  { what: '} right after a closing quote', text: 'a {b "c"}', error: `unexpected "}" in ${FILE}:1` },
  { what: '# right after a closing quote', text: 'a\n"b"#c\n', error: `unexpected "#" in ${FILE}:2` },
  { what: 'end of file inside double quotes', text: 'a "b;\nc;\n', error: `unexpected end of file, expecting ";" or "}" in ${FILE}:3` },
  { what: 'end of file inside single quotes', text: "a 'b", error: `unexpected end of file, expecting ";" or "}" in ${FILE}:1` },
  { what: 'end of file in the middle of a word', text: 'a;\nb', error: `unexpected end of file, expecting ";" or "}" in ${FILE}:2` },
  { what: 'end of file after a backslash', text: 'a \\', error: `unexpected end of file, expecting ";" or "}" in ${FILE}:1` },
]

for (const c of errors) {
  // Guards one nginx tokenizer error: the case's `what`.
  test(`tokenize error: ${c.what}`, () => {
    assert.throws(() => tokenize(c.text, FILE), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.message, c.error)
      assert.equal(err.file, FILE)
      return true
    })
  })
}
