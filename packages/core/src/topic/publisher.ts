/**
 * The publishing side of one broadcast lane (./layout.ts): a single writer
 * whose records every subscriber reads through its own cursor. A burst of
 * records is staged after WRITE and published by one seq_cst store of WRITE,
 * whatever the number of subscribers.
 *
 * Room. Only ACTIVE block subscribers gate: a record fits when its end is at
 * most capacity past the oldest of their cursors in this lane. Drop
 * subscribers never gate; a dead subscriber gates until the bus frees its
 * slot (TopicSegment.reclaimSubscriber), which blockers() helps target. The
 * gating slots and the oldest of their cursors are cached (./readers.ts):
 * the table is read again when EPOCH changed (checked at the start of each
 * burst and before each raise of INTENT) or when the cursors, reloaded, still
 * say there is no room.
 *
 * Overwriting. Before staging bytes past INTENT the publisher raises INTENT
 * (a seq_cst store, then a seq_cst load so that no byte store is seen before
 * it, as agrona's signalTailIntent with its release fence), by up to an
 * eighth of the ring beyond the record so that a burst of small records pays
 * one store, but never past the oldest gating cursor + capacity (a block
 * subscriber is never lapped) nor past half a ring from WRITE.
 *
 * Bursts. A burst spans at most half the ring: a write that would make it
 * longer publishes what is staged first. With records of at most a quarter
 * of the ring, a burst then never overwrites the last record of the burst
 * before it, which LATEST names: a publisher that dies mid-burst leaves a
 * chain that the next owner of the lane (and a joining subscriber) can walk
 * from LATEST to WRITE, so seq numbers go on without a gap.
 */
import type { Buffer } from 'node:buffer'
import { MessageTooLarge } from '../errors.js'
import { WordCopier } from '../bytes.js'
import { NO_RECORD, locateEnd, type LaneView } from './chain.js'
import {
  BYTES_WRITTEN, DOORBELLS_RUNG, FULL_EVENTS, INTENT, LATEST, MESSAGES_WRITTEN, ROOM_WANTED, TOPIC_FLAG_PADDING, TOPIC_RECORD_HEADER,
  WRITE, topicRecordBytes,
} from './layout.js'
import { LaneReaders, type TopicWake } from './readers.js'
import type { TopicSegment } from './segment.js'

export type { TopicWake }

const HEADER = TOPIC_RECORD_HEADER

export class TopicPublisher {
  readonly lane: number
  readonly capacity: number
  readonly maxMessageBytes: number
  /** The lane's data region; claim() returns offsets into it. */
  readonly data: Buffer
  private readonly segment: TopicSegment
  private readonly words: Int32Array
  private readonly records: Uint32Array
  private readonly counters: Float64Array
  private readonly mask: number
  private readonly half: number
  private readonly slack: number
  private readonly writeAt: number
  private readonly intentAt: number
  private readonly latestAt: number
  private readonly roomAt: number
  private readonly counterAt: { messages: number; bytes: number; full: number; rung: number }
  /** Published WRITE (we are its only writer). */
  private write: number
  /** End of staged records. */
  private pending: number
  /** The INTENT we stored last. */
  private intent: number
  /** Start of the last staged record (padding included), NO_RECORD for none; and its published value. */
  private last: number
  private publishedLast: number
  /** Seq of the next message; and its value at the last publish. */
  private seq: number
  private publishedSeq: number
  /** Oldest gating cursor seen (WRITE when nothing gates): records may end at most capacity past it. Valid for the readers' scan floorScan. */
  private floor: number
  private floorScan = -1
  private readonly readers: LaneReaders
  private claimOffset = -1
  private claimLength = 0
  private stagedMessages = 0
  private stagedBytes = 0
  private failedNeed = 0
  private readonly copier = new WordCopier()

