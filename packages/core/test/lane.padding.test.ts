/**
 * The consumer validates padding records. A padding record fills the lane
 * from its offset up to the ring end, so two things must hold before the
 * consumer skips it: its length is exactly the tail minus the record header,
 * and the whole tail is committed (tail <= write - read). Anything else is
 * corrupt memory: CorruptSegment, and no record handed over (a consumer that
 * skipped a bad padding record would read past what was committed, or hand
 * over bytes of the wrong record).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CorruptSegment, FLAG_PADDING, LaneConsumer, LaneProducer, RECORD_HEADER, initializeLane, laneBytes } from '../src/index.js'
import { LANE_HEADER_BYTES, WRITE } from '../src/ring/layout.js'
import { params } from './support/fc.js'

const INVARIANT = 'a padding record must reach exactly to the ring end (length = tail - 8) and lie within the committed bytes, else CorruptSegment'

/**
 * A lane whose producer is `tail` bytes before the ring end, with one record
 * too large for the tail written: a padding record at `at`, the record at 0.
 */
function padded(capacity: number, tail: number, base: number) {
  const buffer = new SharedArrayBuffer(laneBytes(capacity))
  const at = capacity - tail
  const start = (base + at) >>> 0
  initializeLane(buffer, 0, { capacity, maxMessageBytes: capacity / 2 - RECORD_HEADER, initialPosition: start })
  const producer = new LaneProducer(buffer)
  const payload = new Uint8Array(tail - RECORD_HEADER + 1).fill(7) // one byte too many for the tail
  expect(producer.tryWrite(payload, 3)).toBe(true)
  const records = new Uint32Array(buffer, LANE_HEADER_BYTES, capacity / 4)
  expect([records[at >> 2], records[(at >> 2) + 1]], 'the producer wrote a padding record').toEqual([tail - RECORD_HEADER, FLAG_PADDING << 16])
  return { buffer, records, at, start, payload }
}

/** What one drain did: 'CorruptSegment' (naming a padding record), or what it handed over / threw instead. */
function outcome(buffer: SharedArrayBuffer, maxRecords = 4): string {
  const consumer = new LaneConsumer(buffer)
  let handed = 0
  try {
    const n = consumer.drain(() => { handed++ }, maxRecords)
    return `drain returned ${n} after handing over ${handed} record(s)`
  } catch (error) {
    if (!(error instanceof CorruptSegment)) return `threw ${String(error)}`
    if (handed > 0) return `CorruptSegment after handing over ${handed} record(s)`
    return /padding/.test(error.message) ? 'CorruptSegment' : `CorruptSegment not naming the padding record: ${error.message}`
  }
}

describe('lane padding records', () => {
  it('are skipped when valid', () => {
    const { buffer, payload } = padded(256, 40, 0)
    const got: number[] = []
    new LaneConsumer(buffer).drain((_d, start, end, type) => got.push(end - start, type))
    expect(got).toEqual([payload.length, 3])
  })

  it('with a length that does not reach the ring end: CorruptSegment', () => {
    for (const bad of [0, 8, 24, 31, 33, 40, 0xffff_fff8]) {
      const { buffer, records, at } = padded(256, 40, 0)
      records[at >> 2] = bad
      expect(outcome(buffer), `padding length ${bad} at tail 40: ${INVARIANT}`).toBe('CorruptSegment')
    }
  })

  it('not wholly committed (the write position inside it): CorruptSegment', () => {
    const { buffer, start } = padded(256, 40, 0)
    for (const committed of [8, 16, 32]) {
      Atomics.store(new Int32Array(buffer), WRITE >> 2, (start + committed) | 0)
      expect(outcome(buffer), `padding with tail 40 but ${committed} bytes committed: ${INVARIANT}`).toBe('CorruptSegment')
    }
  })

  it('any corrupt padding length or short commit, anywhere, across the 2^32 wrap: CorruptSegment', () => {
    const shape = fc.integer({ min: 6, max: 12 }).chain((log2) => fc.record({
      capacity: fc.constant(2 ** log2),
      tail: fc.integer({ min: 1, max: 2 ** (log2 - 4) - 1 }).map((k) => 8 * k), // the record after it fits: tail < capacity / 2
      base: fc.constantFrom(0, 2 ** 32 - 2 ** log2, 2 ** 32 - 2 ** (log2 + 1), 2 ** 20),
      corruption: fc.oneof(
        fc.record({ kind: fc.constant('length' as const), value: fc.oneof(fc.nat(2 ** 12), fc.nat(0xffff_ffff)) }),
        fc.record({ kind: fc.constant('commit' as const), value: fc.nat() }),
      ),
    }))
    fc.assert(fc.property(shape, ({ capacity, tail, base, corruption }) => {
      const { buffer, records, at, start } = padded(capacity, tail, base)
      if (corruption.kind === 'length') {
        fc.pre(corruption.value !== tail - RECORD_HEADER)
        records[at >> 2] = corruption.value
      } else {
        const committed = 8 * (1 + (corruption.value % (tail / 8))) // 8 .. tail, never past the padding: short unless = tail
        fc.pre(committed < tail)
        Atomics.store(new Int32Array(buffer), WRITE >> 2, (start + committed) | 0)
      }
      expect(outcome(buffer), `${corruption.kind} ${corruption.value}, tail ${tail} of ${capacity}: ${INVARIANT}`).toBe('CorruptSegment')
    }), params(500))
  })
})
