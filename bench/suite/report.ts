/**
 * The report, generated from a results JSON alone: the README's table
 * (every workload × system median and min–max), the issue-6 targets as
 * ratios measured in the same run, each marked met or missed, the fan-out
 * scaling table (subscribers 1/4/8 × systems, bus ÷ socket against issue
 * 13's 2x), issue 14's table (wake path, request/reply and adaptive idle,
 * schema objects, the rest), issue 16's (large messages: bus ÷ socket at 1 MiB
 * and 64 MiB against 3x) and the README splice between the bench markers.
 * A pinned full run (`--pin`) gets a block of its own below the unpinned
 * one: its computed tables only, the full table staying in its JSON and SVG.
 * Pure functions: the runner and the tests call them; `node dist/run.js
 * report [file]` re-renders.
 */
import type { CellResult, Results } from './runner.js'
import type { SystemId } from './cell.js'

export const START = '<!-- bench:start -->'
export const END = '<!-- bench:end -->'
export const HEADING = '## Benchmarks'
export const PINNED_START = '<!-- bench:pinned:start -->'
export const PINNED_END = '<!-- bench:pinned:end -->'
export const PINNED_HEADING = '### The same suite, pinned'

/** Where a run's files go in bench/results/: <name>.json and <name>.svg. */
export function resultsName(r: Results): 'partial' | 'quick' | 'pinned' | 'latest' {
  // Partial: marked so, or (files from before the mark) some workload has no cell at all.
  if (r.partial === true || r.workloads.some((w) => !r.cells.some((c) => c.workload === w.id))) return 'partial'
  return r.quick ? 'quick' : r.pinned ? 'pinned' : 'latest'
}

/** Three significant figures, '—' for a missing value. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—'
  const a = Math.abs(x)
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  if (a >= 0.01) return x.toFixed(3)
  return a === 0 ? '0' : x.toPrecision(2)
}

function range(median: number, min: number, max: number): string {
  return `${fmt(median)} (${fmt(min)}–${fmt(max)})`
}

export function cell(r: Results, workload: string, system: SystemId): CellResult | undefined {
  return r.cells.find((c) => c.workload === workload && c.system === system && c.error === undefined)
}

function median(r: Results, workload: string, system: SystemId): number | undefined {
  return cell(r, workload, system)?.median
}

// ================================================================ targets

export interface Target {
  label: string
  /** What was measured, e.g. "1.12x (2.31 vs 2.06 M msgs/s)". */
  measured: string
  required: string
  /** null: not measurable in this run (a cell failed or was not run). */
  met: boolean | null
  /** How far from the bound, e.g. "short by 25%" or "12% to spare". */
  margin: string
}

function ratioTarget(label: string, r: Results, num: [string, SystemId], den: [string, SystemId], min: number, unit: string): Target {
  const a = median(r, ...num)
  const b = median(r, ...den)
  const required = `≥ ${min}x`
  if (a === undefined || b === undefined || !(b > 0)) return { label, measured: '—', required, met: null, margin: 'not measured' }
  const ratio = a / b
  const met = ratio >= min
  return { label, measured: `${fmt(ratio)}x (${fmt(a)} vs ${fmt(b)} ${unit})`, required, met, margin: margin(ratio / min - 1, met) }
}

function margin(rel: number, met: boolean): string {
  const pct = Math.abs(rel * 100)
  const shown = pct >= 10 ? pct.toFixed(0) : pct.toFixed(1)
  return met ? `${shown}% to spare` : `short by ${shown}%`
}

function atMost(label: string, value: number | undefined, bound: number | undefined, required: string, unit: string, against = ''): Target {
  if (value === undefined || bound === undefined) return { label, measured: '—', required, met: null, margin: 'not measured' }
  const met = value <= bound
  const rel = bound === 0 ? (value === 0 ? 0 : Infinity) : (bound - value) / bound
  return { label, measured: `${fmt(value)} ${unit}${against}`, required, met, margin: met ? margin(rel, true) : `over by ${fmt(value - bound)} ${unit}${bound > 0 ? ` (${fmt((value / bound - 1) * 100)}%)` : ''}` }
}

