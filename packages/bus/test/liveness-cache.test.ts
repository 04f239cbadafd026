/**
 * The ringers' liveness cache (packages/bus/src/alive-cache.ts,
 * processRuns). With an exit watch (a pidfd): yes while the process runs,
 * at no cost, and no once the kernel reported its exit. Without one (old
 * kernels): trusted as it is for TRUST_MS, then still trusted while it is
 * checked again on the next turn (off the wake path), up to STALE_MS, and
 * past that checked before the answer; a dead process is found out by that
 * deferred check, never later.
 */
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processRuns, useExitWatches, watchedPid } from '../dist/alive-cache.js'
import { processStartTime } from '../dist/liveness.js'
import { OwnerWatch } from '../dist/owner-watch.js'

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface Child { pid: number; startTime: number; kill: () => Promise<void> }

/** Runs `body` with a child process's identity and a kill() that waits for its exit; the child is killed afterwards whatever happens. */
async function withChild(body: (child: Child) => Promise<void>): Promise<void> {
  const proc = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  await new Promise((resolve) => proc.once('spawn', resolve))
  const pid = proc.pid!
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGKILL')
    await exited
  }
  try {
    await body({ pid, startTime: processStartTime(pid), kill })
  } finally {
    await kill()
  }
}

/** Turns of the event loop until `f()` is true (at most ~2 s): the exit notification is an event-loop callback. */
async function until(f: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  return f()
}

describe('processRuns with exit watches (pidfd)', () => {
  test('a watched process is yes at any age of the answer, and no once its exit is reported, with the clock standing still', () => withChild(async (who) => {
    const t0 = 5_000_000
    expect(processRuns(who, t0)).toBe(true)
    expect(watchedPid(who.pid)).toBe(true)
    expect(processRuns(who, t0 + 3_600_000)).toBe(true) // no expiry while it runs
    await who.kill()
    // By the clock alone (age 0) the answer would still be yes: only the exit notification makes it no.
    expect(await until(() => !processRuns(who, t0))).toBe(true)
    expect(watchedPid(who.pid)).toBe(false)
  }))

  test('another start time under a watched pid is no; a pid without a process is no', () => withChild(async (who) => {
    expect(processRuns(who, 0)).toBe(true)
    expect(processRuns({ pid: who.pid, startTime: who.startTime + 1 }, 0)).toBe(false)
    expect(processRuns(who, 0)).toBe(true) // the watch on the real one stays
    await who.kill()
    expect(await until(() => !watchedPid(who.pid))).toBe(true)
    expect(processRuns(who, 0)).toBe(false) // ESRCH from pidfd_open (or a reaped /proc entry)
    expect(watchedPid(who.pid)).toBe(false)
  }))
})

describe('processRuns by the clock (no pidfds)', () => {
  beforeAll(() => { useExitWatches(false) })
  afterAll(() => { useExitWatches(true) })

  test('a confirmation goes stale after 100 ms: still yes, re-checked on the next turn, and a dead process is no from then on', () => withChild(async (who) => {
    const t0 = 1_000_000
    expect(processRuns(who, t0)).toBe(true) // read now: alive
    await who.kill()
    expect(processRuns(who, t0 + 50)).toBe(true) // trusted as it is
    expect(processRuns(who, t0 + 500)).toBe(true) // stale: still yes, re-checked on the next turn
    await nextTurn()
    expect(processRuns(who, t0 + 501)).toBe(false) // the re-check found it dead
  }))

  test('a confirmation older than a second is checked before the answer', () => withChild(async (who) => {
    const t0 = 2_000_000
    expect(processRuns(who, t0)).toBe(true)
    await who.kill()
    expect(processRuns(who, t0 + 1500)).toBe(false)
  }))

  test('a live process stays yes through the re-checks', () => withChild(async (who) => {
    const t0 = 3_000_000
    expect(processRuns(who, t0)).toBe(true)
    expect(processRuns(who, t0 + 500)).toBe(true)
    await nextTurn()
    expect(processRuns(who, t0 + 501)).toBe(true)
    expect(processRuns({ pid: who.pid, startTime: who.startTime + 1 }, t0 + 502)).toBe(false) // another process under that pid
  }))
})

/**
 * A parked receiver's watch on its lane owners (packages/bus/src/owner-watch.ts):
 * the kernel's exit notification instead of a polling backstop.
 */
describe('OwnerWatch', () => {
  test('watches each live owner once, calls back when one exits, and does not look again for it', () => withChild(async (who) => {
    let exits = 0
    const owners = new OwnerWatch(() => { exits++ })
    expect(owners.scan(3, (i) => (i === 1 ? null : who))).toBe('watched') // two lanes of one owner, a free lane
    expect(owners.size).toBe(1)
    expect(owners.scan(1, () => who)).toBe('watched')
    expect(exits).toBe(0)
    await who.kill()
    expect(await until(() => exits === 1)).toBe(true)
    expect(owners.size).toBe(0)
    expect(owners.scan(1, () => who)).toBe('watched') // its lane still names it: already looked at, no second look
    await nextTurn()
    expect(exits).toBe(1)
  }))

  test('an owner already gone is one look (it may have committed and died before ringing), then not again', () => withChild(async (who) => {
    await who.kill()
    const owners = new OwnerWatch(() => { throw new Error('not watched: never told') })
    expect(owners.scan(1, () => who)).toBe('look')
    expect(owners.scan(1, () => who)).toBe('watched')
    expect(owners.scan(0, () => null)).toBe('watched') // its lane freed: forgotten
    expect(owners.scan(1, () => who)).toBe('look') // the same identity in a lane again: looked at again
  }))

  test('an owner that leaves its lane is no longer watched, and its exit calls nobody', () => withChild(async (who) => {
    let exits = 0
    const owners = new OwnerWatch(() => { exits++ })
    expect(owners.scan(1, () => who)).toBe('watched')
    expect(owners.scan(1, () => null)).toBe('watched')
    expect(owners.size).toBe(0)
    await who.kill()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(exits).toBe(0)
  }))

  test('this process is never watched (its exit is ours); without pidfds every other owner is unwatched', () => withChild(async (who) => {
    const owners = new OwnerWatch(() => {})
    expect(owners.scan(1, () => ({ pid: process.pid, startTime: processStartTime(process.pid) }))).toBe('watched')
    expect(owners.size).toBe(0)
    useExitWatches(false)
    try {
      expect(owners.scan(1, () => who)).toBe('unwatched')
    } finally {
      useExitWatches(true)
    }
    expect(owners.scan(1, () => who)).toBe('watched')
    owners.close()
    expect(owners.size).toBe(0)
  }))
})
