/**
 * Copies of a bus's segments for an observer that must never write to them
 * (the `ipc-bus` command line). The observer attaches read-only and can
 * only copy bytes out (`read(offset, length)`); these functions know which
 * bytes matter and return an ArrayBuffer of the segment's full size that
 * holds them at their own offsets, zeros elsewhere, so that the ordinary
 * wrappers (Directory, ChannelSegment, TopicSegment) validate and read the
 * copy exactly as they would the live memory. Nothing here makes a system
 * call or writes anywhere but the new buffer.
 *
 * What is copied:
 *   directory  header, channel table, member table (not the msgpack structures)
 *   channel    header, owner and bell tables, every lane's header, the schema text (not the records)
 *   topic      header, lane lines, owner and bell tables, subscriber slots, schema text (not the records)
 *
 * Each region is copied by one read of 8-byte aligned offset and length, so
 * every aligned word in it is copied whole; different words (a lane's WRITE
 * and READ, a slot's state and owner) may come from different instants. A
 * copy taken while a writer moved is therefore validated like live memory by
 * the wrapper, and a caller that gets CorruptSegment copies again before it
 * calls the segment corrupt.
 */
import { CorruptSegment, NotABus } from '../errors.js'
import { CHANNELS, CHANNEL_SLOTS, DIRECTORY_MAGIC, MAGIC as DIR_MAGIC, MAX_SLOTS, MEMBER_SLOTS, STRUCTURE_BYTES, directoryBytes, structureOffset } from '../directory/layout.js'
import {
  CHANNEL_MAGIC, LANES, LANE_CAPACITY, MAX_LANES, MAX_SCHEMA_BYTES, OWNERS, SCHEMA_BYTES, channelBytes, laneOffset, lanesOffset, schemaOffset,
} from '../channel/layout.js'
import { LANE_HEADER_BYTES, isValidCapacity } from '../ring/layout.js'
import {
  LANES as TOPIC_LANES, LANE_CAPACITY as TOPIC_CAPACITY, MAX_TOPIC_LANES, MAX_TOPIC_SLOTS, SCHEMA_BYTES as TOPIC_SCHEMA_BYTES, SLOTS as TOPIC_SLOTS,
  TOPIC_MAGIC, dataOffset, isValidTopicCapacity, laneLineOffset, schemaOffset as topicSchemaOffset, topicBytes,
} from '../topic/layout.js'

/** Copies `length` bytes at `offset` of the segment (e.g. @ipc/native's ShmReadOnly.read). */
export type ReadAt = (offset: number, length: number) => Uint8Array

/** What a segment is, by the magic of its first word. */
export type SegmentKind = 'directory' | 'channel' | 'topic'

/** The kind of segment whose first four bytes are `head`, or null for a segment of no kind of ours. */
export function segmentKind(head: Uint8Array): SegmentKind | null {
  if (head.length < 4) return null
  const magic = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0
  if (magic === DIRECTORY_MAGIC) return 'directory'
  if (magic === CHANNEL_MAGIC) return 'channel'
  if (magic === TOPIC_MAGIC) return 'topic'
  return null
}

/** A copy of a directory segment of `size` bytes: wrap it with `new Directory(copy)`. */
export function copyDirectory(read: ReadAt, size: number): ArrayBuffer {
  const head = words(read, 0, CHANNELS, size, 'directory')
  const magic = head.getUint32(DIR_MAGIC, true)
  if (magic !== DIRECTORY_MAGIC) throw new NotABus(`no bus directory: magic 0x${magic.toString(16)} is not 0x${DIRECTORY_MAGIC.toString(16)}`)
  const channels = head.getInt32(CHANNEL_SLOTS, true)
  const members = head.getInt32(MEMBER_SLOTS, true)
  const structureBytes = head.getInt32(STRUCTURE_BYTES, true)
  if (!(channels >= 1 && channels <= MAX_SLOTS)) throw new CorruptSegment('directory.channelSlots', channels, `is not from 1 to ${MAX_SLOTS}`)
  if (!(members >= 1 && members <= MAX_SLOTS)) throw new CorruptSegment('directory.memberSlots', members, `is not from 1 to ${MAX_SLOTS}`)
  if (!(structureBytes >= 64 && structureBytes % 8 === 0 && directoryBytes(channels, members, structureBytes) <= size)) {
    throw new CorruptSegment('directory sizes', `${channels} channels, ${members} members, ${structureBytes} structure bytes`, `do not fit the ${size}-byte segment`)
  }
  return copy(read, size, [[0, structureOffset(channels, members, structureBytes, 0)]])
}

