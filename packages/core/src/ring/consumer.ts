/**
 * The consuming side of a lane (see ./lane.ts): the drain loop. It reads
 * WRITE once per batch, validates every record header before use, hands
 * payloads over in place, publishes READ, and reports when that freed room
 * for a producer waiting for it.
 */
import { CorruptSegment } from '../errors.js'
import { defaultCodec, type Codec } from '../codec.js'
import { BYTES_READ, FLAG_PADDING, MESSAGES_READ, READ, RECORD_HEADER, ROOM_WANTED, WRITE, recordBytes } from './layout.js'
import { LaneBase, type RecordHandler, type ValueHandler } from './lane.js'

const WRITE_I = WRITE >> 2
const READ_I = READ >> 2
const ROOM_I = ROOM_WANTED >> 2

/**
 * The consuming side. drain() reads the write position once per batch,
 * validates every header before use, hands each payload over in place and
 * then publishes the new read position.
 */
export class LaneConsumer extends LaneBase {
  private read: number
  /** The read position past the record being handed over (see consume()). */
  private current = 0
  private readonly codec: Codec
  private onValue: ValueHandler | null = null
  private roomWanted = false
  /** Bound once so that receive() allocates no closure per call. */
  private readonly deliver: RecordHandler

  /** A flag the owner may set from the record handler to end the drain before the next record (see ChannelSegment.haltDrain). */
  private readonly halt: { halted: boolean }

  constructor(buffer: ArrayBufferLike, byteOffset = 0, codec: Codec = defaultCodec(), halt: { halted: boolean } = { halted: false }) {
    super(buffer, byteOffset)
    this.halt = halt
    this.read = Atomics.load(this.words, READ_I) >>> 0
    this.codec = codec
    this.deliver = (data, start, end, type) => { this.onValue!(this.codec.decode(data, start, end), type) }
  }

  /**
   * Hands up to `maxRecords` committed records to `handler` in order and
   * returns how many. A record counts as consumed once handed over, even if
   * the handler throws (the error propagates after READ is published).
   * Impossible headers throw CorruptSegment.
   */
  drain(handler: RecordHandler, maxRecords = 1024): number {
    const words = this.words
    const write = Atomics.load(words, WRITE_I) >>> 0
    let read = this.read
    if (write === read) return 0
    this.checkPositions(write, read)
    const { capacity, mask, records, data, view, maxMessageBytes } = this
    let n = 0
    let bytes = 0
    const halt = this.halt
    try {
      while (read !== write && n < maxRecords && !halt.halted) {
        const at = read & mask
        const i = at >> 2
        const length = records[i]!
        const typeFlags = records[i + 1]!
        const tail = capacity - at
        const available = (write - read) >>> 0
        const flags = typeFlags >>> 16
        if (flags === FLAG_PADDING) {
          if (length !== tail - RECORD_HEADER || tail > available) throw badPadding(at, length, tail, available)
          read = (read + tail) >>> 0
          continue
        }
        if (flags !== 0) throw badFlags(at, flags)
        if (length > maxMessageBytes) throw tooLong(at, length, maxMessageBytes)
        const size = recordBytes(length)
        if (size > available || size > tail) throw overruns(at, length, Math.min(available, tail))
        read = (read + size) >>> 0
        n++
        bytes += length
        this.current = read
        handler(data, at + RECORD_HEADER, at + RECORD_HEADER + length, typeFlags & 0xffff, view)
      }
    } finally {
      this.read = read
      const c = this.counters
      c[MESSAGES_READ >> 3]! += n
      c[BYTES_READ >> 3]! += bytes
      Atomics.store(words, READ_I, read | 0) // frees the space: the producer may now overwrite it
      // A producer waiting for room: once at least an eighth of the lane is
      // free, exactly one drain (this one, if it wins the CAS) reports it,
      // after READ is published. Waiting for a slice (not for one record's
      // worth) keeps a fast producer from sleeping and waking per record;
      // a small slice keeps it from idling while the consumer drains.
      if (Atomics.load(words, ROOM_I) !== 0 && ((Atomics.load(words, WRITE_I) - read) >>> 0) <= capacity - (capacity >>> 3) &&
          Atomics.compareExchange(words, ROOM_I, 1, 0) === 1) this.roomWanted = true
    }
    return n
  }

  /**
   * From a drain's handler, once it has copied what it needs out of the
   * record it was handed: publishes the read position past that record now,
   * instead of at the end of the batch. A consumer that dies later in the
   * batch then leaves no record it has taken behind for the next one to
   * take again. (The producer may overwrite the record from here on.)
   */
  consume(): void {
    Atomics.store(this.words, READ_I, this.current | 0)
  }

  /**
   * The consumer's own poll: WRITE differs from its read position (one
   * atomic load; READ is ours, so the cached copy is exact). Valid only in
   * the consuming process, after resync() if another process consumed.
   */
  unread(): boolean {
    return (Atomics.load(this.words, WRITE_I) >>> 0) !== this.read
  }

  /** Takes the read position from the ring: call when this process becomes the consumer (another may have read since). */
  resync(): void {
    this.read = Atomics.load(this.words, READ_I) >>> 0
    this.roomWanted = false
  }

  /** True once after a drain that freed room for a producer waiting for it (see waitForRoom); the caller wakes it. */
  takeRoomWanted(): boolean {
    if (!this.roomWanted) return false
    this.roomWanted = false
    return true
  }

  /** Like drain(), decoding each payload in place with the codec. */
  receive(onValue: ValueHandler, maxRecords = 1024): number {
    this.onValue = onValue
    try {
      return this.drain(this.deliver, maxRecords)
    } finally {
      this.onValue = null
    }
  }
}

// The errors of drain() are built by these functions, out of the loop: on
// Node 20 a template literal with a number, in a throw inside the loop, cost
// its number-to-string conversion on every record, thrown or not (drain 20
// ns a record instead of 5: docs/design.md, "Error messages off the hot
// path").
function badPadding(at: number, length: number, tail: number, available: number): CorruptSegment {
  return new CorruptSegment(`lane record at ${at}`, length, `is not a valid padding length (tail ${tail}, ${available} bytes committed)`)
}

function badFlags(at: number, flags: number): CorruptSegment {
  return new CorruptSegment(`lane record flags at ${at}`, flags, 'has unknown bits')
}

function tooLong(at: number, length: number, max: number): CorruptSegment {
  return new CorruptSegment(`lane record length at ${at}`, length, `exceeds maxMessageBytes=${max}`)
}

function overruns(at: number, length: number, committed: number): CorruptSegment {
  return new CorruptSegment(`lane record length at ${at}`, length, `overruns the ${committed} committed bytes`)
}
