/**
 * Layout of a topic segment: P broadcast lanes (one single-producer lane per
 * publishing process), each read by every subscriber through its own cursor.
 * This file is the only place that knows these offsets.
 *
 *   header        2 cache lines (below)
 *   lane table    P x 1 cache line: each lane's writer words and counters
 *   owner table   P x i64 lane owner identities, then P x i64 lane bells,
 *                 rounded up to a cache line
 *   subscribers   S slots of slotBytes(P): a control line, a statistics line,
 *                 then the slot's cursors (u32 per lane) on lines of their own
 *   data          P data regions of LANE_CAPACITY bytes (a power of two)
 *   schema        SCHEMA_BYTES of canonical schema text (../schema/), rounded
 *                 up to 8; none when SCHEMA_BYTES is 0 (version 2)
 *
 *   offset  size  field              written by
 *   0       4     MAGIC              initializeTopic, last
 *   4       4     VERSION            initializeTopic
 *   8       4     LANES (P)          initializeTopic
 *   12      4     SLOTS (S)          initializeTopic
 *   16      4     LANE_CAPACITY      initializeTopic
 *   20      4     MAX_MESSAGE        initializeTopic
 *   24      4     INITIAL_POSITION   initializeTopic (every lane's first position)
 *   28      4     SCHEMA_BYTES       initializeTopic: length of the schema text, 0 = none (version 2)
 *   64      4     EPOCH              subscribers: Atomics.add after a claim or release
 *   68      4     LANES_USED         publishers: CAS max on claim, 0..P
 *
 * Positions are 32-bit byte counters that wrap, as in ../ring/layout.ts: the
 * offset in a data region is `position & (capacity - 1)`.
 *
 * Lane line (one per lane, written only by the lane's publisher except
 * ROOM_WANTED):
 *   WRITE     u32 end of the last published record. The publish rule: the
 *             publisher's seq_cst store of WRITE publishes every record
 *             before it, after all their bytes are written.
 *   INTENT    u32 the tail intent (agrona's tailIntentCounter): before the
 *             publisher writes any byte at a position x >= WRITE (which
 *             overwrites position x - capacity), INTENT >= x + 1 has been
 *             stored (seq_cst, then a seq_cst load before the byte stores).
 *             So a record that starts at s is intact for as long as
 *             (INTENT - s) mod 2^32 <= capacity. The publisher raises INTENT
 *             in steps of up to an eighth of the ring past what it needs,
 *             never past the oldest block subscriber's cursor + capacity
 *             (block subscribers are never lapped) nor past WRITE + capacity/2
 *             (see TopicPublisher).
 *   LATEST    u32 start of the last published record (any record, padding
 *             included), or LATEST_NONE while the lane has none. A plain
 *             store after WRITE: a reader trusts it only as a record start in
 *             [WRITE - capacity, WRITE) that is intact by INTENT.
 *   ROOM_WANTED i32 1 while the publisher waits for room (the parking
 *             protocol turned around, as in ../ring/layout.ts); a block
 *             subscriber that moved its cursor wins the CAS 1 -> 0.
 *   counters  f64 messages and payload bytes published, full events,
 *             doorbells rung (statistics: plain stores by the one writer).
 *
 * Owner table: lane i belongs to the process whose identity (../identity.ts)
 * its owner word holds, claimed by CAS 0 -> id (or dead id -> id); its bell
 * word is `tag << 32 | doorbell address` as in ../channel/layout.ts.
 *
 * Subscriber slot (slotBytes(P) bytes, all on cache lines of its own):
 *   line 0, control (written on claim/release/park; read by publishers when
 *   they rescan the table, CAS'd by publishers when they ring):
 *     0   STATE   i32 generation << 2 | SUB_FREE / SUB_CLAIMING / SUB_ACTIVE
 *     4   POLICY  i32 POLICY_BLOCK or POLICY_DROP
 *     8   PARKED  i32 AWAKE / PARKED (../ring/park.ts)
 *     12  BELL    u32 the subscriber's doorbell address (../doorbell.ts), 0 = none
 *     16  OWNER   i64 identity of the claimer, 0 = free
 *   line 1, statistics (written by the subscriber only): f64 messages read,
 *     payload bytes read, messages dropped (lost by lapping), laps, parks
 *   lines 2..: CURSORS u32 x P, the position of the next record the
 *     subscriber reads in each lane (written by the subscriber; read by the
 *     publishers that a block subscriber gates)
 *
 * Slot protocol. Claim: CAS OWNER 0 -> id (exclusive), STATE = CLAIMING with
 * the next generation, fill policy, bell, provisional cursors (each lane's
 * WRITE; with history, INTENT - capacity), CAS STATE -> ACTIVE, EPOCH += 1,
 * then the real cursors (./subscriber.ts), which only move forward from
 * there. Release by the owner: CAS PARKED -> AWAKE, CAS STATE ACTIVE(g) ->
 * FREE(g), EPOCH += 1, CAS OWNER id -> 0 (each a CAS of a known value, so an
 * exit action can run them; without the EPOCH bump publishers notice when
 * they next find no room). Reclaim of a dead owner (STATE read before and
 * after OWNER): CAS STATE CLAIMING/ACTIVE(g) -> FREE(g), EPOCH += 1, CAS
 * OWNER dead -> 0. Publishers gate on, and ring, ACTIVE slots only.
 *
 * Record, at an 8-byte aligned offset of a data region:
 *
 *   0       4       6       8       12      16
 *   +-------+-------+-------+-------+-------+------------------------------+
 *   |length | type  | flags |  seq  | prev  | payload (length bytes) ... pad|
 *   +-------+-------+-------+-------+-------+------------------------------+
 *    u32     u16     u16     u32     u32     next record at align8(16 + length)
 *
 * `seq` is the lane's message sequence number (u32, wraps): the first message
 * a lane ever carries has 0 and each next one + 1, across owners. A PADDING
 * record carries the seq of the message after it and is no message. `prev`
 * is the distance in bytes back to the previous record's start (padding
 * records included), 0 for a lane's first record: readers walk backwards by
 * it. Types are the bus's, as in a channel (../channel/layout.ts): a topic
 * with a schema carries TYPE_SCHEMA records (and fragments of them). A
 * record never splits across the end of the data region: a PADDING
 * record (length = bytes to the end - 16) fills the tail instead, and a tail
 * of 8 bytes (too short for a header) is skipped by writer and readers alike.
 */
