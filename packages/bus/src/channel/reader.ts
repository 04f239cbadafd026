/**
 * The receiving side of a channel in this process: the receiver claim, the
 * run loop that drains the lanes into the consumers ('message' listeners, a
 * `for await` iterator), and the rule that keeps delivery lossless: never
 * take a record off the ring that no consumer will get (docs/design.md,
 * "Receiving"). Waiting is the idle strategy's (idle.ts).
 */
import { CHANNEL_RECEIVER, CorruptSegment, Reassembler, Views, copyOut, TYPE_BYTES, TYPE_FRAGMENT, TYPE_SCHEMA, identityWord, type ChannelSegment, type Codec, type Identity, type SchemaView } from '@ipc/core'
import { allocPooled } from '@ipc/native'
import { ownBell, registerSleeper, unregisterSleeper, type Sleeper } from '../doorbell.js'
import { ChannelBusy, Closed } from '../errors.js'
import { channels as diagnostics, observed, report, trace, tracing } from '../diagnostics.js'
import { cancelRelease, releaseOnTerminate } from '../exit.js'
import { isAlive, selfIdentity } from '../liveness.js'
import type { ChannelContext, ChannelParts } from './context.js'
import { Backstop, Continuation, IdleStrategy, MAX_PER_RUN, backstopOn, type Pull } from './idle.js'
import { OwnerWatch } from '../owner-watch.js'
import { LanesAhead } from '../prefault.js'
import { ringForRoom } from './room.js'

/** Most records one drain takes from one lane, so a busy lane cannot starve the others. */
const MAX_PER_LANE = 256

/** The channel's consumers, as the reader sees them. */
export interface Consumers<T> {
  /** The 'message' listeners as stored (once-wrappers included). */
  listeners(): ReadonlyArray<(value: T) => void>
  /** Calls a listener (with the channel as `this`). */
  call(listener: (value: T) => void, value: T): void
  report(what: string, err: unknown): void
}

export class ChannelReader<T> {
  private receiving = false
  private closed = false
  private scheduled = false
  private paused = false
  private parked = false
  /** True while segment.drain() runs (consumers may stop receiving from inside it). */
  private draining = false
  /** Stopped during a drain: give the claim back once the drain has stored its read positions. */
  private releasePending = false
  private iterating = false
  private readonly queue: T[] = []
  private readonly pulls: Array<Pull<T>> = []
  private readonly sleeper: Sleeper = { wake: () => this.wake() }
  private readonly continuation: Continuation
  private readonly idle: IdleStrategy
  private readonly backstop: Backstop
  /** In a worker thread: the native exit action that gives the claim back if the thread is terminated. */
  private receiverRelease: number | null = null
  /**
   * Decodes values in place; raw bytes are copied out of the ring, or, with
   * zeroCopy, handed over as a view of it. Bound once: no closure per drain.
   */
  private readonly views = new Views()
  private readonly deliver = (data: Buffer, start: number, end: number, type: number, view: DataView): void => {
    if (type === TYPE_FRAGMENT) return this.deliverFragment(data, start, end)
    if (this.reassembler.pendingCount > 0) this.reassembler.whole(this.segment.drainingLane) // its sender gave the lane up mid-message
    if (type === TYPE_SCHEMA) return this.deliverSchema(data, start, end, view)
    if (type === TYPE_BYTES && this.zeroCopy && !this.iterating) {
      this.onRecord(this.views.of(data, start, end) as T) // a view: the record stays unread until the batch ends
      return
    }
    const value = (type !== TYPE_BYTES ? this.codec.decode(data, start, end) : copyOut(data, start, end)) as T
    // Copied out: mark it read before user code runs, so that a receiver
    // killed in a listener loses at most that message and never hands the
    // next receiver one it already delivered.
    this.segment.consumeCurrent()
    this.onRecord(value)
  }

  /**
   * Schema records: decoded into a new object, or with zeroCopy (and no
   * iterator) handed over as the channel's one flyweight view, valid during
   * the listener call (the record stays unread until the batch ends).
   */
  private deliverSchema(data: Buffer, start: number, end: number, view: DataView): void {
    const schema = this.segment.schema
    if (schema === null) throw new CorruptSegment(`channel '${this.name}' record type`, TYPE_SCHEMA, 'is a schema record in a channel without a schema')
    if (this.zeroCopy && !this.iterating) {
      this.onRecord((this.flyweight ??= schema.newView()).wrap(data, view, start, end) as T)
      return
    }
    const value = schema.decode(data, view, start, end) as T
    this.segment.consumeCurrent()
    this.onRecord(value)
  }

