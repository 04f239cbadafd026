import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Codec, CorruptSegment, Directory, Unserializable, directorySize, initializeDirectory } from '../src/index.js'
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
