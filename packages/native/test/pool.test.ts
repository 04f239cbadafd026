/**
 * The large-Buffer pool (lib/pool.ts, src/BufferPool.cc). The reuse checks
 * need collections, so they run in a child with --expose-gc
 * (fixtures/pool-reuse.ts).
 */
import { describe, expect, test } from 'vitest'
import { POOL_MAX_BYTES, POOL_MIN_BYTES, allocPooled, poolStats } from '@ipc/native'
import { runFixture } from '../../../test/support/children.js'

describe('allocPooled', () => {
  test('gives a Buffer of exactly the asked size, its own ArrayBuffer, pooled only from 128 KiB to 16 MiB', () => {
    expect(POOL_MIN_BYTES).toBe(128 * 1024)
    expect(POOL_MAX_BYTES).toBe(16 * 1024 * 1024)
    const stats = poolStats()
    expect(stats).toMatchObject({ minBlock: POOL_MIN_BYTES, maxBlock: POOL_MAX_BYTES, maxPooled: 32 * 1024 * 1024 })
    for (const size of [0, 1, POOL_MIN_BYTES - 1, POOL_MIN_BYTES, 300_000, 1 << 20, POOL_MAX_BYTES, POOL_MAX_BYTES + 1]) {
      const b = allocPooled(size)
      expect(Buffer.isBuffer(b)).toBe(true)
      expect(b.length).toBe(size)
      b.fill(7)
      if (size >= POOL_MIN_BYTES && size <= POOL_MAX_BYTES) {
        expect(b.byteOffset).toBe(0)
        expect(b.buffer.byteLength).toBe(size) // never the block's capacity: nothing past the message is reachable
      }
    }
  })

  test('refuses sizes that are not non-negative integers', () => {
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => allocPooled(bad)).toThrow(RangeError)
  })

  test('a collected Buffer\'s block is reused; one still referenced never is', async () => {
    const out = await runFixture('native', 'pool-reuse', [], {}, { nodeArgs: ['--expose-gc'] })
    expect(out.stderr).toBe('')
    const r = JSON.parse(out.stdout)
    const MiB = 1 << 20
    expect(r.afterDrop.pooledBytes).toBeGreaterThanOrEqual(8 * MiB) // eight 1 MiB Buffers dropped: their blocks wait (1 MiB class)
    expect(r.afterDrop.freeBlocks).toBeGreaterThanOrEqual(8)
    expect(r.afterChurn.reused - r.afterDrop.reused).toBeGreaterThanOrEqual(40) // most of the fifty came from the pool
    expect(r.afterChurn.allocated - r.start.allocated).toBeLessThan(8 + 4 + 50) // and not all from malloc
    expect(r.intact).toBe(true) // the four held Buffers kept their bytes through all of it
    expect(r.afterChurn.pooledBytes).toBeLessThanOrEqual(r.afterChurn.maxPooled)
    expect(r.odd).toEqual({ length: MiB + 1, arrayBuffer: MiB + 1, offset: 0 }) // a 2 MiB block, a 1 MiB + 1 view
    expect(r.big).toEqual({ length: 17 * MiB, pooled: 0 })
    expect(r.small).toBe(1000)
  })
})
