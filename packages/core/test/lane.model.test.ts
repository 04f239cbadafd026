/**
 * Model-based test of one lane against a plain array: every operation of the
 * producer and consumer, random sizes from 0 to the max, capacities from 64 B
 * to 64 KiB (so the ring wraps many times), positions starting just below
 * 2^32 (so the counters wrap too).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LaneConsumer, LaneProducer, MessageTooLarge, initializeLane, laneBytes, maxMessageLimit } from '../src/index.js'
import { params, payload } from './support/fc.js'

interface Rec { seq: number; length: number; type: number }

/** The model: committed records in order plus the exact positions the layout promises. */
class Model {
  queue: Rec[] = []
  staged: Rec[] = []
  /** Positions (u32) of the published write, staged end and consumer read. */
  write: number
  pending: number
  read: number
  /** End position of each queued record, parallel to queue. */
  ends: number[] = []
  stagedEnds: number[] = []
  seq = 0
  /** Bytes the write position moved in total (to count laps around the ring). */
  moved = 0
  constructor(readonly capacity: number, readonly max: number, start: number) {
    this.write = this.pending = this.read = start
  }
  /** Where a record of `length` would start, or -1 when it does not fit (mirrors the layout's rule). */
  place(length: number): number {
    const size = (8 + length + 7) & ~7
    const at = this.pending & (this.capacity - 1)
    const tail = this.capacity - at
    const need = size <= tail ? size : tail + size
    if (((this.pending - this.read) >>> 0) + need > this.capacity) return -1
    if (size > tail) this.pending = (this.pending + tail) >>> 0
    return this.pending
  }
  stage(length: number, type: number): Rec {
    const rec = { seq: this.seq++, length, type }
    this.pending = (this.pending + ((8 + length + 7) & ~7)) >>> 0
    this.staged.push(rec)
    this.stagedEnds.push(this.pending)
    return rec
  }
  publish(): void {
    this.queue.push(...this.staged)
    this.ends.push(...this.stagedEnds)
    this.staged = []
    this.stagedEnds = []
    this.moved += (this.pending - this.write) >>> 0
    this.write = this.pending
  }
}

interface Real { producer: LaneProducer; consumer: LaneConsumer }
type Cmd = fc.Command<Model, Real>

const sizeOf = (m: Model, r: number): number => (r < 0.1 ? 0 : r > 0.9 ? m.max : Math.floor(r * (m.max + 1)))

class TryWrite implements Cmd {
  constructor(readonly r: number, readonly type: number) {}
  check = () => true
  run(m: Model, real: Real): void {
    const length = sizeOf(m, this.r)
    const fits = m.place(length) >= 0
    const seq = m.seq
    expect(real.producer.tryWrite(payload(seq, length), this.type)).toBe(fits)
    if (fits) { m.stage(length, this.type); m.publish() }
  }
  toString = () => `tryWrite(${this.r.toFixed(2)}, ${this.type})`
}

class TooLarge implements Cmd {
  check = () => true
  run(m: Model, real: Real): void {
    const before = real.producer.stats()
    expect(() => real.producer.tryWrite(new Uint8Array(m.max + 1))).toThrow(MessageTooLarge)
    expect(() => real.producer.claim(m.max + 1)).toThrow(MessageTooLarge)
    expect(real.producer.stats()).toEqual(before)
  }
  toString = () => 'tooLarge'
}

class ClaimCommit implements Cmd {
  constructor(readonly r: number, readonly shrink: number, readonly abort: boolean, readonly publish: boolean) {}
  check = () => true
  run(m: Model, real: Real): void {
    const maxLength = sizeOf(m, this.r)
    const before = m.pending
    const at = m.place(maxLength)
    const offset = real.producer.claim(maxLength)
    expect(offset >= 0).toBe(at >= 0)
    if (offset < 0) { m.pending = before; return }
    expect(offset).toBe((at & (m.capacity - 1)) + 8)
    if (this.abort) { real.producer.abort(); return } // the padding (if any) stays staged, as in the model
    const length = Math.floor(maxLength * this.shrink)
    real.producer.data.set(payload(m.seq, length), offset)
    real.producer.commit(length, 7, this.publish)
    m.stage(length, 7)
    if (this.publish) m.publish()
  }
  toString = () => `claim(${this.r.toFixed(2)}, shrink ${this.shrink.toFixed(2)}, abort ${this.abort}, publish ${this.publish})`
}

