/**
 * Layout of a channel segment: one receiver, K lanes (one per sending
 * process). This file is the only place that knows these offsets.
 *
 *   header      4 cache lines (below)
 *   owners      K x i64 lane owner identities, rounded up to a cache line
 *   lanes       K lanes back to back, each laid out by ../ring/layout.ts
 *
 * Publish rule: initializeChannel writes everything else, then MAGIC last;
 * setReceiver writes the doorbell words, then RECEIVER last. A lane belongs to
 * the process whose identity its owner word holds (claimed by CAS 0 -> id).
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
 *   64      4     PARKED           receiver (park) and senders (CAS to ring)
 *   128     8     RECEIVER         the receiver (claimReceiver CAS)
 *   136     4     DOORBELL_KIND    setReceiver (diagnostic; the bus uses the directory)
 *   140     4     DOORBELL_SIGNAL_NO
 *   144     4     CLOSED           close()
 *   152     8     PARKS            receiver (statistics)
 *   160     8     DRAINS           receiver (statistics)
 *   192     4     LANES_USED       senders (CAS max on claim), 0..K
 *   256     8K    owner table      senders (CAS on claim)
 */
import { CACHE_LINE, laneBytes } from '../ring/layout.js'

/** 'IPCC' little-endian: marks the start of a channel segment. */
export const CHANNEL_MAGIC = 0x43435049
/** Bumped on any incompatible change of this layout. */
export const CHANNEL_VERSION = 2
/** Most lanes one channel may have. */
export const MAX_LANES = 1024

/** Doorbell kinds: how a sender wakes a parked receiver. */
export const DOORBELL_NONE = 0
export const DOORBELL_SIGNAL = 1
export const DOORBELL_PIPE = 2
export const DOORBELL_SPIN = 3
export const MAX_DOORBELL = 3

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
offset = CACHE_LINE
// ---- line 1: the receiver's parked word, CAS'd by senders -----------------
/** i32 AWAKE (0) or PARKED (1): see ../ring/park.ts. */
export const PARKED = offset; offset += 4
offset = 2 * CACHE_LINE
// ---- line 2: the receiver, written by the receiver -------------------------
/** i64 receiver identity (pid + start time, see ../identity.ts); 0 = none yet. Written last by setReceiver. */
export const RECEIVER = offset; offset += 8
/** u32 doorbell kind, DOORBELL_*. */
export const DOORBELL_KIND = offset; offset += 4
/** u32 signal number for DOORBELL_SIGNAL (e.g. SIGRTMIN + n), else 0. */
export const DOORBELL_SIGNAL_NO = offset; offset += 4
/** i32 1 once the channel is closed: senders must stop. */
export const CLOSED = offset; offset += 4
offset += 4
/** f64 times the receiver parked (statistics). */
export const PARKS = offset; offset += 8
/** f64 drain calls that returned at least one record (statistics). */
export const DRAINS = offset; offset += 8
offset = 3 * CACHE_LINE
// ---- line 3: which lanes were ever claimed, raised by senders -------------
/** u32 high-water mark of claimed lanes: every lane >= it has never had a sender. Version 2. */
export const LANES_USED = offset; offset += 4
offset = 4 * CACHE_LINE
/** Where the lane owner table starts. */
export const OWNERS = offset

/** Offset of the first lane for K lanes. */
export function lanesOffset(lanes: number): number {
  return OWNERS + Math.ceil((lanes * 8) / CACHE_LINE) * CACHE_LINE
}

/** Offset of lane `index` in a segment of K lanes of `capacity` bytes. */
export function laneOffset(lanes: number, capacity: number, index: number): number {
  return lanesOffset(lanes) + index * laneBytes(capacity)
}

/** Bytes of memory a channel of K lanes of `capacity` data bytes needs. */
export function channelBytes(lanes: number, capacity: number): number {
  return laneOffset(lanes, capacity, lanes)
}
