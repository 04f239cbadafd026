/**
 * What the suite may leave behind, and whose it is, read from /proc (no
 * native addon needed, so the guard works even when the addon failed to
 * build).
 *
 * Whose is a segment? /proc/sysvipc/shm records its creator's pid (cpid),
 * nothing else that names a run. A process belongs to a test run when it
 * carries the run's id in its environment (RUN_VAR, set by the runner and
 * inherited by every process a test starts) or descends from the runner. That
 * can only be asked while the creator lives: once it exits its pid says
 * nothing (and may be reused). So the LeakGuard samples while the run goes on,
 * classifying each new segment (and doorbell FIFO) as it first sees it:
 *
 *   ours     its creator was a process of this run: a leak if still there at
 *            the end — reported, removed, counted as a failure;
 *   foreign  anyone else's (another program, another user, another run):
 *            never touched, never reported;
 *   gone     its creator had exited before a sample saw the segment (or its
 *            pid now belongs to a younger process): whose it was cannot be
 *            told, so it is reported as unclassified and left alone.
 *
 * A segment made and removed between two samples never matters.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The environment variable that carries a test run's id into every process of the run. */
export const RUN_VAR = 'IPC_TEST_RUN'

export interface SegmentInfo {
  key: number
  shmid: number
  bytes: number
  nattch: number
  /** Creator's pid. */
  cpid: number
  /** Pid of the last shmat/shmdt. */
  lpid: number
  /** Last change (creation or IPC_SET), in seconds since the epoch. */
  ctime: number
}

/** Every System V shared-memory segment on the host, from /proc/sysvipc/shm. */
export function listSegments(): SegmentInfo[] {
  const lines = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1)
  return lines.filter(Boolean).map((line) => {
    const f = line.trim().split(/\s+/).map(Number)
    // key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap
    return { key: f[0]!, shmid: f[1]!, bytes: f[3]!, cpid: f[4]!, lpid: f[5]!, nattch: f[6]!, ctime: f[13]! }
  })
}

export function removeSegment(shmid: number): void {
  try { execFileSync('ipcrm', ['-m', String(shmid)], { stdio: 'ignore' }) } catch { /* gone already */ }
}

export interface ProcInfo {
  pid: number
  ppid: number
  /** Its arguments on one line (runs of white space as one space). */
  cmdline: string
}

/** The value of NAME in a live process's environment; undefined if unset, gone or unreadable. */
export function envOf(pid: number, name: string): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((e) => e.startsWith(`${name}=`))
    return entry?.slice(name.length + 1)
  } catch {
    return undefined
  }
}

interface ProcStat {
  ppid: number
  /** R, S, Z, ... */
  state: string
  /** Start time in clock ticks since boot (field 22). */
  startTicks: number
}

/** A live process's start time in clock ticks since boot (what a doorbell FIFO's name holds); undefined if there is none. */
export function startTicksOf(pid: number): number | undefined {
  return procStat(pid)?.startTicks
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Field 2 (the command) may hold spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: rest[0]!, ppid: Number(rest[1]), startTicks: Number(rest[19]) }
  } catch {
    return undefined
  }
}

/** Processes whose environment holds NAME=value (readable for our own uid, or all as root). */
export function listProcessesWithEnv(name: string, value: string): ProcInfo[] {
  const needle = `${name}=${value}`
  const found: ProcInfo[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0')
      if (!env.includes(needle)) continue
      const stat = procStat(Number(entry))
      if (stat === undefined || stat.state === 'Z') continue // a zombie holds no resources but its pid; its parent will reap it
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').join(' ').replace(/\s+/g, ' ').trim()
      found.push({ pid: Number(entry), ppid: stat.ppid, cmdline })
    } catch {
      // the process exited while we looked, or is not ours to read
    }
  }
  return found
}

// ---------------------------------------------------------------- ownership

/** A test run: its id (RUN_VAR in every process it starts) and the pid of its runner. */
export interface RunIdentity {
  runId: string
  runnerPid: number
}

export type Owner = 'ours' | 'foreign' | 'gone'

