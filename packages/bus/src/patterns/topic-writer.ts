/**
 * This bus instance's publishing side of one topic: its lane (claimed on
 * the first publish), batched publishing (one store of WRITE per burst,
 * whatever the number of subscribers), ringing the subscribers that parked
 * (once per burst, @ipc/core TopicPublisher.subscribersToRing), and the
 * queue of publishes waiting for room while a 'block' subscriber is a ring
 * behind: they sleep on the room doorbell, and every ROOM_RECHECK_MS the
 * subscribers that block them are checked for liveness, a dead one's slot
 * freed (so a killed subscriber never holds publishers up for longer).
 * A topic with a schema (its segment's) has its values encoded by the
 * generated code straight into the lane (TopicPublisher.trySendSchema);
 * larger than a record they go as fragments, as msgpack values do.
 */
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { TYPE_SCHEMA, TYPE_VALUE, fragmentBytes, identityWord, readBell, type Schema, type TopicPublisher, type TopicWake } from '@ipc/core'
import { ring } from '../doorbell.js'
import { nextRecordBytes, stageTopicFragments, trySendManySchema } from '../channel/fragments.js'
import { PublishBatch } from '../channel/pacing.js'
import { RoomWait, WaitQueue } from '../channel/room.js'
import { ChannelFull, Closed, MessageTooLarge, TooManySenders } from '../errors.js'
import { cancelRelease, releaseOnTerminate } from '../exit.js'
import { prefaultRing } from '../prefault.js'
import { isAlive, selfIdentity } from '../liveness.js'
import type { DoorbellKind, SendOptions } from '../options.js'
import type { OpenTopic } from './topics.js'

/** How often a publisher sleeping for room looks again, and checks that its blockers live (ms). */
const ROOM_RECHECK_MS = Number(process.env.IPC_BUS_ROOM_RECHECK_MS ?? 200) || 200
/** Event-loop turns a blocked publisher looks again before it sleeps, when there is a core to spare. */
const SPIN_TURNS = 32
const CORES = availableParallelism()
/**
 * Most messages a burst stages before publishing them; how many such
 * publishes in a row may skip ringing parked subscribers is RING_EVERY
 * (../channel/pacing.ts, which says when the rest ring). Measured on 2
 * cores, 4 and 8 subscriber processes (docs/design.md, "Pub/sub on
 * topics"): 256 and 16 beat 64 and 1 by about a fifth, since each ring is a
 * system call that wakes another CPU and, with more processes than cores,
 * hands this one's CPU to the subscriber. The environment variables are
 * internal tuning knobs for the bench.
 */
const PUBLISH_EVERY = Number(process.env.IPC_BUS_PUBLISH_EVERY ?? 256) || 256

export interface WriterContext {
  readonly doorbell: DoorbellKind
  readonly doorbellSignal: number
  readonly runtimeDir: string
  /** A ring after a burst failed unexpectedly (the messages are published). */
  report(what: string, err: unknown): void
  /** A dead subscriber's slot was freed by this writer. */
  reclaimed(slot: number): void
  /** The bus's maxMessageBytes: larger than a record, a message travels as fragments. */
  readonly maxMessageBytes: number
}

export class TopicWriter {
  private publisher: TopicPublisher | null = null
  private closed = false
  private readonly waiters = new WaitQueue<number>()
  private flushing = false
  private readonly room: RoomWait
  private laneRelease: number | null = null
  private checkedBlockersAt = -Infinity
  /** Batched commits and when they ring parked subscribers (../channel/pacing.ts). */
  private readonly batch = new PublishBatch({
    publish: () => this.publisher!.publish(),
    ring: () => this.ringParked(),
    live: () => this.publisher !== null && !this.closed,
  }, PUBLISH_EVERY, true)
  /** The topic's schema (stored in its segment), or null: msgpack. */
  private readonly schema: Schema | null
  /** Record type of this topic's values. */
  private readonly type: number