/** Idle CPU below this share of one core counts as "no CPU" (the window's own timers cost a little). */
export const IDLE_CPU_BOUND = 0.1

export function targets(r: Results): Target[] {
  const sock = median(r, 'rtt-idle', 'unix-socket')
  return [
    ratioTarget('objects: ≥ 1.5x the batched Unix socket', r, ['objects', 'bus'], ['objects', 'unix-socket'], 1.5, 'M msgs/s'),
    ratioTarget('objects: ≥ 8x child_process IPC json', r, ['objects', 'bus'], ['objects', 'ipc-json'], 8, 'M msgs/s'),
    ratioTarget('raw 64 B: ≥ 2x the batched Unix socket', r, ['raw64', 'bus'], ['raw64', 'unix-socket'], 2, 'M msgs/s'),
    atMost('round trip, spinning receiver: p50 ≤ 1.5 µs', median(r, 'rtt-hot', 'bus'), 1.5, '≤ 1.5 µs', 'µs'),
    atMost('round trip from idle, signal doorbell: p50 ≤ Unix socket', median(r, 'rtt-idle', 'bus'), sock, `≤ ${fmt(sock)} µs`, 'µs', sock === undefined ? '' : ` vs ${fmt(sock)} µs`),
    atMost('round trip from idle, pipe doorbell: p50 ≤ Unix socket', median(r, 'rtt-idle-pipe', 'bus'), sock, `≤ ${fmt(sock)} µs`, 'µs', sock === undefined ? '' : ` vs ${fmt(sock)} µs`),
    ratioTarget('8 senders: aggregate ≥ 80% of 1 sender', r, ['senders8', 'bus'], ['senders1', 'bus'], 0.8, 'M msgs/s'),
    atMost(`idle receiver: no CPU (≤ ${IDLE_CPU_BOUND}% of a core)`, median(r, 'idle-cpu', 'bus'), IDLE_CPU_BOUND, `≤ ${IDLE_CPU_BOUND}%`, '%'),
  ]
}

function verdict(t: Target): string {
  return t.met === null ? 'not measured' : t.met ? `**met** (${t.margin})` : `**missed** (${t.margin})`
}

// ================================================================ table

function escape(s: string): string {
  return s.replace(/\|/g, '\\|')
}

/** The sentence that says where, how and how long a run was measured. */
function measuredLine(r: Results): string {
  const m = r.machine
  return `Measured ${r.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel} (load ${m.loadAtStart} at start)` +
    `${r.pinned ? ', processes pinned with taskset (the host on CPU 0, its workers on CPUs 1, 2, … modulo the number of CPUs)' : ', unpinned'}; ${r.runsPerCell} run${r.runsPerCell === 1 ? '' : 's'} per cell after a warm-up;` +
    ` median (min–max). Every system runs between separate processes except the MessagePort reference. Reproduce: \`npx -y pnpm@10.34.9 ${r.command.replace(/^pnpm /, '')}\`` +
    ` (${Math.max(1, Math.round(r.durationSeconds / 60))} min; results in \`bench/results/${resultsName(r)}.json\`).`
}

/** The tables computed from a run's cells: targets, fan-out scaling, issues 14 and 16. */
function computedTables(r: Results): string[] {
  const out = ['**Targets, computed from this run:**', '', '| target | measured | required | verdict |', '| --- | --- | --- | --- |']
  for (const t of targets(r)) out.push(`| ${escape(t.label)} | ${escape(t.measured)} | ${escape(t.required)} | ${verdict(t)} |`)
  out.push(...fanoutScaling(r))
  out.push(...issue14Table(r))
  out.push(...issue16Table(r))
  return out
}

