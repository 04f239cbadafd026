import { describe, expect, it } from 'vitest'
import {
  Codec, CorruptSegment, LaneConsumer, LaneProducer, MessageTooLarge, NotABus, Unserializable, initializeLane, laneBytes,
} from '../src/index.js'
import { LANE_HEADER_BYTES, MAX_MESSAGE, READ, WRITE } from '../src/ring/layout.js'

function lane(capacity = 1024, options: { maxMessageBytes?: number; initialPosition?: number } = {}) {
  const buffer = new SharedArrayBuffer(laneBytes(capacity))
  initializeLane(buffer, 0, { capacity, ...options })
  return { buffer, producer: new LaneProducer(buffer), consumer: new LaneConsumer(buffer) }
}

function drainAll(consumer: LaneConsumer): Array<{ bytes: Buffer; type: number }> {
  const out: Array<{ bytes: Buffer; type: number }> = []
  consumer.drain((data, start, end, type) => { out.push({ bytes: Buffer.from(data.subarray(start, end)), type }) })
  return out
}

describe('lane', () => {
  it('delivers a written record with its type, in place', () => {
    const { producer, consumer } = lane()
    expect(producer.tryWrite(Buffer.from('hello'), 42)).toBe(true)
    expect(drainAll(consumer)).toEqual([{ bytes: Buffer.from('hello'), type: 42 }])
    expect(consumer.drain(() => { throw new Error('nothing to read') })).toBe(0)
  })

  it('returns false on a full ring and never overwrites', () => {
    const { producer, consumer } = lane(64, { maxMessageBytes: 24 })
    expect(producer.tryWrite(new Uint8Array(24).fill(1))).toBe(true) // 32 bytes
    expect(producer.tryWrite(new Uint8Array(24).fill(2))).toBe(true) // 32 bytes: full
    expect(producer.tryWrite(new Uint8Array(0))).toBe(false)
    expect(producer.stats().fullEvents).toBe(1)
    expect(drainAll(consumer).map((r) => r.bytes[0])).toEqual([1, 2])
    expect(producer.tryWrite(new Uint8Array(0))).toBe(true)
  })

  it('rejects a message larger than maxMessageBytes without writing a byte', () => {
    const { producer, buffer } = lane(1024)
    const before = Buffer.from(new Uint8Array(buffer)).toString('hex')
    expect(() => producer.tryWrite(new Uint8Array(129))).toThrow(MessageTooLarge)
    expect(() => producer.tryWrite(new Uint8Array(129))).toThrow('message of 129 bytes exceeds maxMessageBytes=128')
    expect(() => producer.trySend('x'.repeat(200))).toThrow(MessageTooLarge)
    expect(() => producer.tryWriteMany([new Uint8Array(1), new Uint8Array(500)])).toThrow(MessageTooLarge)
    expect(Buffer.from(new Uint8Array(buffer)).toString('hex')).toBe(before)
  })

  it('sends and receives msgpack values, and a batch publishes once', () => {
    const { producer, consumer } = lane(4096)
    expect(producer.trySend({ id: 1, kind: 'a' }, 5)).toBe(true)
    expect(producer.trySendMany([1, 'two', [3], null])).toBe(4)
    const got: unknown[] = []
    expect(consumer.receive((v, type) => got.push([v, type]))).toBe(5)
    expect(got).toEqual([[{ id: 1, kind: 'a' }, 5], [1, 0], ['two', 0], [[3], 0], [null, 0]])
    expect(producer.stats()).toMatchObject({ messagesWritten: 5, messagesRead: 5 })
  })

  it('rejects unserializable values and writes nothing, even in the middle of a batch', () => {
    const { producer, consumer } = lane(4096)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const bad of [() => 1, Symbol('s'), cyclic, { nested: [() => 2] }]) {
      expect(() => producer.trySend(bad)).toThrow(Unserializable)
      expect(() => producer.trySendMany([1, 2, bad, 3])).toThrow(Unserializable)
    }
    expect(consumer.hasData()).toBe(false)
    expect(producer.trySend('still fine')).toBe(true)
    expect(consumer.receive(() => {})).toBe(1)
  })

  it('writes in place with claim/commit, and abort leaves nothing', () => {
    const { producer, consumer } = lane()
    const at = producer.claim(100)
    producer.data.write('in place', at)
    producer.commit(8, 9)
    producer.claim(10)
    producer.abort()
    expect(drainAll(consumer)).toEqual([{ bytes: Buffer.from('in place'), type: 9 }])
    expect(() => producer.commit()).toThrow('without claim')
  })

  it('counts a record whose handler throws as delivered, and goes on with the next one', () => {
    const { producer, consumer } = lane()
    producer.tryWriteMany([Buffer.from('a'), Buffer.from('b')])
    expect(() => consumer.drain(() => { throw new Error('handler failed') })).toThrow('handler failed')
    expect(drainAll(consumer).map((r) => r.bytes.toString())).toEqual(['b'])
  })

  it('bounds the batch by maxRecords', () => {
    const { producer, consumer } = lane()
    for (let i = 0; i < 10; i++) producer.tryWrite(new Uint8Array([i]))
    expect(consumer.drain(() => {}, 3)).toBe(3)
    expect(consumer.drain(() => {}, 100)).toBe(7)
  })

  it('refuses memory that is not a lane', () => {
    const buffer = new SharedArrayBuffer(laneBytes(64))
    expect(() => new LaneConsumer(buffer)).toThrow(NotABus)
    initializeLane(buffer, 0, { capacity: 64 })
    const words = new Int32Array(buffer)
    words[MAX_MESSAGE >> 2] = 1000
    expect(() => new LaneProducer(buffer)).toThrow(CorruptSegment)
    initializeLane(buffer, 0, { capacity: 64 })
    words[WRITE >> 2] = 1000
    expect(() => new LaneConsumer(buffer)).toThrow(/lane.write/)
  })

  it('raises CorruptSegment for an impossible record header, naming it', () => {
    const { producer, consumer, buffer } = lane(256)
    producer.tryWrite(new Uint8Array(16))
    new Uint32Array(buffer, LANE_HEADER_BYTES)[0] = 200 // length beyond the 24 committed bytes
    expect(() => consumer.drain(() => {})).toThrow(/corrupt shared memory at lane record length at 0: 200/)
  })

  it('detects a consumer position the producer cannot have allowed', () => {
    const { producer, buffer } = lane(256)
    new Int32Array(buffer)[READ >> 2] = 4096
    expect(() => { for (let i = 0; i < 100; i++) producer.tryWrite(new Uint8Array(30)) }).toThrow(CorruptSegment)
  })

  it('uses the codec it was given', () => {
    const codec = new Codec()
    const buffer = new SharedArrayBuffer(laneBytes(1024))
    initializeLane(buffer, 0, { capacity: 1024 })
    new LaneProducer(buffer, 0, codec).trySend(new Date(5))
    const got: unknown[] = []
    new LaneConsumer(buffer, 0, codec).receive((v) => got.push(v))
    expect(got).toEqual([new Date(5)])
  })

  it('validates options at the boundary', () => {
    const buffer = new SharedArrayBuffer(4096)
    expect(() => initializeLane(buffer, 0, { capacity: 100 })).toThrow(RangeError)
    expect(() => initializeLane(buffer, 0, { capacity: 1024, maxMessageBytes: 600 })).toThrow(/maxMessageBytes/)
    expect(() => initializeLane(buffer, 0, { capacity: 1024, initialPosition: 3 })).toThrow(/initialPosition/)
    expect(() => initializeLane(buffer, 4, { capacity: 64 })).toThrow(/byteOffset/)
    expect(() => initializeLane(buffer, 0, { capacity: 8192 })).toThrow(/needs/)
    initializeLane(buffer, 0, { capacity: 1024 })
    expect(() => new LaneProducer(buffer).tryWrite(new Uint8Array(1), 70000)).toThrow(/type/)
  })
})

describe('lane decoding in place', () => {
  for (const Memory of [SharedArrayBuffer, ArrayBuffer]) {
    it(`decodes strings and binary at any ring offset over a ${Memory.name}, and binary outlives the ring bytes`, () => {
      const buffer = new Memory(laneBytes(4096))
      initializeLane(buffer, 0, { capacity: 4096 })
      const producer = new LaneProducer(buffer)
      const consumer = new LaneConsumer(buffer)
      const got: unknown[] = []
      for (let round = 0; round < 50; round++) {
        const value = { kind: 'trade-' + 'x'.repeat(round), text: 'é'.repeat(round * 3), bin: Buffer.from([round, 1, 2]) }
        expect(producer.trySend(value)).toBe(true)
        consumer.receive((v) => got.push(v))
        expect(got.at(-1)).toEqual(value)
      }
      expect((got[0] as { bin: Buffer }).bin).toEqual(Buffer.from([0, 1, 2])) // not a view of reused ring bytes
    })
  }
})
