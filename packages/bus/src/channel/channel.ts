/**
 * A typed channel: one receiving process, any number of sending processes,
 * each sender on a lane of its own (see @ipc/core channel/segment.ts). The
 * public face of a ChannelWriter (sending, writer.ts) and a ChannelReader
 * (receiving, reader.ts); it is an EventEmitter whose 'message' listeners
 * are the reader's consumers.
 *
 * Sending: trySend() encodes straight into the sender's lane and publishes;
 * only if the receiver had parked does it ring the receiver's doorbell, so a
 * sender makes no system call while the receiver is awake. send() waits for
 * room when the lane is full (backpressure), in order.
 *
 * Receiving: the first 'message' listener or iterator claims the receiver
 * role; when the last one goes, the role is given back with every message
 * not yet delivered still in the ring.
 */
import { EventEmitter } from 'node:events'
import { TYPE_BYTES, type ChannelSegment, type Codec } from '@ipc/core'
import { InvalidArgType } from '../errors.js'
import { isAlive } from '../liveness.js'
import { checkSendOptions, type SendOptions } from '../options.js'
import { RateMeter } from '../rates.js'
import { reportError } from '../report.js'
import type { ChannelContext } from './context.js'
import { ChannelReader } from './reader.js'
import { ChannelWriter } from './writer.js'

export interface ChannelStats {
  name: string
  /** 'receiver' when this process receives on it, else 'sender' or 'idle'. */
  role: 'receiver' | 'sender' | 'idle'
  parks: number
  drains: number
  /**
   * Times a parked receiver's backstop check found data that no doorbell
   * announced (a sender killed between winning the right to ring and
   * ringing, or a lost wakeup): 0 unless a sending process was killed.
   */
  backstopRescues: number
  /**
   * Messages larger than a record (sent as fragments) that this process's
   * receiver dropped unfinished, never delivering part of one: their sender
   * gave up its lane mid-message (it died, closed, or the send was aborted
   * or timed out), or a receiver stopped mid-message and the next skipped the rest.
   */
  abandonedMessages: number
  /**
   * Per second over about the last second (../rates.ts: against this
   * process's previous stats() call at least a second old); null on the
   * first call. Messages and bytes read, summed over the lanes, and parks.
   */
  rates: { messagesPerSecond: number; bytesPerSecond: number; parksPerSecond: number } | null
  lanes: Array<{
    owner: number | null; messagesWritten: number; messagesRead: number; bytesWritten: number; bytesRead: number; fullEvents: number; doorbellsRung: number; usedBytes: number
    /** Messages and bytes written into this lane per second (see rates); null on the first call. */
    rates: { messagesPerSecond: number; bytesPerSecond: number } | null
  }>
}

