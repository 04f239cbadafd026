/**
 * Large messages arrive in Buffers from @ipc/native's pool (allocPooled:
 * memory already mapped, reused once a Buffer is collected). What the pool
 * must never do is hand a Buffer's memory to the next message while the
 * listener still holds it: a receiver keeps every third 1 MiB message it
 * gets, collections run between sends, and every kept message must still
 * hold its own bytes at the end, while the pool did reuse the dropped ones.
 */
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { expect, test } from 'vitest'
import { poolStats } from '@ipc/native'
import { privateBus } from '../../../test/support/buses.js'
import { checkFrame, makeFrame } from './fixtures/payloads.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test('a listener\'s large Buffers keep their bytes while dropped ones are reused', async () => {
  const bus = await privateBus({ ringBytes: '256 KiB' }) // records of 32 KiB: a 1 MiB message is 33 fragments
  const ch = bus.channel('big')
  const SIZE = (1 << 20) - 12
  const COUNT = 30
  const kept: Buffer[] = []
  let received = 0
  const all = new Promise<void>((resolve) => {
    ch.on('message', (b: Buffer) => {
      if (received % 3 === 0) kept.push(b)
      if (++received === COUNT) resolve()
    })
  })
  const before = poolStats()
  for (let i = 0; i < COUNT; i++) {
    await ch.sendBytes(makeFrame(1, i, SIZE))
    if (i % 5 === 4) {
      gc()
      await new Promise((r) => setImmediate(r)) // the pool's finalizers run on this thread, after the collection
    }
  }
  await all
  const after = poolStats()
  expect(kept).toHaveLength(COUNT / 3)
  kept.forEach((b, k) => {
    expect(b.length).toBe(SIZE + 12)
    expect(checkFrame(b)).toEqual({ s: 1, i: 3 * k }) // every byte its own, after the rest were reused
  })
  expect(after.reused - before.reused).toBeGreaterThan(0)
  await bus.close()
})
