/**
 * The subscribing side of a topic (./layout.ts): one subscriber slot, a
 * cursor per lane, draining every lane a publisher ever claimed.
 *
 * Joining (TopicSegment.subscribe): the slot goes ACTIVE with provisional
 * cursors (each lane's WRITE; with history, INTENT - capacity), EPOCH is
 * bumped, and only then is each lane's start resolved: the lane's end at
 * that moment (WRITE, and the seq that comes next, from LATEST by
 * ./chain.ts), or with `history: n` the start of the n-th last message
 * before it, as far back as records are still intact. Cursors only move
 * forward from the provisional ones. Publishers read EPOCH at the start of
 * each burst and before each raise of INTENT, so once a publisher saw the
 * bump it overwrites nothing this subscriber has not read if it is a block
 * subscriber; only an INTENT raised just before (at most half a ring past
 * the WRITE that burst began at) can still cost history. So a block
 * subscriber receives every message from its live end on, and history is
 * best effort for either policy (history overwritten before it is read
 * counts as dropped).
 *
 * Reading (Aeron's BroadcastReceiver, batched): copy a batch of records out
 * of the ring into the subscriber's scratch buffer, then re-check that the
 * batch's first record is still intact ((INTENT - start) mod 2^32 <=
 * capacity, loaded after a seq_cst store so that no copy load is ordered
 * after it): the whole batch was then intact while copied (INTENT only grows,
 * later records start later). Only then are records handed over. A batch
 * that fails is discarded: the subscriber was lapped. It skips to the oldest
 * record still intact and at least `lapHeadroom` bytes from being
 * overwritten (walking back from LATEST by prev links) and adds the
 * difference of seq numbers to its drop counter: exactly the messages it
 * will never see.
 */
import { Buffer } from 'node:buffer'
import { CorruptSegment } from '../errors.js'
import { WordCopier } from '../bytes.js'
import { fillGap } from '../codec.js'
import { bellWord, type BellAddress } from '../doorbell.js'
import { AWAKE, PARKED, park, type DataSource } from '../ring/park.js'
import { earliestRecord, intact, type LaneView } from './chain.js'
import {
  EPOCH, POLICY_BLOCK, ROOM_WANTED, SUB_ACTIVE, SUB_BELL, SUB_BYTES_READ, SUB_DROPPED, SUB_FREE, SUB_LAPS, SUB_MESSAGES_READ, SUB_OWNER,
  SUB_PARKED, SUB_PARKS, SUB_STATE, TOPIC_FLAG_PADDING, TOPIC_RECORD_HEADER, WRITE, topicRecordBytes,
} from './layout.js'
import type { TopicSegment } from './segment.js'
import { checkSubscribeOptions, type ReleaseStep, type SubscribeOptions, type TopicRecordHandler, type TopicValueHandler } from './subscribe-options.js'

export { checkSubscribeOptions, type ReleaseStep, type SubscribeOptions, type TopicRecordHandler, type TopicValueHandler } from './subscribe-options.js'

const WRITE_I = WRITE >> 2
const ROOM_I = ROOM_WANTED >> 2
const HEADER = TOPIC_RECORD_HEADER

export class TopicSubscriber implements DataSource {
  readonly slot: number
  readonly policy: 'block' | 'drop'
  /**
   * Lanes whose waiting publisher the last drains freed room for (each
   * reported once; ROOM_WANTED). The bus rings their owners' lane bells,
   * then empties the list.
   */
  readonly roomWanted: number[] = []
  private readonly segment: TopicSegment
  private readonly words: Int32Array
  private readonly views: readonly LaneView[]
  private readonly cursors: number[] = []
  private readonly seqs: number[] = []
  private readonly cursorAt: number[] = []
  private readonly stateAt: number
  private readonly parkedAt: number
  private readonly active: number
  private readonly owner: bigint
  private readonly headroom: number
  private readonly counterAt: { read: number; bytes: number; dropped: number; laps: number; parks: number }
  private readonly scratch: Buffer
  private readonly scratchWords: Uint32Array
  private readonly copier = new WordCopier()
  private readonly offsets: number[] = []
  private readonly lengths: number[] = []
  private readonly types: number[] = []
  private readonly ends: number[] = []
  private lost = 0
  private halted = false
  private closed = false
  private next = 0
  private onValue: TopicValueHandler | null = null
  private readonly decodeHandler: TopicRecordHandler
  /** drain()'s batch decoding (see there): the handler and the record type it takes (-1: any), for this drain. */
  private batchValues: TopicValueHandler | null = null
  private batchType = -1
  /** Bound once: Codec.decodeBatch's per-value callback for deliver(). */
  private readonly eachValue = (value: unknown, index: number): boolean => {
    this.handed = index + 1 // read once handed over, even if the handler throws
    this.batchValues!(value, this.types[index]!, this.batchLane, (this.batchSeq0 + index) >>> 0)
    return !this.halted
  }
  private handed = 0
  private batchLane = 0
  private batchSeq0 = 0