  /** Takes over lane `lane` of `segment` (claimed by TopicSegment.claimLane): goes on from its WRITE, LATEST and seq. */
  constructor(segment: TopicSegment, lane: number) {
    const view: LaneView = segment.views[lane]!
    this.segment = segment
    this.lane = lane
    this.capacity = view.capacity
    this.maxMessageBytes = view.maxMessageBytes
    this.data = view.data
    this.words = segment.words
    this.records = view.records
    this.counters = segment.counters
    this.mask = view.mask
    this.half = view.capacity / 2
    this.slack = view.capacity / 8
    this.writeAt = view.line + (WRITE >> 2)
    this.intentAt = view.line + (INTENT >> 2)
    this.latestAt = view.line + (LATEST >> 2)
    this.roomAt = view.line + (ROOM_WANTED >> 2)
    this.counterAt = {
      messages: segment.counterIndex(MESSAGES_WRITTEN, lane), bytes: segment.counterIndex(BYTES_WRITTEN, lane),
      full: segment.counterIndex(FULL_EVENTS, lane), rung: segment.counterIndex(DOORBELLS_RUNG, lane),
    }
    const end = locateEnd(view)
    this.write = this.pending = this.floor = end.write
    this.last = this.publishedLast = end.last
    this.seq = this.publishedSeq = end.seq
    this.intent = Atomics.load(this.words, this.intentAt) >>> 0
    this.readers = new LaneReaders(segment, lane)
  }

