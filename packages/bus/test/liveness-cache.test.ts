/**
 * The doorbell's liveness cache (packages/bus/src/doorbell.ts,
 * receiverAlive): trusted as it is for TRUST_MS, then still trusted while
 * it is checked again on the next turn (off the wake path), up to STALE_MS,
 * and past that checked before the answer. A dead process is found out by
 * that deferred check, never later.
 */
import { spawn } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import { receiverAlive } from '../dist/doorbell.js'
import { processStartTime } from '../dist/liveness.js'

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

describe('receiverAlive', () => {
  test('a confirmation goes stale after 100 ms: still yes, re-checked on the next turn, and a dead process is no from then on', () => withChild(async (who) => {
    const t0 = 1_000_000
    expect(receiverAlive(who, t0)).toBe(true) // read now: alive
    await who.kill()
    expect(receiverAlive(who, t0 + 50)).toBe(true) // trusted as it is
    expect(receiverAlive(who, t0 + 500)).toBe(true) // stale: still yes, re-checked on the next turn
    await nextTurn()
    expect(receiverAlive(who, t0 + 501)).toBe(false) // the re-check found it dead
  }))

  test('a confirmation older than a second is checked before the answer', () => withChild(async (who) => {
    const t0 = 2_000_000
    expect(receiverAlive(who, t0)).toBe(true)
    await who.kill()
    expect(receiverAlive(who, t0 + 1500)).toBe(false)
  }))

  test('a live process stays yes through the re-checks', () => withChild(async (who) => {
    const t0 = 3_000_000
    expect(receiverAlive(who, t0)).toBe(true)
    expect(receiverAlive(who, t0 + 500)).toBe(true)
    await nextTurn()
    expect(receiverAlive(who, t0 + 501)).toBe(true)
    expect(receiverAlive({ pid: who.pid, startTime: who.startTime + 1 }, t0 + 502)).toBe(false) // another process under that pid
  }))
})
