// `switchyard demo` end to end, as a user runs it: the CLI, three services, the tutorial's
// config and the balancer, all as one child process.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { freePorts } from '../helpers/net.js'
import { BIN, ROOT } from '../helpers/switchyard.js'

/** port → requests counted, from the table rows (`PORT  COUNT  WEIGHT  expected…`). */
function counts(section: string): Map<number, number> {
  const rows = new Map<number, number>()
  for (const line of section.split('\n')) {
    const row = /^\s*(\d+)\s+(\d+)\s+(\d+|\?)\s/.exec(line)
    if (row) rows.set(Number(row[1]), Number(row[2]))
  }
  return rows
}

// The tutorial's claim and the product's: weights 3/5/2 split 10 requests 3/5/2, and with
// the weight-5 service stopped every request still succeeds on the other two.
test('demo shows the 3/5/2 split, then zero failures after a service stops', { timeout: 60_000 }, async () => {
  const [a, b, c, listen] = await freePorts(4)
  const args = [BIN, 'demo', '--once', '--ports', `${a},${b},${c}`, '--listen', String(listen), '--requests', '10']
  // execFile, not runCli: its callback waits for stdout to close, so no table line is lost
  // to the child exiting before its last output is read.
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, args, { cwd: ROOT, timeout: 50_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    )
    child.stdin?.end()
  })
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`
  assert.equal(code, 0, context)

  const stop = stdout.indexOf('Stopping the service')
  assert.ok(stop > 0, context)
  const before = counts(stdout.slice(0, stop))
  const after = counts(stdout.slice(stop))

  assert.deepEqual([before.get(a), before.get(b), before.get(c)], [3, 5, 2], context)
  assert.match(stdout.slice(0, stop), /10\/10 succeeded, 0 failed/, context)

  assert.match(stdout.slice(stop), /10\/10 succeeded, 0 failed/, context)
  assert.equal(after.get(b), 0, context)
  assert.equal((after.get(a) ?? 0) + (after.get(c) ?? 0), 10, context)
  assert.doesNotMatch(stdout, /\x1b\[/, 'no colour codes when stdout is not a terminal')
})

// --policy runs the tutorial's snippet for one method: fair over the snippet's two services,
// ten sequential requests (always idle, so they take turns) split 5/5; the third service,
// which the snippet does not name, is left out of the table.
test('demo --policy fair shows that snippet\'s distribution', { timeout: 60_000 }, async () => {
  const [a, b, c, listen] = await freePorts(4)
  const args = [BIN, 'demo', '--once', '--policy', 'fair', '--ports', `${a},${b},${c}`, '--listen', String(listen)]
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 50_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    )
  })
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`
  assert.equal(code, 0, context)
  assert.match(stdout, /policy-fair\.conf/, context)
  const rows = counts(stdout)
  assert.deepEqual([rows.get(a), rows.get(b), rows.has(c!)], [5, 5, false], context)
  assert.match(stdout, /10\/10 succeeded, 0 failed/, context)
  assert.doesNotMatch(stdout, /Stopping the service/, context)
})