/** USER_HZ: the unit of start times in /proc/<pid>/stat (100 on every Linux architecture Node runs on). */
const TICKS_PER_SECOND = 100
let bootTime: number | undefined

/** When the system booted, in seconds since the epoch (btime in /proc/stat). */
function booted(): number {
  bootTime ??= Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))?.[1] ?? 0)
  return bootTime
}

/**
 * Whose is the live process `pid`: 'ours' if it carries run.runId in RUN_VAR
 * or descends from run.runnerPid (or is the runner), 'foreign' if it neither
 * carries the id nor descends from the runner, 'gone' if there is no such
 * process. `createdAt` (seconds since the epoch), when given, is when the
 * thing being classified was made: a process that started after it cannot
 * have made it (its pid was reused), so it is 'gone' too.
 */
export function classifyProcess(pid: number, run: RunIdentity, createdAt?: number): Owner {
  const stat = pid > 0 ? procStat(pid) : undefined
  if (stat === undefined) return 'gone'
  // Start times are in ticks since a boot time known to the second, and
  // ctime to the second: 2 s of slack. Any error leans to 'gone', never 'ours'.
  if (createdAt !== undefined && booted() + stat.startTicks / TICKS_PER_SECOND > createdAt + 2) return 'gone'
  if (envOf(pid, RUN_VAR) === run.runId) return 'ours'
  // An exited process (a zombie) has no environment left, but still its parent.
  const seen = new Set<number>()
  for (let p = pid, s: ProcStat | undefined = stat; s !== undefined && p > 0 && !seen.has(p); p = s.ppid, s = procStat(p)) {
    if (p === run.runnerPid) return 'ours'
    seen.add(p)
  }
  return 'foreign'
}

/** Whose is a segment, judged by its creator (see the file comment). */
export function classifySegment(segment: SegmentInfo, run: RunIdentity): Owner {
  return classifyProcess(segment.cpid, run, segment.ctime)
}

/** A bus's doorbell FIFO: <dir>/ipc-bus-<pid>-<start time in ticks>[-t<thread>].bell (packages/bus/src/doorbell.ts). */
const FIFO_NAME = /^ipc-bus-(\d+)-(\d+)(?:-t\d+)?\.bell$/

/** Whose is a doorbell FIFO, judged by the process its name identifies. */
export function classifyFifo(name: string, run: RunIdentity): Owner {
  const m = FIFO_NAME.exec(name)
  if (m === null) return 'foreign'
  const pid = Number(m[1])
  if (procStat(pid)?.startTicks !== Number(m[2])) return 'gone' // that process exited (the pid may be someone else's now)
  return classifyProcess(pid, run)
}

function segmentId(s: SegmentInfo): string {
  return `${s.shmid}/${s.cpid}`
}

function fifoNames(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => FIFO_NAME.test(n))
  } catch {
    return []
  }
}

/** What LeakGuard.finish found. */
export interface GuardReport {
  /** This run's leaks, already cleaned up: each one a failure. */
  leaks: string[]
  /** Said once, not failures: what was left alone or tidied up. */
  notes: string[]
}

/**
 * Watches, for one test run, the segments and doorbell FIFOs made while it
 * runs, and at the end reports and removes only what the run left behind.
 */
export class LeakGuard {
  /** Segments and FIFOs there before the run: never looked at again. */
  private readonly before = new Set<string>()
  private readonly fifosBefore = new Set<string>()
  /** Each segment made during the run, by segmentId, and whose it is. */
  private readonly segments = new Map<string, Owner>()
  private readonly fifos = new Map<string, Owner>()
  private timer: NodeJS.Timeout | undefined

  constructor(readonly run: RunIdentity, readonly fifoDir = tmpdir()) {}

  /**
   * Records what exists now (none of it is the run's), then samples every
   * intervalMs (null: only when sample() is called). A no-op while watching.
   */
  start(intervalMs: number | null = 75): void {
    if (this.timer !== undefined) return
    for (const s of listSegments()) this.before.add(segmentId(s))
    for (const n of fifoNames(this.fifoDir)) this.fifosBefore.add(n)
    if (intervalMs === null) return
    this.timer = setInterval(() => this.sample(), intervalMs)
    this.timer.unref()
  }

