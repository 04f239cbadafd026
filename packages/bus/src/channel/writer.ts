/**
 * The sending side of a channel in this process: its lane (claimed on first
 * send), batched publishing, the ring that wakes a parked receiver (through
 * receiver-link.ts, which also notices a dead receiver), and the
 * queue of sends waiting for room (backpressure), which sleep on the room
 * doorbell. See docs/design.md ("Batched commits", "Room doorbell").
 */
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { CHANNEL_OWNERS, TYPE_SCHEMA, TYPE_VALUE, identityWord, type ChannelSegment, type ChannelSender, type Codec } from '@ipc/core'
import { ChannelFull, Closed, MessageTooLarge, TooManySenders } from '../errors.js'
import { channels as diagnostics, observed, report } from '../diagnostics.js'
import { cancelRelease, releaseOnTerminate } from '../exit.js'
import { isAlive, selfIdentity } from '../liveness.js'
import { prefaultRing } from '../prefault.js'
import type { SendOptions } from '../options.js'
import type { ChannelContext, ChannelParts } from './context.js'
import { fragmentsFit, nextRecordBytes, stageFragments, trySendManySchema, type Outgoing } from './fragments.js'
import { LONE_GAP_MS, resolved } from './idle.js'
import { PublishBatch } from './pacing.js'
import { RECHECK_MS, ReceiverLink } from './receiver-link.js'
import { RoomWait, WaitQueue } from './room.js'

/**
 * How often a sender sleeping for room looks again (ms): as often as it
 * checks the receiver. Tests may set IPC_BUS_ROOM_RECHECK_MS (internal) so
 * that only the room doorbell can wake a blocked sender in time.
 */
const ROOM_RECHECK_MS = Number(process.env.IPC_BUS_ROOM_RECHECK_MS ?? RECHECK_MS) || RECHECK_MS
/** Event-loop turns a blocked sender looks again before it sleeps, when there is a core to spare (see flush()). */
const SPIN_TURNS = 32
const CORES = availableParallelism()
/** Most messages a burst writes before publishing them (see staged()). */
const PUBLISH_EVERY = 64

export class ChannelWriter<T> {
  private closed = false
  private sender: ChannelSender | null = null
  /** The receiver: alive, ringable, its doorbell. */
  private readonly receiver: ReceiverLink
  /** True from the first send of an event-loop turn until the turn ends. */
  private fresh = false
  private readonly clearFresh = (): void => { this.fresh = false }
  /** When `fresh` was last set (the clock read it costs anyway). */
  private freshAt = -Infinity
  private readonly waiters = new WaitQueue<void>()
  private flushing = false
  /** Waiting for room: the receiver's room doorbell. */
  private readonly room: RoomWait
  /** Batched commits and when they ring the receiver (pacing.ts); a channel rings at every burst's end (see there). */
  private readonly batch = new PublishBatch({
    publish: () => this.sender!.publish(),
    ring: () => { if (this.sender!.shouldRing()) this.receiver.ring() }, // once per park, won by CAS
    live: () => this.sender !== null && !this.closed,
  }, PUBLISH_EVERY, false, (err) => {
    // Ringing the receiver failed unexpectedly after a burst (the messages
    // are published and stay in the ring): report it where a caller can see it.
    this.report(`channel '${this.name}' could not ring its receiver`, err)
  })
  /** In a worker thread: the native exit action that gives the lane back if the thread is terminated. */
  private laneRelease: number | null = null

  private readonly name: string
  private readonly segment: ChannelSegment
  private readonly token: number
  private readonly codec: Codec
  private readonly ctx: ChannelContext

  constructor(
    parts: ChannelParts,
    /** Reports what cannot be thrown to a caller (a failed ring after a burst). */
    private readonly report: (what: string, err: unknown) => void,
  ) {
    ({ name: this.name, segment: this.segment, token: this.token, codec: this.codec, ctx: this.ctx } = parts)
    this.room = new RoomWait(this.token, this.ctx.doorbell, this.ctx.doorbellSignal, this.ctx.runtimeDir)
    this.receiver = new ReceiverLink(this.segment, this.name, this.token, this.ctx.runtimeDir)
  }

  get active(): boolean {
    return this.sender !== null
  }

  /** See Channel.trySend. */
  trySend(value: T): boolean {
    return this.write(value) === true
  }

  /**
   * Writes `value` if it fits now: true. Else false, or, for a message
   * larger than a record, its encoded bytes (so that send() queues them
   * without encoding again). A message larger than a record is written now
   * only if all its fragments fit.
   */
  private write(value: T): boolean | Buffer {
    const sender = this.senderLane()
    const schema = this.segment.schema
    if (this.waiters.length > 0) {
      this.encodeCopy(value) // still report bad input at once
      return false
    }
    let written: boolean
    try {
      written = schema === null ? sender.trySend(value, TYPE_VALUE, false) : sender.trySendSchema(schema, value, TYPE_SCHEMA, false)
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err
      this.checkSize(err.bytes) // the channel's own limit, in the error
      // Larger than a record: the same bytes as fragments.
      const bytes = schema === null ? this.codec.copyLastEncoded() : schema.encodeToBuffer(value)
      return this.tryFragments(sender, bytes, schema === null ? TYPE_VALUE : TYPE_SCHEMA) || bytes
    }
    if (!written) {
      this.batch.publishAndRing() // full: let the receiver see what is already written
      return false
    }
    this.staged()
    return true
  }

