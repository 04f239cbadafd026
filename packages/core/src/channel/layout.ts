/**
 * Layout of a channel segment: one receiver, K lanes (one per sending
 * process). This file is the only place that knows these offsets.
 *
 *   header      4 cache lines (below)
 *   owners      K x i64 lane owner identities, rounded up to a cache line
 *   lanes       K lanes back to back, each laid out by ../ring/layout.ts
 *
 * Publish rule: initializeChannel writes everything else, then MAGIC last.
 * The receiver is claimed by CAS of RECEIVER (0 or a dead identity -> its
 * own); the winner then publishes how to wake it: BELL_OWNER = 0,
 * RECEIVER_BELL = its doorbell address (../doorbell.ts), BELL_OWNER = its
 * identity. A reader trusts RECEIVER_BELL only when BELL_OWNER, read before
 * and after it, equals RECEIVER; otherwise the claim is in flight and nobody
 * is rung (a new receiver drains once it is set up, so nothing waits on that
 * ring). Releasing clears BELL_OWNER first, then RECEIVER (CAS).
 * A lane belongs to the process whose identity its owner word holds (claimed
 * by CAS 0 -> id); once it can be woken, its owner stores its doorbell
 * address in the lane's bell word, tagged with the low 32 bits of its
 * identity word (a bell whose tag does not match the owner is a previous
 * owner's and is never rung). The bell is cleared before the lane is
 * released. A receiver that frees room wakes the owner by it.
 * A sender that claims lane i raises LANES_USED to at least i + 1 (a CAS
 * loop; it never goes down) before it writes anything there, so the
 * receiver polls and drains lanes [0, LANES_USED) only: one sender costs one
 * lane's loads per poll, not K.
 *
 *   offset  size  field            written by
 *   0       4     MAGIC            initializeChannel, last
 *   4       4     VERSION          initializeChannel
 *   8       4     LANES (K)        initializeChannel
 *   12      4     LANE_CAPACITY    initializeChannel
 *   16      4     SCHEMA_BYTES     initializeChannel: length of the schema text, 0 = none (version 4)
 *   20      4     MAX_MESSAGE      initializeChannel: largest message, whole (version 5; larger than a
 *                                  lane's record limit travels as fragments, ./fragments.ts)
 *   64      4     PARKED           receiver (park) and senders (CAS to ring)
 *   128     8     RECEIVER         the receiver (claimReceiver CAS)
 *   136     4     RECEIVER_BELL    the receiver, after its claim (version 3)
 *   144     8     BELL_OWNER       the receiver, around RECEIVER_BELL (version 3)
 *   152     8     PARKS            receiver (statistics)
 *   160     8     DRAINS           receiver (statistics)
 *   168     8     RESCUES          receiver: parked checks that found data (statistics, version 3)
 *   192     4     LANES_USED       senders (CAS max on claim), 0..K
 *   256     8K    owner table      senders (CAS on claim)
 *   256+8K  8K    lane bells       each lane's owner: tag << 32 | address (version 3)
 *   ...           lanes
 *   end     S     schema text      initializeChannel: canonical UTF-8 text (../schema/), S = SCHEMA_BYTES rounded up to 8 (version 4)
 */
import { CACHE_LINE, laneBytes } from '../ring/layout.js'

/** 'IPCC' little-endian: marks the start of a channel segment. */
export const CHANNEL_MAGIC = 0x43435049
/** Bumped on any incompatible change of this layout. */
export const CHANNEL_VERSION = 5
/** Most lanes one channel may have. */
export const MAX_LANES = 1024

