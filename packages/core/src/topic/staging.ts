/**
 * Staging records in one broadcast lane (./layout.ts), the protocol half of
 * ./publisher.ts (which decides what to write): room, the tail intent,
 * record headers and the publishing store.
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
import { NO_RECORD, locateEnd, type LaneView } from './chain.js'
import {
  BYTES_WRITTEN, DOORBELLS_RUNG, FULL_EVENTS, INTENT, LATEST, MESSAGES_WRITTEN, ROOM_WANTED, TOPIC_FLAG_PADDING, TOPIC_RECORD_HEADER,
  WRITE, topicRecordBytes,
} from './layout.js'
import { LaneReaders } from './readers.js'
import type { TopicSegment } from './segment.js'

const HEADER = TOPIC_RECORD_HEADER

export abstract class TopicStaging {
  readonly lane: number
  readonly capacity: number
  readonly maxMessageBytes: number
  /** The lane's data region; claim() returns offsets into it. */
  readonly data: Buffer
  /** The same bytes as a DataView (schema records are encoded through it). */
  readonly view: DataView
  protected readonly segment: TopicSegment
  protected readonly words: Int32Array
  protected readonly records: Uint32Array
  protected readonly counters: Float64Array
  protected readonly mask: number
  protected readonly half: number
  protected readonly slack: number
  protected readonly writeAt: number
  protected readonly intentAt: number
  protected readonly latestAt: number
  protected readonly roomAt: number
  protected readonly counterAt: { messages: number; bytes: number; full: number; rung: number }
  /** Published WRITE (we are its only writer). */
  protected write: number
  /** End of staged records. */
  protected pending: number
  /** The INTENT we stored last. */
  protected intent: number
  /** Start of the last staged record (padding included), NO_RECORD for none; and its published value. */
  protected last: number
  protected publishedLast: number
  /** Seq of the next message; and its value at the last publish. */
  protected seq: number
  protected publishedSeq: number
  /** Oldest gating cursor seen (WRITE when nothing gates): records may end at most capacity past it. Valid for the readers' scan floorScan. */
  protected floor: number
  protected floorScan = -1
  protected readonly readers: LaneReaders
  protected stagedMessages = 0
  protected stagedBytes = 0
  protected failedNeed = 0

  /** Takes over lane `lane` of `segment` (claimed by TopicSegment.claimLane): goes on from its WRITE, LATEST and seq. */
  constructor(segment: TopicSegment, lane: number) {
    const view: LaneView = segment.views[lane]!
    this.segment = segment
    this.lane = lane
    this.capacity = view.capacity
    this.maxMessageBytes = view.maxMessageBytes
    this.data = view.data
    this.view = view.view
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

  /** floor = the gating cursor furthest behind `pending` (WRITE when none is further behind). */
  protected reloadFloor(): void {
    this.floor = this.readers.floor(this.pending, this.write)
    this.floorScan = this.readers.scans
  }

  /** Bytes a record of `size` bytes takes from `pos`: the padding to the end of the region first if it does not fit there. */
  protected extent(pos: number, size: number): number {
    const tail = this.capacity - (pos & this.mask)
    return size <= tail ? size : tail + size
  }

  /** Makes room for a record of a `length`-byte payload after the staged ones (padding first if it would cross the end): its offset in `data`, or -1. */
  protected reserve(length: number): number {
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
  protected room(end: number, need: number): boolean {
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
  protected raiseIntent(end: number): void {
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

  protected prevLink(pos: number): number {
    return this.last === NO_RECORD ? 0 : (pos - this.last) >>> 0
  }

  /** Writes the header of the record at `at` (the record starts at `pending`) and moves `pending` past it. */
  protected stage(at: number, length: number, type: number): void {
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
}
