/**
 * The publishing side of one broadcast lane (./layout.ts): a single writer
 * whose records every subscriber reads through its own cursor. A burst of
 * records is staged after WRITE and published by one seq_cst store of WRITE,
 * whatever the number of subscribers.
 *
 * Room, overwriting and bursts: ./staging.ts.
 */
import type { Schema } from '../schema/schema.js'
import { MessageTooLarge } from '../errors.js'
import { WordCopier } from '../bytes.js'
import { TOPIC_RECORD_HEADER, topicRecordBytes } from './layout.js'
import type { TopicWake } from './readers.js'
import { TopicStaging } from './staging.js'

export type { TopicWake }

const HEADER = TOPIC_RECORD_HEADER

export class TopicPublisher extends TopicStaging {
  private claimOffset = -1
  private claimLength = 0
  private readonly copier = new WordCopier()

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
   * Encodes `value` with `schema` (../schema/) straight into one record of
   * `type`: bound, reserve, encode into the ring, stage (no intermediate
   * buffer); published unless `publish` is false. False when a block
   * subscriber has no room. A value that does not match the schema throws
   * Unserializable before anything is reserved.
   */
  trySendSchema(schema: Schema, value: unknown, type: number, publish = true): boolean {
    this.checkIdle(type)
    const at = this.reserve(schema.roomFor(value, this.maxMessageBytes))
    if (at < 0) return false
    this.stage(at, schema.encode(value, this.view, this.data, at + HEADER), type)
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

  /** The subscribers parked right now, not taken (no CAS): ring each once after claiming the lane, the hello of docs/design.md ("The parking protocol"). */
  parkedSubscribers(): readonly TopicWake[] {
    return this.readers.parkedNow()
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

  private checkIdle(type: number): void {
    if (this.claimOffset >= 0) throw new Error('a claim is open: commit() or abort() it first')
    checkType(type)
  }
}

function checkType(type: number): void {
  if ((type & 0xffff) !== type) throw new RangeError(`record type must be an integer from 0 to 65535, got ${type}`)
}
