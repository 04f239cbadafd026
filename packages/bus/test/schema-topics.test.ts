/**
 * Schema topics: bus.topic(name, { schema }) / subscribe(..., { schema })
 * store a fixed record schema in the topic segment; publishers encode with
 * the generated code straight into their broadcast lane and subscribers
 * decode with it. Every field type round-trips through a subscriber in a
 * forked process that opened the topic WITHOUT a schema (it takes the
 * stored one; fixtures/schema-topic-echo.ts), as a fast-check property over
 * publish / tryPublish / publishMany; a different schema is SchemaMismatch;
 * bad values are refused before anything is written; values larger than a
 * record travel as fragments; zeroCopy handlers get one reused view; drop
 * subscribers keep up, or when lapped count exactly what they lost.
 * Reproduce a failure with FC_SEED (and FC_PATH).
 */
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, test, vi } from 'vitest'
import { Bus, type SchemaValue, type SchemaView } from '@ipc/bus'
import { fixturePath, track } from '../../../test/support/children.js'
import { privateBus, trackBus } from '../../../test/support/buses.js'
import { ALL, expectSameRecords, record, type All } from './schema-values.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 25)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = (what: () => boolean, timeout = 10_000): Promise<unknown> => vi.waitUntil(what, { timeout, interval: 5 })

const TICK = { id: 'u32', ts: 'f64', kind: 'string', px: 'f64', qty: 'u32' } as const
type Tick = SchemaValue<typeof TICK>
const tick = (i: number): Tick => ({ id: i, ts: i * 0.5, kind: i % 3 === 0 ? 'trade' : 'quote-ü', px: 100 + i / 8, qty: (i * 7) % 1000 })

