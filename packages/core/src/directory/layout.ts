/**
 * Layout of the bus directory: the one segment every process of a bus opens
 * first. This file is the only place that knows these offsets.
 *
 *   header       3 cache lines (below)
 *   channels     CHANNEL_SLOTS x CHANNEL_ENTRY bytes
 *   members      MEMBER_SLOTS x MEMBER_ENTRY bytes
 *   structures   2 copies x STRUCTURE_BYTES (msgpackr shared structures)
 *
 * Publish rules: initializeDirectory writes everything, then MAGIC, then
 * INITIALISED = 1 last, so a half-built directory is never used. A slot is
 * claimed by CAS of its owner word 0 -> identity, filled, then published by
 * storing STATE = READY last; readers skip slots that are not READY.
 */
import { CACHE_LINE } from '../ring/layout.js'

/** 'IPCD' little-endian. */
export const DIRECTORY_MAGIC = 0x44435049
/** Bumped on any incompatible change of this layout. */
export const DIRECTORY_VERSION = 1
/** Value of INITIALISED once the directory is complete. */
export const INITIALISED_DONE = 1
/** Longest bus or channel name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64
/** Most slots of either table. */
export const MAX_SLOTS = 4096
/** Largest structure copy. */
export const MAX_STRUCTURE_BYTES = 1 << 20

/** Slot states. */
export const SLOT_FREE = 0
/** Claimed and being filled (a channel's name is already valid). */
export const SLOT_CLAIMED = 1
/** Complete: readers use it. */
export const SLOT_READY = 2

let offset = 0
// ---- line 0: configuration -------------------------------------------------
/** u32 DIRECTORY_MAGIC. */
export const MAGIC = offset; offset += 4
/** u32 DIRECTORY_VERSION. */
export const VERSION = offset; offset += 4
/** i32 INITIALISED_DONE once complete; written last. */
export const INITIALISED = offset; offset += 4
/** u32 number of channel slots. */
export const CHANNEL_SLOTS = offset; offset += 4
/** u32 number of member slots. */
export const MEMBER_SLOTS = offset; offset += 4
/** u32 bytes of each of the two structure copies (multiple of 8). */
export const STRUCTURE_BYTES = offset; offset += 4
/** u32 bytes of the bus name. */
export const NAME_LENGTH = offset; offset += 4
/** u32 bumped (Atomics.add) after every channel entry added or removed: a cheap "did the table change?" for readers that cache it. */
export const CHANNEL_GENERATION = offset; offset += 4
offset = CACHE_LINE
// ---- line 1: bus name --------------------------------------------------------
/** MAX_NAME_BYTES of UTF-8. */
export const NAME = offset; offset += MAX_NAME_BYTES
// ---- line 2: shared structures control ----------------------------------------
/**
 * i32 structure generation: even = stable, odd = a writer holds the region.
 * The current copy is (generation >>> 1) & 1 whether odd or even; a writer
 * fills the other copy and publishes by CAS generation odd -> odd + 1.
 */
export const STRUCT_GENERATION = offset; offset += 8
/** i64 identity of the writer holding an odd generation (0 = unknown). */
export const STRUCT_WRITER = offset; offset += 8
/** u32 x 2 bytes used in copy 0 and copy 1. */
export const STRUCT_LENGTHS = offset; offset += 8
offset = 3 * CACHE_LINE
/** Where the channel table starts. */
export const CHANNELS = offset

/*
 * Channel entry:
 *   0      4      8      12     16     20     24            32                 96
 *   +------+------+------+------+------+------+-------------+------------------+
 *   |state |namlen|segid |kind  |capac.|lanes |owner (i64)  | name (64 bytes)  |
 *   +------+------+------+------+------+------+-------------+------------------+
 * Published when state becomes SLOT_READY.
 */
/** i32 SLOT_* state. */
export const CH_STATE = 0
/** u32 name bytes, 1..MAX_NAME_BYTES. */
export const CH_NAME_LENGTH = 4
/** i32 System V segment id of the channel segment. */
export const CH_SEGMENT = 8
/** u32 kind of channel (application-defined, 0..255). */
export const CH_KIND = 12
/** u32 data bytes per lane. */
export const CH_CAPACITY = 16
/** u32 lanes of the channel segment. */
export const CH_LANES = 20
/** i64 identity of the creator (claims the slot). */
export const CH_OWNER = 24
/** UTF-8 name. */
export const CH_NAME = 32
/** Bytes per channel entry. */
export const CHANNEL_ENTRY = CH_NAME + MAX_NAME_BYTES
/** Largest channel kind. */
export const MAX_KIND = 255

/*
 * Member entry:
 *   0      4      8      12     16            24            32
 *   +------+------+------+------+-------------+-------------+
 *   |state |bell  |signal|  -   |identity i64 |heartbeat f64|
 *   +------+------+------+------+-------------+-------------+
 * Published when state becomes SLOT_READY; the heartbeat is a plain store by its member.
 */
/** i32 SLOT_* state. */
export const M_STATE = 0
/** u32 doorbell kind: DOORBELL_NONE, DOORBELL_SIGNAL or DOORBELL_PIPE (../doorbell.ts). */
export const M_DOORBELL = 4
/** u32 doorbell signal number. */
export const M_SIGNAL = 8
/** i64 identity (claims the slot). */
export const M_IDENTITY = 16
/** f64 last heartbeat, milliseconds (caller's clock). */
export const M_HEARTBEAT = 24
/** Bytes per member entry. */
export const MEMBER_ENTRY = 32

/** Offset of the member table. */
export function membersOffset(channelSlots: number): number {
  return CHANNELS + channelSlots * CHANNEL_ENTRY
}

/** Offset of structure copy `copy` (0 or 1). */
export function structureOffset(channelSlots: number, memberSlots: number, structureBytes: number, copy: number): number {
  return membersOffset(channelSlots) + memberSlots * MEMBER_ENTRY + copy * structureBytes
}

/** Bytes of memory a directory with these table sizes needs. */
export function directoryBytes(channelSlots: number, memberSlots: number, structureBytes: number): number {
  return structureOffset(channelSlots, memberSlots, structureBytes, 2)
}
