/**
 * watchExit: a pidfd watched on the event loop, the way the bus learns that
 * a process it rings has exited without reading /proc. One call per exit,
 * the descriptor closed after it (or on close()), SystemErrors for a pid
 * without a process and TypeErrors/RangeErrors for bad arguments.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { watchExit } from '@ipc/native'

const openFds = (): number => readdirSync('/proc/self/fd').length
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms))

/** A sleeping child, killed (and waited for) after `body` whatever happens. */
async function withChild(body: (child: ChildProcess) => Promise<void>): Promise<void> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' })
  await new Promise((resolve) => child.once('spawn', resolve))
  try {
    await body(child)
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
  }
}

describe('watchExit', () => {
  test('calls onExit once when the process exits, and closes its pidfd', () => withChild(async (child) => {
    const before = openFds()
    let calls = 0
    watchExit(child.pid!, () => { calls++ })
    expect(openFds()).toBe(before + 1)
    await tick()
    expect(calls).toBe(0) // alive: nothing
    child.kill('SIGKILL')
    for (let i = 0; i < 100 && calls === 0; i++) await tick(10)
    expect(calls).toBe(1)
    await tick()
    expect(calls).toBe(1)
    expect(openFds()).toBe(before)
  }))

  test('close() before the exit: never called, the pidfd closed at once', () => withChild(async (child) => {
    const before = openFds()
    let calls = 0
    const watch = watchExit(child.pid!, () => { calls++ })
    watch.close()
    watch.close() // idempotent
    expect(openFds()).toBe(before)
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    await tick(50)
    expect(calls).toBe(0)
  }))

  test('a pid without a process is a SystemError ESRCH; bad arguments are TypeErrors and RangeErrors; nothing stays open', async () => {
    const before = openFds()
    const gone = spawn('true', { stdio: 'ignore' })
    await new Promise((resolve) => gone.once('exit', resolve)) // reaped by Node: the pid is free
    let error: NodeJS.ErrnoException | undefined
    try { watchExit(gone.pid!, () => {}) } catch (err) { error = err as NodeJS.ErrnoException }
    expect(error).toMatchObject({ code: 'ESRCH', syscall: 'pidfd_open', errno: -3 })
    expect(() => watchExit(0, () => {})).toThrow(RangeError)
    expect(() => watchExit(1.5, () => {})).toThrow(TypeError)
    expect(() => watchExit(process.pid, 'no' as unknown as () => void)).toThrow(TypeError)
    expect(openFds()).toBe(before)
  })
})