  /**
   * A fragment of a message larger than a record: copied into the lane's
   * message in the making (its own Buffer, so it is read at once); the
   * whole message goes to the consumers with the last one. Raw bytes are
   * handed over as that Buffer, zeroCopy or not.
   */
  private deliverFragment(data: Buffer, start: number, end: number): void {
    const whole = this.reassembler.accept(this.segment.drainingLane, data, start, end)
    this.segment.consumeCurrent()
    if (whole === null) return
    const type = this.reassembler.completedType
    let value: unknown
    if (type === TYPE_BYTES && this.zeroCopy && !this.iterating) {
      // Lent for the listener call, as zeroCopy views of the ring are: its
      // memory takes the lane's next large message (no fresh pages to fault in).
      const lane = this.segment.drainingLane
      this.onRecord(whole as T)
      this.reassembler.recycle(lane, whole)
      return
    }
    if (type === TYPE_BYTES) value = whole
    else if (type === TYPE_SCHEMA) {
      const schema = this.segment.schema
      if (schema === null) throw new CorruptSegment(`channel '${this.name}' record type`, TYPE_SCHEMA, 'is a schema message in a channel without a schema')
      value = schema.decode(whole, new DataView(whole.buffer, whole.byteOffset, whole.length), 0, whole.length)
    } else value = this.codec.decode(whole, 0, whole.length)
    this.onRecord(value as T)
  }

  /**
   * With messages in the making, before parking: a lane whose owner left
   * (released it, or died) with nothing of it unread will not finish its
   * message; drop it now rather than hold its bytes until the lane's next
   * record. The lane is looked at after its owner (core laneDeserted): the
   * drain that came back empty was before both, and an owner may have
   * written the rest, and released, since.
   */
  private dropOrphans(): void {
    for (const lane of this.reassembler.pendingLanes()) {
      if (this.segment.laneDeserted(lane, isAlive)) this.reassembler.abandon(lane)
    }
  }

  /** Messages larger than a record that this process's receiver dropped unfinished (see stats()). */
  get abandoned(): number {
    return this.reassembler.abandoned
  }

  private flyweight: SchemaView | null = null
  private readonly reassembler: Reassembler
  private readonly name: string
  private readonly segment: ChannelSegment
  private readonly token: number
  private readonly codec: Codec
  private readonly ctx: ChannelContext

  constructor(
    parts: ChannelParts,
    private readonly consumers: Consumers<T>,
    private readonly highWaterMark: number,
    private readonly zeroCopy: boolean,
  ) {
    ({ name: this.name, segment: this.segment, token: this.token, codec: this.codec, ctx: this.ctx } = parts)
    const { ctx, segment } = parts
    this.reassembler = new Reassembler(segment.lanes, segment.maxMessageBytes, allocPooled)
    this.idle = new IdleStrategy(ctx.spinMicros)
    this.continuation = new Continuation(this.idle.fixedMicros)
    this.backstop = new Backstop(segment, () => {
      if (!this.parked || !this.receiving) return
      segment.countRescue() // a wakeup the doorbell did not deliver
      this.wake()
    })
    this.owners = new OwnerWatch(() => this.wake()) // a sender exited: it may have committed and died before ringing
    this.ahead = new LanesAhead((i) => segment.laneData(i))
  }

  /** The senders this receiver watches for their exit while parked (../owner-watch.ts). */
  private readonly owners: OwnerWatch
  /** The lanes whose rings this receiver has mapped ahead (../prefault.ts). */
  private readonly ahead: LanesAhead

  get isReceiving(): boolean {
    return this.receiving
  }

  get isPaused(): boolean {
    return this.paused
  }

