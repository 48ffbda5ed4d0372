// The dashboard in a real browser (Debian's chromium, headless, through playwright-core):
// three backends weighted 3/5/2 behind switchyard with --admin. The page shows them with
// their weights, the share bars approach 3/5/2 under load, a stopped backend turns
// unavail (with its reason) within 2 s and comes back when it is started again, and the
// page's own controls drain a server, with and without a token. Screenshots go to
// test-output/.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import type { Page } from 'playwright-core'
import { browserMissing, launchBrowser, screenshot, type Browser } from '../helpers/browser.js'
import { freePorts, send, TestUpstream, upstreams } from '../helpers/net.js'
import { startSwitchyard, SwitchyardProcess } from '../helpers/switchyard.js'

const missing = browserMissing()
const options = { skip: missing ?? false, timeout: 60_000 }

const WEIGHTS = [3, 5, 2]
/** Rows must show a new state within this long of the change (the issue's bound). */
const SHOWN_WITHIN = 2000

let browser: Browser
let ups: TestUpstream[]
let proc: SwitchyardProcess
let port: number
let admin: number

const config = (servers: readonly TestUpstream[], listen: number): string => `events {}
http {
  upstream servers_list {
${servers.map((u, i) => `    server 127.0.0.1:${u.port} weight=${WEIGHTS[i]} max_fails=1 fail_timeout=2s;`).join('\n')}
  }
  server { listen 127.0.0.1:${listen}; location / { proxy_pass http://servers_list; proxy_connect_timeout 1s; } }
}
`

/** Requests from `clients` concurrent keep-alive clients until `stop()`, bounded by a
 *  count and a deadline; counts the answers by the port that served them. */
function loadLoop(target: number, { clients = 4, max = 200_000, ms = 30_000 } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients })
  const served = new Map<number, number>()
  let failures = 0
  let sent = 0
  let stopped = false
  const deadline = Date.now() + ms
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: target, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        if (res.statusCode === 200) {
          const p = (JSON.parse(body) as { port: number }).port
          served.set(p, (served.get(p) ?? 0) + 1)
        } else failures++
        resolve()
      })
    })
    req.on('error', () => {
      failures++
      resolve()
    })
    req.end()
  })
  const client = async (): Promise<void> => {
    while (!stopped && sent < max && Date.now() < deadline) {
      sent++
      await one()
    }
  }
  const done = Promise.all(Array.from({ length: clients }, client))
  return {
    served,
    get failures() {
      return failures
    },
    async stop(): Promise<void> {
      stopped = true
      await done
      agent.destroy()
    },
  }
}

function api(path: string, method = 'GET', body?: unknown, token?: string, target = admin): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: target, path, method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

/** The row of `server`; in `state` when given. */
const row = (page: Page, server: string, state?: string) =>
  page.locator(`section[data-upstream="servers_list"] tr[data-server="${server}"]${state === undefined ? '' : `[data-state="${state}"]`}`)
const address = (u: TestUpstream): string => `127.0.0.1:${u.port}`

/** The rows' actual shares, in config order. */
async function shares(page: Page): Promise<number[]> {
  return page.locator('section[data-upstream="servers_list"] tr[data-server]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-share') || 'NaN')))
}

async function open(target = admin): Promise<Page> {
  const page = await browser.page()
  await page.goto(`http://127.0.0.1:${target}/`)
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 5000 })
  return page
}

before(async () => {
  if (missing !== null) return
  ups = await upstreams(3)
  ;[port, admin] = (await freePorts(2)) as [number, number]
  ;({ proc } = await startSwitchyard(config(ups, port), ['--admin', `127.0.0.1:${admin}`]))
  await proc.waitFor('admin listener')
  browser = await launchBrowser()
})

after(async () => {
  if (missing !== null) return
  await browser?.close()
  await proc?.stop()
  await Promise.all(ups.map((u) => u.close().catch(() => undefined)))
})

