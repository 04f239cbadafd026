/**
 * The producing side of a lane (see ./lane.ts): the hot write path. Records
 * are staged after the published position and one seq_cst store of WRITE
 * publishes them; claim/commit writes in place; waitForRoom is the
 * producer's half of waiting for the consumer to free space.
 */
import type { Schema } from '../schema/schema.js'
import { CorruptSegment, MessageTooLarge } from '../errors.js'
import { WordCopier } from '../bytes.js'
import { defaultCodec, type Codec } from '../codec.js'
import {
  BYTES_WRITTEN, DOORBELLS_RUNG, FLAG_PADDING, FULL_EVENTS, MESSAGES_WRITTEN, READ, RECORD_HEADER, ROOM_WANTED, WRITE,
  recordBytes,
} from './layout.js'
import { LaneBase } from './lane.js'

const WRITE_I = WRITE >> 2
const READ_I = READ >> 2
const ROOM_I = ROOM_WANTED >> 2
/** The prefix of tryWritePrefixed(). */
const PREFIX_BYTES = 16

/**
 * The producing side. Writes stage records after the published position and
 * one seq_cst store of WRITE publishes them; a full ring returns false / -1
 * and never overwrites.
 */
export class LaneProducer extends LaneBase {
  /** Published write position (we are its only writer, so the cache is exact). */
  private write: number
  /** End of staged, not yet published records. */
  private pending: number
  /** Last read position seen; can be late, which only under-reports free space. */
  private readCache: number
  private claimOffset = -1
  private claimLength = 0
  private stagedMessages = 0
  private stagedBytes = 0
  private readonly codec: Codec
  private readonly copier = new WordCopier()

  constructor(buffer: ArrayBufferLike, byteOffset = 0, codec: Codec = defaultCodec()) {
    super(buffer, byteOffset)
    this.write = Atomics.load(this.words, WRITE_I) >>> 0
    this.pending = this.write
    this.readCache = Atomics.load(this.words, READ_I) >>> 0
    this.codec = codec
  }

