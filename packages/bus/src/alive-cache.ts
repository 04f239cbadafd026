/**
 * Is a process we are about to ring still running? The doorbell asks on
 * every ring (./doorbell.ts), a channel's sender on every liveness check
 * of its receiver (./channel/receiver-link.ts), and the 'peer-exit'
 * sweeper about every member (./bus/peers.ts), so the answer must cost no
 * system call on the wake path.
 *
 * The first question about a pid opens a pidfd for it and watches it on the
 * event loop (@ipc/native watchExit, Linux >= 5.3), then reads its start
 * time once (./liveness.ts): the pidfd was opened first, so a start time
 * that matches means the watch is on that very process. From then on the
 * answer is a Map lookup, and the kernel's exit notification removes the
 * entry: no /proc read and no timer while the process lives. An idle round
 * trip's p99 was 190-380 µs with the old re-read every 100 ms (five system
 * calls, on ~1 in 90 round trips on each side), 145-235 µs without it
 * (docs/design.md, "Doorbells").
 *
 * Without pidfds (ENOSYS: an older kernel; EMFILE: out of descriptors) a
 * confirmation is trusted for TRUST_MS, then still trusted while it is
 * re-read on the next turn (off the wake path) up to STALE_MS, and past
 * that re-read before the answer. A stale "yes" cannot aim a signal at
 * another process in practice: a pid comes back only after the kernel has
 * handed out pid_max others (4 M here); a dead receiver answers a signal
 * with ESRCH and a FIFO with EPIPE.
 */
import { performance } from 'node:perf_hooks'
import { watchExit, type ExitWatch } from '@ipc/native'
import type { Identity } from '@ipc/core'
import { processStartTime } from './liveness.js'

/**
 * What is known of a pid: the start time of the process that has it, and
 * the exit watch that keeps that current (null: none, the confirmation at
 * `at` expires); `exits`: who asked to hear of its exit (onExit()).
 */
interface Known { startTime: number; at: number; watch: ExitWatch | null; exits: Set<() => void> | null }

const known = new Map<number, Known>()
/** Most watched pids; past this the oldest watch is closed (its pid is read again when next asked about). */
const MAX_WATCHED = 1024
/** Without a watch: how long a confirmation is trusted as it is, and how long it still answers while re-read on the next turn (ms). */
const TRUST_MS = 100
const STALE_MS = 1000
/** pids whose re-read is queued. */
const rereads = new Set<number>()
/** False once pidfd_open said ENOSYS, or while a test turns watches off. */
let watching = true

/**
 * True while process `who` runs. `now` is performance.now(), used only
 * for pids without an exit watch.
 */
export function processRuns(who: Identity, now: number): boolean {
  const k = known.get(who.pid)
  if (k !== undefined) {
    if (k.watch !== null) return k.startTime === who.startTime // current: a watched process that exits leaves the map
    if (k.startTime === who.startTime) {
      const age = now - k.at
      if (age < TRUST_MS) return true
      if (age < STALE_MS) {
        rereadSoon(who.pid)
        return true
      }
    }
  }
  return check(who, now)
}

/** Opens a watch (unless pidfds are off), then reads the start time; remembers what it found. */
function check(who: Identity, now: number): boolean {
  const pid = who.pid
  forget(pid)
  const watch = watching ? openWatch(pid) : null
  if (watch === 'gone') return false
  const start = processStartTime(pid)
  if (start < 0) {
    watch?.close()
    return false
  }
  known.set(pid, { startTime: start, at: now, watch, exits: null })
  if (watch !== null && known.size > MAX_WATCHED) evictOne()
  return start === who.startTime
}

/** Closes the oldest watch nobody waits on to hear of its exit (those stay, whatever their number). */
function evictOne(): void {
  for (const [pid, k] of known) {
    if (k.exits === null || k.exits.size === 0) return forget(pid)
  }
}

function openWatch(pid: number): ExitWatch | 'gone' | null {
  let watch: ExitWatch | null = null
  try {
    watch = watchExit(pid, () => {
      const k = known.get(pid)
      if (k?.watch !== watch) return
      known.delete(pid)
      tell(k)
    })
    return watch
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ESRCH') return 'gone'
    if (code === 'ENOSYS') watching = false
    return null // EMFILE and the like: this pid goes by the clock
  }
}

/** False where exits cannot be watched (no pidfds: ENOSYS), or while a test turns watches off. */
export function exitWatchesOn(): boolean {
  return watching
}

/**
 * Calls `fn` once process `who` exits, from the kernel's exit notification
 * (a parked receiver's way to learn that a sender died, docs/design.md "The
 * parking protocol"). Returns the function that cancels it; 'gone' when
 * `who` does not run now (fn is never called); 'unwatched' when exits
 * cannot be watched here (no pidfds, or a test turned them off): the
 * caller must look for itself.
 */
export function onExit(who: Identity, fn: () => void): (() => void) | 'gone' | 'unwatched' {
  if (!watching) return 'unwatched'
  if (!processRuns(who, performance.now())) return 'gone'
  const k = known.get(who.pid)
  if (k === undefined || k.watch === null) return 'unwatched' // pidfds ran out (EMFILE): this pid goes by the clock
  const exits = (k.exits ??= new Set())
  const entry = (): void => fn() // its own identity: the same fn may be registered twice
  exits.add(entry)
  return () => { exits.delete(entry) } // a no-op once told
}

/** The watch of `pid` ends here: a process that exits or a watch closed for another reason (those waiting look, and watch again if they still care). */
function forget(pid: number): void {
  const k = known.get(pid)
  if (k === undefined) return
  k.watch?.close()
  known.delete(pid)
  tell(k)
}

/** Calls everyone waiting to hear of k's exit, each on a turn of its own (never inside the cache's own bookkeeping). */
function tell(k: Known): void {
  if (k.exits === null) return
  for (const fn of k.exits) setImmediate(fn)
  k.exits = null
}

function rereadSoon(pid: number): void {
  if (rereads.has(pid)) return
  rereads.add(pid)
  setImmediate(() => {
    rereads.delete(pid)
    const k = known.get(pid)
    if (k !== undefined && k.watch === null) check({ pid, startTime: k.startTime }, performance.now())
  }).unref()
}

/** Internal, for tests: turns exit watches off (the clock-based path) or on, forgetting every pid known so far. */
export function useExitWatches(on: boolean): void {
  for (const pid of [...known.keys()]) forget(pid)
  watching = on
}

/** Internal, for tests: whether `pid` is known with an exit watch. */
export function watchedPid(pid: number): boolean {
  return known.get(pid)?.watch != null
}
