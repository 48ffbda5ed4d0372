#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm install` through the prepare script).
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2)).then((code) => {
  if (typeof code === 'number') process.exitCode = code
}, (err) => {
  process.stderr.write(`switchyard: ${err?.stack ?? err}\n`)
  process.exitCode = 1
})
