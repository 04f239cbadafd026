/** Writing a fresh topic segment (./layout.ts): header, empty tables, P empty lanes, the schema text. */
import { Buffer } from 'node:buffer'
import { MAX_SCHEMA_BYTES } from '../channel/layout.js'
import { initialPositionOption, maxMessageOption } from '../ring/lane.js'
import {
  INITIAL_POSITION, INTENT, LANES, LANE_CAPACITY, LATEST, LATEST_NONE, MAGIC, MAX_MESSAGE, MAX_TOPIC_LANES, MAX_TOPIC_SLOTS, SCHEMA_BYTES,
  SLOTS, TOPIC_MAGIC, TOPIC_VERSION, VERSION, WRITE, dataOffset, isValidTopicCapacity, laneLineOffset, schemaOffset, topicBytes,
  topicMaxMessageLimit,
} from './layout.js'

export interface TopicLayoutOptions {
  /** Number of lanes P (publishers at once), 1..256. */
  lanes: number
  /** Number of subscriber slots S, 1..1024. */
  slots: number
  /** Data bytes per lane, a power of two from 128 B to 1 GiB. */
  laneCapacity: number
  /** Largest payload; default laneCapacity / 8, at most laneCapacity / 4 - 16. */
  maxMessageBytes?: number
  /** Starting position of every lane (8-byte aligned u32; tests start just below 2^32). Default 0. */
  initialPosition?: number
  /** Canonical schema text (Schema.text) of the topic's records, if it has one. */
  schema?: string
}

/** Writes a fresh topic segment (header, empty tables, P empty lanes) at `byteOffset`. */
export function initializeTopic(buffer: ArrayBufferLike, byteOffset: number, options: TopicLayoutOptions): void {
  const { lanes, slots, laneCapacity } = options
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_TOPIC_LANES) throw new RangeError(`options.lanes must be an integer from 1 to ${MAX_TOPIC_LANES}, got ${lanes}`)
  if (!Number.isInteger(slots) || slots < 1 || slots > MAX_TOPIC_SLOTS) throw new RangeError(`options.slots must be an integer from 1 to ${MAX_TOPIC_SLOTS}, got ${slots}`)
  if (!isValidTopicCapacity(laneCapacity)) throw new RangeError(`options.laneCapacity must be a power of two from 128 to 2^30, got ${laneCapacity}`)
  const max = maxMessageOption(options.maxMessageBytes, laneCapacity, topicMaxMessageLimit(laneCapacity))
  const start = initialPositionOption(options.initialPosition)
  const schema = options.schema === undefined ? null : Buffer.from(options.schema, 'utf8')
  if (schema !== null && (schema.length === 0 || schema.length > MAX_SCHEMA_BYTES)) throw new RangeError(`options.schema must be 1 to ${MAX_SCHEMA_BYTES} bytes of text, got ${schema.length}`)
  const bytes = topicBytes(lanes, slots, laneCapacity, schema?.length ?? 0)
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0 || byteOffset + bytes > buffer.byteLength) {
    throw new RangeError(`a topic of ${lanes} lanes x ${laneCapacity} bytes and ${slots} slots needs ${bytes} bytes at an 8-aligned offset, got offset ${byteOffset} in ${buffer.byteLength}`)
  }
  const tables = dataOffset(lanes, slots, laneCapacity, 0)
  new Uint8Array(buffer, byteOffset, tables).fill(0)
  const words = new Int32Array(buffer, byteOffset, tables / 4)
  for (let i = 0; i < lanes; i++) {
    const line = laneLineOffset(i) >> 2
    words[line + (WRITE >> 2)] = start | 0
    words[line + (INTENT >> 2)] = start | 0
    words[line + (LATEST >> 2)] = LATEST_NONE
  }
  words[VERSION >> 2] = TOPIC_VERSION
  words[LANES >> 2] = lanes
  words[SLOTS >> 2] = slots
  words[LANE_CAPACITY >> 2] = laneCapacity
  words[MAX_MESSAGE >> 2] = max
  words[INITIAL_POSITION >> 2] = start | 0
  if (schema !== null) {
    new Uint8Array(buffer, byteOffset + schemaOffset(lanes, slots, laneCapacity), schema.length).set(schema)
    words[SCHEMA_BYTES >> 2] = schema.length
  }
  Atomics.store(words, MAGIC >> 2, TOPIC_MAGIC) // last: a half-built segment has no magic
}