import { CACHE_LINE } from '../ring/layout.js'

/** 'IPCT' little-endian: marks the start of a topic segment. */
export const TOPIC_MAGIC = 0x54435049
/** Bumped on any incompatible change of this layout (2: SCHEMA_BYTES and the schema text). */
export const TOPIC_VERSION = 2
/** Most lanes (publishers at once) of one topic. */
export const MAX_TOPIC_LANES = 256
/** Most subscriber slots of one topic. */
export const MAX_TOPIC_SLOTS = 1024

let offset = 0
// ---- header line 0: configuration, written once --------------------------
/** u32 TOPIC_MAGIC, written last by initializeTopic. */
export const MAGIC = offset; offset += 4
/** u32 TOPIC_VERSION. */
export const VERSION = offset; offset += 4
/** u32 number of lanes P, 1..MAX_TOPIC_LANES. */
export const LANES = offset; offset += 4
/** u32 number of subscriber slots S, 1..MAX_TOPIC_SLOTS. */
export const SLOTS = offset; offset += 4
/** u32 data bytes of each lane (power of two). */
export const LANE_CAPACITY = offset; offset += 4
/** u32 largest payload of a record; topicRecordBytes(max) <= capacity / 4. */
export const MAX_MESSAGE = offset; offset += 4
/** u32 the position every lane started at (8-byte aligned); the first record of a lane starts here. */
export const INITIAL_POSITION = offset; offset += 4
/** u32 bytes of the schema text stored after the data regions; 0 = no schema (values are msgpack). Version 2. */
export const SCHEMA_BYTES = offset; offset += 4
offset = CACHE_LINE
// ---- header line 1: read per burst / poll, written rarely ------------------
/** i32 bumped (Atomics.add) after every subscriber claim and release: publishers rescan the table when it changed. */
export const EPOCH = offset; offset += 4
/** u32 high-water mark of claimed lanes: subscribers poll lanes [0, LANES_USED). */
export const LANES_USED = offset; offset += 4
offset = 2 * CACHE_LINE
/** Where the lane table starts. */
export const LANE_TABLE = offset

// ---- lane line: offsets inside a lane's line --------------------------------
/** u32 write position (atomic): end of the last published record. */
export const WRITE = 0
/** u32 tail intent (atomic): see the header comment. */
export const INTENT = 4
/** u32 start of the last published record, or LATEST_NONE (plain store after WRITE). */
export const LATEST = 8
/** i32 1 while the publisher waits for room. */
export const ROOM_WANTED = 12
/** f64 messages published. */
export const MESSAGES_WRITTEN = 16
/** f64 payload bytes published. */
export const BYTES_WRITTEN = 24
/** f64 times a write found no room (a block subscriber's cursor). */
export const FULL_EVENTS = 32
/** f64 doorbells this lane's publisher rang. */
export const DOORBELLS_RUNG = 40
/** Bytes of one lane line. */
export const LANE_LINE = CACHE_LINE
/** LATEST of a lane that never carried a record (odd: never a position). */
export const LATEST_NONE = 1

