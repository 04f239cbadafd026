import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { Codec, CorruptSegment, Directory, Unserializable, directorySize, initializeDirectory, type StructureStore } from '../src/index.js'
import { StructuresDoNotFit } from '../src/codec.js'
import { params } from './support/fc.js'

function directory(structureBytes = 16 * 1024): { buffer: SharedArrayBuffer; open: () => Directory } {
  const buffer = new SharedArrayBuffer(directorySize({ structureBytes }))
  initializeDirectory(buffer, 0, { name: 'codec-test', structureBytes })
  return { buffer, open: () => new Directory(buffer) }
}

/** Every kind of value the codec supports; Maps only where shared structures are on (see codec.ts). */
function values(withMap: boolean): fc.Arbitrary<unknown> {
  return fc.anything({
    withBigInt: true, withDate: true, withTypedArray: true, withMap, withSet: false, withBoxedValues: false,
    withNullPrototype: false, withObjectString: false, withSparseArray: false,
    key: fc.string().filter((k) => k !== '__proto__'),
    values: [
      fc.string({ unit: 'binary' }), fc.double().filter((d) => !Object.is(d, -0)), fc.integer(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }), fc.boolean(), fc.constant(null), fc.constant(undefined),
      fc.date({ noInvalidDate: true }), fc.uint8Array(), fc.float64Array(), fc.int32Array(),
    ],
  })
}

describe('codec', () => {
  it('round-trips strings, numbers, BigInt, Date, binary, typed arrays, nested arrays and objects', () => {
    const codec = new Codec()
    fc.assert(fc.property(values(false), (value) => {
      expect(codec.decode(codec.pack(value))).toEqual(value)
    }), params(1500))
  })

  it('round-trips the same values, and Maps, with shared structures', () => {
    const { open } = directory(256 * 1024)
    const writer = new Codec({ structures: open().structures, maxSharedStructures: 500 })
    const reader = new Codec({ structures: open().structures, maxSharedStructures: 500 })
    fc.assert(fc.property(values(true), (value) => {
      expect(reader.decode(writer.pack(value))).toEqual(value)
    }), params(1500))
  })

  it('keeps NaN, Infinity, the 64-bit BigInt edges and Buffers; -0 arrives as 0', () => {
    const codec = new Codec()
    for (const v of [NaN, Infinity, -Infinity, 2 ** 53, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, '\u{1F600}', new Date(-1), Buffer.from('bin')]) {
      expect(codec.decode(codec.pack(v))).toEqual(v)
    }
    expect(Object.is(codec.decode(codec.pack(-0)), 0)).toBe(true)
  })

  it('rejects functions, symbols and cyclic objects with Unserializable', () => {
    const codec = new Codec()
    const cyclic: unknown[] = []
    cyclic.push(cyclic)
    for (const bad of [function named() {}, Symbol('s'), cyclic, { deep: { f: () => 0 } }, [Symbol.iterator]]) {
      const error = (() => { try { codec.encode(bad); return null } catch (e) { return e } })()
      expect(error).toBeInstanceOf(Unserializable)
      expect((error as Unserializable).code).toBe('ERR_UNSERIALIZABLE')
    }
    expect(() => codec.encode(() => 1)).toThrow('cannot serialize function')
    expect(codec.decode(codec.pack('works after errors'))).toBe('works after errors')
  })

  it('raises CorruptSegment for bytes that are not msgpack', () => {
    const codec = new Codec()
    expect(() => codec.decode(new Uint8Array([0xc1]))).toThrow(CorruptSegment)
    expect(() => codec.decode(new Uint8Array([0x92, 0x01]))).toThrow(CorruptSegment)
    expect(() => codec.decode(new Uint8Array([1, 2]))).toThrow(CorruptSegment)
    expect(() => codec.decode(new Uint8Array(0))).toThrow(CorruptSegment)
  })

  it('agrees on shared structures between codecs whose saves race', () => {
    const { open } = directory()
    const a = new Codec({ structures: open().structures })
    const b = new Codec({ structures: open().structures })
    const m1 = a.pack({ id: 1, px: 2.5 })
    const m2 = b.pack({ name: 'b', qty: 3 }) // b loads a's structure, adds its own
    const m3 = a.pack({ other: true, z: [1] }) // a's save is stale: it must reload and retry
    const m4 = b.pack({ id: 2, px: 3.5 })
    const fresh = new Codec({ structures: open().structures })
    expect([m1, m2, m3, m4].map((m) => fresh.decode(m))).toEqual([{ id: 1, px: 2.5 }, { name: 'b', qty: 3 }, { other: true, z: [1] }, { id: 2, px: 3.5 }])
    expect(open().structures.load()).toHaveLength(3)
    expect(open().structures.generation).toBe(6)
  })

  it('makes small records much smaller with shared structures (and says by how much)', () => {
    const tick = { id: 123456, ts: 1_700_000_000_123, kind: 'trade', px: 101.25, qty: 300 }
    const plain = new Codec().pack(tick).length
    const shared = new Codec({ structures: directory().open().structures })
    shared.pack(tick)
    const withStructures = shared.pack(tick).length
    console.log(`{id, ts, kind, px, qty}: ${plain} bytes as a msgpack map, ${withStructures} bytes with a shared structure`)
    expect(withStructures).toBeLessThan(plain - 10)
  })

})

