import { once } from 'node:events'
import { closeSync, mkdtempSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Doorbell, DoorbellRinger, mkfifo, pipe, shmat, shmdt } from '@ipc/native'
import { finish, startFixture, waitForLine } from '../../../test/support/children.js'
import { makeSegment } from '../../../test/support/segments.js'

let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ipc-pipes-')) })
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

describe('pipes', () => {
  test('a pipe feeds a child’s stdin', async () => {
    const [r, w] = pipe()
    const child = startFixture('native', 'echo-upper', [], { stdio: [r, 'pipe', 'pipe'] })
    closeSync(r) // the child has its own copy
    writeSync(w, 'through the pipe\n')
    closeSync(w) // EOF for the child
    const out = await finish(child)
    expect(out.stdout).toBe('THROUGH THE PIPE\n')
  })

  test('two pipes carry a conversation both ways', async () => {
    const [aRead, aWrite] = pipe()
    const [bRead, bWrite] = pipe()
    const child = startFixture('native', 'bidi', [], { stdio: ['ignore', 'pipe', 'pipe', aRead, bWrite] })
    closeSync(aRead)
    closeSync(bWrite)
    const { createReadStream } = await import('node:fs')
    const { createInterface } = await import('node:readline')
    const replies = createInterface({ input: createReadStream('', { fd: bRead }) })
    const got: string[] = []
    replies.on('line', (l) => got.push(l))
    for (const line of ['hello', 'parent speaking']) writeSync(aWrite, `${line}\n`)
    closeSync(aWrite)
    await once(replies, 'close')
    await finish(child)
    expect(got).toEqual(['1: olleh', '2: gnikaeps tnerap'])
  })

  test('a FIFO joins two processes started independently', async () => {
    const path = join(dir, 'fifo')
    mkfifo(path, 0o600)
    const reader = startFixture('native', 'fifo-end', ['reader', path])
    const writer = startFixture('native', 'fifo-end', ['writer', path, 'one', 'two', 'three'])
    const [r] = await Promise.all([finish(reader), finish(writer)])
    expect(r.stdout).toBe('got: one\ngot: two\ngot: three\neof\n')
  })

  test('mkfifo and ringer errors carry codes', () => {
    const path = join(dir, 'fifo')
    mkfifo(path)
    expect(() => mkfifo(path)).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'mkfifo' }))
    expect(() => DoorbellRinger.open(path)).toThrow(expect.objectContaining({ code: 'ENXIO' })) // nobody reads it
    expect(() => DoorbellRinger.open(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(() => DoorbellRinger.open(dir)).toThrow(expect.objectContaining({ code: 'ENOTFIFO' }))
    expect(() => mkfifo('')).toThrow(TypeError)
    expect(() => mkfifo(join(dir, 'x'), 0o17777)).toThrow(RangeError)
  })
})

describe('Doorbell', () => {
  test('rings before a wait coalesce into one wakeup; a wait with nothing rung times out', async () => {
    using bell = Doorbell.create()
    using ringer = DoorbellRinger.open(bell.writeFd!)
    for (let i = 0; i < 5; i++) ringer.ring()
    await new Promise((r) => setTimeout(r, 20))
    expect(await bell.wait()).toBe(true)
    expect(bell.wakeups).toBe(1)
    expect(await bell.wait({ timeout: 30 })).toBe(false)
  })

  test('wait() honours an AbortSignal; close() rejects pending waits; a closed bell refuses', async () => {
    const bell = Doorbell.create({ path: join(dir, 'bell') })
    const ac = new AbortController()
    const aborted = bell.wait({ signal: ac.signal })
    ac.abort(new Error('stop'))
    await expect(aborted).rejects.toThrow('stop')
    const pending = bell.wait()
    bell.close()
    await expect(pending).rejects.toMatchObject({ code: 'ERR_DOORBELL_CLOSED' })
    await expect(bell.wait()).rejects.toMatchObject({ code: 'ERR_DOORBELL_CLOSED' })
  })

  test('ringing a doorbell whose owner closed it: EPIPE', () => {
    const path = join(dir, 'bell')
    const bell = Doorbell.create({ path })
    const ringer = DoorbellRinger.open(path)
    bell.close()
    expect(() => ringer.ring()).toThrow(expect.objectContaining({ code: 'EPIPE' }))
    ringer.close()
    expect(() => ringer.ring()).toThrow(expect.objectContaining({ code: 'ERR_DOORBELL_CLOSED' }))
  })

  test('10,000 ping-pong rings with another process never lose a wakeup', async () => {
    const mine = join(dir, 'parent-bell')
    const theirs = join(dir, 'child-bell')
    using bell = Doorbell.create({ path: mine })
    const child = startFixture('native', 'doorbell-peer', ['pingpong', mine, theirs, '10000'])
    await waitForLine(child, /^ready$/)
    const ringer = DoorbellRinger.open(theirs)
    child.stdin!.write('go\n')
    const done = finish(child, 60_000)
    for (let i = 0; i < 10_000; i++) {
      await bell.wait()
      ringer.ring()
    }
    const out = await done
    ringer.close()
    const { rounds, rttNs } = JSON.parse(out.stdout.trim().split('\n').pop()!) as { rounds: number; rttNs: number[] }
    expect(rounds).toBe(10_000)
    const sorted = rttNs.sort((a, b) => a - b)
    console.log(`doorbell ping-pong round trip: p50 ${(percentile(sorted, 50) / 1000).toFixed(1)} µs, p99 ${(percentile(sorted, 99) / 1000).toFixed(1)} µs`)
  })

  test('a burst of 10,000 rings from another process always ends with a wakeup that sees the last one', async () => {
    const path = join(dir, 'bell')
    using bell = Doorbell.create({ path })
    const id = makeSegment(4096)
    const buf = shmat(id)
    const word = new Int32Array(buf)
    try {
      const child = startFixture('native', 'doorbell-peer', ['burst', path, String(id), '10000'])
      const done = finish(child)
      let seen = 0
      while (seen < 10_000) {
        expect(await bell.wait({ timeout: 10_000 })).toBe(true) // a lost wakeup would time out here
        seen = Atomics.load(word, 0)
      }
      await done
      expect(bell.wakeups).toBeLessThanOrEqual(10_000)
    } finally {
      shmdt(buf)
    }
  })

  test('an idle owner uses no CPU while it waits', async () => {
    const child = startFixture('native', 'doorbell-peer', ['idle', join(dir, 'bell'), '1000'])
    const out = await finish(child)
    const { cpuMicros, wallMs, woke } = JSON.parse(out.stdout.trim().split('\n').pop()!) as { cpuMicros: number; wallMs: number; woke: boolean }
    expect(woke).toBe(false)
    expect(wallMs).toBeGreaterThanOrEqual(990)
    // One timer and one epoll wait: well under 1% of a second.
    expect(cpuMicros).toBeLessThan(10_000)
  })
})