  /** Made by TopicSegment.subscribe once the slot is ACTIVE: resolves where each lane starts. */
  constructor(segment: TopicSegment, slot: number, generation: number, owner: bigint, policy: number, options: SubscribeOptions) {
    const capacity = segment.laneCapacity
    checkSubscribeOptions(options, capacity)
    const history = options.history ?? 0
    const headroom = options.lapHeadroom ?? capacity / 8
    const batch = Math.max(segment.maxMessageBytes, options.batchBytes ?? Math.min(capacity, 65536))
    this.segment = segment
    this.words = segment.words
    this.views = segment.views
    this.slot = slot
    this.policy = policy === POLICY_BLOCK ? 'block' : 'drop'
    this.stateAt = segment.slotWord(slot, SUB_STATE)
    this.parkedAt = segment.slotWord(slot, SUB_PARKED)
    this.active = (generation << 2) | SUB_ACTIVE
    this.owner = owner
    this.headroom = headroom
    this.counterAt = {
      read: segment.counterIndex(SUB_MESSAGES_READ, 0, slot), bytes: segment.counterIndex(SUB_BYTES_READ, 0, slot),
      dropped: segment.counterIndex(SUB_DROPPED, 0, slot), laps: segment.counterIndex(SUB_LAPS, 0, slot),
      parks: segment.counterIndex(SUB_PARKS, 0, slot),
    }
    const scratch = new ArrayBuffer((batch + 7) & ~7)
    this.scratch = Buffer.from(scratch)
    this.scratchWords = new Uint32Array(scratch)
    this.decodeHandler = (data, start, end, type, lane, seq) => { this.onValue!(segment.codec.decode(data, start, end), type, lane, seq) }
    for (let i = 0; i < segment.lanes; i++) {
      const start = earliestRecord(this.views[i]!, history, 0)
      this.cursorAt.push(segment.cursorWord(slot, i))
      this.cursors.push(start.pos)
      this.seqs.push(start.seq)
      Atomics.store(this.words, this.cursorAt[i]!, start.pos | 0)
    }
  }

  /**
   * Hands every lane's messages (up to `maxPerLane` each) to `handler`, lane
   * after lane; returns how many. A message counts as read once handed over,
   * even if the handler throws (the error propagates after the cursor is
   * stored). Lapped lanes are skipped forward and counted (takeLost()).
   *
   * With `values`, a validated batch of two or more records whose types are
   * all `valueType` (-1: any) is decoded with the segment's codec in one
   * call (Codec.decodeBatch) and each value goes to `values` instead of
   * `handler`: msgpackr's per-call setup once per batch, not per message.
   */
  drain(handler: TopicRecordHandler, maxPerLane = 256, values?: TopicValueHandler, valueType = -1): number {
    if (this.closed) return 0
    this.halted = false
    this.batchValues = values ?? null
    this.batchType = valueType
    try {
      const used = this.segment.lanesUsed()
      let total = 0
      for (let k = 0; k < used && !this.halted; k++) total += this.drainLane((this.next + k) % used, handler, maxPerLane)
      if (used > 0) this.next = (this.next + 1) % used
      return total
    } finally {
      this.batchValues = null
    }
  }

  /** Like drain(), decoding each payload with the segment's codec. */
  receive(onValue: TopicValueHandler, maxPerLane = 256): number {
    this.onValue = onValue
    try {
      return this.drain(this.decodeHandler, maxPerLane, onValue)
    } finally {
      this.onValue = null
    }
  }

  /** From a handler: stops the drain before the next message, which stays in the ring (unread). */
  haltDrain(): void {
    this.halted = true
  }

  /** True when any lane has a record after this subscriber's cursor (or has lapped it). */
  hasData(): boolean {
    const used = this.segment.lanesUsed()
    for (let i = 0; i < used; i++) {
      if ((Atomics.load(this.words, this.views[i]!.line + WRITE_I) >>> 0) !== this.cursors[i]) return true
    }
    return false
  }