// ---- subscriber slot ----------------------------------------------------------
/** Slot states (low 2 bits of STATE; the rest is the claim generation). */
export const SUB_FREE = 0
export const SUB_CLAIMING = 1
export const SUB_ACTIVE = 2
/** The subscriber gates publishers: they never overwrite what it has not read. */
export const POLICY_BLOCK = 0
/** The subscriber never gates publishers: it may be lapped and counts what it lost. */
export const POLICY_DROP = 1

/** i32 generation << 2 | state. */
export const SUB_STATE = 0
/** i32 POLICY_BLOCK or POLICY_DROP. */
export const SUB_POLICY = 4
/** i32 AWAKE or PARKED. */
export const SUB_PARKED = 8
/** u32 doorbell address (../doorbell.ts), 0 = none. */
export const SUB_BELL = 12
/** i64 owner identity, 0 = free. */
export const SUB_OWNER = 16
/** f64 statistics on the slot's second line. */
export const SUB_MESSAGES_READ = CACHE_LINE
export const SUB_BYTES_READ = CACHE_LINE + 8
export const SUB_DROPPED = CACHE_LINE + 16
export const SUB_LAPS = CACHE_LINE + 24
export const SUB_PARKS = CACHE_LINE + 32
/** u32 x P cursors, from the slot's third line. */
export const SUB_CURSORS = 2 * CACHE_LINE

// ---- records ------------------------------------------------------------------
/** u32 payload length in bytes. */
export const REC_LENGTH = 0
/** u16 type | u16 flags << 16, as in ../ring/layout.ts. */
export const REC_TYPE = 4
/** u32 lane message sequence number. */
export const REC_SEQ = 8
/** u32 bytes back to the previous record's start, 0 for none. */
export const REC_PREV = 12
/** Size of a record header. */
export const TOPIC_RECORD_HEADER = 16
/** Flag: this record only fills the tail of the data region. */
export const TOPIC_FLAG_PADDING = 1

/** Smallest lane capacity (a record of 16 payload bytes fits a quarter of it). */
export const MIN_TOPIC_CAPACITY = 128
/** Largest lane capacity (keeps 32-bit position differences unambiguous). */
export const MAX_TOPIC_CAPACITY = 2 ** 30

/** Bytes a record with a payload of `length` bytes occupies. */
export function topicRecordBytes(length: number): number {
  return (TOPIC_RECORD_HEADER + length + 7) & ~7
}

/**
 * Largest payload a lane of `capacity` accepts: a record takes at most a
 * quarter of the ring, so a record and the padding before it take less than
 * half, and a burst (at most half the ring) never overwrites the last record
 * of the burst before it (the one LATEST names: see TopicPublisher).
 */
export function topicMaxMessageLimit(capacity: number): number {
  return capacity / 4 - TOPIC_RECORD_HEADER
}

/** Bytes of one subscriber slot for P lanes. */
export function slotBytes(lanes: number): number {
  return SUB_CURSORS + Math.ceil((lanes * 4) / CACHE_LINE) * CACHE_LINE
}

/** Offset of lane `index`'s line. */
export function laneLineOffset(index: number): number {
  return LANE_TABLE + index * LANE_LINE
}

/** Offset of the owner table (P x i64, then P x i64 bells). */
export function ownersOffset(lanes: number): number {
  return LANE_TABLE + lanes * LANE_LINE
}

/** Offset of the lane bell table. */
export function laneBellsOffset(lanes: number): number {
  return ownersOffset(lanes) + lanes * 8
}

/** Offset of subscriber slot 0. */
export function slotsOffset(lanes: number): number {
  return ownersOffset(lanes) + Math.ceil((lanes * 16) / CACHE_LINE) * CACHE_LINE
}

/** Offset of subscriber slot `index`. */
export function slotOffset(lanes: number, index: number): number {
  return slotsOffset(lanes) + index * slotBytes(lanes)
}

/** Offset of lane `index`'s data region. */
export function dataOffset(lanes: number, slots: number, capacity: number, index: number): number {
  return slotOffset(lanes, slots) + index * capacity
}

/** Where the schema text starts (after the last data region). */
export function schemaOffset(lanes: number, slots: number, capacity: number): number {
  return dataOffset(lanes, slots, capacity, lanes)
}

/** Bytes of memory a topic of P lanes, S slots and `capacity` data bytes per lane needs, with `schemaBytes` of schema text. */
export function topicBytes(lanes: number, slots: number, capacity: number, schemaBytes = 0): number {
  return schemaOffset(lanes, slots, capacity) + Math.ceil(schemaBytes / 8) * 8
}

/** True for a power of two within [MIN_TOPIC_CAPACITY, MAX_TOPIC_CAPACITY]. */
export function isValidTopicCapacity(capacity: number): boolean {
  return Number.isInteger(capacity) && capacity >= MIN_TOPIC_CAPACITY && capacity <= MAX_TOPIC_CAPACITY && (capacity & (capacity - 1)) === 0
}
