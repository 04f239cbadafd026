/** Writing a fresh channel segment (./layout.ts): header, empty owner table, K empty lanes, the schema text. */
import { Buffer } from 'node:buffer'
import { initializeLane } from '../ring/lane.js'
import { isValidCapacity } from '../ring/layout.js'
import {
  CHANNEL_MAGIC, CHANNEL_VERSION, LANES, LANE_CAPACITY, MAGIC, MAX_LANES, MAX_MESSAGE, MAX_MESSAGE_LIMIT, MAX_SCHEMA_BYTES, OWNERS, SCHEMA_BYTES,
  VERSION, channelBytes, laneOffset, schemaOffset,
} from './layout.js'

export interface ChannelLayoutOptions {
  /** Number of lanes K (senders that can attach at once), 1..1024. */
  lanes: number
  /** Data bytes per lane, a power of two from 64 B to 1 GiB. */
  laneCapacity: number
  /**
   * Largest message, whole (1..MAX_MESSAGE_LIMIT); default the record
   * limit. A message larger than a record travels as fragments (./fragments.ts).
   */
  maxMessageBytes?: number
  /** Largest record payload of every lane; default the smaller of maxMessageBytes and laneCapacity / 8. */
  maxRecordBytes?: number
  /** Starting position of every lane (tests start just below 2^32). */
  initialPosition?: number
  /** Canonical schema text (Schema.text) of the channel's records, if it has one. */
  schema?: string
}

/** Writes a fresh channel segment (header, empty owner table, K empty lanes) at `byteOffset`. */
export function initializeChannel(buffer: ArrayBufferLike, byteOffset: number, options: ChannelLayoutOptions): void {
  const { lanes, laneCapacity } = options
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) throw new RangeError(`options.lanes must be an integer from 1 to ${MAX_LANES}, got ${lanes}`)
  if (!isValidCapacity(laneCapacity)) throw new RangeError(`options.laneCapacity must be a power of two from 64 to 2^30, got ${laneCapacity}`)
  const schema = options.schema === undefined ? null : Buffer.from(options.schema, 'utf8')
  if (schema !== null && (schema.length === 0 || schema.length > MAX_SCHEMA_BYTES)) throw new RangeError(`options.schema must be 1 to ${MAX_SCHEMA_BYTES} bytes of text, got ${schema.length}`)
  const bytes = channelBytes(lanes, laneCapacity, schema?.length ?? 0)
  if (byteOffset % 8 !== 0 || byteOffset + bytes > buffer.byteLength) {
    throw new RangeError(`a channel of ${lanes} x ${laneCapacity} bytes needs ${bytes} bytes at an 8-aligned offset, got offset ${byteOffset} in ${buffer.byteLength}`)
  }
  const header = new Uint8Array(buffer, byteOffset, laneOffset(lanes, laneCapacity, 0))
  header.fill(0)
  const maxRecord = options.maxRecordBytes ?? Math.min(options.maxMessageBytes ?? Infinity, laneCapacity / 8)
  const maxMessage = options.maxMessageBytes ?? maxRecord
  if (!Number.isInteger(maxMessage) || maxMessage < maxRecord || maxMessage > MAX_MESSAGE_LIMIT) {
    throw new RangeError(`options.maxMessageBytes must be an integer from the record limit ${maxRecord} to ${MAX_MESSAGE_LIMIT}, got ${maxMessage}`)
  }
  for (let i = 0; i < lanes; i++) {
    initializeLane(buffer, byteOffset + laneOffset(lanes, laneCapacity, i), {
      capacity: laneCapacity, maxMessageBytes: maxRecord, initialPosition: options.initialPosition,
    })
  }
  const words = new Int32Array(buffer, byteOffset, OWNERS / 4)
  words[MAX_MESSAGE >> 2] = maxMessage
  words[VERSION >> 2] = CHANNEL_VERSION
  words[LANES >> 2] = lanes
  words[LANE_CAPACITY >> 2] = laneCapacity
  if (schema !== null) {
    new Uint8Array(buffer, byteOffset + schemaOffset(lanes, laneCapacity), schema.length).set(schema)
    words[SCHEMA_BYTES >> 2] = schema.length
  }
  Atomics.store(words, MAGIC >> 2, CHANNEL_MAGIC) // last: a half-built segment has no magic
}