  constructor(private readonly topic: OpenTopic, private readonly ctx: WriterContext) {
    this.room = new RoomWait(topic.token, ctx.doorbell, ctx.doorbellSignal, ctx.runtimeDir)
    this.schema = topic.core.schema
    this.type = this.schema === null ? TYPE_VALUE : TYPE_SCHEMA
  }

  /** The lane this writer holds, null before its first publish (subscriptions with noEcho skip it). */
  get laneIndex(): number | null {
    return this.publisher?.lane ?? null
  }

  /**
   * Writes value now (false when a 'block' subscriber has no room, or earlier
   * publishes still wait). A message larger than a record is never written
   * here (false): publish() writes its fragments as room appears.
   */
  tryPublish(value: unknown): boolean {
    return this.write(value) === true
  }

  /** tryPublish(), or the encoded bytes of a message larger than a record (for publish() to queue without encoding again). */
  private write(value: unknown): boolean | Buffer {
    const p = this.lane()
    if (this.waiters.length > 0) {
      this.encodeCopy(value) // still report bad input at once
      return false
    }
    const schema = this.schema
    let written: boolean
    try {
      written = schema === null ? p.trySend(value, TYPE_VALUE, false) : p.trySendSchema(schema, value, TYPE_SCHEMA, false)
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err
      this.checkSize(err.bytes)
      return schema === null ? this.topic.core.codec.copyLastEncoded() : schema.encodeToBuffer(value)
    }
    if (!written) {
      this.batch.publishAndRing() // full: let the subscribers see what is already written
      return false
    }
    this.batch.add()
    return true
  }