/** The results block that goes between the README markers. */
export function markdown(r: Results): string {
  const systems = r.systems.filter((s) => r.cells.some((c) => c.system === s.id))
  const out: string[] = []
  if (r.quick) out.push('> **Quick run** (smoke test: fewer messages, 1 run per cell) — not for comparing.', '')
  out.push(
    measuredLine(r),
    '',
    `![benchmark chart](bench/results/${resultsName(r)}.svg)`,
    '',
    `| workload | ${systems.map((s) => escape(s.label)).join(' | ')} |`,
    `| --- | ${systems.map(() => '---:').join(' | ')} |`,
  )
  for (const w of r.workloads.filter((x) => r.cells.some((c) => c.workload === x.id))) {
    const rows: Array<[string, (c: CellResult) => string]> = w.kind === 'reqrep'
      ? [
          [`${w.label}: throughput (${w.unit})`, (c) => range(c.median, c.min, c.max)],
          ['… p50 (µs)', (c) => (c.p50 ? range(c.p50.median, c.p50.min, c.p50.max) : '—')],
          ['… p99 (µs)', (c) => (c.p99 ? range(c.p99.median, c.p99.min, c.p99.max) : '—')],
          ['… p99.9 (µs)', (c) => (c.p999 ? range(c.p999.median, c.p999.min, c.p999.max) : '—')],
        ]
      : w.kind === 'rtt' || w.kind === 'fanlat'
      ? [
          [`${w.label}: p50 (${w.unit})`, (c) => range(c.median, c.min, c.max)],
          [`… p99 (${w.unit})`, (c) => (c.p99 ? range(c.p99.median, c.p99.min, c.p99.max) : '—')],
          [`… p99.9 (${w.unit})`, (c) => (c.p999 ? range(c.p999.median, c.p999.min, c.p999.max) : '—')],
          ...(w.kind === 'fanlat'
            ? [[`… until the last subscriber has it: p50 / p99 (${w.unit})`, (c: CellResult) => (c.lastP50 && c.lastP99 ? `${fmt(c.lastP50.median)} / ${fmt(c.lastP99.median)}` : '—')] as [string, (c: CellResult) => string]]
            : []),
        ]
      : [[`${w.label} (${w.unit})`, (c) => range(c.median, c.min, c.max)]]
    for (const [label, show] of rows) {
      const cells = systems.map((s) => {
        const c = r.cells.find((x) => x.workload === w.id && x.system === s.id)
        if (c === undefined) return '—'
        if (c.error !== undefined) return 'failed'
        return show(c)
      })
      out.push(`| ${escape(label)} | ${cells.join(' | ')} |`)
    }
  }
  out.push('', ...computedTables(r))
  out.push('', 'Systems:', '')
  for (const s of systems) out.push(`- **${s.label}**: ${s.note}.`)
  const notes = [
    ...r.workloads.filter((w) => w.note !== undefined && r.cells.some((c) => c.workload === w.id)).map((w) => `- ${w.label}: ${w.note}.`),
    ...r.cells.filter((c) => c.note !== undefined).map((c) => `- ${c.workload}, ${label(r, c.system)}: ${c.note}.`),
    ...r.cells.filter((c) => c.error !== undefined).map((c) => `- ${c.workload}, ${label(r, c.system)}: **failed**: ${escape(c.error!.split('\n')[0]!)}`),
  ]
  if (notes.length > 0) out.push('', 'Notes:', '', ...notes)
  if (r.leakedSegments.length > 0) out.push('', `**Shared-memory segments left behind by this run:** ${r.leakedSegments.join(', ')}.`)
  return out.join('\n')
}

// ================================================================ fan-out scaling (issue 13)

/** Fan-out workloads by subscriber count, as measured in this run. */
export const FANOUT_SCALING = [{ subscribers: 1, workload: 'fanout1' }, { subscribers: 4, workload: 'fanout4' }, { subscribers: 8, workload: 'fanout8' }]
/** Issue 13: bus ≥ 2x the Unix socket at 4 and 8 subscribers. */
export const FANOUT_RATIO = 2

