/**
 * Walking a broadcast lane's record chain (./layout.ts) outside the hot
 * path: forward from LATEST to WRITE (where does the lane end, and which seq
 * comes next?) and backward by the records' `prev` links (history, and the
 * oldest record a lapped subscriber can still read). Used when a publisher
 * takes a lane over, when a subscriber joins, and when one is lapped.
 *
 * The lane's publisher may be writing meanwhile. Headers are read with
 * Atomics.load and a walk trusts what it read only once a later load of
 * INTENT says the bytes were not being overwritten (the position is intact:
 * (INTENT - position) mod 2^32 <= capacity). What is intact and still not a
 * well-formed chain is corruption (CorruptSegment).
 */
import type { Buffer } from 'node:buffer'
import { CorruptSegment } from '../errors.js'
import { INTENT, LATEST, LATEST_NONE, TOPIC_FLAG_PADDING, TOPIC_RECORD_HEADER, WRITE, topicRecordBytes } from './layout.js'

/** One lane as seen by the walks and by publishers and subscribers. */
export interface LaneView {
  readonly index: number
  /** The segment's header and tables as i32 words. */
  readonly words: Int32Array
  /** Index in `words` of the lane's line. */
  readonly line: number
  readonly data: Buffer
  /** The same bytes as a DataView (schema records are written through it). */
  readonly view: DataView
  /** The data region as u32 (plain loads and stores on the hot paths). */
  readonly records: Uint32Array
  /** The same memory as i32, for Atomics.load. */
  readonly atomics: Int32Array
  readonly capacity: number
  readonly mask: number
  readonly maxMessageBytes: number
  /** INITIAL_POSITION: where the lane's first record starts. */
  readonly initial: number
}

/** `last` of a lane that has no record. */
export const NO_RECORD = -1

/** Where a lane ends: its write position, the start of the last record before it (or NO_RECORD) and the seq of the next message. */
export interface LaneEnd {
  write: number
  last: number
  seq: number
}

/** A record start and the seq of the message at or after it. */
export interface Boundary {
  pos: number
  seq: number
}

const WRITE_I = WRITE >> 2
const INTENT_I = INTENT >> 2
const LATEST_I = LATEST >> 2
const HEADER = TOPIC_RECORD_HEADER
/** Retries of a walk that the publisher overtook (or that saw LATEST before WRITE). */
const ATTEMPTS = 10_000

interface Header {
  length: number
  flags: number
  seq: number
  prev: number
  /** Bytes to the next record: the tail for padding. */
  size: number
  message: boolean
}

const header: Header = { length: 0, flags: 0, seq: 0, prev: 0, size: 0, message: false }

/** Reads the header at `pos` with atomic loads; false when `pos` is in a tail too short for one. */
function readHeader(lane: LaneView, pos: number, out: Header): boolean {
  const at = pos & lane.mask
  const tail = lane.capacity - at
  if (tail < HEADER) return false
  const i = at >> 2
  const a = lane.atomics
  out.length = Atomics.load(a, i) >>> 0
  out.flags = (Atomics.load(a, i + 1) >>> 16) & 0xffff
  out.seq = Atomics.load(a, i + 2) >>> 0
  out.prev = Atomics.load(a, i + 3) >>> 0
  out.message = out.flags === 0
  out.size = out.flags === TOPIC_FLAG_PADDING ? tail : topicRecordBytes(out.length)
  return true
}

/** True when the header read at `pos` is a well-formed record within `available` committed bytes. */
function wellFormed(lane: LaneView, pos: number, h: Header, available: number): boolean {
  const tail = lane.capacity - (pos & lane.mask)
  if (h.flags === TOPIC_FLAG_PADDING) return h.length === tail - HEADER && tail <= available
  return h.flags === 0 && h.length <= lane.maxMessageBytes && h.size <= tail && h.size <= available
}

/** Loads INTENT: positions p with (INTENT - p) mod 2^32 <= capacity are intact. */
export function loadIntent(lane: LaneView): number {
  return Atomics.load(lane.words, lane.line + INTENT_I) >>> 0
}

/** True while the bytes from `pos` on have not been overwritten (a seq_cst load of INTENT). */
export function intact(lane: LaneView, pos: number): boolean {
  return ((loadIntent(lane) - pos) >>> 0) <= lane.capacity
}

function corrupt(lane: LaneView, what: string, value: number, why: string): CorruptSegment {
  return new CorruptSegment(`topic lane ${lane.index} ${what}`, value, why)
}

// The walks' errors inside their loops, built by functions: equal template
// literals in several throws of one loop cost their number-to-string
// conversions on every pass (docs/design.md, "Error messages off the hot
// path").
function notInChain(lane: LaneView, pos: number, start: number, write: number): CorruptSegment {
  return corrupt(lane, `record at position ${pos}`, pos, `is not a well-formed record of the chain from ${start} to WRITE ${write}`)
}

/** A prev link that is no record distance (end < 0), or leads to a record ending at `end`. */
function badPrev(lane: LaneView, pos: number, prev: number, end: number): CorruptSegment {
  return corrupt(lane, `prev link at position ${pos}`, prev, end < 0 ? 'is not a record distance' : `leads to a record ending at ${end}`)
}

