/**
 * One subscription's receiving side: its slot in the topic's subscriber
 * table (@ipc/core TopicSubscriber), the run loop that drains every lane
 * into the consumer (a handler, or a `for await` iterator), parking on the
 * slot's own parked word, the drops a lapped 'drop' subscriber counts, and
 * the room doorbell it rings for publishers it freed. The same waiting
 * rules as a channel's receiver (../channel/idle.ts): drain, spin
 * spinMicros, park, watching the publishers' exits (../owner-watch.ts);
 * a backstop looks at the lanes while parked (off with
 * IPC_BUS_BACKSTOP=off in tests). Schema records are decoded with the
 * topic's schema into a new object, or (zeroCopy) into one reused view.
 */
import { CorruptSegment, MAX_MESSAGE_LIMIT, Reassembler, TYPE_FRAGMENT, TYPE_SCHEMA, TYPE_VALUE, type Codec, type SchemaView, type TopicSubscriber } from '@ipc/core'
import { allocPooled } from '@ipc/native'
import { registerSleeper, unregisterSleeper, type Sleeper } from '../doorbell.js'
import { cancelRelease, releaseOnTerminate } from '../exit.js'
import { lanesAheadOf, type LanesAhead } from '../prefault.js'
import { Backstop, Continuation, IdleStrategy, MAX_PER_RUN, backstopOn, type Pull } from '../channel/idle.js'
import { OwnerWatch } from '../owner-watch.js'
import { ringForRoom } from '../channel/room.js'
import type { BellAddress } from '@ipc/core'
import type { OpenTopic } from './topics.js'

/** Most records one drain takes from one lane, so a busy lane cannot starve the others. */
const MAX_PER_LANE = 256

/** What a reader needs from its bus: doorbell settings, keeping the loop alive, reporting. */
export interface ReaderContext {
  readonly spinMicros: number | 'adaptive'
  readonly runtimeDir: string
  readonly codec: Codec
  retain(): void
  release(): void
  /** A consumer threw, or draining failed (a corrupt segment): reported as the bus's 'error'. */
  report(what: string, err: unknown): void
  /** A lapped 'drop' subscriber lost `n` messages. */
  dropped(n: number): void
}

/** Who gets the values: a handler, or (without one) the iterator's queue. */
export interface Consumer<T> {
  /** Called with each value; a throw is reported, never stops delivery. */
  handler: ((value: T) => unknown) | undefined
  highWaterMark: number
  /** noEcho: the lane this bus instance publishes on (null while it has not), whose records are skipped. */
  ownLane?: () => number | null
  /** Schema values go to the handler as one reused view, valid during the call (never set for an iterator). */
  zeroCopy?: boolean
}

export class TopicReader<T> {
  private receiving = true
  private scheduled = false
  private parked = false
  private draining = false
  private releasePending = false
  private readonly queue: T[] = []
  private readonly pulls: Array<Pull<T>> = []
  private readonly sleeper: Sleeper = { wake: () => this.wake() }
  private readonly continuation: Continuation
  private readonly idle: IdleStrategy
  private readonly backstop: Backstop
  /** The publishers this subscription watches for their exit while parked (../owner-watch.ts). */
  private readonly owners: OwnerWatch
  /** The lanes whose rings this process has mapped ahead, shared by the topic's subscriptions (../prefault.ts). */
  private readonly ahead: LanesAhead
  /** In a worker thread: the native exit actions that free the slot if the thread is terminated. */
  private readonly exitActions: Array<number | null>
  private readonly deliver = (data: Buffer, start: number, end: number, type: number, lane: number): void => {
    if (this.consumer.ownLane !== undefined && this.consumer.ownLane() === lane) return // noEcho: not decoded, not delivered
    if (type === TYPE_FRAGMENT) {
      // A message larger than a record (docs/design.md, "Large messages"):
      // delivered whole with its last fragment; one cut by a lap is dropped.
      const whole = this.reassembler.accept(lane, data, start, end)
      if (whole === null) return
      this.onValue(this.reassembler.completedType === TYPE_SCHEMA ? this.decodeSchema(whole, 0, whole.length) : this.ctx.codec.decode(whole, 0, whole.length) as T)
      return
    }
    if (this.reassembler.pendingCount > 0) this.reassembler.whole(lane)
    this.onValue(type === TYPE_SCHEMA ? this.decodeSchema(data, start, end) : this.ctx.codec.decode(data, start, end) as T)
  }