class Publish implements Cmd {
  check = () => true
  run(m: Model, real: Real): void {
    real.producer.publish()
    m.publish()
  }
  toString = () => 'publish'
}

class Batch implements Cmd {
  constructor(readonly rs: number[]) {}
  check = () => true
  run(m: Model, real: Real): void {
    const list: Uint8Array[] = []
    let n = 0
    let stopped = false
    const seq0 = m.seq
    for (const r of this.rs) {
      const length = sizeOf(m, r)
      list.push(payload(seq0 + list.length, length))
      if (stopped) continue
      if (m.place(length) < 0) { stopped = true; continue }
      m.stage(length, 3)
      n++
    }
    expect(real.producer.tryWriteMany(list, 3)).toBe(n)
    m.publish()
  }
  toString = () => `batch(${this.rs.length})`
}

class Drain implements Cmd {
  constructor(readonly max: number) {}
  check = () => true
  run(m: Model, real: Real): void {
    const got: Array<{ bytes: Uint8Array; type: number }> = []
    const n = real.consumer.drain((data, start, end, type) => { got.push({ bytes: data.slice(start, end), type }) }, this.max)
    const expected = m.queue.splice(0, Math.min(this.max, m.queue.length))
    const ends = m.ends.splice(0, expected.length)
    expect(n).toBe(expected.length)
    for (let i = 0; i < n; i++) {
      expect(got[i]!.type).toBe(expected[i]!.type)
      expect(Buffer.from(got[i]!.bytes).equals(Buffer.from(payload(expected[i]!.seq, expected[i]!.length)))).toBe(true)
    }
    // the consumer stops after `max` records, or at the published write position
    if (n > 0) m.read = m.queue.length === 0 && n < this.max ? m.write : ends[n - 1]!
    else if (m.queue.length === 0) m.read = m.write
    expect(real.consumer.stats().usedBytes).toBe((m.write - m.read) >>> 0)
  }
  toString = () => `drain(${this.max})`
}

const commands = [
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 0xffff })).map(([r, t]) => new TryWrite(r, t)),
  fc.constant(new TooLarge()),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), fc.boolean())
    .map(([r, s, a, p]) => new ClaimCommit(r, s, a, p)),
  fc.constant(new Publish()),
  fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12, size: "max" }).map((rs) => new Batch(rs)),
  fc.integer({ min: 1, max: 20 }).map((n) => new Drain(n)),
]

describe('lane against an array model', () => {
  it('behaves like a FIFO of byte strings that never overwrites, across ring and counter wrap-around', () => {
    const setup = fc.record({
      log2: fc.integer({ min: 6, max: 16 }),
      maxKind: fc.constantFrom('default', 'limit', 'tiny'),
      backoff: fc.integer({ min: 0, max: 4096 }),
    })
    let laps = 0
    let counterWraps = 0
    fc.assert(
      fc.property(setup, fc.commands(commands, { maxCommands: 400, size: 'max' }), ({ log2, maxKind, backoff }, cmds) => {
        const capacity = 2 ** log2
        const max = maxKind === 'default' ? capacity / 8 : maxKind === 'limit' ? maxMessageLimit(capacity) : 8
        const start = (2 ** 32 - backoff * 8) >>> 0
        const buffer = new SharedArrayBuffer(laneBytes(capacity) + 64)
        initializeLane(buffer, 64, { capacity, maxMessageBytes: max, initialPosition: start })
        const real = { producer: new LaneProducer(buffer, 64), consumer: new LaneConsumer(buffer, 64) }
        const model = new Model(capacity, max, start)
        fc.modelRun(() => ({ model, real }), cmds)
        laps += model.moved / capacity
        if (model.write < start) counterWraps++
        // canaries: nothing outside the lane was touched
        expect(new Uint8Array(buffer, 0, 64).every((b) => b === 0)).toBe(true)
      }),
      params(300),
    )
    console.log(`lane model: ${laps.toFixed(0)} laps around the ring, ${counterWraps} runs wrapped the 32-bit positions`)
    expect(laps).toBeGreaterThan(300)
    expect(counterWraps).toBeGreaterThan(10)
  }, 60_000)
})