function badLinked(lane: LaneView, q: number, pos: number): CorruptSegment {
  return corrupt(lane, `record at position ${q}`, q, `(linked from ${pos}) is not well-formed`)
}

function badSeq(lane: LaneView, q: number, found: number, seq: number): CorruptSegment {
  return corrupt(lane, `seq at position ${q}`, found, `does not precede ${seq}`)
}

/**
 * Where the lane ends now: walks from LATEST (or from INITIAL_POSITION while
 * the lane has no record) forward to WRITE. LATEST is a plain store after
 * WRITE, so it may name a record of the burst before the last (the walk is
 * then longer) or, seen out of order, one at or after the WRITE just read (then
 * both are read again).
 */
export function locateEnd(lane: LaneView): LaneEnd {
  const { words, line, capacity } = lane
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const latest = Atomics.load(words, line + LATEST_I) >>> 0
    const write = Atomics.load(words, line + WRITE_I) >>> 0
    const none = latest === LATEST_NONE
    const start = none ? lane.initial : latest
    const span = (write - start) >>> 0
    if ((start & 7) !== 0 || span > capacity || (!none && span === 0)) continue
    let pos = start
    let seq = 0
    let known = none
    let last = NO_RECORD
    let broken = false
    while (pos !== write) {
      const available = (write - pos) >>> 0
      if (!readHeader(lane, pos, header)) {
        const tail = capacity - (pos & lane.mask)
        if (tail > available || !known) { broken = true; break }
        pos = (pos + tail) >>> 0
        continue
      }
      if (!wellFormed(lane, pos, header, available) || (known && header.seq !== seq)) { broken = true; break }
      last = pos
      seq = header.message ? (header.seq + 1) >>> 0 : header.seq
      known = true
      pos = (pos + header.size) >>> 0
    }
    if (!intact(lane, start)) continue // overtaken while walking: again, from a newer LATEST
    if (broken) throw notInChain(lane, pos, start, write)
    return { write, last, seq }
  }
  throw corrupt(lane, 'LATEST', Atomics.load(words, line + LATEST_I) >>> 0, `named no intact record before WRITE in ${ATTEMPTS} attempts`)
}

/**
 * From the record at `start` (a record start before `write`), walks back by
 * `prev` links over at most `messages` messages (the one at `start`
 * included): stops at a lane's first record, a ring's length back from
 * `write`, or before a record that is no longer intact or starts before
 * INTENT - capacity + `headroom`. Returns the earliest record reached and the
 * seq of the message at or after it; null when `start` itself was
 * overwritten (walk again from a newer end).
 */
export function walkBack(lane: LaneView, start: number, write: number, messages: number, headroom: number): Boundary | null {
  const { capacity, mask } = lane
  if (!readHeader(lane, start, header)) {
    if (!intact(lane, start)) return null
    throw corrupt(lane, `record at position ${start}`, start, 'lies in a tail too short for a header')
  }
  let intent = loadIntent(lane)
  if (((intent - start) >>> 0) > capacity) return null
  if (!wellFormed(lane, start, header, (write - start) >>> 0)) throw corrupt(lane, `record at position ${start}`, header.length, 'is not well-formed')
  let pos = start
  let seq = header.seq
  let prev = header.prev
  let counted = header.message ? 1 : 0
  while (counted < messages && prev !== 0) {
    if ((prev & 7) !== 0 || prev > capacity) throw badPrev(lane, pos, prev, -1)
    const q = (pos - prev) >>> 0
    if (((write - q) >>> 0) > capacity) break
    if ((((q - ((intent - capacity + headroom) >>> 0)) | 0)) < 0) break
    const readable = readHeader(lane, q, header)
    intent = loadIntent(lane)
    if (((intent - q) >>> 0) > capacity) break
    if (!readable || !wellFormed(lane, q, header, (write - q) >>> 0)) throw badLinked(lane, q, pos)
    const end = (q + header.size) >>> 0
    const gap = capacity - (end & mask)
    if (end !== pos && !(gap < HEADER && ((end + gap) >>> 0) === pos)) throw badPrev(lane, pos, prev, end)
    if ((header.message ? (header.seq + 1) >>> 0 : header.seq) !== seq) throw badSeq(lane, q, header.seq, seq)
    pos = q
    seq = header.seq
    prev = header.prev
    if (header.message) counted++
  }
  return { pos, seq }
}

/**
 * The earliest record start among the last `messages` messages of the lane
 * (and padding around them) that is intact and at least `headroom` bytes
 * past INTENT - capacity; the lane's end when it has no record. With
 * `messages` Infinity and `headroom` 0: the oldest record a reader can still
 * read.
 */
export function earliestRecord(lane: LaneView, messages: number, headroom: number): Boundary {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const end = locateEnd(lane)
    if (end.last === NO_RECORD || messages <= 0) return { pos: end.write, seq: end.seq }
    const found = walkBack(lane, end.last, end.write, messages, headroom)
    if (found !== null) return found
  }
  throw corrupt(lane, 'end', Atomics.load(lane.words, lane.line + WRITE_I) >>> 0, `moved on faster than ${ATTEMPTS} walks back`)
}
