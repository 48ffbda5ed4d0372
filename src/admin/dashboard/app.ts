// The dashboard page: reads `GET /api/stream` (server-sent events, about once a second)
// and changes servers through `PATCH /api/upstreams/…`. Nothing is rendered on the
// server; the page knows only those public endpoints.
import { Actions } from './actions.js'
import { clock } from './format.js'
import { UpstreamCard } from './upstream-card.js'
import type { LiveEvent, LiveFrame, LiveHello, LivePoint } from './wire.js'

/** Requests/s points kept for the charts (5 minutes at one a second). */
const HISTORY = 300
/** Timeline entries shown. */
const EVENTS = 200
/** No frame for this long: the page says the data is stale. */
const STALE_MS = 3500

const main = document.getElementById('upstreams')!
const timeline = document.getElementById('timeline')!
const status = document.getElementById('status')!
const actions = new Actions()
const cards = new Map<string, UpstreamCard>()
let history: LivePoint[] = []
let lastFrame = 0

function setStatus(state: 'connecting' | 'live' | 'stale' | 'reconnecting', text: string): void {
  status.dataset.state = state
  status.textContent = text
}

function eventItem(e: LiveEvent): HTMLLIElement {
  const li = document.createElement('li')
  li.className = `event event-${e.kind}${e.kind === 'state' ? ` to-${e.to ?? ''}` : ''}`
  const time = document.createElement('time')
  time.dateTime = new Date(e.t).toISOString()
  time.textContent = clock(e.t)
  const tag = document.createElement('span')
  tag.className = 'tag'
  tag.textContent = e.kind
  const text = document.createElement('span')
  text.className = 'text'
  text.textContent = cards.size > 1 && e.upstream !== undefined ? `${e.upstream}: ${e.text}` : e.text
  li.append(time, tag, text)
  return li
}

function addEvents(events: readonly LiveEvent[]): void {
  if (events.length === 0) return
  timeline.prepend(...events.map(eventItem).reverse())
  while (timeline.children.length > EVENTS) timeline.lastElementChild!.remove()
}

function applyFrame(frame: LiveFrame): void {
  lastFrame = Date.now()
  setStatus('live', `live · ${clock(frame.t)}`)
  const seen = new Set<string>()
  for (const upstream of frame.upstreams) {
    seen.add(upstream.name)
    let card = cards.get(upstream.name)
    if (card === undefined) {
      card = new UpstreamCard(upstream.name, actions)
      cards.set(upstream.name, card)
      main.append(card.node)
    }
    card.update(upstream, frame.window)
  }
  for (const [name, card] of cards) {
    if (!seen.has(name)) {
      card.destroy()
      cards.delete(name)
    }
  }
  if (frame.upstreams.length === 0 && main.querySelector('.empty') === null) {
    const p = document.createElement('p')
    p.className = 'panel empty'
    p.textContent = 'No upstream blocks in this configuration.'
    main.append(p)
  } else if (frame.upstreams.length > 0) main.querySelector('.empty')?.remove()
  for (const card of cards.values()) card.chartPoints(history)
}

const source = new EventSource('api/stream')
source.addEventListener('hello', (e) => {
  const hello = JSON.parse((e as MessageEvent<string>).data) as LiveHello
  actions.tokenRequired = hello.token_required
  history = hello.history.slice(-HISTORY)
  timeline.replaceChildren()
  addEvents(hello.events)
  if (hello.frame !== null) applyFrame(hello.frame)
})
source.addEventListener('frame', (e) => {
  const frame = JSON.parse((e as MessageEvent<string>).data) as LiveFrame
  const rps: Record<string, Record<string, number>> = {}
  for (const u of frame.upstreams) {
    for (const p of u.peers) if (p.rps !== null) (rps[u.name] ??= {})[p.server] = p.rps
  }
  history.push({ t: frame.t, rps })
  if (history.length > HISTORY) history.splice(0, history.length - HISTORY)
  addEvents(frame.events)
  applyFrame(frame)
})
source.addEventListener('error', () => setStatus('reconnecting', 'reconnecting…'))

setInterval(() => {
  if (lastFrame !== 0 && Date.now() - lastFrame > STALE_MS && status.dataset.state === 'live') setStatus('stale', `no update since ${clock(lastFrame)}`)
}, 1000)

// Chart colours come from the page's colour scheme.
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  for (const card of cards.values()) card.redrawChart()
})
