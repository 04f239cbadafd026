// Every schema field type, and a fast-check arbitrary of values for it:
// shared by schema.test.ts (channels) and schema-topics.test.ts (topics).
import fc from 'fast-check'
import { expect } from 'vitest'
import type { SchemaValue } from '@ipc/bus'

export const ALL = { u8: 'u8', i8: 'i8', u16: 'u16', i16: 'i16', u32: 'u32', i32: 'i32', f32: 'f32', f64: 'f64', i64: 'i64', u64: 'u64', ok: 'bool', s: 'string', t: 'string' } as const
export type All = SchemaValue<typeof ALL>

export const record: fc.Arbitrary<All> = fc.record({
  u8: fc.integer({ min: 0, max: 255 }),
  i8: fc.integer({ min: -128, max: 127 }),
  u16: fc.integer({ min: 0, max: 0xffff }),
  i16: fc.integer({ min: -0x8000, max: 0x7fff }),
  u32: fc.integer({ min: 0, max: 0xffffffff }),
  i32: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  f32: fc.float({ noNaN: true }).map(Math.fround),
  f64: fc.double(),
  i64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  u64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  ok: fc.boolean(),
  s: fc.string({ unit: 'grapheme', maxLength: 40 }),
  t: fc.oneof(fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 300 })),
})

/** Each value arrived field for field (Object.is, so -0 and NaN count), in one fixed shape with the declared key order. */
export function expectSameRecords(got: readonly All[], want: readonly All[]): void {
  expect(got.length).toBe(want.length)
  got.forEach((v, i) => {
    const w = want[i]!
    for (const k of Object.keys(ALL) as Array<keyof All>) expect(Object.is(v[k], w[k]) || v[k] === w[k], `record ${i} field ${k}: ${String(v[k])} != ${String(w[k])}`).toBe(true)
    expect(Object.keys(v)).toEqual(Object.keys(ALL))
  })
}
