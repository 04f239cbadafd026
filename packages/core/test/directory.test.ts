import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CorruptSegment, Directory, NotABus, directorySize, initializeDirectory } from '../src/index.js'
import { CHANNELS, CH_STATE, INITIALISED, MAGIC } from '../src/directory/layout.js'
import { params } from './support/fc.js'

function directory(options: { channels?: number; members?: number } = {}) {
  const buffer = new SharedArrayBuffer(directorySize(options))
  initializeDirectory(buffer, 0, { name: 'bus-é', ...options })
  return { buffer, dir: new Directory(buffer) }
}
const owner = { pid: 42, startTime: 7 }

describe('bus directory', () => {
  it('is usable only once its initialised word is written', () => {
    const buffer = new SharedArrayBuffer(directorySize())
    expect(Directory.isInitialised(buffer)).toBe(false)
    expect(() => new Directory(buffer)).toThrow(NotABus)
    initializeDirectory(buffer, 0, { name: 'b' })
    const words = new Int32Array(buffer)
    words[INITIALISED >> 2] = 0 // as seen by a process that opens it while it is being built
    expect(Directory.isInitialised(buffer)).toBe(false)
    expect(() => new Directory(buffer)).toThrow(/not initialised/)
    words[INITIALISED >> 2] = 1
    expect(new Directory(buffer).name).toBe('b')
    words[MAGIC >> 2] = 0x12345678
    expect(() => new Directory(buffer)).toThrow(/no bus directory: magic 0x12345678/)
  })

  it('maps channel names of up to 64 UTF-8 bytes to segments', () => {
    const { dir } = directory()
    const name = 'é'.repeat(32) // 64 bytes
    const { entry, created } = dir.addChannel({ name, segmentId: 9, kind: 1, capacity: 4096, lanes: 4, owner })
    expect(created).toBe(true)
    expect(dir.findChannel(name)).toEqual({ index: 0, name, segmentId: 9, kind: 1, capacity: 4096, lanes: 4, owner })
    expect(dir.addChannel({ name, segmentId: 10, kind: 1, capacity: 1, lanes: 1, owner: { pid: 43, startTime: 1 } })).toEqual({ entry, created: false })
    expect(() => dir.addChannel({ name: name + 'x', segmentId: 1, kind: 0, capacity: 1, lanes: 1, owner })).toThrow(/1..64 UTF-8 bytes/)
    dir.removeChannel(entry.index)
    expect(dir.findChannel(name)).toBeUndefined()
  })

  it('claims each slot once (CAS), reports a full table, and frees dead claims on gc', () => {
    const { dir } = directory({ channels: 3, members: 2 })
    for (let i = 0; i < 3; i++) dir.addChannel({ name: `c${i}`, segmentId: i, kind: 0, capacity: 64, lanes: 1, owner: { pid: 100 + i, startTime: 0 } })
    expect(() => dir.addChannel({ name: 'c3', segmentId: 3, kind: 0, capacity: 64, lanes: 1, owner })).toThrow(/all 3 channel slots/)
    expect(dir.channels().map((c) => c.name)).toEqual(['c0', 'c1', 'c2'])
    const m = dir.addMember({ pid: 5, startTime: 1, doorbellKind: 1, signal: 34 })
    dir.addMember({ pid: 6, startTime: 1, doorbellKind: 2, signal: 0 })
    expect(() => dir.addMember({ pid: 7, startTime: 1, doorbellKind: 0, signal: 0 })).toThrow(/member slots/)
    dir.heartbeat(m, 12345)
    expect(dir.readMember(m)).toEqual({ index: m, pid: 5, startTime: 1, doorbellKind: 1, signal: 34, heartbeat: 12345 })
    expect(dir.gc((pid) => pid !== 6)).toBe(1) // member 6 is dead; ready channels stay (the bus decides)
    expect(dir.members().map((x) => x.pid)).toEqual([5])
  })

  it('keeps names unique across any sequence of adds and removes', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.boolean()), { maxLength: 60 }), (ops) => {
      const { dir } = directory({ channels: 4 })
      for (const [name, remove] of ops) {
        const found = dir.findChannel(name)
        if (remove && found) dir.removeChannel(found.index)
        else if (!found) dir.addChannel({ name, segmentId: 1, kind: 0, capacity: 64, lanes: 1, owner })
        const names = dir.channels().map((c) => c.name)
        expect(new Set(names).size).toBe(names.length)
      }
    }), params(200))
  })

  it('raises CorruptSegment for an impossible slot state', () => {
    const { buffer, dir } = directory()
    new Int32Array(buffer)[(CHANNELS + CH_STATE) >> 2] = 9
    expect(() => dir.channels()).toThrow(CorruptSegment)
    expect(() => dir.channels()).toThrow(/directory channel 0 state: 9/)
  })
})