// The page loads fast; every server with its weight as written; under load the actual
// share approaches 3/5/2.
test('the page lists every server with its weight, and the share bars approach 3/5/2', options, async () => {
  const page = await open()
  // Everything it loads, from switchyard itself, well under a second on loopback.
  const loaded = Number(await page.evaluate('performance.getEntriesByType("navigation")[0].loadEventEnd'))
  assert.ok(loaded > 0 && loaded < 1000, `loaded in ${loaded} ms`)
  const rows = page.locator('section[data-upstream="servers_list"] tr[data-server]')
  await rows.nth(2).waitFor()
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-server'))), ups.map(address))
  assert.deepEqual(await page.locator('section[data-upstream="servers_list"] td.col-weight').allTextContents(), ['3', '5', '2'])
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-weight-share')))), [0.3, 0.5, 0.2])

  const load = loadLoop(port, { max: 20_000, ms: 15_000 })
  try {
    const deadline = Date.now() + 10_000
    let got = await shares(page)
    while (!got.every((s, i) => Math.abs(s - WEIGHTS[i]! / 10) < 0.02)) {
      assert.ok(Date.now() < deadline, `shares ${got} did not approach 0.3/0.5/0.2`)
      await page.waitForTimeout(250)
      got = await shares(page)
    }
  } finally {
    await load.stop()
  }
  assert.equal(load.failures, 0)
  assert.equal(browser.problems.length, 0, browser.problems.join('\n'))
  await page.close()
})

// The tutorial's failover, seen live: a stopped backend's row shows unavail with nginx's
// reason within 2 s, traffic flows around it, and it comes back when started again.
test('a stopped backend shows unavail with its reason within 2 s, then comes back', options, async () => {
  const page = await open()
  const victim = ups[1]!
  const server = address(victim)
  await row(page, server).waitFor()
  // Bounded by time more than by count: the load must still run when the backend is back.
  const load = loadLoop(port, { max: 600_000, ms: 30_000 })
  try {
    await page.waitForTimeout(2500)
    const stopped = Date.now()
    await victim.close()
    await row(page, server, 'unavail').waitFor({ timeout: SHOWN_WITHIN })
    const shownAfter = Date.now() - stopped
    assert.ok(shownAfter <= SHOWN_WITHIN, `shown after ${shownAfter} ms`)
    assert.match(await row(page, server).locator('.why').textContent() ?? '', /max_fails 1\/1, out for fail_timeout 2s/)
    await page.locator('#timeline .event-state.to-unavail', { hasText: server }).waitFor({ timeout: 2000 })
    await page.locator('#timeline .event-retry').first().waitFor({ timeout: 2000 })
    await page.waitForTimeout(1500)
    await screenshot(page, 'dashboard-one-down-light')
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.waitForTimeout(300)
    await screenshot(page, 'dashboard-one-down-dark')
    await page.emulateMedia({ colorScheme: 'light' })

    // Started again on the same port: back after fail_timeout, on the next request.
    ups[1] = await new TestUpstream().listen(victim.port)
    await row(page, server, 'up').waitFor({ timeout: 2000 + 3000 })
    await page.locator('#timeline .event-state.to-up', { hasText: server }).waitFor({ timeout: 2000 })
    const before = ups[1]!.seen.length
    await page.waitForTimeout(1000)
    assert.ok(ups[1]!.seen.length > before, 'traffic goes to it again')
  } finally {
    await load.stop()
  }
  assert.equal(load.failures, 0, 'every request succeeded through the failover')
  assert.equal(browser.problems.length, 0, browser.problems.join('\n'))
  await page.close()
})