  /** The parking protocol (../ring/park.ts) on this slot's parked word: true = may sleep until its doorbell rings. */
  park(): boolean {
    this.segment.counters[this.counterAt.parks]! += 1
    return park(this.words, this.parkedAt, this)
  }

  /** Marks the subscriber awake again after it woke without a ring (a timer): publishers stop trying to ring it. */
  wake(): void {
    Atomics.store(this.words, this.parkedAt, AWAKE)
  }

  /** True while this slot's parked word says PARKED. */
  isParked(): boolean {
    return Atomics.load(this.words, this.parkedAt) === PARKED
  }

  /** Publishes the doorbell by which publishers wake this subscriber (once it is ready). */
  setBell(bell: BellAddress): void {
    Atomics.store(this.words, this.segment.slotWord(this.slot, SUB_BELL), bellWord(bell) | 0)
  }

  /** Messages lost by lapping since the last call (the slot's drop counter keeps the total). */
  takeLost(): number {
    const lost = this.lost
    this.lost = 0
    return lost
  }

  /** Where this subscriber reads next in lane `lane`: its position and the seq of the message expected there. */
  position(lane: number): { cursor: number; seq: number } {
    return { cursor: this.cursors[lane]!, seq: this.seqs[lane]! }
  }

  /**
   * Gives the slot back: PARKED -> AWAKE, CAS STATE ACTIVE(g) -> FREE(g),
   * EPOCH += 1, CAS OWNER -> 0. False when it was no longer ours (reclaimed).
   */
  release(): boolean {
    if (this.closed) return false
    this.closed = true
    const words = this.words
    Atomics.compareExchange(words, this.parkedAt, PARKED, AWAKE)
    if (Atomics.compareExchange(words, this.stateAt, this.active, (this.active & ~3) | SUB_FREE) !== this.active) return false
    Atomics.add(words, EPOCH >> 2, 1)
    const ownerAt = this.segment.slotWord(this.slot, SUB_OWNER) >> 1
    return Atomics.compareExchange(this.segment.ids, ownerAt, this.owner, 0n) === this.owner
  }

  /** release() as compare-and-swaps of known values (no EPOCH bump: publishers notice when they next find no room). */
  releaseSteps(): ReleaseStep[] {
    const at = (word: number): number => word * 4
    return [
      { offset: at(this.parkedAt), width: 4, expected: BigInt(PARKED), desired: BigInt(AWAKE) },
      { offset: at(this.stateAt), width: 4, expected: BigInt(this.active), desired: BigInt((this.active & ~3) | SUB_FREE) },
      { offset: at(this.segment.slotWord(this.slot, SUB_OWNER)), width: 8, expected: this.owner, desired: 0n },
    ]
  }

  /** Copies a batch of lane `i`, validates it, hands it over; skips forward when lapped. */
  private drainLane(i: number, handler: TopicRecordHandler, max: number): number {
    const view = this.views[i]!
    const { capacity, mask, records, data, maxMessageBytes } = view
    const words = this.words
    const scratch = this.scratch
    for (let attempt = 0; attempt < 4; attempt++) {
      const write = Atomics.load(words, view.line + WRITE_I) >>> 0
      const cursor = this.cursors[i]!
      if (write === cursor) return 0
      if (((write - cursor) >>> 0) > capacity) { this.skip(i); continue }
      const seq0 = this.seqs[i]!
      let pos = cursor
      let seq = seq0
      let n = 0
      let off = 0
      let broken = false
      // With a values handler: whether the batch is all batchType (or any, -1), and the gaps filled for Codec.decodeBatch.
      const batching = this.batchValues !== null
      const batchType = this.batchType
      let typed = batching
      while (pos !== write && n < max) {
        const at = pos & mask
        const tail = capacity - at
        const available = (write - pos) >>> 0
        if (tail < HEADER) {
          if (tail > available) { broken = true; break }
          pos = (pos + tail) >>> 0
          continue
        }
        const k = at >> 2
        const length = records[k]!
        const typeFlags = records[k + 1]!
        const flags = typeFlags >>> 16
        if (flags === TOPIC_FLAG_PADDING) {
          if (length !== tail - HEADER || tail > available || records[k + 2] !== seq) { broken = true; break }
          pos = (pos + tail) >>> 0
          continue
        }
        const size = topicRecordBytes(length)
        if (flags !== 0 || length > maxMessageBytes || size > tail || size > available || records[k + 2] !== seq) { broken = true; break }
        if (off + length > scratch.length) break
        this.copier.copy(data, at + HEADER, at + HEADER + length, scratch, this.scratchWords, off)
        const type = typeFlags & 0xffff
        if (batchType >= 0 && type !== batchType) typed = false
        this.offsets[n] = off
        this.lengths[n] = length
        this.types[n] = type
        pos = (pos + size) >>> 0
        this.ends[n] = pos
        const next = (off + length + 7) & ~7
        if (batching) fillGap(scratch, off + length, next) // the batch then reads as one msgpack sequence
        off = next
        seq = (seq + 1) >>> 0
        n++
      }
      // Aeron's validate: the seq_cst store (of the cursor as it was) keeps
      // every load above before the load of INTENT.
      Atomics.store(words, this.cursorAt[i]!, cursor | 0)
      if (!intact(view, cursor)) { this.skip(i); continue }
      if (broken) {
        // Intact yet not the record expected: after records that were, the
        // lane is corrupt; at the cursor itself, the cursor is stale (its
        // lane moved on by a multiple of 2^32 bytes since it last read).
        if (n > 0) throw notExpected(i, pos, records[(pos & mask) >> 2]!, seq)
        this.skip(i)
        continue
      }
      return this.deliver(i, handler, n, pos, seq0, typed)
    }
    return 0
  }