  /**
   * A msgpack value of a batch the subscriber decoded in one call (core
   * TopicSubscriber.drain): the checks deliver() makes for a record.
   */
  private readonly deliverValue = (value: unknown, _type: number, lane: number): void => {
    if (this.consumer.ownLane !== undefined && this.consumer.ownLane() === lane) return // noEcho
    if (this.reassembler.pendingCount > 0) this.reassembler.whole(lane)
    this.onValue(value as T)
  }

  /**
   * A schema record (a copy out of the ring: the subscriber's batch buffer,
   * or a reassembled message) decoded into a new object or, with zeroCopy,
   * wrapped by the one flyweight view, valid until the handler returns (the
   * next record reuses it; the buffer is overwritten by the next batch).
   */
  private decodeSchema(data: Buffer, start: number, end: number): T {
    const schema = this.topic.core.schema
    if (schema === null) throw new CorruptSegment(`topic '${this.topic.name}' record type`, TYPE_SCHEMA, 'is a schema record in a topic without a schema')
    if (data !== this.viewOf) {
      this.viewOf = data
      this.dataView = new DataView(data.buffer, data.byteOffset, data.length)
    }
    if (this.consumer.zeroCopy === true) return (this.flyweight ??= schema.newView()).wrap(data, this.dataView!, start, end) as T
    return schema.decode(data, this.dataView!, start, end) as T
  }

  /** The buffer dataView covers (the batch buffer, reused for every batch). */
  private viewOf: Buffer | null = null
  private dataView: DataView | null = null
  private flyweight: SchemaView | null = null
  /**
   * Messages in the making, one per lane. Their size is bounded by each
   * publisher's own maxMessageBytes (topics do not store one): a subscriber
   * takes any size up to the format's limit.
   */
  private readonly reassembler: Reassembler

  /** Messages larger than a record that this subscription dropped unfinished (a lap cut them, or their publisher left mid-message). */
  get abandoned(): number {
    return this.reassembler.abandoned
  }

  /**
   * `sub` has joined already with `bell`, under which this reader was
   * registered (PubSub.subscribe registers, then joins, then builds this).
   */
  constructor(
    private readonly topic: OpenTopic,
    private readonly sub: TopicSubscriber,
    private readonly consumer: Consumer<T>,
    private readonly ctx: ReaderContext,
    bell: BellAddress,
  ) {
    try {
      registerSleeper(this.sleeper, topic.token, bell, ctx.runtimeDir) // the signal handler or FIFO: before the first park
    } catch (err) {
      sub.release()
      throw err
    }
    this.exitActions = sub.releaseSteps().map((s) => releaseOnTerminate(topic.token, s.offset, s.width, s.expected, s.desired))
    this.reassembler = new Reassembler(topic.core.lanes, MAX_MESSAGE_LIMIT, allocPooled)
    this.idle = new IdleStrategy(ctx.spinMicros)
    this.continuation = new Continuation(this.idle.fixedMicros)
    // Woken without a ring: the backstop found data the doorbell did not
    // announce, or a publisher exited (it may have committed and died before ringing).
    const look = (): void => {
      if (!this.parked || !this.receiving) return
      sub.wake()
      this.wake()
    }
    this.backstop = new Backstop(sub, look)
    this.owners = new OwnerWatch(look)
    this.ahead = lanesAheadOf(topic.core, (i) => topic.core.views[i]!.data)
    ctx.retain()
    this.schedule()
  }

  get active(): boolean {
    return this.receiving
  }

  /** Messages this subscription lost to lapping so far. */
  dropped = 0

  /** Whether a record taken off the ring now reaches the consumer. */
  private canTake(): boolean {
    if (!this.receiving) return false
    if (this.consumer.handler !== undefined) return true
    return this.pulls.length > 0 || this.queue.length < this.consumer.highWaterMark
  }

  private schedule(): void {
    if (this.scheduled || !this.receiving) return
    this.scheduled = true
    setImmediate(this.run)
  }

