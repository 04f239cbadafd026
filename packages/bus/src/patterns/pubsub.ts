/**
 * Pub/sub on the bus: `bus.publish(topic, value)` and `bus.subscribe(topic, ...)`.
 *
 * A topic is a segment of broadcast lanes (./topics.ts, @ipc/core topic/):
 * each publishing process writes its own lane once, and every subscription
 * reads it through its own cursors in the topic's subscriber table, so a
 * publish costs one record write and one publishing store whatever the
 * number of subscribers (docs/design.md, "Topics").
 *
 * - Order: per publishing process, every subscriber gets values in publish
 *   order. A subscription receives what is published after subscribe()
 *   returned (and with `history: n`, up to n earlier values per publisher
 *   still in the ring).
 * - 'block' (default): publishers never overwrite what this subscriber has
 *   not read; publish() waits for room (tryPublish() returns false). A
 *   subscriber that died is found by the waiting publisher's liveness check
 *   (every ROOM_RECHECK_MS) and its slot freed: it holds nobody up longer.
 * - 'drop': publishers never wait for it. When it falls a ring behind it is
 *   lapped: it skips to the oldest value still intact and counts exactly
 *   what it missed (subscription.dropped, bus 'drop' event in the
 *   subscriber's process, bus.stats().pubsub.dropped). Never a torn value.
 * - Schema topics: `bus.topic(name, { schema })` (or `subscribe(..., {
 *   schema })`) creates the topic with a fixed record schema, stored in its
 *   segment; every publisher then encodes values with the generated code
 *   straight into its lane and every subscriber decodes them (with
 *   `zeroCopy`, into one reused view). A different schema is SchemaMismatch.
 */
import { InvalidArgType, TooManySubscribers } from '../errors.js'
import { ownBell } from '../doorbell.js'
import { isAlive, selfIdentity } from '../liveness.js'
import { checkSendOptions, checkStoredSchema, resolveChannelOptions, type SendOptions } from '../options.js'
import { checkSubscribeOptions, checkTopicOptions, resolveTopicSizes, topicSchema, type SlowPolicy, type SubscribeOptions, type TopicOptions } from '../topic-options.js'
import { reportError } from '../report.js'
import { channels as diagnostics, observed, report } from '../diagnostics.js'
import type { PatternHost } from './host.js'
import { checkPatternName } from './names.js'
import { Subscription } from './subscription.js'
import { TopicReader } from './topic-reader.js'
import { TopicWriter } from './topic-writer.js'
import type { OpenTopic } from './topics.js'

export { Subscription }
export type { SlowPolicy, SubscribeOptions, TopicOptions }

export interface PubSubStats {
  /** publish() / tryPublish() / publishMany() values this process accepted. */
  published: number
  /** Values this process's 'drop' subscriptions lost to lapping, in total and per topic. */
  dropped: number
  droppedByTopic: Record<string, number>
  /** Slots of dead subscribers this process freed while publishing. */
  reclaimed: number
  /** This process's live subscriptions. */
  subscriptions: Array<{ topic: string; policy: SlowPolicy; slot: number; dropped: number }>
}

export class PubSub {
  private readonly writers = new Map<string, TopicWriter>()
  private readonly subscriptions = new Set<Subscription<any>>()
  private published = 0
  private dropped = 0
  private reclaimed = 0
  private readonly droppedByTopic = new Map<string, number>()

  constructor(private readonly host: PatternHost) {}

  // ============================================================ subscribing

  /**
   * Everything is checked before anything is claimed: the options
   * (InvalidArgType / InvalidArgValue / OutOfRange, see ../options.ts), the
   * topic, the handler. Throws TooManySubscribers when every slot of the
   * topic is held by a live subscription, NotMainThread for the 'signal'
   * doorbell in a worker thread.
   */
  subscribe<T>(topic: string, handler: ((value: T) => unknown) | undefined, options?: SubscribeOptions): Subscription<T> {
    const o = checkSubscribeOptions(options)
    checkPatternName('topic', topic)
    if (handler !== undefined && typeof handler !== 'function') throw new InvalidArgType('handler', 'of type function', handler)
    if (o.signal?.aborted) throw o.signal.reason
    const policy = o.policy ?? 'block'
    const open = this.open(topic, o)
    checkSchema(open, o)
    const ctx = this.host.pattern
    const bell = ownBell(ctx.doorbell, ctx.doorbellSignal, 'receive')
    const sub = open.core.subscribe(selfIdentity(), { policy, bell, history: o.history ?? 0 }, isAlive)
    if (sub === null) throw new TooManySubscribers(topic, open.core.slots)
    // noEcho: this instance's own lane, looked up per record (the lane is claimed on the first publish, maybe after this).
    const ownLane = o.noEcho === true ? () => this.writers.get(topic)?.laneIndex ?? null : undefined
    const zeroCopy = o.zeroCopy === true && handler !== undefined // an iterator's values outlive the call: objects
    const reader = new TopicReader<T>(open, sub, { handler, highWaterMark: o.highWaterMark ?? 1024, ownLane, zeroCopy }, {
      spinMicros: ctx.spinMicros,
      runtimeDir: ctx.runtimeDir,
      codec: open.core.codec,
      retain: () => this.host.retain(),
      release: () => this.host.release(),
      report: (what, err) => reportError(this.host, what, err),
      dropped: (n) => this.countDrop(topic, n, sub.slot),
    }, bell)
    const subscription: Subscription<T> = new Subscription<T>(reader, topic, policy, sub.slot, handler === undefined, o.signal, () => this.subscriptions.delete(subscription))
    this.subscriptions.add(subscription)
    return subscription
  }

