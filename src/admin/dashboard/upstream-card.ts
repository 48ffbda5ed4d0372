// One upstream on the page: a heading with its totals, a row per server (state and why,
// weight, weight share beside actual share, load, errors, latency, actions) and its
// requests/s chart. Elements are made once and updated in place each tick, so focus and
// half-typed input survive the updates.
import type { Actions, Change } from './actions.js'
import { RateChart } from './chart.js'
import { describeReasons, describeRetries } from './describe.js'
import { colorOf, latency, percent, rate, weight } from './format.js'
import type { LivePeer, LivePoint, LiveUpstream } from './wire.js'

const COLUMNS = ['Server', 'State', 'Weight', 'Share', 'Active', 'Req/s', 'Errors', 'p50', 'p99', 'Actions'] as const

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}

/** A horizontal bar with its percentage. */
class Bar {
  readonly node: HTMLElement
  private readonly fill: HTMLElement
  private readonly text: HTMLElement

  constructor(label: string, kind: string, color: string) {
    this.fill = el('span', { className: `fill ${kind}` })
    this.fill.style.backgroundColor = color
    this.text = el('span', { className: 'pct' })
    this.node = el('span', { className: 'share-line' }, el('span', { className: 'share-label' }, label), el('span', { className: 'bar' }, this.fill), this.text)
  }

  set(fraction: number | null): void {
    this.fill.style.width = `${Math.round((fraction ?? 0) * 1000) / 10}%`
    this.text.textContent = percent(fraction)
  }
}

class PeerRow {
  readonly node: HTMLTableRowElement
  private readonly cells: Record<(typeof COLUMNS)[number], HTMLElement>
  private readonly stateBadge: HTMLElement
  private readonly why: HTMLElement
  private readonly weightShare: Bar
  private readonly actualShare: Bar
  private readonly drain: HTMLButtonElement
  private readonly down: HTMLButtonElement
  private readonly weightInput: HTMLInputElement
  private peer: LivePeer

  constructor(upstream: string, peer: LivePeer, index: number, actions: Actions) {
    this.peer = peer
    const label = peer.server
    const cell = (name: (typeof COLUMNS)[number], ...children: Array<Node | string>): HTMLElement => {
      const node = name === 'Server' ? el('th', { scope: 'row' }, ...children) : el('td', {}, ...children)
      node.dataset.label = name
      node.className = `col-${name.toLowerCase().replace(/[^a-z0-9]/g, '')}`
      return node
    }
    const swatch = el('span', { className: 'swatch' })
    swatch.style.backgroundColor = colorOf(index)
    this.stateBadge = el('span', { className: 'state' })
    this.why = el('span', { className: 'why' })
    this.weightShare = new Bar('weight', 'weight', colorOf(index))
    this.actualShare = new Bar('actual', 'actual', colorOf(index))

    const act = (change: () => Change) => () => void actions.patch(upstream, peer.id, label, change())
    this.drain = el('button', { type: 'button', textContent: 'Drain', className: 'action' })
    this.drain.setAttribute('aria-label', `Drain ${label}`)
    this.drain.addEventListener('click', act(() => ({ drain: true })))
    this.down = el('button', { type: 'button', className: 'action' })
    this.down.addEventListener('click', act(() => ({ down: !this.isOut() })))
    const inputId = `weight-${upstream}-${peer.id}`.replace(/[^A-Za-z0-9_-]/g, '_')
    this.weightInput = el('input', { type: 'number', id: inputId, min: '1', max: '1000000', step: '1', required: true, className: 'weight-input' })
    this.weightInput.inputMode = 'numeric'
    const form = el('form', { className: 'weight-form' },
      el('label', { htmlFor: inputId, className: 'visually-hidden', textContent: `New weight for ${label}` }),
      this.weightInput,
      el('button', { type: 'submit', textContent: 'Set weight', className: 'action' }),
    )
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const value = Number(this.weightInput.value)
      if (!Number.isInteger(value) || value < 1) return
      this.weightInput.value = ''
      void actions.patch(upstream, peer.id, label, { weight: value })
    })

    this.cells = {
      Server: cell('Server', swatch, el('span', { className: 'server', textContent: peer.server }), peer.backup ? el('span', { className: 'tag', textContent: 'backup' }) : ''),
      State: cell('State', this.stateBadge, this.why),
      Weight: cell('Weight'),
      Share: cell('Share', el('span', { className: 'share' }, this.weightShare.node, this.actualShare.node)),
      Active: cell('Active'),
      'Req/s': cell('Req/s'),
      Errors: cell('Errors'),
      p50: cell('p50'),
      p99: cell('p99'),
      Actions: cell('Actions', el('span', { className: 'actions' }, this.drain, this.down, form)),
    }
    if (peer.server !== peer.name) this.cells.Server.title = peer.name
    this.node = el('tr', {}, ...COLUMNS.map((c) => this.cells[c]))
    this.node.dataset.server = peer.server
    this.update(peer)
  }

  update(peer: LivePeer): void {
    this.peer = peer
    const row = this.node
    row.dataset.state = peer.state
    row.className = `peer state-${peer.state}`
    this.stateBadge.textContent = peer.state
    this.stateBadge.className = `state state-${peer.state}`
    this.why.textContent = describeReasons(peer).join('; ')
    this.cells.Weight.textContent = weight(peer.weight)
    this.weightInput.placeholder = weight(peer.weight)
    this.weightShare.set(peer.weight_share)
    this.actualShare.set(peer.share)
    row.dataset.share = String(peer.share ?? '')
    row.dataset.weightShare = String(peer.weight_share)
    this.cells.Active.textContent = String(peer.active)
    this.cells['Req/s'].textContent = rate(peer.rps)
    this.cells.Errors.textContent = percent(peer.error_rate, 1)
    this.cells.Errors.classList.toggle('bad', (peer.error_rate ?? 0) > 0)
    this.cells.p50.textContent = latency(peer.p50)
    this.cells.p99.textContent = latency(peer.p99)
    this.drain.disabled = peer.reasons.includes('draining')
    const out = this.isOut()
    this.down.textContent = out ? 'Up' : 'Down'
    this.down.setAttribute('aria-label', `${out ? 'Bring up' : 'Set down'} ${peer.server}`)
  }

  /** Set out through the API (down or draining): the button brings it back. */
  private isOut(): boolean {
    return this.peer.reasons.includes('api_down') || this.peer.reasons.includes('draining')
  }
}

