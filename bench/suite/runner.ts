/**
 * The suite's runner: for every workload and system, forks a host process
 * (bench/dist/peers/<system>.js) in its own process group, which starts its
 * own workers, measures and reports; the runner only orchestrates and
 * collects. Whatever happens, the whole group is SIGKILLed afterwards, so
 * no child outlives its cell (and private bus segments, marked removed at
 * creation, go with their processes).
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Cell, HostReport, RunResult, SystemId } from './cell.js'
import { machine, type Machine } from './machine.js'
import { summarize, type Summary } from './stats.js'
import { SYSTEMS, WORKLOADS, cellFor, type SuiteOptions, type SystemInfo, type Unit, type Workload } from './workloads.js'
import { buildRing, runRing } from '../peers/c-ring.js'

export interface CellResult {
  workload: string
  system: SystemId
  unit: Unit
  /** The cell's metric per measured run (msgs/s in millions, MB/s, p50 µs, % CPU, or requests/s in thousands). */
  values: number[]
  median: number
  min: number
  max: number
  /** Request/reply (whose metric is requests/s): the p50 of each run, summarized. */
  p50?: Summary
  /** Round trips, request/reply and fan-out latency: the p99 and p99.9 of each run, summarized. */
  p99?: Summary
  p999?: Summary
  /** Fan-out latency until the last subscriber has a message: p50 and p99 of each run, summarized. */
  lastP50?: Summary
  lastP99?: Summary
  messages: number
  runs: RunResult[]
  note?: string
  error?: string
}

export interface Results {
  version: 1
  date: string
  quick: boolean
  /** Only some workloads or systems (--only / --systems): re-rendered to partial.*, never to latest.* or the README. */
  partial?: boolean
  runsPerCell: number
  pinned: boolean
  command: string
  durationSeconds: number
  machine: Machine
  systems: SystemInfo[]
  workloads: Array<Pick<Workload, 'id' | 'label' | 'unit' | 'kind' | 'note'> & { messages: number }>
  cells: CellResult[]
  /** Shared-memory segments created during the run whose creator is dead and which are still there (should be none). */
  leakedSegments: number[]
}

const PEER_FILE: Record<Exclude<SystemId, 'c-ring'>, string> = {
  bus: 'bus.js',
  'unix-socket': 'unix-socket.js',
  'ipc-json': 'child-ipc.js',
  'ipc-advanced': 'child-ipc.js',
  'message-port': 'message-port.js',
  'msgpack-encode': 'encode-only.js',
}

/** Process groups alive right now (killed on exit, SIGINT and SIGTERM). */
const groups = new Set<number>()
function killGroup(pid: number): void {
  try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
  groups.delete(pid)
}
function killAll(): void {
  for (const pid of [...groups]) killGroup(pid)
}
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll()
    process.exit(130)
  })
}