  /**
   * Starts receiving (on the first 'message' listener or iterator): makes
   * sure this instance can be woken (signal handler or FIFO), then claims
   * the receiver and publishes its doorbell address with the claim. Throws
   * ChannelBusy if another live receiver holds it (another process, or
   * another bus instance or thread of this one), NotMainThread for the
   * 'signal' doorbell in a worker, or the doorbell's error; nothing stays
   * claimed or registered when it throws.
   */
  start(): void {
    if (this.closed) throw new Closed(`channel '${this.name}'`)
    if (this.receiving) return
    const bell = ownBell(this.ctx.doorbell, this.ctx.doorbellSignal, 'receive')
    registerSleeper(this.sleeper, this.token, bell, this.ctx.runtimeDir)
    let holder: Identity | null
    try {
      holder = this.segment.claimReceiverWithBell(selfIdentity(), bell, isAlive)
    } catch (err) {
      unregisterSleeper(this.token, this.sleeper)
      throw err
    }
    if (holder !== null) {
      unregisterSleeper(this.token, this.sleeper)
      throw new ChannelBusy(this.name, holder.pid)
    }
    this.receiving = true
    if (observed(diagnostics.claim)) report(diagnostics.claim, { bus: this.ctx.busName, channel: this.name, pid: process.pid, role: 'receiver' })
    this.ahead.catchUp(this.segment.lanesInUse)
    this.releasePending = false
    this.parked = false
    cancelRelease(this.receiverRelease) // one left from a stop() whose release was still pending
    this.receiverRelease = releaseOnTerminate(this.token, CHANNEL_RECEIVER, 8, identityWord(selfIdentity()), 0n)
    this.ctx.retain()
    this.schedule()
  }

  /**
   * Stops receiving (the last consumer went, close(), or a failure): no
   * record is taken off the ring any more, and the receiver claim is given
   * back, so that another process, or a later listener here, gets every
   * message not yet delivered, in order.
   */
  stop(): void {
    if (!this.receiving) return
    this.receiving = false
    this.parked = false
    // The fragments taken so far are off the ring: the next receiver skips
    // the rest of such a message (counted as abandoned, never delivered in part).
    this.reassembler.abandonAll()
    this.reassembler.dropSpares()
    unregisterSleeper(this.token, this.sleeper)
    this.backstop.disarm()
    this.owners.close()
    if (this.draining) {
      this.segment.haltDrain()
      this.releasePending = true // after the drain has stored its read positions (the exit action stays until then)
    } else {
      this.releaseClaim()
    }
    this.ctx.release()
  }

  /** Gives the receiver claim back, then drops the exit action that would have (in that order). */
  private releaseClaim(): void {
    this.segment.releaseReceiver(selfIdentity())
    cancelRelease(this.receiverRelease)
    this.receiverRelease = null
  }

  /** The consumers changed (a listener added or removed): stop when none is left, else take what waits. */
  consumersChanged(): void {
    if (this.consumers.listeners().length === 0 && !this.iterating) this.stop()
    else if (this.draining) { if (!this.canTake()) this.segment.haltDrain() }
    else this.schedule()
  }

  /**
   * Whether a record taken off the ring now would reach a consumer: a
   * 'message' listener, or a pending next() of an iterator. An iterator
   * alongside listeners keeps a copy of each message, up to highWaterMark.
   */
  private canTake(): boolean {
    if (!this.receiving || this.closed || this.paused) return false
    const listeners = this.consumers.listeners().length
    if (!this.iterating) return listeners > 0
    return this.pulls.length > 0 || (listeners > 0 && this.queue.length < this.highWaterMark)
  }

  private schedule(): void {
    if (this.scheduled || !this.receiving) return
    this.scheduled = true
    setImmediate(this.run)
  }

  private readonly run = (): void => {
    this.scheduled = false
    if (!this.canTake()) return // a new consumer, resume() or close() take it from here
    // Passes over the lanes until they come back short or MAX_PER_RUN
    // records were delivered: a fast lone sender costs one event-loop turn
    // per MAX_PER_RUN records, not per MAX_PER_LANE.
    let n = 0
    for (;;) {
      const got = this.drainOnce(MAX_PER_RUN - n)
      n += got
      if (got < MAX_PER_LANE || n >= MAX_PER_RUN || !this.canTake()) break
    }
    this.idle.ran(n)
    if (!this.canTake()) return // stopped, closed, paused or no consumer: records stay in the ring
    if (n > 0) {
      const lone = this.idle.afterDelivery(n) // called on every such run: it times the gaps between them
      if (!lone || n >= MAX_PER_LANE || this.reassembler.pendingCount > 0) return this.continueSoon(n)
    } else if (this.idle.spin(this.segment)) {
      this.idle.sawData()
      return this.continueSoon(this.drainOnce())
    }
    if (this.reassembler.pendingCount > 0) this.dropOrphans()
    if (this.segment.park()) {
      // After PARKED: watch the lane owners (a sender claiming after this rings its hello).
      const used = this.segment.lanesInUse
      this.ahead.catchUp(used) // map new lanes' rings now, not a page at a time (../prefault.ts)
      const owners = this.owners.scan(used, (i) => this.segment.laneOwner(i))
      if (owners === 'look') return this.schedule() // a sender died unseen: what it committed may be unrung
      if (tracing) trace('park channel=%s', this.name)
      this.parked = true
      if (backstopOn()) this.backstop.arm(owners === 'watched')
      return
    }
    this.schedule()
  }