/** A copy of a channel segment of `size` bytes: wrap it with `new ChannelSegment(copy)`. */
export function copyChannel(read: ReadAt, size: number): ArrayBuffer {
  const head = words(read, 0, OWNERS, size, 'channel')
  const magic = head.getUint32(0, true)
  if (magic !== CHANNEL_MAGIC) throw new NotABus(`no channel: magic 0x${magic.toString(16)} is not 0x${CHANNEL_MAGIC.toString(16)}`)
  const lanes = head.getInt32(LANES, true)
  const capacity = head.getUint32(LANE_CAPACITY, true)
  if (!(lanes >= 1 && lanes <= MAX_LANES)) throw new CorruptSegment('channel.lanes', lanes, `is not from 1 to ${MAX_LANES}`)
  if (!isValidCapacity(capacity)) throw new CorruptSegment('channel.laneCapacity', capacity, 'is not a power of two from 64 to 2^30')
  const schemaBytes = head.getUint32(SCHEMA_BYTES, true)
  if (channelBytes(lanes, capacity) > size) throw new CorruptSegment('channel.lanes', lanes, `lanes of ${capacity} bytes do not fit the ${size}-byte segment`)
  if (schemaBytes > MAX_SCHEMA_BYTES || channelBytes(lanes, capacity, schemaBytes) > size) {
    throw new CorruptSegment('channel.schemaBytes', schemaBytes, `is more than ${MAX_SCHEMA_BYTES} or runs past the ${size}-byte segment`)
  }
  const regions: Array<[number, number]> = [[0, lanesOffset(lanes)]]
  for (let i = 0; i < lanes; i++) regions.push([laneOffset(lanes, capacity, i), LANE_HEADER_BYTES])
  if (schemaBytes > 0) regions.push([schemaOffset(lanes, capacity), Math.ceil(schemaBytes / 8) * 8])
  return copy(read, size, regions)
}

/** A copy of a topic segment of `size` bytes: wrap it with `new TopicSegment(copy)`. */
export function copyTopic(read: ReadAt, size: number): ArrayBuffer {
  const head = words(read, 0, laneLineOffset(0), size, 'topic')
  const magic = head.getUint32(0, true)
  if (magic !== TOPIC_MAGIC) throw new NotABus(`no topic: magic 0x${magic.toString(16)} is not 0x${TOPIC_MAGIC.toString(16)}`)
  const lanes = head.getInt32(TOPIC_LANES, true)
  const slots = head.getInt32(TOPIC_SLOTS, true)
  const capacity = head.getUint32(TOPIC_CAPACITY, true)
  if (!(lanes >= 1 && lanes <= MAX_TOPIC_LANES)) throw new CorruptSegment('topic.lanes', lanes, `is not from 1 to ${MAX_TOPIC_LANES}`)
  if (!(slots >= 1 && slots <= MAX_TOPIC_SLOTS)) throw new CorruptSegment('topic.slots', slots, `is not from 1 to ${MAX_TOPIC_SLOTS}`)
  if (!isValidTopicCapacity(capacity)) throw new CorruptSegment('topic.laneCapacity', capacity, 'is not a power of two from 128 to 2^30')
  if (topicBytes(lanes, slots, capacity) > size) {
    throw new CorruptSegment('topic.lanes', lanes, `lanes of ${capacity} bytes and ${slots} slots do not fit the ${size}-byte segment`)
  }
  const schemaBytes = head.getUint32(TOPIC_SCHEMA_BYTES, true)
  if (schemaBytes > MAX_SCHEMA_BYTES || topicBytes(lanes, slots, capacity, schemaBytes) > size) {
    throw new CorruptSegment('topic.schemaBytes', schemaBytes, `is more than ${MAX_SCHEMA_BYTES} or runs past the ${size}-byte segment`)
  }
  const regions: Array<[number, number]> = [[0, dataOffset(lanes, slots, capacity, 0)]]
  if (schemaBytes > 0) regions.push([topicSchemaOffset(lanes, slots, capacity), Math.ceil(schemaBytes / 8) * 8])
  return copy(read, size, regions)
}

/** The first `length` bytes of a segment, as a DataView; NotABus when the segment is too small to hold them. */
function words(read: ReadAt, offset: number, length: number, size: number, what: string): DataView {
  if (size < offset + length) throw new NotABus(`a ${size}-byte segment cannot hold a ${what}`)
  const bytes = read(offset, length)
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A zero-filled buffer of `size` bytes with each region [offset, offset + length) read into place. */
function copy(read: ReadAt, size: number, regions: ReadonlyArray<[number, number]>): ArrayBuffer {
  const buffer = new ArrayBuffer(size)
  const target = new Uint8Array(buffer)
  for (const [offset, length] of regions) {
    const bytes = read(offset, length)
    if (bytes.length !== length) throw new RangeError(`read ${bytes.length} bytes at ${offset}, asked for ${length}`)
    target.set(bytes, offset)
  }
  return buffer
}
