/**
 * Arbitrary bytes written over headers, records and the directory. Allowed
 * outcomes, and nothing else: a valid result, CorruptSegment (something read
 * was impossible), or NotABus (the magic or version was hit). Every loop in
 * core is bounded, so a hang shows up as this file's timeout.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ChannelSegment, Codec, CorruptSegment, Directory, LaneConsumer, LaneProducer, NotABus, channelBytes, directorySize,
  initializeChannel, initializeDirectory, initializeLane, laneBytes,
} from '../src/index.js'
import { params } from './support/fc.js'

type Outcome = 'ok' | 'corrupt' | 'not-a-bus'
const outcomes: Record<Outcome, number> = { ok: 0, corrupt: 0, 'not-a-bus': 0 }

function attempt(fn: () => void): Outcome {
  try {
    fn()
    return note('ok')
  } catch (error) {
    if (error instanceof CorruptSegment) return note('corrupt')
    if (error instanceof NotABus) return note('not-a-bus')
    throw error
  }
}
function note(o: Outcome): Outcome {
  outcomes[o]++
  return o
}

/** Writes (offset, byte) pairs over the part of `buffer` that `where` names; offsets are fractions so any size works. */
function scribble(buffer: SharedArrayBuffer, where: string, header: number, edits: Array<[number, number]>): void {
  const bytes = new Uint8Array(buffer)
  const [from, to] = range(where, header, bytes.length)
  for (const [r, b] of edits) bytes[from + Math.floor(r * (to - from))] = b
}
const edits = (max: number) => fc.array(fc.tuple(fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: max })
/** Where to aim: header only, records only, or anywhere; mostly sparing the magic and version words. */
const target = fc.constantFrom('header', 'data', 'all', 'header', 'data', 'all', 'with-magic')
/** The byte range to scribble over for `where`, given the header size. */
function range(where: string, header: number, total: number): [number, number] {
  return where === 'header' ? [8, header] : where === 'data' ? [header, total] : where === 'all' ? [8, total] : [0, total]
}
const dead = (pid: number) => pid % 2 === 0

describe('fuzzed shared memory', () => {
  it('lane: yields valid records or CorruptSegment, never another error or a hang', () => {
    fc.assert(fc.property(fc.integer({ min: 6, max: 10 }), fc.array(fc.nat(40), { maxLength: 30 }), target, edits(12), (log2, sizes, where, scribbles) => {
      const capacity = 2 ** log2
      const buffer = new SharedArrayBuffer(laneBytes(capacity))
      initializeLane(buffer, 0, { capacity, maxMessageBytes: capacity / 2 - 8, initialPosition: 2 ** 32 - 256 })
      const producer = new LaneProducer(buffer)
      for (const n of sizes) {
        if (!producer.trySend(n % 3 === 0 ? { n, s: 'x'.repeat(n % 7) } : n)) producer.tryWrite(new Uint8Array(n % 8))
      }
      scribble(buffer, where, 192, scribbles)
      attempt(() => {
        const consumer = new LaneConsumer(buffer)
        for (let i = 0; i < 100 && consumer.hasData(); i++) consumer.receive(() => {}, 7)
      })
      attempt(() => {
        const p = new LaneProducer(buffer)
        for (let i = 0; i < 50; i++) p.tryWrite(new Uint8Array(Math.min(i % 9, p.maxMessageBytes)))
      })
    }), params(3000))
  })

  it('channel segment: owner words, receiver and lanes', () => {
    fc.assert(fc.property(target, edits(8), (where, scribbles) => {
      const buffer = new SharedArrayBuffer(channelBytes(3, 256))
      initializeChannel(buffer, 0, { lanes: 3, laneCapacity: 256 })
      const segment = new ChannelSegment(buffer)
      segment.setReceiver({ pid: 9, startTime: 1 })
      segment.claimLane({ pid: 2, startTime: 1 })!.trySend({ a: 1 })
      segment.claimLane({ pid: 3, startTime: 1 })!.tryWrite(new Uint8Array(30))
      scribble(buffer, where, 512, scribbles)
      attempt(() => {
        const s = new ChannelSegment(buffer)
        s.receiver()
        for (let i = 0; i < s.lanes; i++) s.laneOwner(i)
        s.claimLane({ pid: 5, startTime: 1 }, dead)
        for (let i = 0; i < 20 && s.hasData(); i++) s.drain(() => {}, 3)
      })
    }), params(2000))
  })

  it('directory: tables, names and shared structures', () => {
    fc.assert(fc.property(target, edits(10), (where, scribbles) => {
      const options = { channels: 4, members: 4, structureBytes: 1024 }
      const buffer = new SharedArrayBuffer(directorySize(options))
      initializeDirectory(buffer, 0, { name: 'fuzz', ...options })
      const dir = new Directory(buffer)
      dir.addChannel({ name: 'orders', segmentId: 7, kind: 1, capacity: 4096, lanes: 2, owner: { pid: 4, startTime: 1 } })
      dir.addMember({ pid: 5, startTime: 1, doorbellKind: 1, signal: 34 })
      const codec = new Codec({ structures: dir.structures })
      const packed = codec.pack({ id: 1, px: 2 })
      scribble(buffer, where, 192, scribbles)
      attempt(() => {
        const d = new Directory(buffer)
        d.channels()
        d.members()
        d.findChannel('orders')
        d.structures.load()
        d.gc(dead)
        new Codec({ structures: d.structures }).decode(packed)
      })
    }), params(2000))
  })

  it('saw every allowed outcome', () => {
    console.log('fuzz outcomes', outcomes)
    expect(outcomes.ok).toBeGreaterThan(0)
    expect(outcomes.corrupt).toBeGreaterThan(0)
    expect(outcomes['not-a-bus']).toBeGreaterThan(0)
  })
})
