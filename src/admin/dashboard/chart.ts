// Requests/s per server over the last few minutes: one uPlot line chart per upstream.
import type { LivePoint } from './wire.js'
import { colorOf, rate } from './format.js'

const HEIGHT = 180
/** Seconds the time axis spans at least. */
const MIN_SPAN = 60

export class RateChart {
  private plot: uPlot | null = null
  private servers: readonly string[] = []
  private readonly box: HTMLElement
  private readonly upstream: string
  private readonly resize: ResizeObserver
  private data: uPlot.AlignedData = [[]]

  constructor(box: HTMLElement, upstream: string) {
    this.box = box
    this.upstream = upstream
    this.resize = new ResizeObserver(() => {
      if (this.plot !== null && this.plot.width !== this.width()) this.plot.setSize({ width: this.width(), height: HEIGHT })
    })
    this.resize.observe(box)
  }

  /** Draw `points` (oldest first) for `servers` (config order; colours by index). */
  show(points: readonly LivePoint[], servers: readonly string[]): void {
    const xs: number[] = []
    const ys: Array<Array<number | null>> = servers.map(() => [])
    for (const p of points) {
      xs.push(p.t / 1000)
      const rates = p.rps[this.upstream]
      servers.forEach((s, i) => ys[i]!.push(rates?.[s] ?? null))
    }
    this.data = [xs, ...ys]
    if (this.plot === null || servers.join('\n') !== this.servers.join('\n')) {
      this.servers = servers
      this.redraw()
    } else {
      this.plot.setData(this.data)
    }
  }

  /** Build the chart again (new servers, or the colour scheme changed). */
  redraw(): void {
    this.plot?.destroy()
    const style = getComputedStyle(document.documentElement)
    const ink = style.getPropertyValue('--muted').trim() || '#59636e'
    const grid = style.getPropertyValue('--grid').trim() || 'rgba(0,0,0,.08)'
    const axis: uPlot.Axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }
    this.plot = new uPlot({
      width: this.width(),
      height: HEIGHT,
      // At least a minute wide, so a fresh chart does not tick every few milliseconds.
      scales: { x: { time: true, range: (_u, min, max) => [Math.min(min, max - MIN_SPAN), max] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, label: 'req/s', size: 50, values: (_u, ticks) => ticks.map((v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))) }],
      series: [
        {},
        ...this.servers.map((server, i): uPlot.Series => ({
          label: server,
          stroke: colorOf(i),
          width: 2,
          spanGaps: false,
          points: { show: false },
          value: (_u, v) => (v === null ? '—' : `${rate(v)}/s`),
        })),
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    }, this.data, this.box)
  }

  destroy(): void {
    this.resize.disconnect()
    this.plot?.destroy()
    this.plot = null
  }

  private width(): number {
    return Math.max(240, this.box.clientWidth)
  }
}
