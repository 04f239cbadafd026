/**
 * Schema channels (issue 14 part 3): values of a fixed schema are encoded by
 * generated code straight into the ring and decoded straight out of it.
 * Every field type round-trips through a real second process (the echo
 * fixture opens both channels WITHOUT a schema and so uses the stored one),
 * byte-exact, as a fast-check property; a mismatching schema is refused
 * with SchemaMismatch; bad values are refused before anything is written;
 * zeroCopy receivers get one reused flyweight view; a corrupt record is
 * reported, never delivered. Reproduce a failure with FC_SEED (and FC_PATH).
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Bus, defineSchema, type SchemaValue } from '@ipc/bus'
import { fixturePath, track } from '../../../test/support/children.js'
import { trackBus } from '../../../test/support/buses.js'
import { ALL, expectSameRecords, record, type All } from './schema-values.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 30)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']

describe('schema channels', () => {
  test('every field type round-trips through another process, exactly, in order', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const out = bus.channel<All>('to-child', { schema: ALL })
    const back = bus.channel<All>('to-parent', { schema: ALL })
    const child = track(bus.fork(fixturePath('bus', 'echo'), ['listen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    const got: All[] = []
    let wake: (() => void) | null = null
    back.on('message', (v) => { got.push(v); wake?.() })
    try {
      await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 50 }), async (values) => {
        got.length = 0
        await out.sendMany(values)
        while (got.length < values.length) await new Promise<void>((r) => { wake = r; setTimeout(r, 2000) })
        expectSameRecords(got, values)
      }), { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true })
    } finally {
      child.kill()
      await bus.close()
    }
  }, 120_000)

  test('opening with another schema is SchemaMismatch; without one takes the stored schema; bad declarations are refused', async () => {
    const bus = trackBus(await Bus.create())
    const ticks = bus.channel('ticks', { schema: { id: 'u32', px: 'f64' } })
    expect(() => bus.channel('ticks', { schema: { id: 'u32', px: 'f32' } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    expect(() => bus.channel('ticks', { schema: { version: 2, fields: { id: 'u32', px: 'f64' } } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    expect(bus.channel('ticks')).toBe(ticks)
    bus.channel('plain')
    expect(() => bus.channel('plain', { schema: { id: 'u32' } })).toThrow(/created without a schema/)
    // Another instance (its own mapping) sees the stored schema too.
    const other = trackBus(await Bus.attach(bus.address))
    expect(() => other.channel('ticks', { schema: { id: 'u16' } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    const received = new Promise((r) => other.channel('ticks').once('message', r))
    await ticks.send({ id: 3, px: 1.25 })
    expect(await received).toEqual({ id: 3, px: 1.25 })
    for (const bad of [{ id: 'u33' }, {}, { 'bad name': 'u8' }, { wrap: 'u8' }, { $$d: 'u8' }, { version: 0, fields: { a: 'u8' } }, 'u32']) {
      expect(() => bus.channel('x', { schema: bad as never })).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_INVALID_ARG_(VALUE|TYPE)$/) }))
    }
    expect(bus.channelNames()).not.toContain('x') // nothing created
    await other.close()
    await bus.close()
  })

  test('a value that does not match is Unserializable, naming the field, before anything is written', async () => {
    const bus = trackBus(await Bus.create())
    const ch = bus.channel('strict', { schema: { id: 'u32', kind: 'string', n: 'i8' } })
    const got: unknown[] = []
    ch.on('message', (v) => got.push(v))
    for (const [value, field] of [[{ id: -1, kind: '', n: 0 }, 'id'], [{ id: 1, kind: 5, n: 0 }, 'kind'], [{ id: 1, kind: '', n: 128 }, 'n'], [{ id: 1, kind: '' }, 'n'], [null, 'object'], [{ id: 1.5, kind: '', n: 0 }, 'id']] as const) {
      expect(() => ch.trySend(value as never)).toThrow(expect.objectContaining({ code: 'ERR_UNSERIALIZABLE', message: expect.stringContaining(field) }))
      await expect(ch.send(value as never)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    }
    await expect(ch.sendMany([{ id: 1, kind: 'a', n: 1 }, { id: 2, kind: 'b', n: 999 }])).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    await ch.send({ id: 7, kind: 'ok', n: -3 })
    await new Promise((r) => setTimeout(r, 50))
    expect(got).toEqual([{ id: 7, kind: 'ok', n: -3 }]) // nothing of the refused calls arrived
    await bus.close()
  })

  test('zeroCopy receivers get one reused view, valid during the call; toJSON copies it', async () => {
    const bus = trackBus(await Bus.create())
    const schema = { id: 'u32', kind: 'string', px: 'f64' } as const
    const views: unknown[] = []
    const copies: unknown[] = []
    bus.channel<SchemaValue<typeof schema>>('v', { schema, zeroCopy: true }).on('message', (v) => { views.push(v); copies.push({ id: v.id, kind: v.kind, px: v.px }) })
    const sender = trackBus(await Bus.attach(bus.address)).channel('v')
    await sender.sendMany([{ id: 1, kind: 'a', px: 0.5 }, { id: 2, kind: 'ünï', px: -1 }])
    await new Promise((r) => setTimeout(r, 50))
    expect(copies).toEqual([{ id: 1, kind: 'a', px: 0.5 }, { id: 2, kind: 'ünï', px: -1 }])
    expect(views[0]).toBe(views[1])
    await bus.close()
  })

  test('generated code: a truncated or overrunning record is CorruptSegment, never a value', () => {
    const s = defineSchema({ id: 'u32', name: 'string' })
    const bytes = s.encodeToBuffer({ id: 1, name: 'hello' })
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    expect(s.decode(bytes, view, 0, bytes.length)).toEqual({ id: 1, name: 'hello' })
    expect(() => s.decode(bytes, view, 0, 3)).toThrow(expect.objectContaining({ code: 'ERR_CORRUPT_SEGMENT' }))
    expect(() => s.decode(bytes, view, 0, bytes.length - 1)).toThrow(/runs past the record/)
    expect(() => s.newView().wrap(bytes, view, 0, bytes.length - 1).name).toThrow(/runs past the record/)
  })

  test('string fields decode to exactly their bytes, whatever was decoded before (the short-string cache never answers for other bytes)', () => {
    const s = defineSchema({ id: 'u32', name: 'string' })
    // A two-letter alphabet and lengths around the cache's limits make cache slots collide and strings differ in one byte.
    const word = fc.oneof(
      fc.stringMatching(/^[ab]{0,18}$/),
      fc.string({ unit: 'grapheme', maxLength: 10 }),
      fc.constantFrom('trade', 'quote', '\u00e9t\u00e9', '\ud83d\ude00', 'x'.repeat(16), 'x'.repeat(17)),
    )
    fc.assert(fc.property(fc.array(word, { minLength: 1, maxLength: 40 }), (names) => {
      for (const [i, name] of names.entries()) {
        const bytes = s.encodeToBuffer({ id: i, name })
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
        expect(s.decode(bytes, dv, 0, bytes.length)).toEqual({ id: i, name })
        const view = s.newView().wrap(bytes, dv, 0, bytes.length) as unknown as { name: string }
        expect(view.name).toBe(name)
        // The same record rewritten in place (a zeroCopy view's ring): the new bytes, not a remembered string.
        if (name.length > 0 && /^[ab]+$/.test(name)) {
          const at = bytes.length - 1
          bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61
          const changed = name.slice(0, -1) + String.fromCharCode(bytes[at]!)
          expect(view.name).toBe(changed)
          expect(s.decode(bytes, dv, 0, bytes.length)).toEqual({ id: i, name: changed })
        }
      }
    }), { numRuns: 300 })
  })
})
