/**
 * Options of topics (bus.subscribe, bus.topic), their validation and the
 * sizes and schema of a topic created now. The same rules as ./options.ts:
 * checked completely on every call, before anything is created.
 */
import { MAX_LANES, MAX_TOPIC_SLOTS, TOPIC_RECORD_HEADER, type Schema, type SchemaDeclaration } from '@ipc/core'
import { DEFAULTS, compileSchema, resolveChannelOptions, type BusOptions } from './options.js'
import { abortSignal, bool, checkKeys, int, oneOf, ringSize } from './validate.js'

/** What a publisher does when a subscriber's ring is full. */
export type SlowPolicy = 'block' | 'drop'

/**
 * bus.topic(name, options): declares a topic. Sizes and schema apply when
 * this call creates it; an existing topic is checked against the schema.
 */
export interface TopicOptions {
  /**
   * Fixed record schema (defineSchema), e.g. `{ id: 'u32', ts: 'f64', kind:
   * 'string' }`: values are encoded by generated code straight into the
   * broadcast lane instead of msgpack. Stored in the topic when it is
   * created; opening it with a different schema throws SchemaMismatch,
   * opening it without one (publish, subscribe) uses the stored one.
   */
  schema?: SchemaDeclaration
  /** When this call creates the topic: the ring of each publisher's lane. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** When this call creates the topic: most publishing processes at once. Default: the bus's maxSenders. */
  maxSenders?: number
  /** When this call creates the topic: most subscriptions at once (all processes). Default 32. */
  maxSubscribers?: number
}

/** bus.subscribe() options; `schema` and the sizes as in TopicOptions. */
export interface SubscribeOptions extends TopicOptions {
  /**
   * 'block' (default): publishers wait for room rather than overwrite what
   * this subscriber has not read. 'drop': publishers never wait for it; when
   * it falls a whole ring behind it skips to the oldest message still intact
   * and counts exactly what it missed (bus 'drop' event, subscription.dropped).
   */
  policy?: SlowPolicy
  /** Unsubscribes when aborted (an iterator then ends). */
  signal?: AbortSignal
  /** Also deliver up to this many messages per publisher published before subscribe(), as far as they are still in the ring. Default 0. */
  history?: number
  /** For `for await`: values buffered before the ring is left to fill (then 'block' publishers wait). Default 1024. */
  highWaterMark?: number
  /**
   * Never deliver what this bus instance itself published on the topic
   * (its own lane; another Bus instance in the same process has its own).
   * For relays such as @ipc/bridge-nats, which must not send back out what
   * they brought in. Default false.
   */
  noEcho?: boolean
  /**
   * For a topic with a schema: the handler gets one reused flyweight view of
   * each value (getters read the record; view.toJSON() copies it) instead of
   * a new object, valid only during the handler call, so copy what you keep.
   * No effect on msgpack values or without a handler (`for await` always
   * gets objects). Default false.
   */
  zeroCopy?: boolean
}

const SUBSCRIBE_KEYS = ['policy', 'signal', 'history', 'ringBytes', 'maxSenders', 'maxSubscribers', 'highWaterMark', 'noEcho', 'schema', 'zeroCopy'] as const
const TOPIC_KEYS = ['schema', 'ringBytes', 'maxSenders', 'maxSubscribers'] as const

/** Validates bus.subscribe() options (sizes too; resolveChannelOptions re-checks them against the bus's). Returns them ({} for undefined). */
export function checkSubscribeOptions(options?: SubscribeOptions): SubscribeOptions {
  const o = checkKeys(options, SUBSCRIBE_KEYS, 'a subscribe')
  if (o.policy !== undefined) oneOf('options.policy', o.policy, ['block', 'drop'])
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  if (o.highWaterMark !== undefined) int('options.highWaterMark', o.highWaterMark, 1, Number.MAX_SAFE_INTEGER)
  if (o.history !== undefined) int('options.history', o.history, 0, Number.MAX_SAFE_INTEGER)
  if (o.noEcho !== undefined) bool('options.noEcho', o.noEcho)
  if (o.zeroCopy !== undefined) bool('options.zeroCopy', o.zeroCopy)
  checkTopicSizes(o)
  return o
}

/** Validates bus.topic() options. Returns them ({} for undefined). */
export function checkTopicOptions(options?: TopicOptions): TopicOptions {
  const o = checkKeys(options, TOPIC_KEYS, 'a topic')
  checkTopicSizes(o)
  return o
}

function checkTopicSizes(o: TopicOptions): void {
  if (o.ringBytes !== undefined) ringSize('options.ringBytes', o.ringBytes)
  if (o.maxSenders !== undefined) int('options.maxSenders', o.maxSenders, 1, MAX_LANES)
  if (o.maxSubscribers !== undefined) int('options.maxSubscribers', o.maxSubscribers, 1, MAX_TOPIC_SLOTS)
  topicSchema(o) // InvalidArgType / InvalidArgValue for a bad declaration
}

/** The compiled schema asked for (compiled once per declaration object), or null. */
export function topicSchema(o: TopicOptions): Schema | null {
  return o.schema === undefined ? null : compileSchema(o.schema)
}

/** A topic's sizes, fixed by whoever creates it. */
export interface TopicSizes {
  ringBytes: number
  maxSenders: number
  maxSubscribers: number
  /** The lanes' record limit, stored in the topic by whoever creates it (the largest message is the writer's: topic-writer.ts). */
  maxRecordBytes: number
  /** Canonical schema text stored in the topic, or null (msgpack values). */
  schema: string | null
}

/**
 * The sizes of a topic created now: the subscription's (checked already by
 * checkSubscribeOptions), else the bus's, else the defaults. The largest
 * message is the channel's rule (larger than a record it travels as
 * fragments); a record at most a quarter of the ring minus a record header
 * (a broadcast burst must never overwrite the last record of the burst
 * before it: docs/design.md, "Topics").
 */
export function resolveTopicSizes(busOptions: BusOptions, o: TopicOptions = {}): TopicSizes {
  const co = resolveChannelOptions(busOptions, { ringBytes: o.ringBytes, maxSenders: o.maxSenders })
  const maxRecordBytes = Math.min(co.maxRecordBytes, co.ringBytes / 4 - TOPIC_RECORD_HEADER)
  return {
    ringBytes: co.ringBytes,
    maxSenders: co.maxSenders,
    maxSubscribers: o.maxSubscribers ?? DEFAULTS.maxSubscribers,
    maxRecordBytes,
    schema: topicSchema(o)?.text ?? null,
  }
}
