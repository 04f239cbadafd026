/**
 * Who is alive. A process identity is its pid plus its start time (field 22
 * of /proc/<pid>/stat, clock ticks since boot): pids are reused, the pair is
 * not. kill(pid, 0) alone would call a recycled pid alive.
 */
import { readFileSync } from 'node:fs'
import type { Directory, Identity } from '@ipc/core'

/** Start time of pid in clock ticks since boot, or -1 when there is no such process (or it is a zombie). */
export function processStartTime(pid: number): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return -1
  }
  // The command name (field 2) may hold spaces and parentheses: fields after
  // the LAST ')' are unambiguous. Field 3 is the state, field 22 start time.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (rest[0] === 'Z' || rest[0] === 'X') return -1 // exited, not yet reaped
  const start = Number(rest[19])
  return Number.isFinite(start) ? start : -1
}

/** Is the process with this identity still running? */
export function isAlive(pid: number, startTime: number): boolean {
  return pid > 0 && processStartTime(pid) === startTime
}

/**
 * This process's pid, read once: process.pid is a getpid() system call on
 * every read in Node, and a Node process's pid never changes (children are
 * started by fork + exec; nothing here forks natively).
 */
export const SELF_PID = process.pid

let self: Identity | undefined

/** This process's identity (computed once). */
export function selfIdentity(): Identity {
  if (self === undefined) {
    const startTime = processStartTime(SELF_PID)
    if (startTime < 0) throw new Error(`cannot read /proc/${SELF_PID}/stat: is /proc mounted? (@ipc/bus needs Linux)`)
    self = { pid: SELF_PID, startTime }
  }
  return self
}

/** Does any member of the bus still run (other than `except`, when given)? */
export function hasLiveMember(directory: Directory, except?: Identity): boolean {
  return directory.members().some((m) => (except === undefined || m.pid !== except.pid || m.startTime !== except.startTime) && isAlive(m.pid, m.startTime))
}