/** Typed events of a Channel (declaration-merged into the class). */
export interface Channel<T> {
  on(event: 'message', listener: (value: T) => void): this
  on(event: 'error', listener: (error: unknown) => void): this
  once(event: 'message', listener: (value: T) => void): this
  once(event: 'error', listener: (error: unknown) => void): this
  off(event: 'message', listener: (value: T) => void): this
  off(event: 'error', listener: (error: unknown) => void): this
  addListener(event: 'message', listener: (value: T) => void): this
  removeListener(event: 'message', listener: (value: T) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
  off(event: string | symbol, listener: (...args: any[]) => void): this
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Channel<T = unknown> extends EventEmitter {
  readonly name: string
  private readonly segment: ChannelSegment
  private readonly ctx: ChannelContext
  private readonly writer: ChannelWriter<T>
  /** Rates for stats(), against this process's earlier calls. */
  private readonly rates = new RateMeter()
  private readonly reader: ChannelReader<T>
  private closed = false
  /** The raw 'message' listeners (once-wrappers included), refreshed lazily after any change. */
  private messageListeners: Array<(value: T) => void> = []
  private listenersDirty = false

  /** @internal Channels come from bus.channel(). */
  constructor(name: string, segment: ChannelSegment, token: number, codec: Codec, ctx: ChannelContext, highWaterMark: number, zeroCopy: boolean) {
    super()
    this.name = name
    this.segment = segment
    this.ctx = ctx
    const report = (what: string, err: unknown): void => reportError(this, what, err)
    const parts = { name, segment, token, codec, ctx }
    this.writer = new ChannelWriter<T>(parts, report)
    this.reader = new ChannelReader<T>(parts, {
      listeners: () => this.currentListeners(),
      call: (listener, value) => { listener.call(this, value) },
      report,
    }, highWaterMark, zeroCopy)
    this.installHooks()
  }

  /**
   * The first 'message' listener claims the receiver ('newListener' fires
   * before the listener is added: if the claim throws, on() throws and adds
   * nothing); removing the last one gives the claim back.
   */
  private installHooks(): void {
    super.on('newListener', this.onNewListener)
    super.on('removeListener', this.onRemoveListener)
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event !== 'message') return
    if (!this.reader.isReceiving) this.reader.start()
    this.listenersDirty = true
    queueMicrotask(() => this.reader.consumersChanged()) // once it is added
  }

  private readonly onRemoveListener = (event: string | symbol): void => {
    if (event !== 'message') return
    this.listenersDirty = true
    this.reader.consumersChanged()
  }

  /** As EventEmitter's, keeping the channel's own hooks (and stopping receiving when the 'message' listeners go). */
  override removeAllListeners(event?: string | symbol): this {
    super.removeAllListeners(event)
    if (event === undefined || event === 'newListener' || event === 'removeListener') {
      super.removeListener('newListener', this.onNewListener)
      super.removeListener('removeListener', this.onRemoveListener)
      this.installHooks()
      this.listenersDirty = true
      if (this.reader.isReceiving) this.reader.consumersChanged()
    }
    return this
  }

  private currentListeners(): Array<(value: T) => void> {
    if (this.listenersDirty) {
      this.listenersDirty = false
      this.messageListeners = this.rawListeners('message') as Array<(value: T) => void>
    }
    return this.messageListeners
  }

  /** Pid of the process receiving on this channel, or null when none does (or it died). */
  get receiverPid(): number | null {
    const id = this.segment.receiverIdentity()
    return id !== null && isAlive(id.pid, id.startTime) ? id.pid : null
  }

  /** True when this process is the channel's receiver. */
  get isReceiving(): boolean {
    return this.reader.isReceiving
  }

  /** @internal Whether any lane holds messages nobody has read yet. */
  get hasUnread(): boolean {
    return this.segment.hasUnread()
  }

  /** Largest message this channel carries, in encoded bytes. */
  get maxMessageBytes(): number {
    return this.segment.maxMessageBytes
  }

  // =========================================================== sending

  /**
   * Writes value if there is room now: true when written, false when the
   * lane is full (or earlier sends still wait). Throws MessageTooLarge or
   * Unserializable (nothing written), PeerGone when the receiver died, Closed.
   */
  trySend(value: T): boolean {
    return this.writer.trySend(value)
  }

  /** trySend for raw bytes: the receiver gets a Buffer with the same bytes. */
  trySendBytes(bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgType('bytes', 'an instance of Buffer or Uint8Array', bytes)
    return this.writer.tryPut(bytes, TYPE_BYTES)
  }

  /** Resolves once value is written, waiting for room while the lane is full. */
  send(value: T, options?: SendOptions): Promise<void> {
    try {
      return this.writer.send(value, checkSendOptions(options)) // options checked on every call, full lane or not
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** send() for raw bytes. */
  sendBytes(bytes: Uint8Array, options?: SendOptions): Promise<void> {
    try {
      const checked = checkSendOptions(options)
      if (!(bytes instanceof Uint8Array)) throw new InvalidArgType('bytes', 'an instance of Buffer or Uint8Array', bytes)
      return this.writer.put(bytes, TYPE_BYTES, checked)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Writes every value, as many as fit with one publishing store, waiting
   * for room for the rest. Every value is encoded (and so checked) before
   * the first is written: a bad one rejects the whole call, nothing written.
   */
  sendMany(values: readonly T[], options?: SendOptions): Promise<void> {
    try {
      const checked = checkSendOptions(options)
      if (!Array.isArray(values)) throw new InvalidArgType('values', 'an instance of Array', values)
      return this.writer.sendMany(values, checked)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  // =========================================================== receiving

  /**
   * Stops taking messages off the ring (they wait there, and senders feel
   * backpressure once it fills) until resume(). Called from a 'message'
   * listener, no further message is delivered after the current one.
   */
  pause(): this {
    this.reader.pause()
    return this
  }

  /** Starts taking messages again after pause(). */
  resume(): this {
    this.reader.resume()
    return this
  }

  get isPaused(): boolean {
    return this.reader.isPaused
  }

  /**
   * Receives with for await; ends when the channel closes. The iterator
   * takes a message off the ring only when next() asks for one (or, beside
   * 'message' listeners, keeps copies of what they got, up to
   * highWaterMark): leaving the loop (break, return, throw) leaves every
   * message not yet handed to it in the ring, and gives the receiver claim
   * back when no 'message' listener remains.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.reader.iterator()
  }

  // =========================================================== lifecycle

  /** Counters of this channel and each lane. */
  stats(): ChannelStats {
    const s = this.segment.stats()
    const counters = [s.lanes.reduce((n, l) => n + l.messagesRead, 0), s.lanes.reduce((n, l) => n + l.bytesRead, 0), s.parks]
    for (const l of s.lanes) counters.push(l.messagesWritten, l.bytesWritten)
    const r = this.rates.sample(counters)
    return {
      name: this.name,
      role: this.reader.isReceiving ? 'receiver' : this.writer.active ? 'sender' : 'idle',
      parks: s.parks,
      drains: s.drains,
      backstopRescues: s.rescues,
      abandonedMessages: this.reader.abandoned,
      rates: r === null ? null : { messagesPerSecond: r[0]!, bytesPerSecond: r[1]!, parksPerSecond: r[2]! },
      lanes: s.lanes.map((lane, i) => ({
        owner: this.segment.laneOwner(i)?.pid ?? null,
        ...lane,
        rates: r === null ? null : { messagesPerSecond: r[3 + 2 * i]!, bytesPerSecond: r[4 + 2 * i]! },
      })),
    }
  }

  /**
   * Stops sending and receiving here. Pending sends reject with Closed;
   * unread messages stay in the ring for the next receiver; this process's
   * lane is released (what it wrote is still delivered).
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.writer.close()
    this.reader.close()
    this.ctx.closed(this.name)
  }
}