/** bus ÷ socket at one subscriber count: ratio of medians, and the spread (bus min ÷ socket max … bus max ÷ socket min). */
export function fanoutRatio(r: Results, workload: string): { ratio: number; low: number; high: number } | undefined {
  const b = cell(r, workload, 'bus')
  const u = cell(r, workload, 'unix-socket')
  if (b === undefined || u === undefined || !(u.median > 0) || !(u.min > 0)) return undefined
  return { ratio: b.median / u.median, low: b.min / u.max, high: b.max / u.min }
}

/** The scaling table: subscribers 1/4/8 × systems, with bus ÷ socket; nothing when no fan-out row ran. */
function fanoutScaling(r: Results): string[] {
  const rows = FANOUT_SCALING.filter((f) => r.cells.some((c) => c.workload === f.workload))
  if (rows.length === 0) return []
  // bus and the socket always get a column (the table never has 4 columns, unlike the targets table)
  const systems = r.systems.filter((s) => s.id === 'bus' || s.id === 'unix-socket' || r.cells.some((c) => c.system === s.id && rows.some((f) => f.workload === c.workload)))
  const out = [
    '', `**Fan-out scaling, messages published/s (M msgs/s, median (min–max)); issue 13 wants the bus ≥ ${FANOUT_RATIO}x the Unix socket at 4 and 8 subscribers:**`, '',
    `| subscribers | ${systems.map((s) => escape(s.label)).join(' | ')} | bus ÷ socket (spread) | ≥ ${FANOUT_RATIO}x |`,
    `| ---: | ${systems.map(() => '---:').join(' | ')} | ---: | --- |`,
  ]
  for (const f of rows) {
    const cells = systems.map((s) => {
      const c = r.cells.find((x) => x.workload === f.workload && x.system === s.id)
      return c === undefined ? '—' : c.error !== undefined ? 'failed' : range(c.median, c.min, c.max)
    })
    const q = fanoutRatio(r, f.workload)
    const ratio = q === undefined ? '—' : `${fmt(q.ratio)}x (${fmt(q.low)}–${fmt(q.high)})`
    const verdict = f.subscribers < 4 ? 'not required' : q === undefined ? 'not measured'
      : q.ratio >= FANOUT_RATIO ? `**met** (${margin(q.ratio / FANOUT_RATIO - 1, true)})` : `**missed** (${margin(q.ratio / FANOUT_RATIO - 1, false)})`
    out.push(`| ${f.subscribers} | ${cells.join(' | ')} | ${ratio} | ${verdict} |`)
  }
  return out
}

// ================================================================ issue 14

/** A cell's p50 in µs: its own metric for round trips, its p50 summary for request/reply. */
function p50(r: Results, workload: string, system: SystemId): number | undefined {
  const c = cell(r, workload, system)
  return c?.p50?.median ?? (c?.unit === 'µs' ? c.median : undefined)
}

function p99(r: Results, workload: string, system: SystemId): number | undefined {
  return cell(r, workload, system)?.p99?.median
}

