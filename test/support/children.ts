/**
 * Child processes for tests. Every child started here is tracked and killed
 * (SIGKILL, then reaped) after each test, pass or fail, so a failing test
 * never leaves a process behind. Fixtures are the built JS of
 * test/fixtures/*.ts (test/dist/fixtures), run by the same Node.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'

const live = new Set<ChildProcess>()

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../dist/fixtures/${name}.js`, import.meta.url))
}

export interface FixtureExtras {
  /** Flags for node itself, before the script (e.g. --expose-gc). */
  nodeArgs?: readonly string[]
  /** Kill the child if it has not finished by then. Default 20 s. */
  timeoutMs?: number
}

/** Starts `node test/dist/fixtures/<name>.js ...args`, tracked for cleanup. */
export function startFixture(name: string, args: readonly string[] = [], options: SpawnOptions = {}, extras: FixtureExtras = {}): ChildProcess {
  return track(spawn(process.execPath, [...(extras.nodeArgs ?? []), fixturePath(name), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...options,
  }))
}

/** Tracks a child started some other way. */
export function track<T extends ChildProcess>(child: T): T {
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Collects a child's output until it exits; rejects after timeoutMs (the child is killed). */
export async function finish(child: ChildProcess, timeoutMs = 20_000): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
  try {
    const [code, signal] = (child.exitCode !== null || child.signalCode !== null)
      ? [child.exitCode, child.signalCode]
      : ((await once(child, 'close')) as [number | null, NodeJS.Signals | null])
    if (timedOut) throw new Error(`child timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)
    return { code, signal, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a fixture to completion. */
export function runFixture(name: string, args: readonly string[] = [], options: SpawnOptions = {}, extras: FixtureExtras = {}): Promise<Finished> {
  return finish(startFixture(name, args, options, extras), extras.timeoutMs)
}

/** Resolves with the first line of stdout that matches, or rejects when the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (d: Buffer | string): void => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        const m = pattern.exec(line)
        if (m) { cleanup(); resolve(m); return }
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup()
      reject(new Error(`child exited (code ${code}, signal ${signal}) before printing ${pattern}`))
    }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)) }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Kills and reaps every tracked child. */
export async function killAll(): Promise<void> {
  const waits = [...live].map(async (child) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  await Promise.all(waits)
  live.clear()
}

afterEach(killAll)
