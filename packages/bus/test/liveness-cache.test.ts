/**
 * The doorbell's liveness cache (packages/bus/src/doorbell.ts,
 * receiverAlive): trusted as it is for TRUST_MS, then still trusted while
 * it is checked again on the next turn (off the wake path), up to STALE_MS,
 * and past that checked before the answer. A dead process is found out by
 * that deferred check, never later.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { receiverAlive } from '../dist/doorbell.js'

function startTimeOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function deadIdentity(): Promise<{ pid: number; startTime: number; kill: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  await new Promise((resolve) => child.once('spawn', resolve))
  const pid = child.pid!
  const startTime = startTimeOf(pid)
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  return { pid, startTime, kill }
}

describe('receiverAlive', () => {
  test('a confirmation goes stale after 100 ms: still yes, re-checked on the next turn, and a dead process is no from then on', async () => {
    const who = await deadIdentity()
    try {
      const t0 = 1_000_000
      expect(receiverAlive(who, t0)).toBe(true) // read now: alive
      await who.kill()
      expect(receiverAlive(who, t0 + 50)).toBe(true) // trusted as it is
      expect(receiverAlive(who, t0 + 500)).toBe(true) // stale: still yes, re-checked on the next turn
      await nextTurn()
      expect(receiverAlive(who, t0 + 501)).toBe(false) // the re-check found it dead
    } finally {
      await who.kill()
    }
  })

  test('a confirmation older than a second is checked before the answer', async () => {
    const who = await deadIdentity()
    try {
      const t0 = 2_000_000
      expect(receiverAlive(who, t0)).toBe(true)
      await who.kill()
      expect(receiverAlive(who, t0 + 1500)).toBe(false)
    } finally {
      await who.kill()
    }
  })

  test('a live process stays yes through the re-checks', async () => {
    const who = await deadIdentity()
    try {
      const t0 = 3_000_000
      expect(receiverAlive(who, t0)).toBe(true)
      expect(receiverAlive(who, t0 + 500)).toBe(true)
      await nextTurn()
      expect(receiverAlive(who, t0 + 501)).toBe(true)
      expect(receiverAlive({ pid: who.pid, startTime: who.startTime + 1 }, t0 + 502)).toBe(false) // another process under that pid
    } finally {
      await who.kill()
    }
  })
})