  /** Writes one record of ready bytes (raw bytes, or a value encoded with this bus's codec). */
  tryPut(bytes: Uint8Array, type: number): boolean {
    const sender = this.senderLane()
    if (this.waiters.length > 0) {
      this.checkSize(bytes.length) // still report bad input at once
      return false
    }
    if (bytes.length > this.segment.maxRecordBytes) {
      this.checkSize(bytes.length)
      return this.tryFragments(sender, bytes, type)
    }
    if (!sender.tryWrite(bytes, type, false)) {
      this.batch.publishAndRing()
      return false
    }
    this.staged()
    return true
  }

  /** See Channel.send: `options` are checked already. */
  send(value: T, options: SendOptions): Promise<void> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason) // as Node's own APIs: nothing is done
    const r = this.write(value)
    if (r === true) return Promise.resolve()
    return this.enqueue(r === false ? this.encodeCopy(value) : r, this.segment.schema === null ? TYPE_VALUE : TYPE_SCHEMA, options)
  }

  /**
   * Raw bytes. A message larger than a record is read from `bytes` while its
   * fragments are written, without a copy: the caller must not change it
   * until the promise settles (as with stream.write()).
   */
  put(bytes: Uint8Array, type: number, options: SendOptions): Promise<void> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason)
    if (this.tryPut(bytes, type)) return Promise.resolve()
    const large = bytes.length > this.segment.maxRecordBytes
    return this.enqueue(large ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : Buffer.from(bytes), type, options)
  }

  /** See Channel.sendMany: every value is encoded (checked) before the first is written. */
  sendMany(values: readonly T[], options: SendOptions): Promise<void> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason)
    const sender = this.senderLane()
    const schema = this.segment.schema
    const type = schema === null ? TYPE_VALUE : TYPE_SCHEMA
    let written = 0
    if (this.waiters.length === 0) {
      try {
        written = schema === null ? sender.trySendMany(values, TYPE_VALUE) : trySendManySchema(sender, this.segment.maxRecordBytes, schema, values)
      } catch (err) {
        // One is larger than a record: nothing of the batch was written;
        // every value goes through the queue, in order (fragments there).
        if (!(err instanceof MessageTooLarge)) throw err // (too large at all: encodeCopy below says so)
      }
      if (written > 0) this.batch.after('burst', written)
      if (written === values.length) return Promise.resolve()
    }
    const rest = values.slice(written).map((v) => this.encodeCopy(v))
    return Promise.all(rest.map((bytes) => this.enqueue(bytes, type, options))).then(() => undefined)
  }

  /** The value's record in a Buffer of its own (it outlives the next encode while the send waits). */
  private encodeCopy(value: T): Buffer {
    const schema = this.segment.schema
    const bytes = schema !== null ? schema.encodeToBuffer(value) : this.codec.pack(value)
    this.checkSize(bytes.length)
    return bytes
  }

  private checkSize(length: number): void {
    if (length > this.segment.maxMessageBytes) throw new MessageTooLarge(length, this.segment.maxMessageBytes)
  }

  private enqueue(bytes: Buffer, type: number, options: SendOptions): Promise<void> {
    if (this.waiters.length === 0 && observed(diagnostics.full)) report(diagnostics.full, { bus: this.ctx.busName, channel: this.name, lane: this.sender?.lane ?? -1, bytes: bytes.length })
    return this.waiters.add(bytes, type, options, () => { if (!this.flushing) void this.flush() })
  }

  /** Writes queued sends in order as room appears; checks deadlines, aborts and the receiver. */
  private async flush(): Promise<void> {
    this.flushing = true
    let turns = 0
    try {
      for (;;) {
        const now = performance.now()
        if (this.closed) return this.waiters.failAll(new Closed(`channel '${this.name}'`))
        const head = this.waiters.head(now, (timeout) => new ChannelFull(this.name, timeout))
        if (head === undefined) return
        try {
          this.receiver.check(now, false) // at most every RECHECK_MS
        } catch (err) {
          return this.waiters.failAll(err)
        }
        const sender = this.sender!
        if (head.bytes.length > this.segment.maxRecordBytes) {
          const before = head.sent
          if (this.writeFragments(sender, head)) {
            this.waiters.done()
            turns = 0
            continue
          }
          if (head.sent !== before) { turns = 0; continue } // progress: the receiver is draining
        } else if (sender.tryWrite(head.bytes, head.type)) {
          this.batch.after('now')
          this.waiters.done()
          turns = 0
          continue
        }
        // Full. A draining receiver frees room within microseconds: look
        // again for a few event-loop turns, but only while senders and
        // receiver fit the cores (else polling takes CPU from the receiver
        // that frees the room). Then ask it to ring us once an eighth of the
        // lane is free, and sleep; wake every ROOM_RECHECK_MS anyway to
        // notice deadlines, aborts and a dead receiver.
        if (turns++ < (this.segment.lanesInUse + 1 <= CORES ? SPIN_TURNS : 0)) {
          await new Promise((r) => setImmediate(r))
          continue
        }
        turns = 0
        this.room.ensure((bell) => this.segment.setLaneBell(sender.lane, selfIdentity(), bell))
        if (!sender.waitForRoom(nextRecordBytes(head, this.segment.maxRecordBytes))) continue // room appeared meanwhile
        await this.room.sleep(Math.max(0, Math.min(head.deadline - now, ROOM_RECHECK_MS)), head.signal)
        sender.cancelRoomWait()
      }
    } finally {
      this.flushing = false
    }
  }

  /**
   * A message larger than a record, written now as fragments only if every
   * one fits (a synchronous send is all or nothing): true when written.
   */
  private tryFragments(sender: ChannelSender, bytes: Uint8Array, type: number): boolean {
    this.batch.publish('now') // what was staged before goes first, published
    if (!fragmentsFit(sender, this.segment.maxRecordBytes, bytes.length)) return false
    if (!this.writeFragments(sender, { bytes, type, sent: 0 })) throw new Error(`fragments of a ${bytes.length}-byte message did not fit the room counted for them`)
    return true
  }

  /** Writes what fits of m's remaining fragments, publishes them and rings the receiver: true once the last one is written. */
  private writeFragments(sender: ChannelSender, m: Outgoing): boolean {
    if (!stageFragments(sender, this.segment.maxRecordBytes, m)) return false
    sender.publish()
    this.batch.after('now')
    return m.sent === m.bytes.length
  }

  /**
   * The sender's lane, claimed on first use. Also where a dead receiver is
   * noticed: its liveness is re-checked at most every RECHECK_MS, and only
   * on the first send of each event-loop turn (`fresh`), so a burst of
   * sends in one turn pays for no clock reads at all. A burst into a dead
   * receiver ends at the latest when its lane fills, and a full lane always
   * re-checks.
   */
  private senderLane(): ChannelSender {
    if (this.closed) throw new Closed(`channel '${this.name}'`)
    if (!this.fresh || this.receiver.sawGone) {
      this.fresh = true
      const now = performance.now()
      // The first send after a quiet gap (a request, a reply) marks only its
      // synchronous burst (a microtask): a setImmediate would cost the turn
      // an extra epoll_wait on the wake path of every idle round trip.
      // Sends close together mark the whole turn, so an `await send()` loop
      // reads the clock once per turn, not once per send.
      if (now - this.freshAt > LONE_GAP_MS) void resolved.then(this.clearFresh)
      else setImmediate(this.clearFresh)
      this.freshAt = now
      this.receiver.checkIfDue(now)
    }
    if (this.sender !== null) return this.sender
    const lane = this.segment.claimLane(selfIdentity(), isAlive)
    if (lane === null) throw new TooManySenders(this.name, this.segment.lanes)
    this.sender = lane
    if (observed(diagnostics.claim)) report(diagnostics.claim, { bus: this.ctx.busName, channel: this.name, pid: process.pid, role: 'sender', lane: lane.lane })
    this.laneRelease = releaseOnTerminate(this.token, CHANNEL_OWNERS + 8 * lane.lane, 8, identityWord(selfIdentity()), 0n)
    prefaultRing(lane.data) // the ring's first lap then takes no page faults (../prefault.ts)
    // The hello (../owner-watch.ts): a receiver that parked before this
    // claim does not watch this process for its exit yet; woken, it does.
    if (this.segment.receiverParked()) {
      try {
        this.receiver.ring()
      } catch {
        // A dead receiver: the send that claimed reports it (PeerGone).
      }
    }
    return lane
  }

  /**
   * Batched commits (docs/design.md): a record is published at once when the
   * receiver has read everything (it waits), else with its burst (pacing.ts
   * PublishBatch), so a stream costs one store and one cache-line handover
   * per batch.
   */
  private staged(): void {
    if (this.batch.staged === 0 && this.sender!.consumerCaughtUp()) {
      this.sender!.publish()
      this.batch.after('burst')
      return
    }
    this.batch.add()
  }

  /** Publishes what was accepted, fails waiting sends with Closed, gives the lane back (what it wrote is still delivered). */
  close(): void {
    if (this.closed) return
    this.batch.finish() // what trySend accepted is delivered
    this.closed = true
    this.waiters.failAll(new Closed(`channel '${this.name}'`))
    this.room.close()
    if (this.sender !== null) {
      this.segment.releaseLane(this.sender, selfIdentity())
      this.sender = null
      cancelRelease(this.laneRelease)
      this.laneRelease = null
    }
  }
}
