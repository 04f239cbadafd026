/**
 * Whether the host has a CPU to spare for a spinning receiver (Linux only:
 * /proc/loadavg). An 'adaptive' receiver spins because the process it
 * waits on is running on another CPU and answers within microseconds; when
 * more threads are runnable than there are CPUs, that process is likely
 * waiting for the very CPU the spinner holds, and the spin delays what it
 * waits for (request/reply with 4 clients on 2 CPUs ran at 17.8 k req/s
 * spinning against 30.1 k parking; docs/design.md, "Idle
 * strategy"). The same reasoning as the kernel's optimistic spinning on a
 * mutex, which spins only while the owner runs.
 *
 * The fourth field of /proc/loadavg is "runnable/total" scheduling
 * entities, read at that instant (the spinner itself counts as runnable).
 * It is read at most every SAMPLE_MS (open, read, close: no descriptor is
 * kept, which a terminated worker thread would leak), and only by a
 * receiver about to spin, i.e. during traffic.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { clockMs } from './clock.js'

/** How long one reading stands (ms). */
export const SAMPLE_MS = 10

const cpus = availableParallelism()
const buffer = Buffer.alloc(128)
let sampledAt = -Infinity
let spare = true

/** Runnable threads, from /proc/loadavg's text (the number before '/' in the fourth field); null when it does not parse. */
export function runnableFrom(text: string): number | null {
  const m = /^\S+ \S+ \S+ (\d+)\//.exec(text)
  return m === null ? null : Number(m[1])
}

/** The rule: a spin leaves a CPU to the others while runnable threads (the spinner included) are at most the CPUs; unknown counts as yes. */
export function spareWith(runnable: number | null, cpus: number): boolean {
  return runnable === null || runnable <= cpus
}

/** Whether a spin leaves a CPU to the others now (the reading of at most SAMPLE_MS ago). True when unknown (not Linux, no procfs). */
export function cpuToSpare(now = clockMs()): boolean {
  if (now - sampledAt < SAMPLE_MS) return spare
  sampledAt = now
  let runnable: number | null = null
  try {
    const fd = openSync('/proc/loadavg', 'r')
    try {
      runnable = runnableFrom(buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0)))
    } finally {
      closeSync(fd)
    }
  } catch {
    // unknown: spin as configured
  }
  return (spare = spareWith(runnable, cpus))
}