function runHost(cell: Cell, timeoutMs: number): Promise<{ runs: RunResult[]; note?: string }> {
  const file = fileURLToPath(new URL(`../peers/${PEER_FILE[cell.system as keyof typeof PEER_FILE]}`, import.meta.url))
  const child = fork(file, [], {
    env: { ...process.env, BENCH_CELL: JSON.stringify(cell) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true, // own process group: its workers are killed with it
  })
  const pid = child.pid!
  groups.add(pid)
  return new Promise<{ runs: RunResult[]; note?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s: ${cell.workload} on ${cell.system} (warm-up and ${cell.runs} run${cell.runs === 1 ? '' : 's'} of ${cell.messages} messages) did not report; its processes were killed`)), timeoutMs)
    child.on('message', (m: HostReport) => {
      clearTimeout(timer)
      if (m.type === 'result') resolve(m.note === undefined ? { runs: m.runs } : { runs: m.runs, note: m.note })
      else reject(new Error(m.message))
    })
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`host exited with ${signal ?? code} before reporting`))
    })
  }).finally(async () => {
    // Give the host a moment to exit on its own (closing its bus, writing a
    // --cpu-prof profile), then kill whatever is left of its group.
    if (child.exitCode === null && child.signalCode === null) {
      await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 3000))])
    }
    killGroup(pid)
  })
}

/** The cell's metric of one run, in the workload's unit. */
function metric(w: Workload, r: RunResult): number {
  switch (w.unit) {
    case 'M msgs/s': return r.messages! / r.seconds! / 1e6
    case 'MB/s': return r.bytes! / r.seconds! / 1e6
    case 'µs': return r.p50!
    case '% CPU': return r.cpuPercent!
    case 'k req/s': return r.messages! / r.seconds! / 1e3
  }
}

/** Segment ids and creator pids from /proc/sysvipc/shm. */
/**
 * Segments (shmid -> creator pid); with `unattachedOnly`, those nobody has
 * attached: a segment some live process still has attached is in use (a
 * private bus's segment goes with its last attachment), not left behind.
 */
function segments(unattachedOnly = false): Map<number, number> {
  const out = new Map<number, number>()
  try {
    const lines = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1)
    for (const line of lines) {
      const f = line.trim().split(/\s+/) // key shmid perms size cpid lpid nattch ...
      if (!unattachedOnly || Number(f[6]) === 0) out.set(Number(f[1]), Number(f[4]))
    }
  } catch { /* no procfs */ }
  return out
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

export async function runSuite(o: SuiteOptions, log: (line: string) => void = console.log): Promise<Results> {
  const started = Date.now()
  const before = segments()
  const ring = o.systems === null || o.systems.includes('c-ring') ? buildRing() : null
  if (ring !== null && !ring.ok) log(`c-ring: ${ring.error} (its cells stay empty)`)
  const m = machine(ring?.ok ? ring.compiler : null)
  if (o.pin && !m.taskset) log('--pin: taskset not found, running unpinned')
  log(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, Linux ${m.kernel}, load ${m.loadAtStart}`)
  const cells: CellResult[] = []
  // Per cell: more runs, or fan-out to more subscribers (child_process IPC at 8 takes a while), get longer.
  const baseMs = (o.quick ? 90_000 : 300_000) * Math.max(1, (o.runs + 1) / 4)
  for (const w of WORKLOADS) {
    if (o.only !== null && !o.only.includes(w.id)) continue
    for (const system of w.systems) {
      if (o.systems !== null && !o.systems.includes(system)) continue
      const cell = cellFor(w, system, o)
      const timeoutMs = Math.round(baseMs * (w.kind === 'fanout' ? Math.max(1, cell.subscribers / 4) : 1))
      const t0 = Date.now()
      let result: CellResult
      try {
        const { runs, note } = system === 'c-ring'
          ? { runs: await runRing(cell, (pid) => groups.add(pid), timeoutMs).finally(() => killAll()), note: undefined }
          : await runHost(cell, timeoutMs)
        const values = runs.map((r) => metric(w, r))
        result = { workload: w.id, system, unit: w.unit, values, ...summarize(values), messages: cell.messages, runs }
        if (w.kind === 'reqrep') result.p50 = summarize(runs.map((r) => r.p50!))
        if (w.kind === 'rtt' || w.kind === 'fanlat' || w.kind === 'reqrep') {
          result.p99 = summarize(runs.map((r) => r.p99!))
          result.p999 = summarize(runs.map((r) => r.p999!))
        }
        if (w.kind === 'fanlat') {
          result.lastP50 = summarize(runs.map((r) => r.lastP50!))
          result.lastP99 = summarize(runs.map((r) => r.lastP99!))
        }
        if (note !== undefined) result.note = note
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        result = { workload: w.id, system, unit: w.unit, values: [], median: NaN, min: NaN, max: NaN, messages: cell.messages, runs: [], error: message }
      }
      cells.push(result)
      const shown = result.error !== undefined ? `FAILED: ${result.error.split('\n')[0]}` : `${fmt(result.median)} ${w.unit} (${fmt(result.min)}–${fmt(result.max)})${result.p50 ? `, p50 ${fmt(result.p50.median)} µs` : ''}${result.p99 ? `, p99 ${fmt(result.p99.median)}, p99.9 ${fmt(result.p999!.median)}` : ''}${runNotes(result)}`
      log(`${w.id.padEnd(21)} ${system.padEnd(13)} ${shown}  [${((Date.now() - t0) / 1000).toFixed(1)} s]`)
    }
  }
  await new Promise((r) => setTimeout(r, 200)) // let the kernel reap the last group
  const after = segments(true)
  const leaked = [...after].filter(([id, cpid]) => !before.has(id) && !alive(cpid)).map(([id]) => id)
  if (leaked.length > 0) log(`WARNING: shared-memory segments left behind: ${leaked.join(', ')}`)
  return {
    version: 1,
    date: new Date(started).toISOString(),
    quick: o.quick,
    ...(o.only !== null || o.systems !== null ? { partial: true } : {}),
    runsPerCell: o.runs,
    pinned: o.pin && m.taskset,
    command: `pnpm bench${o.quick ? ' --quick' : ''}${o.pin ? ' --pin' : ''}${o.runs !== (o.quick ? 1 : 3) ? ` --runs=${o.runs}` : ''}` +
      `${o.only !== null ? ` --only=${o.only.join(',')}` : ''}${o.systems !== null ? ` --systems=${o.systems.join(',')}` : ''}`,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: m,
    systems: SYSTEMS,
    workloads: WORKLOADS.map((w) => ({ id: w.id, label: w.label, unit: w.unit, kind: w.kind, note: w.note, messages: o.quick ? w.quickMessages : w.messages })),
    cells,
    leakedSegments: leaked,
  }
}

/** Per-run notes (reqidle: each process's CPU), shown on the progress line. */
function runNotes(c: CellResult): string {
  const notes = c.runs.map((r) => r.note).filter((n) => n !== undefined)
  return notes.length > 0 ? ` [${notes.join('; ')}]` : ''
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—'
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3)
}
