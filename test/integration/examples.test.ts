// The tutorial's five balancing snippets ship in examples/policy-*.conf, each wrapped
// unchanged (but for its addresses) in a minimal http/server; `switchyard -t` accepts each.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { demoPolicies } from '../../src/demo/demo.js'
import { ROOT, runCli } from '../helpers/switchyard.js'

for (const policy of demoPolicies) {
  // Guards examples/policy-<name>.conf: it exists and is a valid config.
  test(`examples/policy-${policy}.conf passes switchyard -t`, async () => {
    const file = join(ROOT, 'examples', `policy-${policy}.conf`)
    const r = await runCli(['-t', '-c', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /test is successful/)
  })
}