  /** Copies `bytes` into one record and publishes it (or only stages it, with `publish` false: see publish()). False when the ring is full. */
  tryWrite(bytes: Uint8Array, type = 0, publish = true): boolean {
    const length = bytes.length
    if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
    this.checkIdle(type)
    const at = this.reserve(length)
    if (at < 0) return false
    this.copyIn(bytes, 0, length, at + RECORD_HEADER)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /** Writes the longest prefix of `list` that fits, publishing once; returns how many were written. */
  tryWriteMany(list: readonly Uint8Array[], type = 0): number {
    this.checkIdle(type)
    for (const bytes of list) {
      if (bytes.length > this.maxMessageBytes) throw new MessageTooLarge(bytes.length, this.maxMessageBytes)
    }
    let n = 0
    for (; n < list.length; n++) {
      const bytes = list[n]!
      const at = this.reserve(bytes.length)
      if (at < 0) break
      this.copyIn(bytes, 0, bytes.length, at + RECORD_HEADER)
      this.stage(at, bytes.length, type)
    }
    this.publish()
    return n
  }

  /**
   * Writes one record whose payload is a 16-byte prefix of three u32 words
   * `w0`, `w1`, `w2` and a zero word, then src[start, end): a fragment of a
   * message larger than a record (the channel's fragments.ts gives the words
   * their meaning). Published unless `publish` is false. False when the
   * ring is full.
   */
  tryWritePrefixed(src: Uint8Array, start: number, end: number, w0: number, w1: number, w2: number, type: number, publish = true): boolean {
    const length = PREFIX_BYTES + end - start
    if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
    this.checkIdle(type)
    const at = this.reserve(length)
    if (at < 0) return false
    const i = (at + RECORD_HEADER) >> 2
    const records = this.records
    records[i] = w0
    records[i + 1] = w1
    records[i + 2] = w2
    records[i + 3] = 0
    this.copyIn(src, start, end, at + RECORD_HEADER + PREFIX_BYTES)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /**
   * Reserves room for a payload of up to `maxLength` bytes and returns the
   * offset in `data` where the payload goes, or -1 when the ring is full.
   * Follow with commit() or abort(); nothing is visible before commit.
   */
  claim(maxLength: number): number {
    if (maxLength > this.maxMessageBytes) throw new MessageTooLarge(maxLength, this.maxMessageBytes)
    this.checkIdle(0)
    if (!Number.isInteger(maxLength) || maxLength < 0) throw new RangeError(`claim length must be a non-negative integer, got ${maxLength}`)
    const at = this.reserve(maxLength)
    if (at < 0) return -1
    this.claimOffset = at
    this.claimLength = maxLength
    return at + RECORD_HEADER
  }

  /** Commits the claimed record with its final `length` (<= claimed); publishes unless `publish` is false. */
  commit(length = this.claimLength, type = 0, publish = true): void {
    if (this.claimOffset < 0) throw new Error('commit() without claim()')
    if (!(length >= 0 && length <= this.claimLength)) throw new RangeError(`commit length ${length} is outside 0..${this.claimLength}`)
    checkType(type)
    this.stage(this.claimOffset, length, type)
    this.claimOffset = -1
    if (publish) this.publish()
  }

  /** Drops the open claim; nothing of it was or will be visible. */
  abort(): void {
    this.claimOffset = -1
  }

  /** Encodes `value` with the codec and writes it as one record, published unless `publish` is false. False when the ring is full. */
  trySend(value: unknown, type = 0, publish = true): boolean {
    this.checkIdle(type)
    const codec = this.codec
    const src = codec.encode(value)
    const start = codec.encodedStart
    const length = codec.encodedEnd - start
    if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
    const at = this.reserve(length)
    if (at < 0) return false
    this.copyIn(src, start, codec.encodedEnd, at + RECORD_HEADER)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /**
   * Encodes `value` with `schema` (../schema/) straight into the ring as one
   * record of `type`; published unless `publish` is false. False when the
   * ring is full. A value that does not match the schema throws
   * Unserializable before anything is reserved.
   */
  trySendSchema(schema: Schema, value: unknown, type: number, publish = true): boolean {
    this.checkIdle(type)
    const at = this.reserve(schema.roomFor(value, this.maxMessageBytes))
    if (at < 0) return false
    const length = schema.encode(value, this.view, this.data, at + RECORD_HEADER)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /**
   * Encodes and writes the longest prefix of `values` that fits, publishing
   * once. A value that cannot be encoded or is too large throws and nothing
   * of the batch is published; what was staged before the call stays staged.
   */
  trySendMany(values: readonly unknown[], type = 0): number {
    this.checkIdle(type)
    const codec = this.codec
    const before = { pending: this.pending, messages: this.stagedMessages, bytes: this.stagedBytes }
    let n = 0
    try {
      for (; n < values.length; n++) {
        const src = codec.encode(values[n])
        const start = codec.encodedStart
        const length = codec.encodedEnd - start
        if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
        const at = this.reserve(length)
        if (at < 0) break
        this.copyIn(src, start, codec.encodedEnd, at + RECORD_HEADER)
        this.stage(at, length, type)
      }
    } catch (error) {
      this.pending = before.pending
      this.stagedMessages = before.messages
      this.stagedBytes = before.bytes
      throw error
    }
    this.publish()
    return n
  }

  /** Publishes staged records (commit(..., false)); a no-op when none are staged. */
  publish(): void {
    const pending = this.pending
    if (pending === this.write) return
    const c = this.counters
    c[MESSAGES_WRITTEN >> 3]! += this.stagedMessages
    c[BYTES_WRITTEN >> 3]! += this.stagedBytes
    this.stagedMessages = 0
    this.stagedBytes = 0
    this.write = pending
    Atomics.store(this.words, WRITE_I, pending | 0) // publish: every staged byte is written
  }

  /** Counts a doorbell this producer rang (statistics only). */
  countDoorbell(): void {
    this.counters[DOORBELLS_RUNG >> 3]! += 1
  }

  /**
   * The producer's half of waiting for room (see ROOM_WANTED in layout.ts).
   * Call when a write of `length` payload bytes found the lane full: it
   * stores ROOM_WANTED then re-checks. Returns true when the producer may
   * sleep until the consumer wakes it; false when room appeared meanwhile
   * (the flag is cleared again: write now).
   */
  waitForRoom(length: number): boolean {
    Atomics.store(this.words, ROOM_I, 1)
    this.readCache = this.loadRead()
    const size = recordBytes(length)
    const at = this.pending & this.mask
    const need = size <= this.capacity - at ? size : this.capacity - at + size
    if (((this.pending - this.readCache) >>> 0) + need > this.capacity) return true
    Atomics.store(this.words, ROOM_I, 0)
    return false
  }

  /** Stops waiting for room (a deadline or an abort came first). */
  cancelRoomWait(): void {
    Atomics.store(this.words, ROOM_I, 0)
  }

  /**
   * True when the consumer has read everything published so far (one atomic
   * load; can be late, which only says false when it has just caught up).
   * A producer that batches its publishes publishes at once in this case:
   * the consumer is waiting, and batching would only add latency.
   */
  consumerCaughtUp(): boolean {
    return (Atomics.load(this.words, READ_I) >>> 0) === this.write
  }

  /** Bytes that could be written now (a lower bound: the consumer may have freed more). */
  freeBytes(): number {
    this.readCache = this.loadRead()
    return this.capacity - ((this.pending - this.readCache) >>> 0)
  }

  /** Copies a payload into its slot (see ../bytes.ts). */
  private copyIn(src: Uint8Array, start: number, end: number, at: number): void {
    this.copier.copy(src, start, end, this.data, this.records, at)
  }

  private checkIdle(type: number): void {
    if (this.claimOffset >= 0) throw new Error('a claim is open: commit() or abort() it first')
    checkType(type)
  }

  private loadRead(): number {
    const read = Atomics.load(this.words, READ_I) >>> 0
    const used = (this.write - read) >>> 0
    if (used > this.capacity || (read & 7) !== 0) {
      throw new CorruptSegment('lane.read', read, `is impossible with write=${this.write} and capacity=${this.capacity}`)
    }
    return read
  }

  /**
   * Makes room for a record with a `length`-byte payload after the staged
   * ones, writing a padding record first if it would cross the end. Returns
   * the record's offset in `data`, or -1 (counted as a full event).
   */
  private reserve(length: number): number {
    const capacity = this.capacity
    const size = recordBytes(length)
    const pos = this.pending
    const at = pos & this.mask
    const tail = capacity - at
    const need = size <= tail ? size : tail + size
    if (((pos - this.readCache) >>> 0) + need > capacity) {
      this.readCache = this.loadRead()
      if (((pos - this.readCache) >>> 0) + need > capacity) {
        this.counters[FULL_EVENTS >> 3]! += 1
        return -1
      }
    }
    if (size <= tail) return at
    const i = at >> 2
    this.records[i] = tail - RECORD_HEADER
    this.records[i + 1] = FLAG_PADDING << 16
    this.pending = (pos + tail) >>> 0
    return 0
  }

  /** Writes the header of the record at `at` and moves `pending` past it. */
  private stage(at: number, length: number, type: number): void {
    const i = at >> 2
    this.records[i] = length
    this.records[i + 1] = type
    this.pending = (this.pending + recordBytes(length)) >>> 0
    this.stagedMessages++
    this.stagedBytes += length
  }
}

function checkType(type: number): void {
  if ((type & 0xffff) !== type) throw new RangeError(`record type must be an integer from 0 to 65535, got ${type}`)
}