/** Issue 14's targets, each with the part of the issue it belongs to. */
export function issue14(r: Results): Array<Target & { part: string }> {
  const out: Array<Target & { part: string }> = []
  const add = (part: string, t: Target): void => void out.push({ ...t, part })
  const vs = (x: number | undefined): string => (x === undefined ? '' : ` vs ${fmt(x)} µs`)
  const notAbove = (label: string, value: number | undefined, bound: number | undefined): Target => atMost(label, value, bound, bound === undefined ? '≤ socket' : `≤ ${fmt(bound)} µs`, 'µs', vs(bound))
  for (const [w, name] of [['rtt-idle', 'signal'], ['rtt-idle-pipe', 'pipe']] as const) {
    add('1 wake path', notAbove(`round trip from idle, ${name} doorbell: p50 ≤ Unix socket p50`, p50(r, w, 'bus'), p50(r, 'rtt-idle', 'unix-socket')))
    add('1 wake path', notAbove(`round trip from idle, ${name} doorbell: p99 ≤ Unix socket p99`, p99(r, w, 'bus'), p99(r, 'rtt-idle', 'unix-socket')))
  }
  for (const k of [1, 4]) {
    for (const [w, name] of [[`reqrep${k}`, 'default'], [`reqrep${k}-adaptive`, "'adaptive'"]] as const) {
      add('2 request/reply', ratioTarget(`request/reply, ${k} client${k === 1 ? '' : 's'}, bus ${name}: req/s ≥ Unix socket`, r, [w, 'bus'], [`reqrep${k}`, 'unix-socket'], 1, 'k req/s'))
      add('2 request/reply', notAbove(`request/reply, ${k} client${k === 1 ? '' : 's'}, bus ${name}: p50 ≤ Unix socket p50`, p50(r, w, 'bus'), p50(r, `reqrep${k}`, 'unix-socket')))
    }
  }
  add('2 adaptive idle', atMost(`idle CPU after request/reply, 'adaptive': ≤ ${IDLE_CPU_BOUND}% of a core`, median(r, 'idle-cpu-reqrep', 'bus'), IDLE_CPU_BOUND, `≤ ${IDLE_CPU_BOUND}%`, '%'))
  add('3 schema', ratioTarget('schema objects: ≥ 4x the batched Unix socket', r, ['objects-schema', 'bus'], ['objects-schema', 'unix-socket'], 4, 'M msgs/s'))
  add('3 schema', ratioTarget('schema objects, zeroCopy view: ≥ 4x the batched Unix socket', r, ['objects-schema-view', 'bus'], ['objects-schema', 'unix-socket'], 4, 'M msgs/s'))
  add('4 the rest', ratioTarget('objects 1 → 1 (msgpack): ≥ 1.5x the batched Unix socket', r, ['objects', 'bus'], ['objects', 'unix-socket'], 1.5, 'M msgs/s'))
  add('4 the rest', ratioTarget('8 senders: aggregate ≥ 0.8x of 1 sender', r, ['senders8', 'bus'], ['senders1', 'bus'], 0.8, 'M msgs/s'))
  add('4 the rest', atMost('round trip, hot (spinning): p99.9 ≤ 50 µs', cell(r, 'rtt-hot', 'bus')?.p999?.median, 50, '≤ 50 µs', 'µs'))
  add('4 the rest', ratioTarget('raw 64 B: ≥ 2x the batched Unix socket', r, ['raw64', 'bus'], ['raw64', 'unix-socket'], 2, 'M msgs/s'))
  return out
}

/** Issue 14's table (five columns, unlike the four of the targets table); nothing when none of its rows ran. */
function issue14Table(r: Results): string[] {
  const ts = issue14(r)
  if (ts.every((t) => t.met === null)) return []
  return [
    '', "**Issue 14, computed from this run** (request/reply's bars — the bus no slower than the socket — are the bench's own: the issue sets none):", '',
    '| issue 14 | part | measured | required | verdict |', '| --- | --- | --- | --- | --- |',
    ...ts.map((t) => `| ${escape(t.label)} | ${t.part} | ${escape(t.measured)} | ${escape(t.required)} | ${verdict(t)} |`),
    ...ceilings(r),
  ]
}

/** The ratio targets whose peer is bound by a ceiling the bus does not own, and that ceiling's system in the same run. */
export const CEILINGS = [
  { label: 'raw 64 B', workload: 'raw64', ceiling: 'c-ring', ratio: 2 },
  { label: 'objects', workload: 'objects', ceiling: 'msgpack-encode', ratio: 1.5 },
] as const

/**
 * Two of issue 14's ratios read against what bounds them, measured in the
 * same run (docs/design.md, "Where two ratio targets meet the machine"):
 * the share of the ceiling the bus reached, and the share the target asks.
 */