  private continueSoon(delivered: number): void {
    if (this.scheduled || !this.receiving || this.closed || this.paused) return
    this.scheduled = true
    this.continuation.next(delivered, this.run)
  }

  private drainOnce(max = MAX_PER_RUN): number {
    let n: number
    this.draining = true
    try {
      n = this.segment.drain(this.deliver, MAX_PER_LANE, max)
    } catch (err) {
      this.fail(err)
      return 0
    } finally {
      this.draining = false
      if (this.releasePending) {
        this.releasePending = false
        this.releaseClaim()
      }
    }
    if (this.segment.roomWanted.length > 0) ringForRoom(this.segment.roomWanted, (lane) => this.segment.laneOwnerBell(lane), this.token, this.ctx.runtimeDir) // wakes the writers waiting for the room it freed
    return n
  }

  pause(): void {
    this.paused = true
    if (this.draining) this.segment.haltDrain()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (!this.parked) this.schedule() // parked: a doorbell wakes us when there is data
  }

  private wake(): void {
    if (!this.parked) return // a late or spurious ring: we are already running
    if (tracing) trace('wake channel=%s', this.name)
    this.parked = false
    // Doorbells arrive from an event-loop callback: drain right here.
    if (!this.scheduled) this.run()
  }

  /**
   * Hands a record's value to the consumers. Never take a record nobody
   * will get: whatever ends a consumer's interest during a drain (the last
   * listener removed, pause(), stop(), close()) halts the drain before the
   * next record, so only an iterator's own queue, filling up here, is
   * checked per record.
   */
  private onRecord(v: T): void {
    if (this.iterating) {
      const pull = this.pulls.shift()
      if (pull !== undefined) pull.resolve({ value: v, done: false })
      else this.queue.push(v)
    }
    const listeners = this.consumers.listeners()
    if (listeners.length > 0) {
      try {
        if (listeners.length === 1) this.consumers.call(listeners[0]!, v)
        else for (const listener of listeners.slice()) this.consumers.call(listener, v)
      } catch (err) {
        // A throwing listener must not stop delivery (nor make the ring
        // deliver the batch twice): report it and go on.
        this.consumers.report(`a 'message' listener of channel '${this.name}' threw`, err)
      }
    }
    if (this.iterating && !this.canTake()) this.segment.haltDrain()
  }

  private fail(err: unknown): void {
    this.stop()
    for (const p of this.pulls.splice(0)) p.reject(err)
    this.consumers.report(`channel '${this.name}' stopped receiving`, err)
  }

  /** See Channel[Symbol.asyncIterator]. */
  iterator(): AsyncIterator<T> {
    this.start()
    this.iterating = true
    let ended = false
    const end = (): Promise<IteratorResult<T>> => {
      if (!ended) {
        ended = true
        this.iterating = false
        this.queue.length = 0 // copies of what listeners got
        for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true })
        this.consumersChanged()
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    return {
      next: () => {
        if (ended) return Promise.resolve({ value: undefined, done: true })
        if (this.queue.length > 0) {
          const value = this.queue.shift()!
          if (!this.draining) this.schedule()
          return Promise.resolve({ value, done: false })
        }
        if (this.closed || !this.receiving) return end()
        return new Promise((resolve, reject) => {
          this.pulls.push({ resolve, reject })
          if (this.draining || this.parked) return // the drain in progress, or the doorbell, delivers
          // Pure iterator: take the next record right here (one drain of at
          // most one record) instead of waiting for an event-loop turn.
          if (this.consumers.listeners().length === 0 && this.canTake()) this.drainOnce(1)
          if (this.pulls.length > 0) this.schedule()
        })
      },
      return: end,
      throw: end,
    }
  }

  /** Stops receiving for good; pending iterations end. */
  close(): void {
    this.closed = true
    this.stop()
    for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true })
  }
}
