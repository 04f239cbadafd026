/**
 * Pub/sub on the bus: `bus.publish(topic, value)` and `bus.subscribe(topic, ...)`.
 *
 * Design. Every subscription receives on a channel of its own,
 * `t:<topic>:<pid>.<n><b|d>` (see names.ts); the directory's channel
 * table is the list of subscribers. A publisher keeps, per topic, the
 * subscriber channels it found and lists them again only when the
 * directory's channel generation changed (one shared-memory load per
 * publish otherwise). subscribe() creates the channel and claims it before
 * it returns, so every publish that starts after subscribe() returned (in
 * any process) sees the subscriber, and messages from one publisher arrive
 * in publish order (each subscriber has one lane per publishing process).
 *
 * Slow subscribers, chosen per subscription:
 * - 'block' (default): the publisher waits for room (publish() resolves when
 *   the value is in every block subscriber's ring): nothing is lost.
 * - 'drop': the publisher never waits for it; a value that does not fit is
 *   skipped for that subscriber, counted in the publisher's bus.stats()
 *   (`pubsub.dropped`, per topic) and emitted as bus 'drop' {topic,
 *   subscriber, pid}. Drops are counted where they happen: in the publisher.
 *
 * Dead and departed subscribers. A send to a subscriber whose process died
 * fails with PeerGone (within ~200 ms, also while blocked): the publisher
 * removes its directory entry and goes on. unsubscribe() (and bus.close())
 * removes the entry itself. A subscriber channel that stays listed without a
 * receiver for a second while a publisher is blocked on it (its process was
 * killed between releasing and removing it) is removed too: publishing
 * never hangs on a subscriber that is gone.
 */
import type { Channel } from '../channel/channel.js'
import { Closed, InvalidArgType, PeerGone } from '../errors.js'
import { checkSubscribeOptions, type ChannelOptions, type SlowPolicy, type SubscribeOptions } from '../options.js'
import type { PatternHost } from './host.js'
import { checkPatternName, newSubscriberName, parseSubscriber, subscriberPrefix } from './names.js'
import { reportError } from '../report.js'
import { Subscription } from './subscription.js'

export { Subscription }
export type { SlowPolicy, SubscribeOptions }

export interface PubSubStats {
  /** publish() calls made by this process. */
  published: number
  /** Values written into subscriber rings by this process. */
  delivered: number
  /** Values this process skipped for full 'drop' subscribers, in total and per topic. */
  dropped: number
  droppedByTopic: Record<string, number>
  /** Subscribers this process removed because they were gone. */
  removed: number
  /** This process's live subscriptions. */
  subscriptions: Array<{ topic: string; channel: string; policy: SlowPolicy }>
}

/** A subscriber as a publisher sees it. */
interface Target {
  name: string
  pid: number
  drop: boolean
  channel: Channel<unknown>
  /** Aborts this target's blocked sends when it turns out to be gone. */
  abort: AbortController
  blocked: number
  /** When a blocked publisher first saw no receiver (performance.now()), or -1. */
  orphanSince: number
}

interface TopicState {
  generation: number
  targets: Target[]
}

/** How often blocked publishers check that their subscribers are still there. */
const WATCH_MS = 250
/** A listed subscriber channel with no receiver for this long is an orphan. */
const ORPHAN_MS = 1000

export class PubSub {
  private readonly topics = new Map<string, TopicState>()
  private readonly subscriptions = new Set<Subscription<any>>()
  private readonly blocked = new Set<Target>()
  private watch: NodeJS.Timeout | null = null
  private published = 0
  private delivered = 0
  private dropped = 0
  private removed = 0
  private readonly droppedByTopic = new Map<string, number>()

  constructor(private readonly host: PatternHost) {}

  // ============================================================ subscribing

