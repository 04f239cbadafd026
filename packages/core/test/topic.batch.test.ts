/**
 * A subscriber's batch decoding (TopicSubscriber.drain with `values`, which
 * receive() uses; Codec.decodeBatch): a validated batch of msgpack records
 * is decoded in one msgpackr call. The property drives a block and a drop
 * subscriber over a small ring against a model, with bursts that lap the
 * drop one: both get exactly what the per-record path gave (every value in
 * order; an in-order subsequence whose gaps the drop counter counts). The
 * cases pin the edges: a record that does not decode mid-batch, a handler
 * that throws or halts, and self-describing structures, which must not
 * outlive their batch. FC_SEED replays a run (the seed is printed).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  Codec, CorruptSegment, Directory, TopicSegment, directorySize, initializeDirectory, initializeTopic, topicBytes, type Identity,
} from '../src/index.js'
import { fillGap } from '../src/codec.js'
import { params } from './support/fc.js'

const me = (pid: number): Identity => ({ pid, startTime: 7 })

function topic(capacity: number): TopicSegment {
  const buffer = new SharedArrayBuffer(topicBytes(1, 2, capacity))
  initializeTopic(buffer, 0, { lanes: 1, slots: 2, laneCapacity: capacity })
  return new TopicSegment(buffer)
}

/** Values msgpack carries unchanged (no -0, no undefined in arrays). */
const value = fc.oneof(
  fc.integer(), fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)), fc.string({ maxLength: 40 }), fc.boolean(), fc.constant(null),
  fc.record({ id: fc.nat(), kind: fc.constantFrom('trade', 'quote', 'cancel'), px: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)) }),
  fc.array(fc.integer(), { maxLength: 5 }),
)