/** An object of `keys` keys with long names, distinct per shape; values differ per `round`. */
function wide(shape: number, keys = 100, round = 0): Record<string, unknown> {
  const value: Record<string, unknown> = {}
  for (let k = 0; k < keys; k++) value[`a_rather_long_property_name_number_${k}_of_object_shape_${shape}`] = k % 3 === 0 ? `v${round}.${k}` : round * 1000 + k
  return value
}

/** Bytes the region would need for `list` (what StructureRegion.save writes). */
const plain = new Packr({ useRecords: false, moreTypes: false })
function listBytes(list: readonly unknown[]): number {
  return plain.pack(Array.from(list)).length
}

describe('codec: a full shared-structure store', () => {
  it('never refuses a new shape: 100-key shapes round-trip between two processes\' codecs before and after the store filled', () => {
    const { open } = directory() // the bus's 16 KiB
    const a = new Codec({ structures: open().structures }) // two processes: each its own view of the directory
    const b = new Codec({ structures: open().structures })
    const shapes = 40
    for (let s = 0; s < shapes; s++) {
      const [writer, reader] = s % 2 === 0 ? [a, b] : [b, a]
      const value = wide(s)
      expect(reader.decode(writer.pack(value))).toEqual(value)
      expect(new Codec({ structures: open().structures }).decode(writer.pack(value))).toEqual(value)
    }
    const store = open().structures
    const shared = store.load()
    expect(shared.length).toBeGreaterThan(0) // the first shapes were shared...
    expect(shared.length).toBeLessThan(shapes) // ...the store filled up...
    expect(listBytes(shared)).toBeLessThanOrEqual(store.capacity)
    expect(listBytes([...shared, Object.keys(wide(shapes - 1))])).toBeGreaterThan(store.capacity) // ...and the last one did not fit
    // every shape again, from both sides: shared ones and self-describing ones
    for (let s = 0; s < shapes; s++) {
      for (const [writer, reader] of [[a, b], [b, a]] as const) {
        const value = wide(s, 100, 1)
        expect(reader.decode(writer.pack(value))).toEqual(value)
      }
    }
    expect(store.load()).toEqual(shared) // nothing was added or lost by the second round
    // a shared shape travels without its keys, a self-describing one with them
    const sharedSize = a.pack(wide(0, 100, 2)).length
    const ownSize = a.pack(wide(shapes - 1, 100, 2)).length
    expect(ownSize - sharedSize).toBeGreaterThan(listBytes([Object.keys(wide(shapes - 1))]) - 20)
  })

  it('still shares a small shape after a big one no longer fits', () => {
    const { open } = directory(2048)
    const a = new Codec({ structures: open().structures })
    const b = new Codec({ structures: open().structures })
    for (let s = 0; s < 4; s++) expect(b.decode(a.pack(wide(s, 20)))).toEqual(wide(s, 20))
    const before = open().structures.load().length
    expect(before).toBeLessThan(4)
    const small = { x: 1, y: [2], z: 'three' }
    expect(b.decode(a.pack(small))).toEqual(small)
    const after = open().structures.load()
    expect(after).toHaveLength(before + 1)
    expect(after.at(-1)).toEqual(['x', 'y', 'z'])
  })

  it('keeps codecs with stale views consistent while they race to fill a small store (property)', () => {
    const keyName = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), fc.constantFrom('k', 'é', '\u{1F600}', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(255), 'é'.repeat(128)))
      .filter((k) => k !== '__proto__')
    const shape = fc.uniqueArray(keyName, { minLength: 1, maxLength: 40 })
    // readers: which codecs decode the message at once (the others decode it at the end, so they pack from stale views meanwhile)
    const step = fc.record({ writer: fc.integer({ min: 0, max: 2 }), shape: fc.nat(), nested: fc.boolean(), readers: fc.integer({ min: 0, max: 7 }) })
    fc.assert(fc.property(fc.array(shape, { minLength: 1, maxLength: 12 }), fc.array(step, { minLength: 1, maxLength: 40 }), fc.integer({ min: 8, max: 128 }), (pool, steps, eighths) => {
      const { open } = directory(eighths * 8)
      const store = open().structures
      const codecs = [0, 1, 2].map(() => new Codec({ structures: open().structures }))
      const sent = new Set<number>()
      const later: Array<{ bytes: Buffer; value: unknown; readers: number }> = []
      let previous: unknown[] = []
      for (const [n, { writer, shape: pick, nested, readers }] of steps.entries()) {
        const index = pick % pool.length
        const keys = pool[index]!
        const flat = Object.fromEntries(keys.map((k, i) => [k, n * 100 + i]))
        const value = nested ? { outer: [flat, { ...flat }], again: flat } : flat
        sent.add(index)
        if (nested) sent.add(-1) // the { outer, again } shape
        const bytes = codecs[writer]!.pack(value)
        codecs.forEach((reader, r) => { if (readers & (1 << r)) expect(reader.decode(bytes)).toEqual(value) })
        expect(new Codec({ structures: open().structures }).decode(bytes)).toEqual(value)
        later.push({ bytes, value, readers })
        const list = store.load()
        expect(listBytes(list)).toBeLessThanOrEqual(store.capacity)
        expect(list.slice(0, previous.length)).toEqual(previous) // append-only: no id ever changes meaning
        previous = list
      }
      for (const { bytes, value, readers } of later) codecs.forEach((reader, r) => { if (!(readers & (1 << r))) expect(reader.decode(bytes)).toEqual(value) })
      // exact accounting: the codecs never had a list refused, and every shape left out did not fit
      for (const codec of codecs) expect((codec as unknown as { sharingClosed: boolean }).sharingClosed).toBe(false)
      const shared = new Set(previous.map((k) => JSON.stringify(k)))
      for (const index of sent) {
        const keys = index < 0 ? ['outer', 'again'] : Object.keys(Object.fromEntries(pool[index]!.map((k) => [k, 0]))) // in JS key order
        if (shared.has(JSON.stringify(keys))) continue
        expect(listBytes([...previous, keys])).toBeGreaterThan(store.capacity)
      }
    }), params(300))
  })

  it('works with two codecs over one StructureRegion object', () => {
    const region = directory(4096).open().structures
    const a = new Codec({ structures: region })
    const b = new Codec({ structures: region })
    const values = Array.from({ length: 12 }, (_, s) => wide(s, 15))
    const packed = values.map((v, s) => (s % 3 === 0 ? b : a).pack(v))
    const fresh = new Codec({ structures: directory().open().structures }) // another store: only self-describing records decode...
    expect(packed.map((m) => b.decode(m))).toEqual(values)
    expect(packed.map((m) => a.decode(m))).toEqual(values)
    expect(() => fresh.decode(packed[0]!)).toThrow() // ...shared ones need the store, so ids were really shared
    expect(region.load().length).toBeGreaterThan(1)
    expect(listBytes(region.load())).toBeLessThanOrEqual(region.capacity)
  })

  it('shares at most maxSharedStructures (31 at most) and carries any number of unshared shapes in one message', () => {
    const { open } = directory(256 * 1024)
    const many = new Codec({ structures: open().structures, maxSharedStructures: 500 })
    const none = new Codec({ structures: open().structures, maxSharedStructures: 0 })
    const value = Array.from({ length: 80 }, (_, s) => wide(s, 3)) // 80 shapes: 31 shared, 49 (> 32 own ids) self-describing
    const twice = [...value, ...value]
    expect(none.decode(many.pack(twice))).toEqual(twice)
    expect(open().structures.load()).toHaveLength(31)
    expect(many.decode(none.pack(twice))).toEqual(twice)
    expect(open().structures.load()).toHaveLength(31)
    const fresh = directory()
    const zero = new Codec({ structures: fresh.open().structures, maxSharedStructures: 0 })
    expect(new Codec({ structures: fresh.open().structures }).decode(zero.pack(twice))).toEqual(twice)
    expect(fresh.open().structures.load()).toHaveLength(0)
    expect(() => new Codec({ maxSharedStructures: -1 })).toThrow(RangeError)
  })

  it('sends a value even when the store refuses a list it said would fit, and stops sharing', () => {
    const saved: unknown[][] = []
    const liar: StructureStore = {
      load: () => saved.at(-1)?.slice() ?? [],
      save: (list) => {
        if (list.length > 1) throw new StructuresDoNotFit('shared structures need 99999 bytes, more than the 64 the bus directory keeps for them')
        saved.push(Array.from(list))
        return true
      },
      fits: () => true,
    }
    const codec = new Codec({ structures: liar })
    const reader = new Codec({ structures: liar })
    for (let s = 0; s < 4; s++) expect(reader.decode(codec.pack(wide(s, 5)))).toEqual(wide(s, 5))
    expect(saved).toHaveLength(1)
  })

  it('names no option that does not exist when a list does not fit', () => {
    const region = directory(64).open().structures
    const error = (() => { try { region.save([Object.keys(wide(0))]); return null } catch (e) { return e as Error } })()
    expect(error).toBeInstanceOf(StructuresDoNotFit)
    expect(error!.message).not.toMatch(/maxSharedStructures|structureBytes/)
  })
})
