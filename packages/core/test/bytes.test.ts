import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Views } from '../src/index.js'
import { WordCopier } from '../src/bytes.js'
import { params } from './support/fc.js'

describe('Views: Buffers over part of a longer array', () => {
  test('each view is a genuine Buffer over exactly those bytes of the source, sharing its memory', () => {
    const ab = new ArrayBuffer(256)
    const src = new Uint8Array(ab, 16, 128) // not at the start of its buffer
    for (let i = 0; i < src.length; i++) src[i] = i
    const views = new Views()
    const v = views.of(src, 10, 42)
    expect(Buffer.isBuffer(v)).toBe(true)
    expect(v).toBeInstanceOf(Buffer)
    expect(Object.getPrototypeOf(v)).toBe(Buffer.prototype)
    expect([v.byteOffset, v.length, v.buffer]).toEqual([26, 32, ab])
    expect([...v]).toEqual(Array.from({ length: 32 }, (_, i) => i + 10))
    expect(v.toString('hex', 0, 2)).toBe('0a0b') // Buffer's own methods
    src[10] = 0xff
    expect(v[0]).toBe(0xff) // a view, not a copy
    // subarray of a view is a Buffer too (species), and empty views are fine
    expect(Buffer.isBuffer(v.subarray(1, 3))).toBe(true)
    expect(views.of(src, 5, 5).length).toBe(0)
  })

  test('a new source is looked up again; shared memory sources work', () => {
    const views = new Views()
    const a = Buffer.from([1, 2, 3, 4])
    const sab = new Uint8Array(new SharedArrayBuffer(8), 4, 4)
    sab.set([9, 8, 7, 6])
    expect([...views.of(a, 1, 3)]).toEqual([2, 3])
    expect([...views.of(sab, 1, 3)]).toEqual([8, 7])
    expect(views.of(sab, 0, 4).buffer).toBe(sab.buffer)
    expect([...views.of(a, 0, 4)]).toEqual([1, 2, 3, 4])
  })
})

describe('WordCopier: the write path\'s copy into a lane', () => {
  // Lengths around each path: word-sized tails, the eight-word turns, and
  // past LONG (256, set() through word views); aligned and unaligned ends;
  // sources sharing one buffer (Node's pool) and shared memory as the target.
  test('copies exactly src[start, end) to dst[at...] and nothing else, whatever the lengths and alignments', () => {
    const copier = new WordCopier()
    const pool = new ArrayBuffer(4096)
    const dstBuffer = new SharedArrayBuffer(1024)
    const dst = new Uint8Array(dstBuffer)
    const dstWords = new Uint32Array(dstBuffer)
    fc.assert(fc.property(
      fc.nat(64), fc.nat(320), fc.nat(8), fc.nat(320), fc.nat(400), fc.boolean(),
      (offset, length, start, atIn, span, shared) => {
        const src = shared ? new Uint8Array(new SharedArrayBuffer(offset + length + 8), offset, length + 8) : new Uint8Array(pool, offset, length + 8)
        for (let i = 0; i < src.length; i++) src[i] = (i * 37 + offset) & 0xff
        const end = Math.min(start + span, src.length)
        const at = Math.min(atIn, dst.length - (end - start))
        dst.fill(0xee)
        copier.copy(src, start, end, dst, dstWords, at)
        for (let i = 0; i < dst.length; i++) {
          const want = i >= at && i < at + (end - start) ? src[start + i - at]! : 0xee
          if (dst[i] !== want) throw new Error(`byte ${i}: ${dst[i]} instead of ${want}`)
        }
      },
    ), params(2000))
  })
})