  private readonly run = (): void => {
    this.scheduled = false
    if (!this.canTake()) return // next() or close() take it from here
    let n = 0
    for (;;) {
      const got = this.drainOnce()
      n += got
      if (got === 0 || n >= MAX_PER_RUN || !this.canTake()) break
    }
    this.idle.ran(n)
    if (!this.canTake()) return
    if (n > 0) {
      const lone = this.idle.afterDelivery(n) // called on every such run: it times the gaps between them
      if (!lone || n >= MAX_PER_LANE || this.reassembler.pendingCount > 0) return this.continueSoon(n)
    } else if (this.idle.spin(this.sub)) {
      this.idle.sawData()
      return this.continueSoon(this.drainOnce())
    }
    if (this.sub.park()) {
      // After PARKED: watch the publishers (one claiming a lane after this rings its hello).
      const core = this.topic.core
      const used = core.lanesUsed()
      this.ahead.catchUp(used) // new lanes' rings mapped now (../prefault.ts)
      const owners = this.owners.scan(used, (i) => core.laneOwner(i))
      if (owners === 'look') {
        this.sub.wake()
        return this.schedule() // a publisher died unseen: what it committed may be unrung
      }
      this.parked = true
      if (backstopOn()) this.backstop.arm(owners === 'watched')
      return
    }
    this.schedule()
  }

  private continueSoon(delivered: number): void {
    if (this.scheduled || !this.receiving) return
    this.scheduled = true
    this.continuation.next(delivered, this.run)
  }

  private drainOnce(): number {
    let n = 0
    this.draining = true
    try {
      n = this.sub.drain(this.deliver, MAX_PER_LANE, this.deliverValue, TYPE_VALUE)
    } catch (err) {
      this.draining = false
      this.fail(err)
      return 0
    } finally {
      this.draining = false
      if (this.releasePending) {
        this.releasePending = false
        this.releaseSlot()
      }
    }
    const lost = this.sub.takeLost()
    if (lost > 0) {
      this.dropped += lost
      this.ctx.dropped(lost)
    }
    if (this.sub.roomWanted.length > 0) ringForRoom(this.sub.roomWanted, (lane) => this.topic.core.laneOwnerBell(lane), this.topic.token, this.ctx.runtimeDir) // wakes the writers waiting for the room it freed
    return n
  }

  private wake(): void {
    if (!this.parked) return // a late or spurious ring: we are already running
    this.parked = false
    if (!this.scheduled) this.run()
  }

  private onValue(v: T): void {
    const handler = this.consumer.handler
    if (handler !== undefined) {
      try {
        const r = handler(v) as { then?: unknown } | undefined
        if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
          (r as Promise<unknown>).then(undefined, (err: unknown) => this.ctx.report(`a subscriber of '${this.topic.name}' threw`, err))
        }
      } catch (err) {
        this.ctx.report(`a subscriber of '${this.topic.name}' threw`, err)
      }
    } else {
      const pull = this.pulls.shift()
      if (pull !== undefined) pull.resolve({ value: v, done: false })
      else this.queue.push(v)
    }
    if (!this.canTake()) this.sub.haltDrain() // the rest stays in the ring
  }

  private fail(err: unknown): void {
    for (const p of this.pulls.splice(0)) p.reject(err)
    this.close()
    this.ctx.report(`a subscription to '${this.topic.name}' stopped receiving`, err)
  }

  /** The iterator's next(): a queued value, or wait for one; done once closed. */
  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift()!
      if (!this.draining && !this.parked) this.schedule()
      return Promise.resolve({ value, done: false })
    }
    if (!this.receiving) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => {
      this.pulls.push({ resolve, reject })
      if (!this.draining && !this.parked) this.schedule()
    })
  }

  /** Gives the slot back, then drops the exit actions that would have (in that order). */
  private releaseSlot(): void {
    this.sub.release()
    for (const a of this.exitActions) cancelRelease(a)
  }

  /**
   * Stops receiving and gives the slot back (after a drain in progress has
   * stored its cursors): publishers stop gating on it at once. Values
   * still in the ring are not delivered; pending next() calls end.
   */
  close(): void {
    if (!this.receiving) return
    this.receiving = false
    this.parked = false
    unregisterSleeper(this.topic.token, this.sleeper)
    this.backstop.disarm()
    this.owners.close()
    if (this.draining) {
      this.sub.haltDrain()
      this.releasePending = true // the exit actions stay until then: a terminate() before it still frees the slot
    } else {
      this.releaseSlot()
    }
    this.queue.length = 0
    for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true })
    this.ctx.release()
  }
}