  /** Classifies every segment and FIFO not seen before; forgets those that are gone. */
  sample(): void {
    const now = new Set<string>()
    for (const s of listSegments()) {
      const id = segmentId(s)
      now.add(id)
      if (!this.before.has(id) && !this.segments.has(id)) this.segments.set(id, classifySegment(s, this.run))
    }
    for (const id of this.segments.keys()) if (!now.has(id)) this.segments.delete(id)
    const names = new Set(fifoNames(this.fifoDir))
    for (const n of names) {
      if (!this.fifosBefore.has(n) && !this.fifos.has(n)) this.fifos.set(n, classifyFifo(n, this.run))
    }
    for (const n of this.fifos.keys()) if (!names.has(n)) this.fifos.delete(n)
  }

  /** Whose a segment is, as first seen: undefined if it was there before the run or not seen (yet). */
  ownerOf(segment: SegmentInfo): Owner | undefined {
    return this.segments.get(segmentId(segment))
  }

  /** Whose a FIFO (a name in fifoDir) is, as first seen. */
  ownerOfFifo(name: string): Owner | undefined {
    return this.fifos.get(name)
  }

  /**
   * Ends the watch. A process of this run still alive (other than the runner
   * and its direct children, the test workers) is killed and is a leak; a
   * segment of this run still there is removed and is a leak. A FIFO of this
   * run whose process is dead is removed, as a note: a bus member killed with
   * SIGKILL cannot remove its FIFO, and the suite kills members on purpose.
   * A segment or FIFO whose creator could not be told is left alone, as a
   * note; anyone else's is not touched.
   */
  finish(): GuardReport {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.sample()
    const leaks: string[] = []
    const notes: string[] = []

    const killed = new Set<number>()
    const stray = listProcessesWithEnv(RUN_VAR, this.run.runId)
      .filter((p) => p.pid !== this.run.runnerPid && p.ppid !== this.run.runnerPid)
    for (const p of stray) {
      leaks.push(`process ${p.pid} (${p.cmdline}) outlived the suite`)
      try { process.kill(p.pid, 'SIGKILL'); killed.add(p.pid) } catch { /* already gone */ }
    }

    const unclassified: number[] = []
    for (const s of listSegments()) {
      const owner = this.segments.get(segmentId(s))
      if (owner === 'gone') unclassified.push(s.shmid)
      if (owner !== 'ours') continue
      leaks.push(`shm segment ${s.shmid} (key 0x${(s.key >>> 0).toString(16)}, ${s.bytes} bytes, nattch ${s.nattch}, cpid ${s.cpid}) outlived the suite`)
      removeSegment(s.shmid)
    }
    if (unclassified.length > 0) {
      notes.push(`unclassified, left alone: shm segment${unclassified.length > 1 ? 's' : ''} ${unclassified.join(', ')} (made during the run by processes that exited before the guard could tell whose they were)`)
    }

    const removed: string[] = []
    const unknownFifos: string[] = []
    for (const [name, owner] of this.fifos) {
      if (owner === 'gone') unknownFifos.push(name)
      if (owner !== 'ours') continue
      const pid = Number(FIFO_NAME.exec(name)![1])
      if (!killed.has(pid) && classifyFifo(name, this.run) !== 'gone') continue // its process lives on (the runner, a worker)
      try { unlinkSync(join(this.fifoDir, name)); removed.push(name) } catch { /* removed meanwhile */ }
    }
    if (removed.length > 0) notes.push(`removed ${removed.length} doorbell FIFO${removed.length > 1 ? 's' : ''} of this run's dead processes from ${this.fifoDir}: ${removed.join(', ')}`)
    if (unknownFifos.length > 0) notes.push(`unclassified, left alone: ${unknownFifos.join(', ')} in ${this.fifoDir}`)
    return { leaks, notes }
  }
}
