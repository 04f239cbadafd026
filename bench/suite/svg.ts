/**
 * The chart: hand-written SVG from a results JSON. Panels of horizontal
 * bars (median) with min–max whiskers: message throughput (log scale),
 * large-message throughput (64 KiB, 1 MiB, 64 MiB: MB/s) and latency (round trips and fan-out
 * publish-to-deliver, request/reply: p50 bars, p99 marks, log scale),
 * request/reply throughput (thousands of requests/s), one colour per
 * system; and a line chart of fan-out throughput against the number of
 * subscribers (1, 4, 8) with the bus ÷ socket ratio at each.
 */
import type { Results } from './runner.js'
import type { SystemId } from './cell.js'
import { FANOUT_RATIO, FANOUT_SCALING, fanoutRatio, fmt } from './report.js'

const COLORS: Record<SystemId, string> = {
  bus: '#d9480f',
  'unix-socket': '#1c7ed6',
  'ipc-json': '#868e96',
  'ipc-advanced': '#495057',
  'message-port': '#37b24d',
  'c-ring': '#7048e8',
  'msgpack-encode': '#f59f00',
}

const WIDTH = 960
const LEFT = 250
const RIGHT = 90
const BAR = 12
const GAP = 3
const PLOT = WIDTH - LEFT - RIGHT

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

interface Bar { system: SystemId; median: number; min: number; max: number; mark?: number }
interface Group { label: string; bars: Bar[] }

class Scale {
  constructor(private readonly lo: number, private readonly hi: number, readonly log: boolean) {}
  static for(values: number[], log: boolean): Scale {
    const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0))
    if (v.length === 0) return new Scale(log ? 1 : 0, 10, log)
    if (!log) return new Scale(0, niceCeil(Math.max(...v)), false)
    return new Scale(10 ** Math.floor(Math.log10(Math.min(...v))), 10 ** Math.ceil(Math.log10(Math.max(...v))), true)
  }
  x(v: number): number {
    if (this.log) {
      const c = Math.max(v, this.lo)
      return LEFT + ((Math.log10(c) - Math.log10(this.lo)) / (Math.log10(this.hi) - Math.log10(this.lo))) * PLOT
    }
    return LEFT + (Math.max(0, v) / (this.hi || 1)) * PLOT
  }
  ticks(): number[] {
    if (this.log) {
      const out: number[] = []
      for (let p = Math.log10(this.lo); p <= Math.log10(this.hi) + 1e-9; p++) out.push(10 ** p)
      return out
    }
    return Array.from({ length: 6 }, (_, i) => (this.hi / 5) * i)
  }
}