/** A subscriber process (fixtures/schema-topic-echo.ts) on `topic` of `bus`, sending what it gets back on 'to-parent'; resolves once subscribed. */
async function echo(bus: Bus, topic: string, policy: 'block' | 'drop' = 'block') {
  const child = track(bus.fork(fixturePath('bus', 'schema-topic-echo'), [topic, policy], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  expect((await once(child, 'message'))[0]).toBe('subscribed')
  return child
}

describe('schema topics', () => {
  test('every field type round-trips, exactly and in order, to a subscriber in another process that opened the topic without a schema', async () => {
    const bus = await privateBus({ ringBytes: '64 KiB' })
    bus.topic('all', { schema: ALL })
    const back = bus.channel<All>('to-parent', { schema: ALL })
    const got: All[] = []
    back.on('message', (v) => got.push(v))
    const child = await echo(bus, 'all')
    try {
      await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 50 }), fc.constantFrom('many', 'one', 'try'), async (values, mode) => {
        got.length = 0
        if (mode === 'many') expect(await bus.publishMany('all', values)).toBe(1)
        else if (mode === 'one') for (const v of values) expect(await bus.publish('all', v)).toBe(1)
        else for (const v of values) if (!bus.tryPublish('all', v)) await bus.publish('all', v)
        await until(() => got.length >= values.length)
        expectSameRecords(got, values)
      }), { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true })
    } finally {
      child.kill()
    }
  }, 120_000)

  test('another schema is SchemaMismatch; opening without one takes the stored schema; bad declarations are refused', async () => {
    const bus = await privateBus()
    bus.topic('ticks', { schema: { id: 'u32', px: 'f64' } })
    expect(() => bus.topic('ticks', { schema: { id: 'u32', px: 'f32' } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH', message: expect.stringContaining("topic 'ticks' was created with schema") }))
    expect(() => bus.subscribe('ticks', () => {}, { schema: { version: 2, fields: { id: 'u32', px: 'f64' } } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    bus.topic('ticks', { schema: { id: 'u32', px: 'f64' } }) // the same schema again: fine
    bus.topic('ticks') // none asked for: fine
    await bus.publish('plain', 'msgpack')
    expect(() => bus.subscribe('plain', () => {}, { schema: { id: 'u32' } })).toThrow(/topic 'plain' was created without a schema/)
    expect(() => bus.topic('plain', { schema: { id: 'u32' } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    // Another instance (its own mapping) sees the stored schema, and uses it when it asks for none.
    const other = trackBus(await Bus.attach(bus.address))
    expect(() => other.subscribe('ticks', () => {}, { schema: { id: 'u16', px: 'f64' } })).toThrow(expect.objectContaining({ code: 'ERR_SCHEMA_MISMATCH' }))
    const got: unknown[] = []
    const sub = other.subscribe('ticks', (v) => got.push(v))
    expect(await bus.publish('ticks', { id: 3, px: 1.25 })).toBe(1) // the refused subscriptions hold no slot
    await until(() => got.length === 1)
    expect(got).toEqual([{ id: 3, px: 1.25 }])
    expect(() => other.tryPublish('ticks', { id: 'x', px: 1 })).toThrow(expect.objectContaining({ code: 'ERR_UNSERIALIZABLE' })) // its publisher encodes with the stored schema
    expect(await other.publish('ticks', { id: 4, px: -2 })).toBe(1)
    await until(() => got.length === 2)
    expect(got[1]).toEqual({ id: 4, px: -2 })
    sub.unsubscribe()
    for (const bad of [{ id: 'u33' }, {}, { 'bad name': 'u8' }, { wrap: 'u8' }, { version: 0, fields: { a: 'u8' } }, 'u32']) {
      const code = expect.objectContaining({ code: expect.stringMatching(/^ERR_INVALID_ARG_(VALUE|TYPE)$/) })
      expect(() => bus.topic('x', { schema: bad as never })).toThrow(code)
      expect(() => bus.subscribe('x', () => {}, { schema: bad as never })).toThrow(code)
    }
    expect(() => bus.topic('x', { zeroCopy: true } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' })) // a subscribe option
    expect(() => bus.subscribe('x', () => {}, { zeroCopy: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(bus.topicNames()).not.toContain('x') // nothing created
  })

  test('a value that does not match is Unserializable, naming the field, before anything is written', async () => {
    const bus = await privateBus()
    bus.topic('strict', { schema: { id: 'u32', kind: 'string', n: 'i8' } })
    const got: unknown[] = []
    bus.subscribe('strict', (v) => got.push(v))
    const bad = [[{ id: -1, kind: '', n: 0 }, 'id'], [{ id: 1, kind: 5, n: 0 }, 'kind'], [{ id: 1, kind: '', n: 128 }, 'n'], [{ id: 1, kind: '' }, 'n'], [null, 'object'], [{ id: 1.5, kind: '', n: 0 }, 'id'], [{ id: 1, kind: 'ü'.repeat(40_000), n: 0 }, "'kind'"]] as const
    for (const [value, field] of bad) {
      expect(() => bus.tryPublish('strict', value)).toThrow(expect.objectContaining({ code: 'ERR_UNSERIALIZABLE', message: expect.stringContaining(field) }))
      await expect(bus.publish('strict', value)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE', message: expect.stringContaining(field) })
    }
    await expect(bus.publishMany('strict', [{ id: 1, kind: 'a', n: 1 }, { id: 2, kind: 'b', n: 999 }])).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE', message: expect.stringContaining("'n'") })
    expect(bus.stats().pubsub!.published).toBe(0)
    await bus.publish('strict', { id: 7, kind: 'ok', n: -3 })
    await sleep(50)
    expect(got).toEqual([{ id: 7, kind: 'ok', n: -3 }]) // nothing of the refused calls arrived
  })

  test('a value larger than a record travels as fragments, in order among small ones, to plain and zeroCopy subscribers', async () => {
    const bus = await privateBus({ ringBytes: '4 KiB' }) // a record: at most 1 KiB - 16
    const schema = { id: 'u32', body: 'string', tail: 'f64' } as const
    type Big = SchemaValue<typeof schema>
    bus.topic('big', { schema })
    const other = trackBus(await Bus.attach(bus.address))
    const got: Big[] = []
    other.subscribe<Big>('big', (v) => got.push(v))
    const copies: unknown[] = []
    other.subscribe<Big>('big', (v) => copies.push((v as unknown as SchemaView).toJSON()), { zeroCopy: true })
    const values: Big[] = [
      { id: 1, body: 'ü'.repeat(30_000) + 'end', tail: 0.25 }, // 60 KB: 15 rings' worth
      { id: 2, body: 'small', tail: 1 },
      { id: 3, body: 'x'.repeat(5000), tail: -1 },
      { id: 4, body: '', tail: 2 },
    ]
    expect(bus.tryPublish('big', values[0])).toBe(false) // larger than a record: only publish() writes it, as room appears
    expect(await bus.publish('big', values[0])).toBe(2)
    expect(await bus.publishMany('big', values.slice(1))).toBe(2)
    await until(() => got.length === 4 && copies.length === 4)
    expect(got).toEqual(values)
    expect(copies).toEqual(values)
    expect(() => bus.tryPublish('big', { id: 5, body: 'ü'.repeat(40_000), tail: 0 })).toThrow(expect.objectContaining({ code: 'ERR_UNSERIALIZABLE', message: expect.stringContaining('body') })) // over a string's 65535 bytes
  }, 30_000)

  test('zeroCopy handlers get one reused view, valid during the call; other handlers and iterators get objects', async () => {
    const bus = await privateBus()
    bus.topic('v', { schema: TICK })
    const views: Tick[] = []
    const seen: Tick[] = []
    bus.subscribe<Tick>('v', (v) => { views.push(v); seen.push({ id: v.id, ts: v.ts, kind: v.kind, px: v.px, qty: v.qty }) }, { zeroCopy: true })
    const objects: Tick[] = []
    bus.subscribe<Tick>('v', (v) => objects.push(v))
    const iterated = bus.subscribe<Tick>('v', { zeroCopy: true })[Symbol.asyncIterator]()
    const publisher = trackBus(await Bus.attach(bus.address))
    const values = [tick(1), tick(2), tick(3)]
    expect(await publisher.publishMany('v', values)).toBe(3)
    await until(() => seen.length === 3 && objects.length === 3)
    expect(seen).toEqual(values)
    expect(views[0]).toBe(views[1])
    expect(views[1]).toBe(views[2])
    expect(objects).toEqual(values)
    expect(objects[0]).not.toBe(objects[1])
    const a = await iterated.next()
    const b = await iterated.next()
    expect([a.value, b.value]).toEqual(values.slice(0, 2))
    expect(a.value).not.toBe(b.value)
    await iterated.return?.()
  })

  test('drop subscribers: one in another process keeps up and loses nothing; a lapped one counts exactly what it missed and never gets a torn value', async () => {
    const bus = await privateBus({ ringBytes: '64 KiB' })
    bus.topic('fast', { schema: TICK })
    const back = bus.channel<Tick>('to-parent', { schema: TICK })
    const echoed: Tick[] = []
    back.on('message', (v) => echoed.push(v))
    const child = await echo(bus, 'fast', 'drop')
    const got: Tick[] = []
    const lapped = bus.subscribe<Tick>('fast', (v) => got.push(v), { policy: 'drop' })
    try {
      const first = Array.from({ length: 200 }, (_, i) => tick(i))
      expect(await bus.publishMany('fast', first)).toBe(2)
      await until(() => echoed.length === 200 && got.length === 200)
      expect(echoed).toEqual(first)
      // Now a synchronous flood: this process's subscriber cannot run until it ends, so it is lapped.
      const N = 20_000
      for (let i = 200; i < N; i++) expect(bus.tryPublish('fast', tick(i))).toBe(true)
      await until(() => got.length + lapped.dropped === N, 20_000)
      expect(lapped.dropped).toBeGreaterThan(0)
      expect(got.at(-1)).toEqual(tick(N - 1))
      for (let k = 1; k < got.length; k++) {
        expect(got[k]!.id).toBeGreaterThan(got[k - 1]!.id)
        expect(got[k]).toEqual(tick(got[k]!.id)) // intact
      }
    } finally {
      child.kill()
    }
  }, 60_000)
})