  /**
   * bus.topic(): opens the topic, creating it with `options`' sizes and
   * schema if nobody has; SchemaMismatch when it has another schema (or none
   * while one is asked for).
   */
  declare(topic: string, options?: TopicOptions): void {
    const o = checkTopicOptions(options)
    checkPatternName('topic', topic)
    checkSchema(this.open(topic, o), o)
  }

  private countDrop(topic: string, n: number, slot: number): void {
    this.dropped += n
    this.droppedByTopic.set(topic, (this.droppedByTopic.get(topic) ?? 0) + n)
    this.host.emit('drop', { topic, dropped: n, slot, pid: process.pid })
    if (observed(diagnostics.drop)) report(diagnostics.drop, { bus: this.host.pattern.busName, topic, dropped: n, slot })
  }

  // ============================================================ publishing

  /**
   * Writes value once to topic's ring for every subscriber. Resolves with
   * the number of subscriptions the topic had when it was written, once it
   * is written (at once unless a 'block' subscriber is a ring behind).
   * Rejects with Unserializable / MessageTooLarge (nothing written),
   * TooManySenders, Closed, ChannelFull (options.timeout), the abort reason.
   */
  publish(topic: string, value: unknown, options?: SendOptions): Promise<number> {
    try {
      const o = checkSendOptions(options)
      const writer = this.writer(topic)
      const done = writer.publish(value, o)
      this.published++
      return done
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Writes value now; false (nothing written) when a 'block' subscriber has no room. Throws what publish() rejects with. */
  tryPublish(topic: string, value: unknown): boolean {
    const ok = this.writer(topic).tryPublish(value)
    if (ok) this.published++
    return ok
  }

  /** Publishes values in order, in as few bursts as room allows; resolves (with the subscriber count) when the last is written. */
  publishMany(topic: string, values: readonly unknown[], options?: SendOptions): Promise<number> {
    try {
      if (!Array.isArray(values)) throw new InvalidArgType('values', 'an instance of Array', values)
      const o = checkSendOptions(options)
      const done = this.writer(topic).publishMany(values, o)
      this.published += values.length
      return done
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private writer(topic: string): TopicWriter {
    const known = this.writers.get(topic)
    if (known !== undefined) return known
    checkPatternName('topic', topic)
    const ctx = this.host.pattern
    const writer = new TopicWriter(this.open(topic, {}), {
      doorbell: ctx.doorbell,
      doorbellSignal: ctx.doorbellSignal,
      runtimeDir: ctx.runtimeDir,
      report: (what, err) => reportError(this.host, what, err),
      maxMessageBytes: resolveChannelOptions(this.host.pattern.busOptions).maxMessageBytes,
      reclaimed: (slot) => {
        this.reclaimed++
        if (observed(diagnostics.reclaim)) report(diagnostics.reclaim, { bus: ctx.busName, what: 'subscriber', detail: `topic '${topic}' slot ${slot}: its subscriber is dead` })
      },
    })
    this.writers.set(topic, writer)
    return writer
  }

  private open(topic: string, o: TopicOptions): OpenTopic {
    return this.host.pattern.topic(topic, () => resolveTopicSizes(this.host.pattern.busOptions, o))
  }

  // ============================================================ lifecycle

  stats(): PubSubStats {
    return {
      published: this.published,
      dropped: this.dropped,
      droppedByTopic: Object.fromEntries(this.droppedByTopic),
      reclaimed: this.reclaimed,
      subscriptions: [...this.subscriptions].map((s) => ({ topic: s.topic, policy: s.policy, slot: s.slot, dropped: s.dropped })),
    }
  }

  /** Ends every subscription (freeing its slot) and every waiting publish (Closed); gives the lanes back. Called by bus.close(). */
  close(): void {
    for (const sub of [...this.subscriptions]) sub.unsubscribe()
    for (const w of this.writers.values()) w.close()
    this.writers.clear()
  }
}

/** A schema asked for must be the topic's (SchemaMismatch); none asked for takes the topic's. */
function checkSchema(open: OpenTopic, o: TopicOptions): void {
  checkStoredSchema('topic', open.name, open.core.schema, topicSchema(o))
}
