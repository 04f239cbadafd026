/**
 * Layout of one lane: a single-producer / single-consumer ring of
 * variable-length records. This file is the only place that knows these
 * offsets.
 *
 * Lane = header (3 cache lines) + data region of `capacity` bytes.
 *
 *   line 0  configuration, written once by initializeLane, read-only after
 *   line 1  producer-owned: write position and producer counters
 *   line 2  consumer-owned: read position and consumer counters
 *   data    capacity bytes of records (capacity a power of two)
 *
 * Positions are 32-bit unsigned byte counters that wrap; the byte offset in
 * the data region is `position & (capacity - 1)` and the bytes in use are
 * `(write - read) >>> 0`, correct across the wrap because capacity <= 2^30.
 *
 * Publish rule: the bytes in [read, write) are committed records; the
 * producer's seq_cst store of the write position publishes them, after every
 * byte of every record it covers has been written.
 *
 * No zeroing is needed: the consumer interprets only bytes inside
 * [read, write), all of which the producer wrote (header first, then payload)
 * before publishing them. Stale bytes after a record's payload, up to the next
 * 8-byte boundary, are never read. A producer that dies mid-record never moved
 * the write position, so its half record is invisible and is overwritten by
 * the lane's next owner.
 *
 * Counters are statistics: plain (non-atomic) float64 stores by their one
 * writer, exact up to 2^53, and can be late on the other side.
 */

/** 'IPCL' little-endian: marks the start of a lane header. */
export const LANE_MAGIC = 0x4c435049
/** Bumped on any incompatible change of this layout. */
export const LANE_VERSION = 1
/** One cache line; producer and consumer words live on different lines. */
export const CACHE_LINE = 64

let offset = 0
// ---- line 0: configuration ------------------------------------------------
/** u32 LANE_MAGIC. */
export const MAGIC = offset; offset += 4
/** u32 LANE_VERSION. */
export const VERSION = offset; offset += 4
/** u32 data region size in bytes, a power of two in [MIN_CAPACITY, MAX_CAPACITY]. */
export const CAPACITY = offset; offset += 4
/** u32 largest payload a record may carry; align8(RECORD_HEADER + max) <= capacity / 2. */
export const MAX_MESSAGE = offset; offset += 4
offset = CACHE_LINE
// ---- line 1: producer -----------------------------------------------------
/** u32 write position (atomic): end of the last published record. */
export const WRITE = offset; offset += 8
/** f64 messages written (published). */
export const MESSAGES_WRITTEN = offset; offset += 8
/** f64 payload bytes written (published). */
export const BYTES_WRITTEN = offset; offset += 8
/** f64 times a write found the ring full. */
export const FULL_EVENTS = offset; offset += 8
/** f64 doorbells this lane's producer rang. */
export const DOORBELLS_RUNG = offset; offset += 8
/**
 * i32 ROOM_WANTED (1) while the producer waits for room in a full lane, else
 * 0: the parking protocol of ./park.ts turned around. The producer stores 1
 * and re-checks READ; the consumer stores READ and, if it then finds 1 with
 * at least an eighth of the lane free and wins the CAS 1 -> 0, wakes the
 * producer.
 * (Written by both sides, rarely: only around a full lane.)
 */
export const ROOM_WANTED = offset; offset += 4
offset = 2 * CACHE_LINE
// ---- line 2: consumer -----------------------------------------------------
/** u32 read position (atomic): start of the first record not yet consumed. */
export const READ = offset; offset += 8
/** f64 messages read. */
export const MESSAGES_READ = offset; offset += 8
/** f64 payload bytes read. */
export const BYTES_READ = offset; offset += 8
offset = 3 * CACHE_LINE
/** Size of the lane header; the data region starts here. */
export const LANE_HEADER_BYTES = offset

/*
 * Record header, at an 8-byte aligned offset of the data region:
 *
 *   0       4       6       8
 *   +-------+-------+-------+--------------------------------+
 *   |length | type  | flags | payload (length bytes) ... pad |
 *   +-------+-------+-------+--------------------------------+
 *    u32     u16     u16     next record at align8(8 + length)
 *
 * A record is committed when the write position passes its end (see the
 * publish rule above); records never split across the end of the data region:
 * a PADDING record (length = bytes to the end - 8) fills the tail instead.
 */
/** u32 payload length in bytes. */
export const REC_LENGTH = 0
/** u16 application type of the record (opaque to the ring). */
export const REC_TYPE = 4
/** u16 flags: FLAG_PADDING or 0. */
export const REC_FLAGS = 6
/** Size of a record header. */
export const RECORD_HEADER = 8
/** Flag: this record only fills the tail of the data region; skip to offset 0. */
export const FLAG_PADDING = 1

/** Smallest lane capacity. */
export const MIN_CAPACITY = 64
/** Largest lane capacity (keeps `(write - read) >>> 0` unambiguous). */
export const MAX_CAPACITY = 2 ** 30

/** Bytes a record with a payload of `length` bytes occupies. */
export function recordBytes(length: number): number {
  return (RECORD_HEADER + length + 7) & ~7
}

/** Bytes of memory a lane of `capacity` data bytes needs. */
export function laneBytes(capacity: number): number {
  return LANE_HEADER_BYTES + capacity
}

/** Largest maxMessageBytes a lane of `capacity` accepts: any record must fit an empty ring at any position. */
export function maxMessageLimit(capacity: number): number {
  return capacity / 2 - RECORD_HEADER
}

/** True for a power of two within [MIN_CAPACITY, MAX_CAPACITY]. */
export function isValidCapacity(capacity: number): boolean {
  return Number.isInteger(capacity) && capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY && (capacity & (capacity - 1)) === 0
}