// The page's controls: drain (keyboard), then the API and the traffic agree; up again;
// a new weight typed into the form.
test('drain through the page: the API reports it and traffic stops going there', options, async () => {
  const page = await open()
  const target = ups[2]!
  const server = address(target)
  await row(page, server).waitFor()
  // Keyboard only: focus the button, press Enter.
  await page.getByRole('button', { name: `Drain ${server}` }).focus()
  await page.keyboard.press('Enter')
  await page.locator('#notice[data-kind="ok"]', { hasText: `${server}: draining` }).waitFor({ timeout: 2000 })
  assert.equal((await api('/api/upstreams/servers_list/servers/2')).json.state, 'draining')
  await row(page, server, 'draining').waitFor({ timeout: SHOWN_WITHIN })
  assert.match(await row(page, server).locator('.why').textContent() ?? '', /draining/)
  const seen = target.seen.length
  for (let i = 0; i < 50; i++) assert.equal((await send(port)).status, 200)
  assert.equal(target.seen.length, seen, 'no request reached the draining server')

  await page.getByRole('button', { name: `Bring up ${server}` }).click()
  await row(page, server, 'up').waitFor({ timeout: SHOWN_WITHIN })
  assert.equal((await api('/api/upstreams/servers_list/servers/2')).json.state, 'up')

  await page.getByLabel(`New weight for ${server}`).fill('4')
  await page.keyboard.press('Enter')
  await page.locator('#notice[data-kind="ok"]', { hasText: 'weight set to 4' }).waitFor({ timeout: 2000 })
  assert.equal((await api('/api/upstreams/servers_list/servers/2')).json.weight, 4)
  await page.locator('#timeline .event-weight', { hasText: `${server}: weight 2 → 4` }).waitFor({ timeout: SHOWN_WITHIN })
  await api('/api/upstreams/servers_list/servers/2', 'PATCH', { weight: 2 })
  assert.equal(browser.problems.length, 0, browser.problems.join('\n'))
  await page.close()
})

// With --admin-token the page asks for the token before a change, says when it is wrong,
// keeps it for the tab, and cancelling changes nothing.
test('with a token: the page asks for it, reports a wrong one, and then acts', options, async () => {
  const [listen, tokenAdmin] = (await freePorts(2)) as [number, number]
  const { proc: guarded } = await startSwitchyard(config(ups, listen), ['--admin', `127.0.0.1:${tokenAdmin}`, '--admin-token', 'sekret'])
  try {
    await guarded.waitFor('admin listener')
    const page = await open(tokenAdmin)
    const server = address(ups[0]!)
    await row(page, server).waitFor()
    const dialog = page.locator('#token-dialog')

    // Cancel: nothing changes.
    await page.getByRole('button', { name: `Drain ${server}` }).click()
    await dialog.waitFor({ state: 'visible' })
    await page.getByRole('button', { name: 'Cancel' }).click()
    await page.locator('#notice[data-kind="error"]', { hasText: 'not changed (no token given)' }).waitFor({ timeout: 2000 })
    assert.equal((await api('/api/upstreams/servers_list/servers/0', 'GET', undefined, undefined, tokenAdmin)).json.state, 'up')

    // A wrong token, then the right one.
    await page.getByRole('button', { name: `Drain ${server}` }).click()
    await page.getByRole('textbox', { name: 'Token' }).fill('wrong')
    await page.keyboard.press('Enter')
    await page.locator('#token-message', { hasText: 'not accepted' }).waitFor({ timeout: 2000 })
    await page.getByRole('textbox', { name: 'Token' }).fill('sekret')
    await page.getByRole('button', { name: 'Use token' }).click()
    await page.locator('#notice[data-kind="ok"]', { hasText: `${server}: draining` }).waitFor({ timeout: 2000 })
    assert.equal((await api('/api/upstreams/servers_list/servers/0', 'GET', undefined, undefined, tokenAdmin)).json.state, 'draining')
    await row(page, server, 'draining').waitFor({ timeout: SHOWN_WITHIN })

    // Kept for the tab: the next change needs no dialog, even after a reload of the page.
    await page.reload()
    await page.getByRole('button', { name: `Bring up ${server}` }).click()
    await page.locator('#notice[data-kind="ok"]', { hasText: `${server}: set up` }).waitFor({ timeout: 2000 })
    assert.equal(await dialog.isVisible(), false)
    assert.equal((await api('/api/upstreams/servers_list/servers/0', 'GET', undefined, undefined, tokenAdmin)).json.state, 'up')
    await screenshot(page, 'dashboard-token')
    // The browser logs the 401 it was answered; nothing else may go wrong.
    assert.deepEqual(browser.problems.filter((p) => !/status of 401/.test(p)), [])
    browser.problems.length = 0
    await page.close()
  } finally {
    await guarded.stop()
  }
})

