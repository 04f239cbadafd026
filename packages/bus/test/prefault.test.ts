/**
 * Rings mapped ahead (src/prefault.ts): a sender maps its lane's ring when
 * it claims it, a receiver each lane it sees in use, so that the first lap
 * of a ring takes no page fault per 4 KiB. Measured as the Rss of this
 * process's SysV mappings (/proc/self/smaps): what is in its page tables.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { Bus } from '@ipc/bus'
import { namedBus, privateBus, trackBus } from '../../../test/support/buses.js'
import { allSegmentsRss } from '../../../test/support/smaps.js'
import { usePrefault } from '../dist/prefault.js'

const MiB = 1 << 20
/** A ring's bytes less its first page, which opening the channel may have mapped already (it shares the lane header's page). */
const RING = MiB - 4096

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

afterEach(() => usePrefault(true))

describe('rings are mapped ahead of use', () => {
  test("a sender's first send maps its lane's whole ring; with prefaulting off, only the pages it wrote", async () => {
    const bus = await privateBus({ ringBytes: '1 MiB' })
    try {
      const on = bus.channel('on')
      const before = allSegmentsRss()
      expect(on.trySend({ n: 1 })).toBe(true)
      expect(allSegmentsRss() - before).toBeGreaterThanOrEqual(RING)
      usePrefault(false)
      const off = bus.channel('off')
      const before2 = allSegmentsRss()
      expect(off.trySend({ n: 1 })).toBe(true)
      expect(allSegmentsRss() - before2).toBeLessThan(64 * 1024)
    } finally {
      await bus.close()
    }
  })

  test('a receiver maps a new sender\'s lane in its own mapping once it parks (two buses in one process: two mappings)', async () => {
    const a = await namedBus(undefined, { ringBytes: '1 MiB' })
    const b = trackBus(await Bus.open(a.name!, { ringBytes: '1 MiB' }))
    try {
      const got: unknown[] = []
      a.channel('c').on('message', (v) => got.push(v))
      await new Promise((r) => setTimeout(r, 20)) // parked
      const before = allSegmentsRss()
      expect(b.channel('c').trySend('hello')).toBe(true)
      expect(allSegmentsRss() - before).toBeGreaterThanOrEqual(RING) // the sender's mapping
      await until('the message', () => got.length === 1)
      // The receiver parks again after delivering: then it maps the lane in its own mapping.
      await until('the receiver to map the lane', () => allSegmentsRss() - before >= 2 * RING)
      expect(got).toEqual(['hello'])
    } finally {
      await b.close()
      await a.close()
    }
  })

  test('a topic publisher maps its lane, and its subscribers\' mapping maps it once they park', async () => {
    const a = await namedBus(undefined, { ringBytes: '1 MiB' })
    const b = trackBus(await Bus.open(a.name!, { ringBytes: '1 MiB' }))
    try {
      a.topic('t', { ringBytes: '1 MiB' })
      const got: unknown[] = []
      await a.subscribe('t', (v) => got.push(v))
      await new Promise((r) => setTimeout(r, 20))
      const before = allSegmentsRss()
      expect(b.tryPublish('t', 1)).toBe(true)
      expect(allSegmentsRss() - before).toBeGreaterThanOrEqual(RING)
      await until('the message', () => got.length === 1)
      await until('the subscriber to map the lane', () => allSegmentsRss() - before >= 2 * RING)
    } finally {
      await b.close()
      await a.close()
    }
  })
})
