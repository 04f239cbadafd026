/**
 * watchExit: a pidfd watched on the event loop, the way the bus learns that
 * a process it rings has exited without reading /proc. One call per exit,
 * the descriptor closed after it (or on close()), SystemErrors for a pid
 * without a process and TypeErrors/RangeErrors for bad arguments.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
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

  test('a worker terminated with an exit watch open closes its pidfd; ref() keeps a process alive until the exit', () => {
    const script = `
      const { watchExit } = await import(process.env.NATIVE)
      const { Worker } = await import('node:worker_threads')
      const { spawn } = await import('node:child_process')
      const { readdirSync, readlinkSync } = await import('node:fs')
      // pidfds open in this process (the worker's are the process's too)
      const pidfds = () => readdirSync('/proc/self/fd').filter((f) => { try { return readlinkSync('/proc/self/fd/' + f) === 'anon_inode:[pidfd]' } catch { return false } }).length
      const child = spawn('sleep', ['60'], { stdio: 'ignore' })
      await new Promise((res) => child.once('spawn', res))
      const code = "const { watchExit } = await import(process.env.NATIVE); watchExit(Number(process.env.PID), () => {}).ref(); (await import('node:worker_threads')).parentPort.postMessage('up')"
      const worker = new Worker(new URL('data:text/javascript,' + encodeURIComponent(code)), { env: { NATIVE: process.env.NATIVE, PID: String(child.pid) } })
      await new Promise((res) => worker.once('message', res))
      const during = pidfds()
      await worker.terminate()
      console.log('pidfds', during, pidfds())
      // ref'd: this process waits for the child's exit (the only thing left), then says so.
      watchExit(child.pid, () => console.log('child exited')).ref()
      child.unref()
      setTimeout(() => child.kill('SIGKILL'), 100).unref()
    `
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NATIVE: new URL('../dist/index.js', import.meta.url).href }, encoding: 'utf8', timeout: 20_000,
    })
    expect(out.stderr).toBe('')
    expect(out.stdout).toContain('pidfds 1 0') // the worker's watch while it ran, closed by its teardown
    expect(out.stdout).toContain('child exited')
    expect(out.status).toBe(0)
  })
})