  /**
   * Everything is checked, on every call, before anything is created: the
   * options (InvalidArgType / InvalidArgValue / OutOfRange, see ../options.ts),
   * the topic, the handler; then the channel's sizes against the bus's
   * (bus.channel() checks them before it creates anything).
   */
  subscribe<T>(topic: string, handler: ((value: T) => unknown) | undefined, options?: SubscribeOptions): Subscription<T> {
    options = checkSubscribeOptions(options)
    checkPatternName('topic', topic)
    if (handler !== undefined && typeof handler !== 'function') throw new InvalidArgType('handler', 'of type function', handler)
    const policy = options.policy ?? 'block'
    if (options.signal?.aborted) throw options.signal.reason
    const name = newSubscriberName(this.host, topic, policy)
    const channelOptions: ChannelOptions = { ringBytes: options.ringBytes, maxSenders: options.maxSenders, highWaterMark: options.highWaterMark }
    const channel = this.host.channel<T>(name, channelOptions)
    try {
      if (handler !== undefined) {
        channel.on('message', (value: T) => {
          try {
            const r = handler(value) as { then?: unknown } | undefined
            if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
              (r as Promise<unknown>).then(undefined, (err: unknown) => reportError(this.host, `a subscriber of '${topic}' threw`, err))
            }
          } catch (err) {
            reportError(this.host, `a subscriber of '${topic}' threw`, err)
          }
        })
      }
      const sub: Subscription<T> = new Subscription<T>(channel, topic, policy, handler === undefined, options.signal, () => this.forget(sub))
      this.subscriptions.add(sub)
      return sub
    } catch (err) {
      channel.close()
      this.host.dropChannel(name, { force: true })
      throw err
    }
  }

  /** A subscription ended (its channel is closed): remove the channel from the directory. */
  private forget(sub: Subscription<any>): void {
    if (!this.subscriptions.delete(sub)) return
    try {
      this.host.dropChannel(sub.channelName, { force: true })
    } catch {
      // the bus is closed: nothing to remove from
    }
  }

  // ============================================================ publishing

  /**
   * Writes value to every current subscriber of topic. Resolves with how
   * many received it once it is in every 'block' subscriber's ring (at once
   * when none is full). Rejects with Unserializable / MessageTooLarge
   * (nothing written anywhere: the first encode checks it), TooManySenders,
   * Closed.
   */
  publish(topic: string, value: unknown): Promise<number> {
    try {
      const targets = this.targetsOf(topic)
      this.published++
      if (targets.length === 0) return Promise.resolve(0)
      // Encoded once (Unserializable / MessageTooLarge surface here, before
      // any subscriber got anything), then the same bytes go to every ring.
      let bytes = this.host.encodeValue(value)
      let copied = false
      let written = 0
      let waits: Array<Promise<number>> | null = null
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i]!
        let sent: boolean
        try {
          sent = target.channel.trySendEncoded(bytes)
        } catch (err) {
          if (this.isGone(err)) { this.remove(topic, target); continue }
          throw err
        }
        if (sent) { written++; continue }
        if (target.drop) { this.countDrop(topic, target); continue }
        if (!copied) { bytes = Buffer.from(bytes); copied = true } // outlives the next encode
        ;(waits ??= []).push(this.sendBlocking(topic, target, bytes))
      }
      this.delivered += written
      if (waits === null) return Promise.resolve(written)
      return Promise.all(waits).then((n) => n.reduce((a, b) => a + b, written))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private sendBlocking(topic: string, target: Target, bytes: Uint8Array): Promise<number> {
    target.blocked++
    this.blocked.add(target)
    this.startWatch()
    return target.channel.sendEncoded(bytes, { signal: target.abort.signal }).then(
      () => { this.unblock(target); this.delivered++; return 1 },
      (err: unknown) => {
        this.unblock(target)
        if (this.isGone(err) || target.abort.signal.aborted) { this.remove(topic, target); return 0 }
        throw err
      },
    )
  }

  private unblock(target: Target): void {
    if (--target.blocked === 0) {
      this.blocked.delete(target)
      target.orphanSince = -1
      if (this.blocked.size === 0) this.stopWatch()
    }
  }

  private isGone(err: unknown): boolean {
    return err instanceof PeerGone || err instanceof Closed
  }

  private countDrop(topic: string, target: Target): void {
    this.dropped++
    this.droppedByTopic.set(topic, (this.droppedByTopic.get(topic) ?? 0) + 1)
    this.host.emit('drop', { topic, subscriber: target.name, pid: target.pid })
  }

  /** The topic's subscribers, listed again only when the directory changed. */
  private targetsOf(topic: string): Target[] {
    const generation = this.host.channelGeneration
    let state = this.topics.get(topic)
    if (state !== undefined && state.generation === generation) return state.targets
    checkPatternName('topic', topic)
    const old = new Map((state?.targets ?? []).map((t) => [t.name, t]))
    const targets: Target[] = []
    const now = performance.now()
    for (const name of this.host.channelNames(subscriberPrefix(topic))) {
      const parsed = parseSubscriber(name, topic)
      if (parsed === null) continue
      let target = old.get(name)
      old.delete(name)
      if (target === undefined) {
        const channel = this.host.existingChannel(name)
        if (channel === null) continue // unsubscribed since we listed it
        target = { name, pid: parsed.pid, drop: parsed.drop, channel, abort: new AbortController(), blocked: 0, orphanSince: -1 }
      }
      // A subscriber claims its channel in the same turn it creates it; one
      // that stays without a receiver across a second is an orphan (its
      // process died between leaving and removing it): remove it.
      if (target.channel.receiverPid === null) {
        if (target.orphanSince < 0) target.orphanSince = now
        else if (now - target.orphanSince >= ORPHAN_MS) { this.removed++; this.host.dropChannel(name, { force: true }); this.release(target); continue }
      } else {
        target.orphanSince = -1
      }
      targets.push(target)
    }
    for (const gone of old.values()) this.release(gone) // unsubscribed meanwhile
    if (state === undefined) {
      state = { generation, targets }
      this.topics.set(topic, state)
    } else {
      state.generation = generation
      state.targets = targets
    }
    return targets
  }

  /** A subscriber is gone: remove its entry (if its receiver is dead) and forget it. */
  private remove(topic: string, target: Target): void {
    const state = this.topics.get(topic)
    if (state !== undefined) {
      const i = state.targets.indexOf(target)
      if (i < 0) return // already removed
      state.targets = state.targets.filter((t) => t !== target)
    }
    this.removed++
    try {
      this.host.dropChannel(target.name, { force: target.orphanSince >= 0 })
    } catch {
      // bus closing
    }
    this.release(target)
  }

  private release(target: Target): void {
    if (!target.abort.signal.aborted) target.abort.abort(new Closed(`subscriber '${target.name}'`))
    if (!target.channel.isReceiving) target.channel.close() // (our own subscription closes itself)
  }

  /** While a publisher waits on a 'block' subscriber, checks that it is still there. */
  private startWatch(): void {
    if (this.watch !== null) return
    this.watch = setInterval(() => this.check(), WATCH_MS)
    this.watch.unref()
  }

  private stopWatch(): void {
    if (this.watch !== null) clearInterval(this.watch)
    this.watch = null
  }

  private check(): void {
    const now = performance.now()
    for (const target of [...this.blocked]) {
      const listed = this.host.channelNames(target.name).includes(target.name)
      if (listed && target.channel.receiverPid !== null) { target.orphanSince = -1; continue }
      if (listed && target.orphanSince < 0) { target.orphanSince = now; continue }
      if (listed && now - target.orphanSince < ORPHAN_MS) continue
      if (listed) this.host.dropChannel(target.name, { force: true })
      target.abort.abort(new Closed(`subscriber '${target.name}'`)) // its sends reject; sendBlocking removes it
    }
  }

  // ============================================================ lifecycle

  stats(): PubSubStats {
    return {
      published: this.published,
      delivered: this.delivered,
      dropped: this.dropped,
      droppedByTopic: Object.fromEntries(this.droppedByTopic),
      removed: this.removed,
      subscriptions: [...this.subscriptions].map((s) => ({ topic: s.topic, channel: s.channelName, policy: s.policy })),
    }
  }

  /** Ends every subscription (removing its channel) and every blocked publish (Closed). Called by bus.close(). */
  close(): void {
    this.stopWatch()
    for (const sub of [...this.subscriptions]) sub.unsubscribe()
    for (const state of this.topics.values()) for (const t of state.targets) this.release(t)
    this.topics.clear()
  }
}
