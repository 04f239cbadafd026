/**
 * 'peer-exit': who of the bus's other members left or died. Children
 * started with bus.fork() are reported from child_process's 'exit'; every
 * other member by a sweeper that, while someone listens, compares the
 * member table on an unref'd timer. Whether a listed member still runs is
 * asked of ../alive-cache.ts: an exit watch per member, so a sweep reads
 * /proc only for members it has not seen before.
 */
import type { ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import type { Directory } from '@ipc/core'
import { processRuns } from '../alive-cache.js'
import { selfIdentity } from '../liveness.js'

export interface PeerExit {
  pid: number
  /** True when it was killed by a signal or exited non-zero. */
  died: boolean
  code: number | null
  signal: NodeJS.Signals | null
}

/** How often 'peer-exit' listeners of a named bus get the member table compared (ms). */
const PEER_SWEEP_MS = 250

export class Peers {
  private readonly children = new Set<ChildProcess>()
  private sweeper: NodeJS.Timeout | null = null
  private stopped = false

  constructor(private readonly directory: Directory, private readonly report: (exit: PeerExit) => void) {}

  /** A child started with bus.fork(): reported when it exits, and skipped by the sweeper. */
  track(child: ChildProcess): void {
    this.children.add(child)
    child.once('exit', (code, signal) => {
      this.children.delete(child)
      if (child.pid !== undefined) this.report({ pid: child.pid, died: signal !== null || code !== 0, code, signal })
    })
  }

  /**
   * Starts sweeping (once; not after stop()). A member that left the table
   * exited cleanly; one still listed but dead died. (A member that joins
   * and leaves cleanly between two sweeps goes unseen.)
   */
  start(): void {
    if (this.sweeper !== null || this.stopped) return
    /** Members seen alive at the last sweep, and dead ones already reported (pid:startTime). */
    let known = new Set<string>()
    const reported = new Set<string>()
    const me = selfIdentity()
    const sweep = (): void => {
      if (this.stopped) return
      const children = new Set([...this.children].map((c) => c.pid))
      const listed = new Set<string>()
      const alive = new Set<string>()
      const now = performance.now()
      for (const m of this.directory.members()) {
        if (m.pid === me.pid || children.has(m.pid)) continue
        const key = `${m.pid}:${m.startTime}`
        listed.add(key)
        if (processRuns(m, now)) alive.add(key)
        else if (!reported.has(key)) {
          reported.add(key) // dead but still listed: it died (seen alive before or not)
          this.report({ pid: m.pid, died: true, code: null, signal: null })
        }
      }
      for (const key of known) {
        if (!listed.has(key)) this.report({ pid: Number(key.split(':')[0]), died: false, code: null, signal: null })
      }
      for (const key of reported) if (!listed.has(key)) reported.delete(key)
      known = alive
    }
    sweep()
    this.sweeper = setInterval(sweep, PEER_SWEEP_MS).unref()
  }

  /** The bus is leaving: no more sweeps (forked children are still reported). */
  stop(): void {
    this.stopped = true
    if (this.sweeper !== null) clearInterval(this.sweeper)
  }
}
