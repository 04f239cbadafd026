/**
 * A lane: single-producer / single-consumer ring of records over memory laid
 * out by ./layout.ts. LaneProducer and LaneConsumer each wrap existing memory
 * (a SharedArrayBuffer in tests, an shm mapping in production) and validate
 * its header first. Only the producer moves WRITE, only the consumer moves
 * READ, so the hot path has no compare-and-swap.
 *
 * Host byte order is assumed little-endian (x86-64, arm64), as for all
 * typed-array views over shared memory in @ipc/core.
 */
import { Buffer } from 'node:buffer'
import { CorruptSegment, MessageTooLarge, NotABus } from '../errors.js'
import { WordCopier } from '../bytes.js'
import { defaultCodec, type Codec } from '../codec.js'
import {
  BYTES_READ, BYTES_WRITTEN, CAPACITY, DOORBELLS_RUNG, FLAG_PADDING, FULL_EVENTS, LANE_HEADER_BYTES, LANE_MAGIC,
  LANE_VERSION, MAGIC, MAX_MESSAGE, MESSAGES_READ, MESSAGES_WRITTEN, READ, RECORD_HEADER, VERSION, WRITE,
  ROOM_WANTED, isValidCapacity, laneBytes, maxMessageLimit, recordBytes,
} from './layout.js'

export interface LaneOptions {
  /** Data region size in bytes: a power of two from 64 B to 1 GiB. */
  capacity: number
  /** Largest payload; default capacity / 8, at most capacity / 2 - 8. */
  maxMessageBytes?: number
  /** Starting value of both positions (8-byte aligned u32); tests start just below 2^32. Default 0. */
  initialPosition?: number
}

/** Statistics of one lane (may be late on the side that did not write them). */
export interface LaneStats {
  messagesWritten: number
  bytesWritten: number
  fullEvents: number
  doorbellsRung: number
  messagesRead: number
  bytesRead: number
  /** Bytes committed and not yet consumed. */
  usedBytes: number
}

/** Receives each record as a contiguous slice `data[start, end)` of the ring; valid only during the call. */
export type RecordHandler = (data: Buffer, start: number, end: number, type: number) => void
/** Receives each decoded message. */
export type ValueHandler = (value: unknown, type: number) => void

const WRITE_I = WRITE >> 2
const READ_I = READ >> 2
const ROOM_I = ROOM_WANTED >> 2

/** Bytes of memory a lane of `capacity` data bytes needs (header included). */
export { laneBytes }

/** Writes a fresh lane header at `byteOffset` (8-byte aligned). Positions start at initialPosition. */
export function initializeLane(buffer: ArrayBufferLike, byteOffset: number, options: LaneOptions): void {
  const { capacity } = options
  if (!isValidCapacity(capacity)) throw new RangeError(`options.capacity must be a power of two from 64 to 2^30, got ${capacity}`)
  const max = options.maxMessageBytes ?? capacity / 8
  if (!Number.isInteger(max) || max < 0 || max > maxMessageLimit(capacity)) {
    throw new RangeError(`options.maxMessageBytes must be an integer from 0 to ${maxMessageLimit(capacity)}, got ${max}`)
  }
  const start = options.initialPosition ?? 0
  if (!Number.isInteger(start) || start < 0 || start > 0xffffffff || start % 8 !== 0) {
    throw new RangeError(`options.initialPosition must be an 8-byte aligned u32, got ${start}`)
  }
  checkRegion(buffer, byteOffset, laneBytes(capacity))
  const words = new Int32Array(buffer, byteOffset, LANE_HEADER_BYTES / 4)
  new Uint8Array(buffer, byteOffset, LANE_HEADER_BYTES).fill(0)
  words[VERSION >> 2] = LANE_VERSION
  words[CAPACITY >> 2] = capacity
  words[MAX_MESSAGE >> 2] = max
  Atomics.store(words, WRITE_I, start | 0)
  Atomics.store(words, READ_I, start | 0)
  Atomics.store(words, MAGIC >> 2, LANE_MAGIC) // last: a lane without its magic is never wrapped
}

function checkRegion(buffer: ArrayBufferLike, byteOffset: number, bytes: number): void {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0) {
    throw new RangeError(`byteOffset must be a non-negative multiple of 8, got ${byteOffset}`)
  }
  if (byteOffset + bytes > buffer.byteLength) {
    throw new RangeError(`lane needs ${bytes} bytes at offset ${byteOffset}, buffer has ${buffer.byteLength}`)
  }
}

/** What both sides share: validated configuration and cached views. */
abstract class LaneBase {
  readonly capacity: number
  readonly maxMessageBytes: number
  /** The data region; record payloads are slices of it. */
  readonly data: Buffer
  protected readonly mask: number
  protected readonly words: Int32Array
  protected readonly counters: Float64Array
  protected readonly records: Uint32Array