describe('topic batch decoding', () => {
  it('gives block and drop subscribers what the per-record path gives, lapped or not', () => {
    const step = fc.oneof(
      fc.record({ publish: fc.array(value, { minLength: 1, maxLength: 40 }) }),
      fc.record({ drain: fc.constantFrom('block', 'drop'), max: fc.integer({ min: 1, max: 64 }) }),
    )
    fc.assert(fc.property(fc.constantFrom(512, 1024, 4096), fc.array(step, { maxLength: 60 }), (capacity, steps) => {
      const seg = topic(capacity)
      const pub = seg.claimLane(me(1))!
      const block = seg.subscribe(me(2), { policy: 'block' })!
      const drop = seg.subscribe(me(3), { policy: 'drop', lapHeadroom: 0 })!
      const sent: unknown[] = []
      const got = { block: [] as Array<[unknown, number]>, drop: [] as Array<[unknown, number]> }
      const receive = (name: 'block' | 'drop', max: number): void => {
        const sub = name === 'block' ? block : drop
        sub.receive((v, type, lane, seq) => {
          expect(type).toBe(0)
          expect(lane).toBe(0)
          got[name].push([v, seq])
        }, max)
      }
      for (const s of steps) {
        if ('publish' in s) {
          for (const v of s.publish) {
            // The block subscriber bounds the publisher: read it to make room, as a live one would.
            while (!pub.trySend(v)) receive('block', 256)
            sent.push(v)
          }
        } else {
          receive(s.drain, s.max)
        }
      }
      while (block.receive((v, _t, _l, seq) => got.block.push([v, seq])) > 0);
      while (drop.receive((v, _t, _l, seq) => got.drop.push([v, seq])) > 0);
      expect(got.block.map(([v]) => v), 'block: every value, in order').toEqual(sent)
      expect(got.block.map(([, seq]) => seq)).toEqual(sent.map((_, i) => i))
      let next = 0
      for (const [v, seq] of got.drop) {
        expect(seq >= next, 'drop: in order').toBe(true)
        expect(v).toEqual(sent[seq])
        next = seq + 1
      }
      expect(drop.takeLost(), 'drop: the counter is exactly what it skipped').toBe(sent.length - got.drop.length)
      expect(seg.subscriber(block.slot)!.dropped).toBe(0)
    }), params(300))
  })

  it('stops at a record that does not decode: the ones before are delivered, it is reported, the ones after come next', () => {
    const seg = topic(1024)
    const pub = seg.claimLane(me(1))!
    const sub = seg.subscribe(me(2), { policy: 'block' })!
    pub.trySendMany([1, 'two'])
    for (const bytes of [[0x01, 0x02], [0x92, 0x01]]) { // two values in one record; an array cut short
      const at = pub.claim(8)
      pub.data.set(bytes, at)
      pub.commit(bytes.length)
    }
    pub.trySendMany([{ five: 5 }, [6]])
    const got: unknown[] = []
    const take = (): number => sub.receive((v) => got.push(v))
    expect(take).toThrow(CorruptSegment)
    expect(got).toEqual([1, 'two'])
    expect(take).toThrow(CorruptSegment)
    expect(got).toEqual([1, 'two'])
    expect(take()).toBe(2)
    expect(got).toEqual([1, 'two', { five: 5 }, [6]])
    expect(seg.subscriber(sub.slot)!.messagesRead, 'a record that did not decode counts as read').toBe(6)
  })

  it('counts a value as read once handed over, even when the handler throws; halts where told', () => {
    const seg = topic(1024)
    const pub = seg.claimLane(me(1))!
    const sub = seg.subscribe(me(2), { policy: 'block' })!
    pub.trySendMany([0, 1, 2, 3, 4, 5])
    const got: unknown[] = []
    expect(() => sub.receive((v) => {
      got.push(v)
      if (v === 1) throw new Error('handler')
    })).toThrow('handler')
    expect(got).toEqual([0, 1])
    sub.receive((v) => {
      got.push(v)
      if (v === 3) sub.haltDrain()
    })
    expect(got).toEqual([0, 1, 2, 3])
    expect(sub.receive((v) => got.push(v))).toBe(2)
    expect(got).toEqual([0, 1, 2, 3, 4, 5])
  })

  it('decodes self-describing records in a batch and leaves no structure of theirs behind', () => {
    const buffer = new SharedArrayBuffer(directorySize({ structureBytes: 4096 }))
    initializeDirectory(buffer, 0, { name: 'batch-test', structureBytes: 4096 })
    const store = new Directory(buffer).structures
    const writer = new Codec({ structures: store, maxSharedStructures: 1 })
    const reader = new Codec({ structures: store, maxSharedStructures: 1 })
    // The first shape is shared; the others travel with their keys (own structures).
    const values = [{ a: 1 }, { b: 2, c: 3 }, { d: 'x' }, { a: 4 }, { b: 5, c: 6 }, { e: [7] }]
    const data = Buffer.alloc(1024)
    const offsets: number[] = []
    const lengths: number[] = []
    let off = 0
    for (const v of values) {
      const src = writer.encode(v)
      data.set(src.subarray(writer.encodedStart, writer.encodedEnd), off)
      offsets.push(off)
      lengths.push(writer.encodedEnd - writer.encodedStart)
      const next = (off + lengths[lengths.length - 1]! + 7) & ~7
      fillGap(data, off + lengths[lengths.length - 1]!, next)
      off = next
    }
    const got: unknown[] = []
    expect(reader.decodeBatch(data, offsets, lengths, values.length, (v) => got.push(v) > 0)).toBe(values.length)
    expect(got).toEqual(values)
    const structures = (reader as unknown as { packr: { structures: unknown[] & { sharedLength?: number } } }).packr.structures
    expect(structures.length, 'own structures dropped after the batch').toBe(structures.sharedLength ?? 0)
    // Each record still decodes alone (it carries its own keys).
    expect(reader.decode(data, offsets[4]!, offsets[4]! + lengths[4]!)).toEqual(values[4])
  })
})
