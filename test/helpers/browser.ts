// A real browser for the dashboard tests: Debian's chromium (installed by .ci/run, never
// downloaded by Playwright) driven by playwright-core, headless, with a fresh profile in
// a temp dir, on loopback only. Screenshots go to test-output/.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { ROOT } from './switchyard.js'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const SCREENSHOTS = join(ROOT, 'test-output')

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found (apt-get install chromium, as .ci/run does)`
  if (!existsSync(join(ROOT, 'dist', 'dashboard', 'index.html'))) return 'the dashboard is not built (npm run build)'
  return null
}

export interface Browser {
  readonly context: BrowserContext
  /** A new page that records console errors and failed requests in `problems`. */
  page(options?: { width?: number; height?: number }): Promise<Page>
  readonly problems: string[]
  close(): Promise<void>
}

export async function launchBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'switchyard-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  })
  const problems: string[] = []
  return {
    context,
    problems,
    async page(options = {}) {
      const page = await context.newPage()
      await page.setViewportSize({ width: options.width ?? 1280, height: options.height ?? 900 })
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`)
      })
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
      page.on('requestfailed', (r) => {
        // The event stream is cut when the page closes; that is not a problem.
        if (!r.url().endsWith('/api/stream')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`)
      })
      return page
    },
    async close() {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}

/** Save a screenshot of `page` as test-output/NAME.png; returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true })
  const path = join(SCREENSHOTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