  /** Hands over the validated batch (decoded in one call when `typed`: see drain()), then stores the cursor past what was handed over. */
  private deliver(i: number, handler: TopicRecordHandler, n: number, end: number, seq0: number, typed: boolean): number {
    let k = 0
    let decoding = false
    try {
      if (typed && n > 1) {
        this.batchLane = i
        this.batchSeq0 = seq0
        this.handed = 0
        decoding = true
        this.segment.codec.decodeBatch(this.scratch, this.offsets, this.lengths, n, this.eachValue)
        decoding = false
        k = this.handed // short of n when halted, or at a record that does not decode: that one goes alone, below (and reports why)
      }
      while (k < n && !this.halted) {
        const start = this.offsets[k]!
        const length = this.lengths[k]!
        const type = this.types[k]!
        k++
        handler(this.scratch, start, start + length, type, i, (seq0 + k - 1) >>> 0)
      }
    } finally {
      if (decoding) k = this.handed
      let bytes = 0
      for (let j = 0; j < k; j++) bytes += this.lengths[j]!
      const cursor = k === n ? end : k === 0 ? this.cursors[i]! : this.ends[k - 1]!
      this.cursors[i] = cursor
      this.seqs[i] = (seq0 + k) >>> 0
      const c = this.segment.counters
      c[this.counterAt.read]! += k
      c[this.counterAt.bytes]! += bytes
      const words = this.words
      Atomics.store(words, this.cursorAt[i]!, cursor | 0) // a block subscriber frees the space here
      if (this.policy === 'block') {
        const view = this.views[i]!
        if (Atomics.load(words, view.line + ROOM_I) !== 0 &&
            ((Atomics.load(words, view.line + WRITE_I) - cursor) >>> 0) <= view.capacity - (view.capacity >>> 3) &&
            Atomics.compareExchange(words, view.line + ROOM_I, 1, 0) === 1) this.roomWanted.push(i)
      }
    }
    return k
  }

  /** Lapped in lane `i`: moves to the oldest record still intact (less the headroom) and counts the messages skipped. */
  private skip(i: number): void {
    const view = this.views[i]!
    const found = earliestRecord(view, Infinity, this.headroom)
    const lost = (found.seq - this.seqs[i]!) | 0
    if (lost < 0) {
      throw new CorruptSegment(`topic lane ${i} seq`, found.seq, `of the oldest intact record is before the ${this.seqs[i]} this subscriber expects (cursor ${this.cursors[i]})`)
    }
    this.cursors[i] = found.pos
    this.seqs[i] = found.seq
    Atomics.store(this.words, this.cursorAt[i]!, found.pos | 0)
    const c = this.segment.counters
    c[this.counterAt.dropped]! += lost
    c[this.counterAt.laps]! += 1
    this.lost += lost
  }
}

/**
 * drainLane()'s error, built out of its loop: a template literal with
 * numbers in a throw inside a hot loop costs its number-to-string
 * conversions on every pass on Node 20 (docs/design.md, "Error messages off
 * the hot path").
 */
function notExpected(lane: number, pos: number, header: number, seq: number): CorruptSegment {
  return new CorruptSegment(`topic lane ${lane} record at position ${pos}`, header, `is not the well-formed record of seq ${seq} expected there`)
}