// A phone-sized screen: one card per server, every control still reachable.
test('a narrow screen shows one card per server', options, async () => {
  const page = await browser.page({ width: 390, height: 844 })
  await page.goto(`http://127.0.0.1:${admin}/`)
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 5000 })
  const server = address(ups[0]!)
  await row(page, server).waitFor()
  const box = await row(page, server).boundingBox()
  assert.ok(box !== null && box.width <= 390, `row ${box?.width} px wide`)
  assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'no sideways scrolling')
  assert.ok(await page.getByRole('button', { name: `Drain ${server}` }).isVisible())
  await screenshot(page, 'dashboard-narrow')
  await page.close()
})

/** Wait until `proc`'s stdout contains `text` (bounded). */
async function stdoutHas(proc: SwitchyardProcess, text: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!proc.stdout.includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${proc.stdout}\n${proc.stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

// `npm start` as a user runs it: the demo prints the dashboard's address; under load the
// service it stopped is shown out; the hint it prints (start that service again) brings it
// back, and stopping it again is seen live. The README's screenshot comes from here.
test('the demo prints the dashboard, which shows its failover live', { ...options, timeout: 90_000 }, async () => {
  const [a, b, c, listen, dashboard] = (await freePorts(5)) as [number, number, number, number, number]
  const demo = new SwitchyardProcess(['demo', '--ports', `${a},${b},${c}`, '--listen', String(listen), '--admin', `127.0.0.1:${dashboard}`])
  let revived: SwitchyardProcess | null = null
  let load: ReturnType<typeof loadLoop> | null = null
  try {
    await stdoutHas(demo, 'Ctrl-C to stop')
    assert.match(demo.stdout, new RegExp(`dashboard: http://127\\.0\\.0\\.1:${dashboard}/`))
    assert.match(demo.stdout, new RegExp(`switchyard backend --port ${b}`))
    const page = await open(dashboard)
    const server = `127.0.0.1:${b}`
    load = loadLoop(listen, { max: 300_000, ms: 60_000 })
    await row(page, server, 'unavail').waitFor({ timeout: 5000 })

    // The printed hint: start the service again; it is back after fail_timeout (10 s).
    revived = new SwitchyardProcess(['backend', '--host', '127.0.0.1', '--port', String(b)])
    await row(page, server, 'up').waitFor({ timeout: 15_000 })
    await page.waitForTimeout(3000)
    await revived.stop()
    revived = null
    const stopped = Date.now()
    await row(page, server, 'unavail').waitFor({ timeout: SHOWN_WITHIN })
    assert.ok(Date.now() - stopped <= SHOWN_WITHIN)
    await page.waitForTimeout(4000)
    await screenshot(page, 'demo-one-down-light')
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.waitForTimeout(300)
    await screenshot(page, 'demo-one-down-dark')
    await load.stop()
    assert.equal(load.failures, 0, 'every request through the demo succeeded')
    assert.equal(browser.problems.length, 0, browser.problems.join('\n'))
    await page.close()
  } finally {
    await load?.stop()
    await revived?.stop()
    demo.signal('SIGINT')
    const exited = await Promise.race([demo.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))])
    if (!exited) await demo.stop()
  }
})