// ---- record types: the u16 type (REC_TYPE, ../ring/layout.ts) of every record in a lane
/** The payload is one value encoded by the bus's codec; the receiver decodes it. */
export const TYPE_VALUE = 0
/** The payload is raw bytes (sendBytes); the receiver gets them as they are. */
export const TYPE_BYTES = 1
/** The payload is a schema record (../schema/): the receiver decodes it with the channel's schema. */
export const TYPE_SCHEMA = 2
/** The payload is one fragment of a message larger than a record (./fragments.ts); the receiver reassembles it. */
export const TYPE_FRAGMENT = 3
/** Largest message a channel may carry (MAX_MESSAGE): 2 GiB less a byte, so every offset in it is a positive int32. */
export const MAX_MESSAGE_LIMIT = 0x7fffffff
/** Longest schema text a channel stores. */
export const MAX_SCHEMA_BYTES = 16384

let offset = 0
// ---- line 0: configuration, written once ---------------------------------
/** u32 CHANNEL_MAGIC, written last by initializeChannel. */
export const MAGIC = offset; offset += 4
/** u32 CHANNEL_VERSION. */
export const VERSION = offset; offset += 4
/** u32 number of lanes K, 1..MAX_LANES. */
export const LANES = offset; offset += 4
/** u32 data bytes of each lane (power of two). */
export const LANE_CAPACITY = offset; offset += 4
/** u32 bytes of the schema text stored after the lanes; 0 = no schema. Version 4. */
export const SCHEMA_BYTES = offset; offset += 4
/** u32 largest message, whole, 1..MAX_MESSAGE_LIMIT (at least the lanes' record limit). Version 5. */
export const MAX_MESSAGE = offset; offset += 4
offset = CACHE_LINE
// ---- line 1: the receiver's parked word, CAS'd by senders -----------------
/** i32 AWAKE (0) or PARKED (1): see ../ring/park.ts. */
export const PARKED = offset; offset += 4
offset = 2 * CACHE_LINE
// ---- line 2: the receiver, written by the receiver -------------------------
/** i64 receiver identity (pid + start time, see ../identity.ts); 0 = none. CAS'd by claimers. */
export const RECEIVER = offset; offset += 8
/** u32 the receiver's doorbell address (../doorbell.ts), valid while BELL_OWNER equals RECEIVER. */
export const RECEIVER_BELL = offset; offset += 4
offset += 4
/** i64 identity whose address RECEIVER_BELL holds; 0 while it is being written. */
export const BELL_OWNER = offset; offset += 8
/** f64 times the receiver parked (statistics). */
export const PARKS = offset; offset += 8
/** f64 drain calls that returned at least one record (statistics). */
export const DRAINS = offset; offset += 8
/** f64 parked-receiver backstop checks that found data: each is a wakeup the doorbell did not deliver (statistics). */
export const RESCUES = offset; offset += 8
offset = 3 * CACHE_LINE
// ---- line 3: which lanes were ever claimed, raised by senders -------------
/** u32 high-water mark of claimed lanes: every lane >= it has never had a sender. Version 2. */
export const LANES_USED = offset; offset += 4
offset = 4 * CACHE_LINE
/** Where the lane owner table starts. */
export const OWNERS = offset

/** Offset of the lane bell table (K x i64, after the owner table). */
export function laneBellsOffset(lanes: number): number {
  return OWNERS + lanes * 8
}

/** Offset of the first lane for K lanes. */
export function lanesOffset(lanes: number): number {
  return OWNERS + Math.ceil((lanes * 16) / CACHE_LINE) * CACHE_LINE
}

/** Offset of lane `index` in a segment of K lanes of `capacity` bytes. */
export function laneOffset(lanes: number, capacity: number, index: number): number {
  return lanesOffset(lanes) + index * laneBytes(capacity)
}

/** Where the schema text starts (after the last lane). */
export function schemaOffset(lanes: number, capacity: number): number {
  return laneOffset(lanes, capacity, lanes)
}

/** Bytes of memory a channel of K lanes of `capacity` data bytes needs, with `schemaBytes` of schema text. */
export function channelBytes(lanes: number, capacity: number, schemaBytes = 0): number {
  return schemaOffset(lanes, capacity) + Math.ceil(schemaBytes / 8) * 8
}
