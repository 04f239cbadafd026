import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, test } from 'vitest'
import { addExitStore, addExitUnlink, cancelExit, pendingExitActions, shmat, shmctl, shmdt } from '@ipc/native'
import { finish, fixturePath, startFixture, waitForLine } from '../../../test/support/children.js'
import { makeSegment } from '../../../test/support/segments.js'

type Then = 'loop' | 'await' | 'end' | 'exit'
interface StoreSpec { shmid: number; offset: number; width: 4 | 8; expected: number | bigint; desired: number | bigint }
interface Registered { registered: number; cancelled: boolean[]; pending: number }

const workers = new Set<Worker>()
const mapped: ArrayBuffer[] = []
let dir: string | undefined

afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()))
  workers.clear()
  for (const buf of mapped.splice(0)) shmdt(buf)
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

/** A fresh segment (removed after the test) and its mapping here. */
function segment(size = 4096): { id: number; buf: ArrayBuffer } {
  const id = makeSegment(size)
  const buf = shmat(id)
  mapped.push(buf)
  return { id, buf }
}

/** Starts the at-exit-worker fixture and waits until it has registered its actions. */
async function startWorker(data: { stores?: StoreSpec[]; unlinks?: string[]; cancel?: boolean; then: Then }): Promise<{ worker: Worker; info: Registered }> {
  const worker = new Worker(fixturePath('native', 'at-exit-worker'), { workerData: data })
  workers.add(worker)
  const info = await new Promise<Registered>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before registering`)))
  })
  return { worker, info }
}

/** Ends a worker the way `then` says and resolves with its exit code. */
async function end(worker: Worker, then: Then): Promise<number> {
  const code = then === 'end' || then === 'exit'
    ? await new Promise<number>((resolve) => worker.once('exit', resolve))
    : await worker.terminate()
  workers.delete(worker)
  return code
}

describe('exit actions in a worker_thread', () => {
  test.each(['loop', 'await'] as const)('worker.terminate() while it is busy (%s) swaps the word in a segment the main thread made', async (then) => {
    const { id, buf } = segment()
    const words = new BigInt64Array(buf)
    const identity = 0x7abc_def0_1234_5678n
    words[3] = identity
    const { worker, info } = await startWorker({ stores: [{ shmid: id, offset: 24, width: 8, expected: identity, desired: 0n }], then })
    expect(info).toMatchObject({ registered: 1, pending: 1 })
    await new Promise((r) => setTimeout(r, 20)) // let it get into its loop / await
    expect(Atomics.load(words, 3)).toBe(identity) // nothing happens before teardown
    expect(await end(worker, then)).toBe(1) // terminate() reports exit code 1
    expect(Atomics.load(words, 3)).toBe(0n)
    expect(shmctl(id, 'IPC_STAT').nattch).toBe(1) // the teardown's own attachment is gone again
  })

  test.each(['end', 'exit'] as const)('a worker that ends by itself (%s) runs its actions too', async (then) => {
    const { id, buf } = segment()
    const words = new Int32Array(buf)
    words[1] = -5
    const { worker } = await startWorker({ stores: [{ shmid: id, offset: 4, width: 4, expected: -5, desired: 0x7fff_ffff }], then })
    expect(await end(worker, then)).toBe(0)
    expect(words[1]).toBe(0x7fff_ffff)
  })

  test('actions run in registration order; width 4 takes int32 or uint32 bits, width 8 signed or unsigned bigints', async () => {
    const { id, buf } = segment()
    const u32 = new Uint32Array(buf)
    const u64 = new BigUint64Array(buf)
    u32[0] = 1
    u64[1] = 0xffff_ffff_ffff_fffen
    const { worker, info } = await startWorker({
      stores: [
        { shmid: id, offset: 0, width: 4, expected: 1, desired: 2 }, // 1 -> 2
        { shmid: id, offset: 0, width: 4, expected: 2, desired: -1 }, // then 2 -> 0xffffffff (only after the first)
        { shmid: id, offset: 0, width: 4, expected: 0xffff_ffff, desired: 3n }, // then 0xffffffff -> 3
        { shmid: id, offset: 8, width: 8, expected: -2n, desired: 1 }, // -2n is 0xff..fe
        { shmid: id, offset: 8, width: 8, expected: 1n, desired: 0xffff_ffff_ffff_ffffn },
      ],
      then: 'loop',
    })
    expect(info.pending).toBe(5)
    await end(worker, 'loop')
    expect(u32[0]).toBe(3) // in reverse order only the first swap would have matched
    expect(u64[1]).toBe(0xffff_ffff_ffff_ffffn)
  })

  test('a wrong expected value leaves the word alone', async () => {
    const { id, buf } = segment()
    const words = new BigInt64Array(buf)
    words[0] = 42n
    const { worker } = await startWorker({ stores: [{ shmid: id, offset: 0, width: 8, expected: 41n, desired: 0n }], then: 'loop' })
    await end(worker, 'loop')
    expect(words[0]).toBe(42n)
  })

  test('cancelled actions do nothing', async () => {
    const { id, buf } = segment()
    const words = new BigInt64Array(buf)
    words[0] = 9n
    dir = mkdtempSync(join(tmpdir(), 'ipc-at-exit-'))
    const file = join(dir, 'kept')
    writeFileSync(file, '')
    const { worker, info } = await startWorker({
      stores: [{ shmid: id, offset: 0, width: 8, expected: 9n, desired: 0n }],
      unlinks: [file],
      cancel: true,
      then: 'loop',
    })
    expect(info).toEqual({ registered: 2, cancelled: [true, true], pending: 0 })
    await end(worker, 'loop')
    expect(words[0]).toBe(9n)
    expect(existsSync(file)).toBe(true)
  })

  test('addExitUnlink removes a file on worker.terminate(); a path that is already gone is ignored', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipc-at-exit-'))
    const file = join(dir, 'doorbell')
    writeFileSync(file, '')
    const { worker } = await startWorker({ unlinks: [join(dir, 'never-made'), file], then: 'await' })
    expect(existsSync(file)).toBe(true)
    await end(worker, 'await')
    expect(existsSync(file)).toBe(false)
  })

  test('a segment removed before the teardown is skipped silently', async () => {
    const { id, buf } = segment()
    const words = new BigInt64Array(buf)
    words[0] = 1n
    const { worker } = await startWorker({ stores: [{ shmid: id, offset: 0, width: 8, expected: 1n, desired: 2n }], then: 'loop' })
    shmdt(mapped.pop()!)
    shmctl(id, 'IPC_RMID') // with no attachment left it is destroyed at once
    expect(() => shmctl(id, 'IPC_STAT')).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(await end(worker, 'loop')).toBe(1)
  })
})

describe('exit actions in a child process', () => {
  async function child(how: string): Promise<{ word: bigint; code: number | null; signal: string | null; stderr: string; extra: number }> {
    const { id, buf } = segment()
    const words = new BigInt64Array(buf)
    words[0] = 0x1234n
    new Int32Array(buf)[2] = 7
    const proc = startFixture('native', 'at-exit-child', [String(id), how])
    const done = finish(proc)
    await waitForLine(proc, /^ready$/)
    if (how === 'wait') proc.kill('SIGKILL')
    const { code, signal, stderr } = await done
    return { word: words[0]!, code, signal, stderr, extra: new Int32Array(buf)[2]! }
  }

  test.each(['exit', 'end'])('a normal exit (%s) swaps the word', async (how) => {
    expect(await child(how)).toMatchObject({ word: 0x5678n, code: 0, stderr: '' })
  })

  test('an uncaught exception ends the process through exit(3): the word is swapped', async () => {
    const r = await child('throw')
    expect(r).toMatchObject({ word: 0x5678n, code: 1 })
    expect(r.stderr).toMatch(/uncaught on purpose/)
  })

  test('process.exit() with a worker still spinning runs the worker\'s actions and the main thread\'s', async () => {
    expect(await child('worker-exit')).toMatchObject({ word: 0x5678n, extra: -1, code: 0, stderr: '' })
  })

  test('SIGKILL runs nothing (a documented limitation: peers must detect it by liveness)', async () => {
    expect(await child('wait')).toMatchObject({ word: 0x1234n, signal: 'SIGKILL' })
  })
})

describe('registration', () => {
  test('cancelExit: true once for a pending handle of this thread, then false', () => {
    const { id } = segment()
    const before = pendingExitActions()
    const a = addExitStore(id, 0, 4, 0, 1)
    const b = addExitUnlink(join(tmpdir(), 'ipc-at-exit-never-made'))
    expect(b).not.toBe(a)
    expect(pendingExitActions()).toBe(before + 2)
    expect(cancelExit(a)).toBe(true)
    expect(cancelExit(a)).toBe(false)
    expect(cancelExit(b)).toBe(true)
    expect(pendingExitActions()).toBe(before)
    expect(cancelExit(987654321)).toBe(false)
  })

  test('bad arguments throw TypeError or RangeError; a missing segment throws an errno error', () => {
    const { id } = segment(64)
    expect(() => addExitStore(-1, 0, 8, 0n, 1n)).toThrow(RangeError)
    expect(() => addExitStore(1.5, 0, 8, 0n, 1n)).toThrow(TypeError)
    expect(() => addExitStore(id, -8, 8, 0n, 1n)).toThrow(RangeError)
    expect(() => addExitStore(id, 0.5, 8, 0n, 1n)).toThrow(TypeError)
    expect(() => addExitStore(id, '0' as never, 8, 0n, 1n)).toThrow(TypeError)
    expect(() => addExitStore(id, 4, 8, 0n, 1n)).toThrow(RangeError) // misaligned
    expect(() => addExitStore(id, 2, 4, 0, 1)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 2 as never, 0, 1)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, '8' as never, 0n, 1n)).toThrow(TypeError)
    expect(() => addExitStore(id, 0, 4, 0x1_0000_0000, 1)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 4, -0x8000_0001, 1)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 4, 0, 1n << 32n)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 4, 0.5, 1)).toThrow(TypeError)
    expect(() => addExitStore(id, 0, 8, 2 ** 53, 1n)).toThrow(RangeError) // not a safe integer: use a bigint
    expect(() => addExitStore(id, 0, 8, 1n << 64n, 1n)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 8, -(1n << 63n) - 1n, 1n)).toThrow(RangeError)
    expect(() => addExitStore(id, 0, 8, 0n, '1' as never)).toThrow(TypeError)
    expect(() => addExitStore(id, 0, 8, 0n, undefined as never)).toThrow(TypeError)
    expect(() => addExitStore(id, 64, 4, 0, 1)).toThrow(/outside the 64-byte segment/) // RangeError from the addon
    expect(() => addExitStore(id, 64, 4, 0, 1)).toThrow(RangeError)
    expect(() => addExitStore(0x7ffffff0, 0, 8, 0n, 1n)).toThrow(
      expect.objectContaining({ code: 'EINVAL', errno: -22, syscall: 'shmctl', message: expect.stringContaining('addExitStore') }),
    )
    expect(() => addExitUnlink('')).toThrow(TypeError)
    expect(() => addExitUnlink('a\0b')).toThrow(TypeError)
    expect(() => addExitUnlink(3 as never)).toThrow(TypeError)
    expect(() => cancelExit(1.5)).toThrow(TypeError)
    expect(() => cancelExit('1' as never)).toThrow(TypeError)
    // Nothing above was registered.
    expect(pendingExitActions()).toBe(0)
  })
})
