// Numbers for people: rates, shares, latencies, times.

/** Series colours, by server index; readable on light and dark backgrounds. */
export const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac']

export const colorOf = (index: number): string => COLORS[index % COLORS.length]!

export function rate(n: number | null): string {
  if (n === null) return '—'
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1)
}

export function percent(fraction: number | null, digits = 0): string {
  if (fraction === null) return '—'
  const smallest = 10 ** -digits
  // Not zero, but below what the digits show: say so rather than print a zero.
  if (fraction > 0 && fraction * 100 < smallest) return `<${smallest}%`
  return `${(fraction * 100).toFixed(digits)}%`
}

/** The histogram's first bucket ends at 5 ms: below that only "under 5 ms" is known. */
export function latency(ms: number | null): string {
  if (ms === null) return '—'
  if (ms <= 5) return '≤5 ms'
  if (ms >= 10_000) return '≥10 s'
  return ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

export function weight(w: number): string {
  return Number.isInteger(w) ? String(w) : w.toFixed(1)
}

export function clock(t: number): string {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
}