export class UpstreamCard {
  readonly node: HTMLElement
  private readonly name: string
  private readonly actions: Actions
  private readonly summary: HTMLElement
  private readonly tbody: HTMLTableSectionElement
  private readonly shareHead: HTMLElement
  private readonly chart: RateChart
  private rows = new Map<string, PeerRow>()
  private servers: string[] = []

  constructor(name: string, actions: Actions) {
    this.name = name
    this.actions = actions
    const id = `upstream-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`
    this.summary = el('p', { className: 'summary' })
    this.tbody = el('tbody')
    this.shareHead = el('th', { scope: 'col' }, 'Share')
    const head = el('tr', {}, ...COLUMNS.map((c) => (c === 'Share' ? this.shareHead : el('th', { scope: 'col' }, c))))
    const chartBox = el('div', { className: 'chart' })
    chartBox.setAttribute('role', 'img')
    chartBox.setAttribute('aria-label', `Requests per second to each server of ${name} over the last minutes`)
    this.node = el('section', { className: 'panel upstream', id },
      el('h2', { id: `${id}-title` }, el('span', { className: 'label', textContent: 'upstream ' }), name),
      this.summary,
      el('div', { className: 'table-wrap' }, el('table', { className: 'peers' }, el('caption', { className: 'visually-hidden', textContent: `Servers of upstream ${name}` }), el('thead', {}, head), this.tbody)),
      el('h3', { className: 'chart-title', textContent: 'Requests/s per server' }),
      chartBox,
    )
    this.node.setAttribute('aria-labelledby', `${id}-title`)
    this.node.dataset.upstream = name
    this.chart = new RateChart(chartBox, name)
  }

  update(upstream: LiveUpstream, window: number): void {
    const servers = upstream.peers.map((p) => p.server)
    if (servers.join('\n') !== this.servers.join('\n')) {
      this.servers = servers
      this.rows = new Map(upstream.peers.map((p, i) => [p.server, new PeerRow(this.name, p, i, this.actions)]))
      this.tbody.replaceChildren(...[...this.rows.values()].map((r) => r.node))
    } else {
      for (const p of upstream.peers) this.rows.get(p.server)!.update(p)
    }
    this.shareHead.textContent = window >= 1 ? `Share: weight / last ${Math.round(window)} s` : 'Share: weight / actual'
    const retries = describeRetries(upstream.retries, upstream.failovers)
    this.summary.textContent = `${upstream.balancer.replace(/_/g, ' ')} · ${rate(upstream.rps)} req/s · ${retries === '' ? 'no retries' : retries}`
  }

  chartPoints(points: readonly LivePoint[]): void {
    this.chart.show(points, this.servers)
  }

  redrawChart(): void {
    this.chart.redraw()
  }

  destroy(): void {
    this.chart.destroy()
    this.node.remove()
  }
}