  /** Copies `bytes` into one record and publishes it (or only stages it, with `publish` false). False when a block subscriber has no room. */
  tryWrite(bytes: Uint8Array, type = 0, publish = true): boolean {
    const length = bytes.length
    if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
    this.checkIdle(type)
    const at = this.reserve(length)
    if (at < 0) return false
    this.copier.copy(bytes, 0, length, this.data, this.records, at + HEADER)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /** Writes the longest prefix of `list` that has room, publishing once per burst; returns how many were written. */
  tryWriteMany(list: readonly Uint8Array[], type = 0): number {
    this.checkIdle(type)
    for (const bytes of list) if (bytes.length > this.maxMessageBytes) throw new MessageTooLarge(bytes.length, this.maxMessageBytes)
    let n = 0
    for (; n < list.length; n++) {
      const bytes = list[n]!
      const at = this.reserve(bytes.length)
      if (at < 0) break
      this.copier.copy(bytes, 0, bytes.length, this.data, this.records, at + HEADER)
      this.stage(at, bytes.length, type)
    }
    this.publish()
    return n
  }

  /** Reserves room for a payload of up to `maxLength` bytes: the payload's offset in `data`, or -1 when a block subscriber has no room. Then commit() or abort(). */
  claim(maxLength: number): number {
    if (maxLength > this.maxMessageBytes) throw new MessageTooLarge(maxLength, this.maxMessageBytes)
    this.checkIdle(0)
    if (!Number.isInteger(maxLength) || maxLength < 0) throw new RangeError(`claim length must be a non-negative integer, got ${maxLength}`)
    const at = this.reserve(maxLength)
    if (at < 0) return -1
    this.claimOffset = at
    this.claimLength = maxLength
    return at + HEADER
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

  /** Drops the open claim (padding it needed stays staged: readers skip it). */
  abort(): void {
    this.claimOffset = -1
  }

  /** Encodes `value` with the segment's codec into one record; published unless `publish` is false. False when a block subscriber has no room. */
  trySend(value: unknown, type = 0, publish = true): boolean {
    this.checkIdle(type)
    const codec = this.segment.codec
    const src = codec.encode(value)
    const start = codec.encodedStart
    const length = codec.encodedEnd - start
    if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
    const at = this.reserve(length)
    if (at < 0) return false
    this.copier.copy(src, start, codec.encodedEnd, this.data, this.records, at + HEADER)
    this.stage(at, length, type)
    if (publish) this.publish()
    return true
  }

  /**
   * Encodes and writes the longest prefix of `values` that has room. A value
   * that cannot be encoded or is too large throws, and what is staged of the
   * batch is dropped (bursts already published by the half-ring rule stay).
   */
  trySendMany(values: readonly unknown[], type = 0): number {
    this.checkIdle(type)
    const codec = this.segment.codec
    // What was staged before this call stays staged if it throws (unless a
    // burst was published meanwhile: then back to what that burst left).
    const before = { write: this.write, pending: this.pending, last: this.last, seq: this.seq, messages: this.stagedMessages, bytes: this.stagedBytes }
    let n = 0
    try {
      for (; n < values.length; n++) {
        const src = codec.encode(values[n])
        const start = codec.encodedStart
        const length = codec.encodedEnd - start
        if (length > this.maxMessageBytes) throw new MessageTooLarge(length, this.maxMessageBytes)
        const at = this.reserve(length)
        if (at < 0) break
        this.copier.copy(src, start, codec.encodedEnd, this.data, this.records, at + HEADER)
        this.stage(at, length, type)
      }
    } catch (error) {
      if (this.write === before.write) {
        this.pending = before.pending
        this.last = before.last
        this.seq = before.seq
        this.stagedMessages = before.messages
        this.stagedBytes = before.bytes
      } else {
        this.pending = this.write
        this.last = this.publishedLast
        this.seq = this.publishedSeq
        this.stagedMessages = this.stagedBytes = 0
      }
      throw error
    }
    this.publish()
    return n
  }

  /** Publishes the staged records: one seq_cst store of WRITE, then LATEST. A no-op when nothing is staged. */
  publish(): void {
    const pending = this.pending
    if (pending === this.write) return
    const c = this.counters
    c[this.counterAt.messages]! += this.stagedMessages
    c[this.counterAt.bytes]! += this.stagedBytes
    this.stagedMessages = this.stagedBytes = 0
    this.write = pending
    this.publishedLast = this.last
    this.publishedSeq = this.seq
    Atomics.store(this.words, this.writeAt, pending | 0) // publish: every staged byte is written
    if (this.last !== NO_RECORD) this.words[this.latestAt] = this.last | 0 // after WRITE: readers check it against WRITE
  }

  /**
   * Call after publish(), once per burst: the subscribers that were parked
   * and whose parked word this call won (CAS PARKED -> AWAKE, ../ring/park.ts);
   * ring each once. While nobody is parked: one load of EPOCH and one of
   * each active subscriber's parked word, nothing allocated.
   */
  subscribersToRing(): readonly TopicWake[] {
    const wakes = this.readers.toRing()
    if (wakes.length > 0) this.counters[this.counterAt.rung]! += wakes.length
    return wakes
  }

  /**
   * The publisher's half of waiting for room (ROOM_WANTED, as the lane's
   * waitForRoom): stores 1, rescans the subscribers and re-checks. True: sleep
   * until a subscriber (or the bus's liveness check) wakes this publisher;
   * false: room appeared meanwhile (the flag is cleared again: write now).
   */
  waitForRoom(length: number): boolean {
    Atomics.store(this.words, this.roomAt, 1)
    this.readers.scan()
    this.reloadFloor()
    const end = (this.pending + this.extent(this.pending, topicRecordBytes(length))) >>> 0
    if (((end - this.floor) >>> 0) > this.capacity) return true
    Atomics.store(this.words, this.roomAt, 0)
    return false
  }

  /** Stops waiting for room. */
  cancelRoomWait(): void {
    Atomics.store(this.words, this.roomAt, 0)
  }

  /** The block subscribers whose cursors left no room for the last failed write: the slots worth a liveness check (then reclaimSubscriber). */
  blockers(): number[] {
    return this.readers.blockers(this.pending, this.failedNeed, this.capacity)
  }

  /** Bytes that could be staged now before a block subscriber gates (reloads the cursors). */
  freeBytes(): number {
    this.reloadFloor()
    return Math.max(0, this.capacity - ((this.pending - this.floor) >>> 0))
  }

  /** ACTIVE subscribers (any policy) right now: one load of EPOCH, a rescan only when it changed. */
  subscriberCount(): number {
    this.readers.refresh()
    return this.readers.activeCount
  }

  /** Seq of the next message this publisher writes. */
  nextSeq(): number {
    return this.seq
  }

  /** floor = the gating cursor furthest behind `pending` (WRITE when none is further behind). */
  private reloadFloor(): void {
    this.floor = this.readers.floor(this.pending, this.write)
    this.floorScan = this.readers.scans
  }

  /** Bytes a record of `size` bytes takes from `pos`: the padding to the end of the region first if it does not fit there. */
  private extent(pos: number, size: number): number {
    const tail = this.capacity - (pos & this.mask)
    return size <= tail ? size : tail + size
  }

  /** Makes room for a record of a `length`-byte payload after the staged ones (padding first if it would cross the end): its offset in `data`, or -1. */
  private reserve(length: number): number {
    const size = topicRecordBytes(length)
    if (this.pending !== this.write && ((this.pending - this.write) >>> 0) + this.extent(this.pending, size) > this.half) this.publish()
    if (this.pending === this.write) {
      // a new burst: the table once (joins and releases since the last one)
      this.readers.refresh()
      if (this.readers.scans !== this.floorScan) this.reloadFloor()
      else if (!this.readers.gated) this.floor = this.write
    }
    const pos = this.pending
    const need = this.extent(pos, size)
    const end = (pos + need) >>> 0
    if (!this.room(end, need)) return -1
    if (((end - this.write) >>> 0) > ((this.intent - this.write) >>> 0)) {
      // Raising INTENT lets bytes be overwritten: not on a stale table (a
      // subscriber that joined mid-burst may be reading its history there).
      this.readers.refresh()
      if (this.readers.scans !== this.floorScan) {
        this.reloadFloor()
        if (!this.room(end, need)) return -1
      }
      this.raiseIntent(end)
    }
    const at = pos & this.mask
    if (need === size) return at
    const tail = need - size
    if (tail >= HEADER) {
      const i = at >> 2
      this.records[i] = tail - HEADER
      this.records[i + 1] = TOPIC_FLAG_PADDING << 16
      this.records[i + 2] = this.seq
      this.records[i + 3] = this.prevLink(pos)
      this.last = pos
    }
    this.pending = (pos + tail) >>> 0
    return 0
  }

  /** True when a record may end at `end`: by the cached floor, else the reloaded cursors, else a rescanned table; else a full event. */
  private room(end: number, need: number): boolean {
    if (((end - this.floor) >>> 0) <= this.capacity) return true
    this.reloadFloor()
    if (((end - this.floor) >>> 0) <= this.capacity) return true
    this.readers.scan() // a slot freed without an epoch bump (an exit action) stops gating here
    this.reloadFloor()
    if (((end - this.floor) >>> 0) <= this.capacity) return true
    this.failedNeed = need
    this.counters[this.counterAt.full]! += 1
    return false
  }

  /** Stores INTENT past `end` (see the header comment), then a load that keeps the byte stores after it. */
  private raiseIntent(end: number): void {
    const write = this.write
    let reach = ((end - write) >>> 0) + this.slack
    const gate = this.capacity - ((write - this.floor) >>> 0)
    if (reach > gate) reach = gate
    if (reach > this.half) reach = this.half
    const intent = (write + reach) >>> 0
    this.intent = intent
    Atomics.store(this.words, this.intentAt, intent | 0)
    Atomics.load(this.words, this.writeAt)
  }

  private prevLink(pos: number): number {
    return this.last === NO_RECORD ? 0 : (pos - this.last) >>> 0
  }

  /** Writes the header of the record at `at` (the record starts at `pending`) and moves `pending` past it. */
  private stage(at: number, length: number, type: number): void {
    const i = at >> 2
    const pos = this.pending
    this.records[i] = length
    this.records[i + 1] = type
    this.records[i + 2] = this.seq
    this.records[i + 3] = this.prevLink(pos)
    this.last = pos
    this.seq = (this.seq + 1) >>> 0
    this.pending = (pos + topicRecordBytes(length)) >>> 0
    this.stagedMessages++
    this.stagedBytes += length
  }

  private checkIdle(type: number): void {
    if (this.claimOffset >= 0) throw new Error('a claim is open: commit() or abort() it first')
    checkType(type)
  }
}

function checkType(type: number): void {
  if ((type & 0xffff) !== type) throw new RangeError(`record type must be an integer from 0 to 65535, got ${type}`)
}
