/**
 * A lane: single-producer / single-consumer ring of records over memory laid
 * out by ./layout.ts. This file writes a fresh lane header (initializeLane)
 * and holds what both sides share (LaneBase: header validation, views,
 * statistics); the sides are ./producer.ts and ./consumer.ts. Each wraps
 * existing memory (a SharedArrayBuffer in tests, an shm mapping in
 * production) and validates its header first. Only the producer moves WRITE,
 * only the consumer moves READ, so the hot path has no compare-and-swap.
 *
 * Host byte order is assumed little-endian (x86-64, arm64), as for all
 * typed-array views over shared memory in @ipc/core.
 */
import { Buffer } from 'node:buffer'
import { CorruptSegment, NotABus } from '../errors.js'
import {
  BYTES_READ, BYTES_WRITTEN, CAPACITY, DOORBELLS_RUNG, FULL_EVENTS, LANE_HEADER_BYTES, LANE_MAGIC,
  LANE_VERSION, MAGIC, MAX_MESSAGE, MESSAGES_READ, MESSAGES_WRITTEN, READ, VERSION, WRITE,
  isValidCapacity, laneBytes, maxMessageLimit,
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
export type RecordHandler = (data: Buffer, start: number, end: number, type: number, view: DataView) => void
/** Receives each decoded message. */
export type ValueHandler = (value: unknown, type: number) => void

const WRITE_I = WRITE >> 2
const READ_I = READ >> 2

/** Bytes of memory a lane of `capacity` data bytes needs (header included). */
export { laneBytes }

/** Writes a fresh lane header at `byteOffset` (8-byte aligned). Positions start at initialPosition. */
export function initializeLane(buffer: ArrayBufferLike, byteOffset: number, options: LaneOptions): void {
  const { capacity } = options
  if (!isValidCapacity(capacity)) throw new RangeError(`options.capacity must be a power of two from 64 to 2^30, got ${capacity}`)
  const max = maxMessageOption(options.maxMessageBytes, capacity, maxMessageLimit(capacity))
  const start = initialPositionOption(options.initialPosition)
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

/** options.maxMessageBytes of a ring of `capacity` (default an eighth of it), checked against `limit`. Shared by lanes and topics. */
export function maxMessageOption(value: number | undefined, capacity: number, limit: number): number {
  const max = value ?? capacity / 8
  if (!Number.isInteger(max) || max < 0 || max > limit) {
    throw new RangeError(`options.maxMessageBytes must be an integer from 0 to ${limit}, got ${max}`)
  }
  return max
}

/** options.initialPosition (default 0): an 8-byte aligned u32. Shared by lanes and topics. */
export function initialPositionOption(value: number | undefined): number {
  const start = value ?? 0
  if (!Number.isInteger(start) || start < 0 || start > 0xffffffff || start % 8 !== 0) {
    throw new RangeError(`options.initialPosition must be an 8-byte aligned u32, got ${start}`)
  }
  return start
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
export abstract class LaneBase {
  readonly capacity: number
  readonly maxMessageBytes: number
  /** The data region; record payloads are slices of it. */
  readonly data: Buffer
  /** The same bytes as a DataView (schema records are read and written through it). */
  readonly view: DataView
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
    this.view = new DataView(buffer as ArrayBuffer, byteOffset + LANE_HEADER_BYTES, capacity)
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
    if (used > this.capacity || ((write | read) & 7) !== 0) throw impossibleWrite(write, read, this.capacity)
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

/** Out of line, as the errors of LaneConsumer.drain (./consumer.ts): checkPositions() runs once per drain. */
function impossibleWrite(write: number, read: number, capacity: number): CorruptSegment {
  return new CorruptSegment('lane.write', write, `is impossible with read=${read} and capacity=${capacity}`)
}