  /** Resolves with the number of subscribers once value is in the ring. `options` are checked already. */
  publish(value: unknown, options: SendOptions): Promise<number> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason) // as Node's own APIs: nothing is written
    const r = this.write(value)
    if (r === true) return Promise.resolve(this.publisher!.subscriberCount())
    return this.enqueue(r === false ? this.encodeCopy(value) : r, options)
  }

  /** Every value is encoded before the first is queued; what has room is written in one burst. */
  publishMany(values: readonly unknown[], options: SendOptions): Promise<number> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason)
    const p = this.lane()
    let written = 0
    if (this.waiters.length === 0) {
      try {
        written = this.schema === null ? p.trySendMany(values, TYPE_VALUE) : trySendManySchema(p, p.maxMessageBytes, this.schema, values)
      } catch (err) {
        // One is larger than a record: nothing of the batch was written; all go through the queue, in order.
        if (!(err instanceof MessageTooLarge)) throw err
      }
      this.batch.after('burst', written)
      if (written === values.length) return Promise.resolve(p.subscriberCount())
    }
    const rest = values.slice(written).map((v) => this.encodeCopy(v))
    return Promise.all(rest.map((bytes) => this.enqueue(bytes, options))).then((n) => n[n.length - 1]!)
  }

  /** Largest message: the bus's, once the topic's records can carry fragments; else a record. */
  private get maxMessageBytes(): number {
    const record = this.topic.core.maxMessageBytes
    return fragmentBytes(record) > 0 ? Math.max(record, this.ctx.maxMessageBytes) : record
  }

  private checkSize(length: number): void {
    const max = this.maxMessageBytes
    if (length > max) throw new MessageTooLarge(length, max)
  }

  private encodeCopy(value: unknown): Buffer {
    const bytes = this.schema === null ? this.topic.core.codec.pack(value) : this.schema.encodeToBuffer(value)
    this.checkSize(bytes.length)
    return bytes
  }

  private lane(): TopicPublisher {
    if (this.closed) throw new Closed(`topic '${this.topic.name}'`)
    if (this.publisher !== null) return this.publisher
    const core = this.topic.core
    const p = core.claimLane(selfIdentity(), isAlive)
    if (p === null) throw new TooManySenders(this.topic.name, core.lanes, 'topic')
    this.publisher = p
    this.laneRelease = releaseOnTerminate(this.topic.token, core.laneOwnerOffset(p.lane), 8, identityWord(selfIdentity()), 0n)
    prefaultRing(p.data) // the ring's first lap then takes no page faults (../prefault.ts)
    // The hello (../owner-watch.ts): subscribers that parked before this
    // claim do not watch this process for its exit yet; woken, they do.
    this.ringAll(p.parkedSubscribers())
    return p
  }

  /** Rings each subscriber that parked (won by CAS: once per park). */
  private ringParked(): void {
    this.ringAll(this.publisher!.subscribersToRing())
  }

  private ringAll(wakes: readonly TopicWake[]): void {
    if (wakes.length === 0) return
    const now = performance.now()
    for (const w of wakes) {
      const bell = readBell(w.bell)
      if (bell === null) continue // joining: it drains once set up
      try {
        ring({ pid: w.pid, startTime: w.startTime, bell }, this.topic.token, this.ctx.runtimeDir, now)
      } catch (err) {
        this.ctx.report(`topic '${this.topic.name}' could not ring a subscriber (pid ${w.pid})`, err)
      }
    }
  }

  private enqueue(bytes: Buffer, options: SendOptions): Promise<number> {
    return this.waiters.add(bytes, this.type, options, () => { if (!this.flushing) void this.flush() })
  }

  /** Writes queued publishes in order as room appears; checks deadlines, aborts and the liveness of blockers. */
  private async flush(): Promise<void> {
    this.flushing = true
    let turns = 0
    try {
      for (;;) {
        const now = performance.now()
        if (this.closed) return this.waiters.failAll(new Closed(`topic '${this.topic.name}'`))
        const head = this.waiters.head(now, (timeout) => new ChannelFull(`T:${this.topic.name}`, timeout))
        if (head === undefined) return
        const p = this.publisher!
        const record = this.topic.core.maxMessageBytes
        if (head.bytes.length > record) {
          const before = head.sent
          if (stageTopicFragments(p, record, head)) {
            p.publish()
            this.batch.after('now')
            if (head.sent === head.bytes.length) this.waiters.done(p.subscriberCount())
            turns = 0
            continue
          }
          if (head.sent !== before) { turns = 0; continue }
        } else if (p.tryWrite(head.bytes, head.type)) {
          this.batch.after('now')
          this.waiters.done(p.subscriberCount())
          turns = 0
          continue
        }
        if (now - this.checkedBlockersAt >= ROOM_RECHECK_MS) {
          this.checkedBlockersAt = now
          if (this.reclaimDeadBlockers(p)) continue
        }
        // A draining subscriber frees room within microseconds: look again
        // for a few event-loop turns while publisher and subscribers fit the
        // cores, then sleep on the room doorbell (ROOM_WANTED).
        if (turns++ < (this.topic.core.lanesUsed() + 1 <= CORES ? SPIN_TURNS : 0)) {
          await new Promise((r) => setImmediate(r))
          continue
        }
        turns = 0
        this.room.ensure((bell) => this.topic.core.setLaneBell(p.lane, selfIdentity(), bell))
        if (!p.waitForRoom(nextRecordBytes(head, record))) continue // room appeared meanwhile
        await this.room.sleep(Math.max(0, Math.min(head.deadline - now, ROOM_RECHECK_MS)), head.signal)
        p.cancelRoomWait()
      }
    } finally {
      this.flushing = false
    }
  }

  /** Frees the slots of the dead subscribers that hold this lane up; true when one was freed. */
  private reclaimDeadBlockers(p: TopicPublisher): boolean {
    let freed = false
    for (const slot of p.blockers()) {
      if (this.topic.core.reclaimSubscriber(slot, isAlive)) {
        freed = true
        this.ctx.reclaimed(slot)
      }
    }
    return freed
  }

  /** Publishes what was accepted, fails waiting publishes with Closed, gives the lane back. */
  close(): void {
    if (this.closed) return
    this.batch.finish()
    this.closed = true
    this.waiters.failAll(new Closed(`topic '${this.topic.name}'`))
    this.room.close()
    if (this.publisher !== null) {
      this.topic.core.releaseLane(this.publisher, selfIdentity())
      this.publisher = null
      cancelRelease(this.laneRelease)
      this.laneRelease = null
    }
  }
}