  constructor(buffer: ArrayBufferLike, byteOffset: number) {
    checkRegion(buffer, byteOffset, LANE_HEADER_BYTES)
    const words = new Int32Array(buffer, byteOffset, LANE_HEADER_BYTES / 4)
    const magic = words[MAGIC >> 2]! >>> 0
    if (magic !== LANE_MAGIC) throw new NotABus(`no lane at offset ${byteOffset}: magic 0x${magic.toString(16)} is not 0x${LANE_MAGIC.toString(16)}`)
    const version = words[VERSION >> 2]!
    if (version !== LANE_VERSION) throw new NotABus(`lane at offset ${byteOffset} has layout version ${version}, this build reads ${LANE_VERSION}`)
    const capacity = words[CAPACITY >> 2]! >>> 0
    if (!isValidCapacity(capacity)) throw new CorruptSegment('lane.capacity', capacity, 'is not a power of two from 64 to 2^30')
    if (byteOffset + laneBytes(capacity) > buffer.byteLength) {
      throw new CorruptSegment('lane.capacity', capacity, `does not fit the ${buffer.byteLength}-byte buffer at offset ${byteOffset}`)
    }
    const max = words[MAX_MESSAGE >> 2]! >>> 0
    if (max > maxMessageLimit(capacity)) throw new CorruptSegment('lane.maxMessageBytes', max, `exceeds capacity/2-8 = ${maxMessageLimit(capacity)}`)
    this.capacity = capacity
    this.maxMessageBytes = max
    this.mask = capacity - 1
    this.words = words
    this.counters = new Float64Array(buffer, byteOffset, LANE_HEADER_BYTES / 8)
    this.data = Buffer.from(buffer as ArrayBuffer, byteOffset + LANE_HEADER_BYTES, capacity)
    this.records = new Uint32Array(buffer, byteOffset + LANE_HEADER_BYTES, capacity / 4)
    this.checkSnapshot()
  }

  /**
   * Validates the positions as they were at one instant, while the other
   * side may be moving them: READ is read on both sides of WRITE, and a
   * snapshot counts only when READ did not move in between (it never goes
   * back, so nothing can hide in between). Bounded; each side re-checks the
   * other's position on every use anyway.
   */
  private checkSnapshot(): void {
    const words = this.words
    for (let attempt = 0; attempt < 1000; attempt++) {
      const read = Atomics.load(words, READ_I) >>> 0
      const write = Atomics.load(words, WRITE_I) >>> 0
      if ((Atomics.load(words, READ_I) >>> 0) !== read) continue
      this.checkPositions(write, read)
      return
    }
  }

  /** Throws CorruptSegment unless read <= write <= read + capacity, both 8-byte aligned. */
  protected checkPositions(write: number, read: number): void {
    const used = (write - read) >>> 0
    if (used > this.capacity || ((write | read) & 7) !== 0) {
      throw new CorruptSegment('lane.write', write, `is impossible with read=${read} and capacity=${this.capacity}`)
    }
  }

  /** True when committed records wait to be consumed. */
  hasData(): boolean {
    return Atomics.load(this.words, WRITE_I) !== Atomics.load(this.words, READ_I)
  }

  stats(): LaneStats {
    const c = this.counters
    return {
      messagesWritten: c[MESSAGES_WRITTEN >> 3]!, bytesWritten: c[BYTES_WRITTEN >> 3]!,
      fullEvents: c[FULL_EVENTS >> 3]!, doorbellsRung: c[DOORBELLS_RUNG >> 3]!,
      messagesRead: c[MESSAGES_READ >> 3]!, bytesRead: c[BYTES_READ >> 3]!,
      usedBytes: (Atomics.load(this.words, WRITE_I) - Atomics.load(this.words, READ_I)) >>> 0,
    }
  }
}

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
   * Encodes and writes the longest prefix of `values` that fits, publishing
   * once. A value that cannot be encoded or is too large throws and nothing
   * of the batch is published.
   */
  trySendMany(values: readonly unknown[], type = 0): number {
    this.checkIdle(type)
    const codec = this.codec
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
      this.rollback()
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

  /** Forgets staged, unpublished records. */
  private rollback(): void {
    this.pending = this.write
    this.stagedMessages = 0
    this.stagedBytes = 0
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

/**
 * The consuming side. drain() reads the write position once per batch,
 * validates every header before use, hands each payload over in place and
 * then publishes the new read position.
 */
export class LaneConsumer extends LaneBase {
  private read: number
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
    const { capacity, mask, records, data, maxMessageBytes } = this
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
          if (length !== tail - RECORD_HEADER || tail > available) {
            throw new CorruptSegment(`lane record at ${at}`, length, `is not a valid padding length (tail ${tail}, ${available} bytes committed)`)
          }
          read = (read + tail) >>> 0
          continue
        }
        if (flags !== 0) throw new CorruptSegment(`lane record flags at ${at}`, flags, 'has unknown bits')
        if (length > maxMessageBytes) throw new CorruptSegment(`lane record length at ${at}`, length, `exceeds maxMessageBytes=${maxMessageBytes}`)
        const size = recordBytes(length)
        if (size > available || size > tail) {
          throw new CorruptSegment(`lane record length at ${at}`, length, `overruns the ${Math.min(available, tail)} committed bytes`)
        }
        read = (read + size) >>> 0
        n++
        bytes += length
        handler(data, at + RECORD_HEADER, at + RECORD_HEADER + length, typeFlags & 0xffff)
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

function checkType(type: number): void {
  if ((type & 0xffff) !== type) throw new RangeError(`record type must be an integer from 0 to 65535, got ${type}`)
}
