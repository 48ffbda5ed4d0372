// The command line as nginx users know it: -t answers like `nginx -t`, flags in any order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runCli, writeConfig } from '../helpers/switchyard.js'

const good = 'events {}\nhttp { upstream a { server 127.0.0.1:1; } server { listen 127.0.0.1:1; location / { proxy_pass http://a; } } }\n'

// -t on a good config: exit 0 and nginx's two ok lines.
test('-t -c FILE on a good config', async () => {
  const file = await writeConfig(good)
  const r = await runCli(['-t', '-c', file])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, new RegExp(`the configuration file ${file} syntax is ok`))
  assert.match(r.stderr, new RegExp(`configuration file ${file} test is successful`))
})

// Flags may come in any order.
test('-c FILE -t works like -t -c FILE', async () => {
  const file = await writeConfig(good)
  const r = await runCli(['-c', file, '-t'])
  assert.equal(r.code, 0, r.stderr)
})

// -t on a bad config: exit 1 and the error with FILE:LINE.
test('-t on a bad config names file and line', async () => {
  const file = await writeConfig('events {}\nhttp {\n  server {\n    frobnicate on;\n  }\n}\n')
  const r = await runCli(['-t', '-c', file])
  assert.equal(r.code, 1)
  assert.match(r.stderr, new RegExp(`\\[emerg\\] unknown directive "frobnicate" in ${file}:4`))
  assert.match(r.stderr, new RegExp(`configuration file ${file} test failed`))
})

// A missing file is an error, not a crash.
test('-t on a missing file', async () => {
  const r = await runCli(['-t', '-c', '/nonexistent/switchyard.conf'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /\/nonexistent\/switchyard.conf/)
})

// Unknown flags are refused with the usage text.
test('an unknown flag is refused', async () => {
  const r = await runCli(['-x'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /invalid option/)
})
