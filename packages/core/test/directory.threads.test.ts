/**
 * Several threads race on one bus directory: registering the same channel
 * names (slots claimed by CAS, duplicates resolved) and saving msgpackr
 * shared structures (concurrent writers detected by the generation word).
 * Allowed outcome: every name registered exactly once, every peer told the
 * same slot for a name, exactly one peer "created" it, and every message any
 * peer encoded decodes to its value with a fresh codec reading the directory.
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Codec, Directory, directorySize, initializeDirectory } from '@ipc/core'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const url = fixturePath('core', 'directory-peer')

describe('bus directory under concurrent writers (worker_threads)', () => {
  it('registers each name once and agrees on shared structures', async () => {
    await fc.assert(fc.asyncProperty(fc.integer(), fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 24 }), async (seed, peers, count) => {
      const options = { channels: 32, members: 4, structureBytes: 64 * 1024 }
      const buffer = new SharedArrayBuffer(64 + directorySize(options))
      initializeDirectory(buffer, 64, { name: 'race', ...options })
      const names = Array.from({ length: count }, (_, i) => `ch-${i}`)
      const threads = Array.from({ length: peers }, (_, peer) => new Worker(url, { workerData: { buffer, peer, peers, seed, names, shapes: 40 } }))
      let results: Array<{ entries: Array<{ name: string; index: number; created: boolean }>; encoded: Array<{ value: unknown; bytes: Uint8Array }> }>
      try {
        results = (await Promise.all(threads.map((t) => Promise.race([once(t, 'message'), once(t, 'error').then(([e]) => { throw e })])))).map(([r]) => r)
      } finally {
        await Promise.all(threads.map((t) => t.terminate()))
      }
      const directory = new Directory(buffer, 64)
      const registered = directory.channels()
      expect(registered.map((c) => c.name).sort()).toEqual([...names].sort())
      for (const name of names) {
        const index = directory.findChannel(name)!.index
        const seen = results.map((r) => r.entries.find((e) => e.name === name)!)
        expect(seen.every((e) => e.index === index)).toBe(true)
        expect(seen.filter((e) => e.created)).toHaveLength(1)
      }
      const fresh = new Codec({ structures: directory.structures, maxSharedStructures: 200 })
      for (const { encoded } of results) for (const { value, bytes } of encoded) expect(fresh.decode(bytes)).toEqual(value)
    }), params(60))
  }, 110_000)
})
