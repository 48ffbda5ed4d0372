#!/usr/bin/env node
// Part of `npm run build`, after `tsc -p src/admin/dashboard` has compiled the page's
// TypeScript into dist/dashboard/assets/: copies the page, its stylesheet and uPlot's
// browser build (with its licence) beside it. Everything the dashboard loads then comes
// from dist/dashboard/, which the npm package ships.
import { copyFile, mkdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = join(root, 'src', 'admin', 'dashboard')
const out = join(root, 'dist', 'dashboard')
const uplot = dirname(createRequire(import.meta.url).resolve('uplot/package.json'))

const files = [
  [join(source, 'index.html'), join(out, 'index.html')],
  [join(source, 'dashboard.css'), join(out, 'assets', 'dashboard.css')],
  [join(uplot, 'dist', 'uPlot.iife.min.js'), join(out, 'assets', 'vendor', 'uPlot.iife.min.js')],
  [join(uplot, 'dist', 'uPlot.min.css'), join(out, 'assets', 'vendor', 'uPlot.min.css')],
  [join(uplot, 'LICENSE'), join(out, 'assets', 'vendor', 'uPlot.LICENSE.txt')],
]
for (const [from, to] of files) {
  await mkdir(dirname(to), { recursive: true })
  await copyFile(from, to)
}