export function ceilings(r: Results): string[] {
  const pct = (x: number, of: number): string => `${fmt((x / of) * 100)} %`
  const lines: string[] = []
  for (const c of CEILINGS) {
    const top = median(r, c.workload, c.ceiling)
    const bus = median(r, c.workload, 'bus')
    const socket = median(r, c.workload, 'unix-socket')
    if (top === undefined || bus === undefined || socket === undefined) continue
    lines.push(`- ${c.label}: ${label(r, c.ceiling)} ${fmt(top)} M msgs/s; the bus reached ${pct(bus, top)} of it, ${c.ratio}x the socket asks for ${pct(c.ratio * socket, top)}.`)
  }
  return lines.length === 0 ? [] : ['', '**Ceilings in this run** (what no system in the row can pass: the same bytes through shared memory without JavaScript; the same encode without a transport):', '', ...lines]
}

// ================================================================ issue 16

/** Issue 16: large messages, the bus ≥ 3x the Unix socket at 1 MiB and at 64 MiB. */
export const LARGE_RATIO = 3

/** Issue 16's targets: each message size, for each bus receiver (default, zeroCopy), against the socket's row. */
export function issue16(r: Results): Array<Target & { receiver: string }> {
  return [['1 MiB', 'bytes1m'], ['64 MiB', 'bytes64m']].flatMap(([size, w]) => [
    { receiver: 'default', ...ratioTarget(`${size} messages: ≥ ${LARGE_RATIO}x the Unix socket`, r, [w!, 'bus'], [w!, 'unix-socket'], LARGE_RATIO, 'MB/s') },
    { receiver: 'zeroCopy', ...ratioTarget(`${size} messages, bus zeroCopy receiver: ≥ ${LARGE_RATIO}x the Unix socket`, r, [`${w}-view`, 'bus'], [w!, 'unix-socket'], LARGE_RATIO, 'MB/s') },
  ])
}

/** Issue 16's table (five columns, as issue 14's); nothing when none of its rows ran. */
function issue16Table(r: Results): string[] {
  const ts = issue16(r)
  if (ts.every((t) => t.met === null)) return []
  return [
    '', '**Issue 16 (messages larger than a lane record), computed from this run:**', '',
    '| issue 16 | bus receiver | measured | required | verdict |', '| --- | --- | --- | --- | --- |',
    ...ts.map((t) => `| ${escape(t.label)} | ${t.receiver} | ${escape(t.measured)} | ${escape(t.required)} | ${verdict(t)} |`),
  ]
}

function label(r: Results, id: SystemId): string {
  return r.systems.find((s) => s.id === id)?.label ?? id
}

/**
 * README.md with the block between the markers replaced, touching nothing
 * else; when the markers are absent, a "## Benchmarks" section holding them
 * is appended at the end.
 */
export function spliceReadme(readme: string, block: string): string {
  return splice(readme, block, START, END, () => {
    const base = readme.endsWith('\n') ? readme : readme + '\n'
    return `${base}\n${HEADING}\n\n${START}\n${block}\n${END}\n`
  })
}

/**
 * A pinned run's block (pinnedMarkdown): the tables computed from it, set
 * below the unpinned block so the two runs read side by side.
 */
export function pinnedMarkdown(r: Results): string {
  return [measuredLine(r), '', `Chart: [bench/results/${resultsName(r)}.svg](bench/results/${resultsName(r)}.svg).`, '', ...computedTables(r)].join('\n')
}

/**
 * README.md with the pinned block replaced, touching nothing else; when its
 * markers are absent, they go right after the unpinned block's end marker
 * (which spliceReadme adds first when it is missing too).
 */
export function splicePinned(readme: string, block: string): string {
  return splice(readme, block, PINNED_START, PINNED_END, () => {
    const withMain = readme.includes(END) ? readme : spliceReadme(readme, '')
    const at = withMain.indexOf(END) + END.length
    return `${withMain.slice(0, at)}\n\n${PINNED_HEADING}\n\n${PINNED_START}\n${block}\n${PINNED_END}${withMain.slice(at)}`
  })
}

function splice(readme: string, block: string, open: string, close: string, absent: () => string): string {
  const start = readme.indexOf(open)
  const end = readme.indexOf(close)
  if (start >= 0 && end > start) return readme.slice(0, start + open.length) + '\n' + block + '\n' + readme.slice(end)
  return absent()
}