function niceCeil(x: number): number {
  if (!(x > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(x))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p
  return 10 * p
}

/** One panel; returns its SVG and height. */
function panel(title: string, unit: string, groups: Group[], log: boolean, top: number, names: Partial<Record<SystemId, string>>): { svg: string; height: number } {
  const all = groups.flatMap((g) => g.bars.flatMap((b) => [b.median, b.min, b.max, b.mark ?? NaN]))
  const scale = Scale.for(all, log)
  const parts: string[] = []
  let y = top + 24
  parts.push(`<text x="16" y="${top + 14}" class="title">${esc(title)}</text>`)
  const axisTop = y
  for (const g of groups) {
    if (g.bars.length === 0) continue
    parts.push(`<text x="16" y="${y + BAR - 2}" class="group">${esc(g.label)}</text>`)
    y += BAR + GAP
    for (const b of g.bars) {
      parts.push(`<text x="${LEFT - 6}" y="${y + BAR - 2}" class="sys">${esc(names[b.system] ?? b.system)}</text>`)
      const x0 = LEFT
      const x1 = scale.x(b.median)
      parts.push(`<rect x="${x0}" y="${y}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${BAR}" fill="${COLORS[b.system]}"><title>${esc(`${b.system}: ${fmt(b.median)} ${unit} (${fmt(b.min)}–${fmt(b.max)})`)}</title></rect>`)
      if (b.max > b.min) {
        const a = scale.x(b.min).toFixed(1)
        const c = scale.x(b.max).toFixed(1)
        const m = (y + BAR / 2).toFixed(1)
        parts.push(`<path d="M${a} ${m}H${c}M${a} ${y + 2}V${y + BAR - 2}M${c} ${y + 2}V${y + BAR - 2}" class="whisker"/>`)
      }
      if (b.mark !== undefined && Number.isFinite(b.mark)) {
        const mx = scale.x(b.mark).toFixed(1)
        parts.push(`<path d="M${mx} ${y - 1}V${y + BAR + 1}" class="mark"/>`)
      }
      const label = b.mark !== undefined ? `${fmt(b.median)} / p99 ${fmt(b.mark)}` : fmt(b.median)
      parts.push(`<text x="${(Math.max(x1, scale.x(b.max), b.mark !== undefined ? scale.x(b.mark) : 0) + 4).toFixed(1)}" y="${y + BAR - 2}" class="value">${esc(label)}</text>`)
      y += BAR + GAP
    }
    y += 8
  }
  for (const t of scale.ticks()) {
    const x = scale.x(t).toFixed(1)
    parts.push(`<path d="M${x} ${axisTop - 4}V${y}" class="grid"/>`)
    parts.push(`<text x="${x}" y="${y + 12}" class="tick">${esc(String(Number(t.toPrecision(3))))}</text>`)
  }
  parts.push(`<text x="${LEFT + PLOT}" y="${y + 26}" class="axis">${esc(unit)}${log ? ' (log scale)' : ''}</text>`)
  return { svg: parts.join('\n'), height: y + 34 - top }
}

/** Fan-out throughput against subscribers: one line per system (log scale), ratio labels under the axis; null when no fan-out row ran. */
function scaling(r: Results, systems: Array<{ id: SystemId; label: string }>, top: number): { svg: string; height: number } | null {
  const rows = FANOUT_SCALING.filter((f) => r.cells.some((c) => c.workload === f.workload && c.error === undefined))
  if (rows.length === 0) return null
  const series = systems.map((s) => ({
    system: s,
    points: rows.flatMap((f) => {
      const c = r.cells.find((x) => x.workload === f.workload && x.system === s.id && x.error === undefined)
      return c === undefined ? [] : [{ k: f.subscribers, median: c.median, min: c.min, max: c.max }]
    }),
  })).filter((x) => x.points.length > 0)
  const values = series.flatMap((x) => x.points.flatMap((p) => [p.median, p.min, p.max])).filter((v) => v > 0)
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)))
  const H = 150
  const y0 = top + 30
  const y = (v: number): number => y0 + H - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * H
  const maxK = FANOUT_SCALING[FANOUT_SCALING.length - 1]!.subscribers
  const x = (k: number): number => LEFT + 20 + ((k - 1) / (maxK - 1)) * (PLOT - 40)
  const parts: string[] = [`<text x="16" y="${top + 14}" class="title">${esc(`Fan-out: messages published/s against subscribers (median, min–max; higher is better; issue 13: bus ≥ ${FANOUT_RATIO}x socket at 4 and 8)`)}</text>`]
  for (let p = Math.log10(lo); p <= Math.log10(hi) + 1e-9; p++) {
    const t = 10 ** p
    parts.push(`<path d="M${LEFT} ${y(t).toFixed(1)}H${LEFT + PLOT}" class="grid"/>`, `<text x="${LEFT - 6}" y="${(y(t) + 3).toFixed(1)}" class="sys">${esc(String(Number(t.toPrecision(3))))}</text>`)
  }
  for (const f of rows) {
    const q = fanoutRatio(r, f.workload)
    parts.push(`<text x="${x(f.subscribers).toFixed(1)}" y="${y0 + H + 14}" class="tick">${f.subscribers} subscriber${f.subscribers === 1 ? '' : 's'}</text>`)
    if (q !== undefined) parts.push(`<text x="${x(f.subscribers).toFixed(1)}" y="${y0 + H + 27}" class="tick">${esc(`bus ÷ socket ${fmt(q.ratio)}x`)}</text>`)
  }
  parts.push(`<text x="16" y="${y0 + 12}" class="group">M msgs/s (log scale)</text>`)
  for (const { system, points } of series) {
    const color = COLORS[system.id]
    parts.push(`<path d="${points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.k).toFixed(1)} ${y(p.median).toFixed(1)}`).join('')}" stroke="${color}" stroke-width="2" fill="none"/>`)
    for (const p of points) {
      const px = x(p.k).toFixed(1)
      if (p.max > p.min) parts.push(`<path d="M${px} ${y(p.min).toFixed(1)}V${y(p.max).toFixed(1)}" stroke="${color}" stroke-width="1" fill="none"/>`)
      parts.push(`<circle cx="${px}" cy="${y(p.median).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${system.label}, ${p.k} subscriber${p.k === 1 ? '' : 's'}: ${fmt(p.median)} M msgs/s (${fmt(p.min)}–${fmt(p.max)})`)}</title></circle>`)
    }
  }
  return { svg: parts.join('\n'), height: H + 30 + 40 }
}

export function svg(r: Results): string {
  const systems = r.systems.filter((s) => r.cells.some((c) => c.system === s.id && c.error === undefined))
  const bars = (workload: string, withMark = false): Bar[] =>
    systems.flatMap((s) => {
      const c = r.cells.find((x) => x.workload === workload && x.system === s.id && x.error === undefined)
      if (c === undefined) return []
      // Latency of request/reply (whose median is requests/s): its p50.
      const m = withMark && c.p50 !== undefined ? c.p50 : c
      const bar: Bar = { system: s.id, median: m.median, min: m.min, max: m.max }
      if (withMark && c.p99 !== undefined) bar.mark = c.p99.median
      return [bar]
    })
  const byUnit = (unit: string, withMark = false): Group[] =>
    r.workloads.filter((w) => w.unit === unit && r.cells.some((c) => c.workload === w.id)).map((w) => ({ label: w.label, bars: bars(w.id, withMark) }))

  const latency: Group[] = [...byUnit('µs', true), ...byUnit('k req/s', true).map((g) => ({ ...g, label: `${g.label}, per request` }))]

  const parts: string[] = []
  let y = 64
  for (const [title, unit, groups, log] of [
    ['Throughput (median, min–max whiskers; higher is better)', 'M msgs/s', byUnit('M msgs/s'), true],
    ['Large messages: 64 KiB, 1 MiB, 64 MiB (higher is better)', 'MB/s', byUnit('MB/s'), false],
    ['Latency (round trips; fan-out publish-to-deliver; request/reply): p50 bar, p99 mark (lower is better)', 'µs', latency, true],
    ['Request/reply, back to back, all clients (median, min–max; higher is better)', 'k req/s', byUnit('k req/s'), false],
  ] as const) {
    if (groups.every((g) => g.bars.length === 0)) continue
    const p = panel(title, unit, groups, log, y, Object.fromEntries(systems.map((s) => [s.id, s.label])))
    parts.push(p.svg)
    y += p.height + 10
    if (unit === 'M msgs/s') {
      const f = scaling(r, systems, y)
      if (f !== null) {
        parts.push(f.svg)
        y += f.height + 10
      }
    }
  }
  const legend = systems.map((s, i) => {
    const x = 16 + (i % 3) * 310
    const ly = 34 + Math.floor(i / 3) * 14
    return `<rect x="${x}" y="${ly - 9}" width="10" height="10" fill="${COLORS[s.id]}"/><text x="${x + 14}" y="${ly}" class="legend">${esc(s.label)}</text>`
  })
  const m = r.machine
  const head = `<text x="16" y="18" class="head">@ipc/bus benchmarks — ${esc(m.cpu)}, ${m.cores} cores, Node ${esc(m.node)}, ${esc(r.date.slice(0, 10))}${r.quick ? ' (QUICK RUN)' : ''}</text>`
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>
.head{font-size:14px;font-weight:600}.title{font-size:13px;font-weight:600}.group{font-size:11px;fill:#343a40}
.value,.tick,.axis,.legend,.sys{font-size:10px;fill:#495057}.sys{text-anchor:end}.tick{text-anchor:middle}.axis{text-anchor:end}
.grid{stroke:#dee2e6;stroke-width:0.5}.whisker{stroke:#212529;stroke-width:1;fill:none}.mark{stroke:#000;stroke-width:2}
</style>
<rect width="100%" height="100%" fill="#fff"/>
${head}
${legend.join('\n')}
${parts.join('\n')}
</svg>
`
}
