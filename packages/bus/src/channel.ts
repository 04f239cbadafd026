/**
 * A typed channel: one receiving process, any number of sending processes,
 * each sender on a lane of its own (see @ipc/core channel/segment.ts).
 *
 * Sending: trySend() encodes straight into the sender's lane and publishes;
 * only if the receiver had parked does it ring the receiver's doorbell, so a
 * sender makes no system call while the receiver is awake. send() waits for
 * space when the lane is full (backpressure), in order: while any send()
 * waits, later sends queue behind it and trySend() returns false.
 *
 * Receiving: the first process that listens ('message' or for await)
 * becomes the receiver. It drains every lane in bounded round-robin batches,
 * yielding to the event loop between batches; when nothing is left it may
 * spin (spinMicros), then parks and sleeps on its doorbell, using no CPU.
 */
import { EventEmitter } from 'node:events'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { CHANNEL_OWNERS, CHANNEL_RECEIVER, identityWord, type ChannelSegment, type ChannelSender, type Codec, type Identity } from '@ipc/core'
import { ChannelBusy, ChannelFull, Closed, InvalidArgType, MessageTooLarge, PeerGone, TooManySenders } from './errors.js'
import { checkCanRing, ownBell, receiverAlive, registerSleeper, ring, roomToken, unregisterSleeper, type Sleeper, type Target } from './doorbell.js'
import { cancelRelease, releaseOnTerminate } from './exit.js'
import { SELF_PID, isAlive, selfIdentity } from './liveness.js'
import { checkSendOptions, type DoorbellKind, type SendOptions } from './options.js'

/**
 * Channels holding staged, unpublished messages (see Channel.staged). If the
 * process exits before the microtask that publishes them runs (a
 * process.exit() in the same synchronous code), they are published on the
 * way out, so what trySend() accepted is never silently dropped.
 */
const unpublished = new Set<{ publishSoon(): void }>()
process.on('exit', () => {
  for (const channel of [...unpublished]) channel.publishSoon()
})

/** Record types on the wire. */
export const TYPE_VALUE = 0
export const TYPE_BYTES = 1

export type { SendOptions } from './options.js'

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
  lanes: Array<{ owner: number | null; messagesWritten: number; messagesRead: number; bytesWritten: number; bytesRead: number; fullEvents: number; doorbellsRung: number; usedBytes: number }>
}

/** What a Channel needs from its Bus. */
export interface ChannelHost {
  readonly doorbell: DoorbellKind
  readonly doorbellSignal: number
  readonly spinMicros: number
  readonly runtimeDir: string
  /** A receiving channel keeps the process alive (like a listening server) until it closes. */
  retain(): void
  release(): void
  /** Called when the channel closes, so the bus forgets it. */
  forget(name: string): void
}

interface Waiter {
  bytes: Buffer
  type: number
  resolve: () => void
  reject: (err: unknown) => void
  deadline: number
  timeout: number
  signal: AbortSignal | undefined
}

/**
 * How long a confirmed receiver is trusted before the next liveness check,
 * and how often a sender sleeping for room looks again (ms). Tests may set
 * IPC_BUS_ROOM_RECHECK_MS (internal) so that only the room doorbell can wake
 * a blocked sender in time.
 */
const RECHECK_MS = 200
const ROOM_RECHECK_MS = Number(process.env.IPC_BUS_ROOM_RECHECK_MS ?? RECHECK_MS) || RECHECK_MS
/**
 * The parked receiver's backstop (see armParkedCheck()) is on unless
 * IPC_BUS_BACKSTOP=off (internal, read at each park): tests turn it off so
 * that a lost wakeup shows as a stall instead of a 250 ms delay.
 */
function backstopOn(): boolean {
  return process.env.IPC_BUS_BACKSTOP !== 'off'
}
/**
 * Event-loop turns a sender blocked on a full lane looks again before it
 * sleeps until the receiver rings, when there is a core to spare for it
 * (see flush()).
 */
const SPIN_TURNS = 32
/** Cores this process may run on. */
const CORES = availableParallelism()
/** Most messages a burst of sends writes before publishing them (see staged()). */
const PUBLISH_EVERY = 64
/** Runs of a spinning receiver in a row that skip the event loop (see continueSoon()). */
const HOT_RUNS = 64
/** When a parked receiver first looks at its lanes in case a sender died between winning the doorbell and ringing it, and the longest interval it backs off to (see armParkedCheck()). */
const PARKED_CHECK_MS = 250
const PARKED_CHECK_MAX_MS = 2000
const MAX_PER_LANE = 256
const MAX_PER_RUN = 4096
const DEFAULT_HIGH_WATER = 1024
/**
 * Continuations of a spinning receiver go through this settled promise's
 * then(): the same microtask queue as queueMicrotask(), without the
 * AsyncResource that queueMicrotask() allocates for async_hooks on every call.
 */
const resolved = Promise.resolve()

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
  private readonly codec: Codec
  private readonly host: ChannelHost
  private closed = false

  // sender state
  private sender: ChannelSender | null = null
  private receiverSeen: Target | null = null
  /** The receiver we found dead: sends fail fast until another takes over. */
  private gone: Identity | null = null
  /** Waiting for room: the sleeper the receiver's room doorbell wakes, and the pending wait. */
  private roomRegistered = false
  private roomWake: (() => void) | null = null
  private readonly roomSleeper: Sleeper = { wake: () => this.roomWake?.() }
  /** Messages written but not yet published (see staged()). */
  private stagedCount = 0
  private publishQueued = false
  /** True from the first send of an event-loop turn until the turn ends. */
  private fresh = false
  private readonly clearFresh = (): void => { this.fresh = false }
  private receiverCheckedAt = -Infinity
  private readonly waiters: Waiter[] = []
  private flushing = false

  /** The channel's doorbell token: its segment id, unique on the host while the channel exists. */
  private readonly token: number

  // receiver state
  private receiving = false
  private scheduled = false
  private paused = false
  /** Consecutive runs scheduled as microtasks, and the records they delivered (see continueSoon()). */
  private hotRuns = 0
  private hotRecords = 0
  private parked = false
  /** The parked receiver's backstop timer (see armParkedCheck()). */
  private parkedCheck: NodeJS.Timeout | null = null
  private parkedCheckMs = 0
  private readonly queue: T[] = []
  private readonly pulls: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> = []
  private iterating = false
  private readonly highWaterMark: number
  /** Raw-bytes messages reach 'message' listeners as views of the ring (see ChannelOptions.zeroCopy). */
  private readonly zeroCopy: boolean
  /** The 'message' listeners as stored (once-wrappers included), refreshed when `listenersDirty`. */
  private messageListeners: Array<(value: T) => void> = []
  private listenersDirty = false
  /** True while segment.drain() runs (listeners may stop receiving from inside it). */
  private draining = false
  /** Stopped receiving during a drain: give the receiver claim back once the drain has stored its read positions. */
  private releasePending = false
  private readonly sleeper: Sleeper = { wake: () => this.wake() }
  /** In a worker thread: native exit actions that give back the receiver claim and the lane if the thread is terminated (exit.ts). */
  private receiverRelease: number | null = null
  private laneRelease: number | null = null
  /**
   * Bound once: no closure per drain. Decodes values in place; raw bytes are
   * copied out of the ring, or, with zeroCopy, handed over as a view of it.
   */
  private readonly deliver = (data: Buffer, start: number, end: number, type: number): void => {
    if (type !== TYPE_BYTES) this.onRecord(this.codec.decode(data, start, end) as T)
    else this.onRecord((this.zeroCopy && !this.iterating ? data.subarray(start, end) : Buffer.from(data.subarray(start, end))) as T)
  }

  /** @internal Channels come from bus.channel(). */
  constructor(name: string, segment: ChannelSegment, token: number, codec: Codec, host: ChannelHost, highWaterMark = DEFAULT_HIGH_WATER, zeroCopy = false) {
    super()
    this.name = name
    this.token = token
    this.zeroCopy = zeroCopy
    this.segment = segment
    this.codec = codec
    this.host = host
    this.highWaterMark = highWaterMark
    this.installHooks()
  }

  /**
   * The first 'message' listener claims the receiver ('newListener' fires
   * before the listener is added: if the claim throws, on() throws and adds
   * nothing); removing the last one gives the claim back. Delivery calls a
   * copy of the raw listeners (once-wrappers included) directly, refreshed
   * lazily after any change, instead of going through emit() per message.
   */
  private installHooks(): void {
    super.on('newListener', this.onNewListener)
    super.on('removeListener', this.onRemoveListener)
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event !== 'message') return
    if (!this.receiving) this.startReceiving()
    this.listenersDirty = true
    if (!this.draining) this.schedule() // a consumer came: take what waits
  }

  private readonly onRemoveListener = (event: string | symbol): void => {
    if (event !== 'message') return
    this.listenersDirty = true
    if (this.listenerCount('message') === 0 && !this.iterating) this.stopReceiving()
    else if (this.draining && !this.canTake()) this.segment.haltDrain()
  }

  /** As EventEmitter's, keeping the channel's own hooks (and stopping receiving when the 'message' listeners go). */
  override removeAllListeners(event?: string | symbol): this {
    super.removeAllListeners(event)
    if (event === undefined || event === 'newListener' || event === 'removeListener') {
      super.removeListener('newListener', this.onNewListener)
      super.removeListener('removeListener', this.onRemoveListener)
      this.installHooks()
      this.listenersDirty = true
      if (this.receiving && this.listenerCount('message') === 0 && !this.iterating) this.stopReceiving()
    }
    return this
  }

  private get currentListeners(): Array<(value: T) => void> {
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
    return this.receiving
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
    const sender = this.senderLane()
    if (this.waiters.length > 0) {
      this.codec.encode(value) // still report bad input at once
      return false
    }
    if (!sender.trySend(value, TYPE_VALUE, false)) {
      this.publishStaged() // full: let the receiver see what is already written
      return false
    }
    this.staged()
    return true
  }

  /** trySend for raw bytes: the receiver gets a Buffer with the same bytes. */
  trySendBytes(bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgType('bytes', 'an instance of Buffer or Uint8Array', bytes)
    return this.tryPut(bytes, TYPE_BYTES)
  }

  /**
   * @internal trySend for a value already encoded with this bus's codec
   * (fan-out encodes once and writes the same bytes to every subscriber).
   */
  trySendEncoded(bytes: Uint8Array): boolean {
    return this.tryPut(bytes, TYPE_VALUE)
  }

  /** Writes one record of ready bytes (see trySendBytes, trySendEncoded). */
  private tryPut(bytes: Uint8Array, type: number): boolean {
    const sender = this.senderLane()
    if (this.waiters.length > 0) {
      this.checkSize(bytes.length) // still report bad input at once
      return false
    }
    if (!sender.tryWrite(bytes, type, false)) {
      this.publishStaged() // full: let the receiver see what is already written
      return false
    }
    this.staged()
    return true
  }

  /** @internal send() for an already-encoded value (see trySendEncoded). */
  sendEncoded(bytes: Uint8Array, options?: SendOptions): Promise<void> {
    try {
      options = checkSendOptions(options)
      if (this.trySendEncoded(bytes)) return Promise.resolve()
      return this.enqueue(Buffer.from(bytes), TYPE_VALUE, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Resolves once value is written, waiting for room while the lane is full. */
  send(value: T, options?: SendOptions): Promise<void> {
    try {
      options = checkSendOptions(options) // every call, full lane or not
      if (this.trySend(value)) return Promise.resolve()
      return this.enqueue(this.encodeCopy(value), TYPE_VALUE, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** send() for raw bytes. */
  sendBytes(bytes: Uint8Array, options?: SendOptions): Promise<void> {
    try {
      options = checkSendOptions(options)
      if (this.trySendBytes(bytes)) return Promise.resolve()
      return this.enqueue(Buffer.from(bytes), TYPE_BYTES, options)
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
      options = checkSendOptions(options)
      if (!Array.isArray(values)) throw new InvalidArgType('values', 'an instance of Array', values)
      const sender = this.senderLane()
      let written = 0
      if (this.waiters.length === 0) {
        written = sender.trySendMany(values, TYPE_VALUE)
        if (written > 0) this.afterWrite(sender)
        if (written === values.length) return Promise.resolve()
      }
      const rest = values.slice(written).map((v) => this.encodeCopy(v))
      return Promise.all(rest.map((bytes) => this.enqueue(bytes, TYPE_VALUE, options!))).then(() => undefined)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private encodeCopy(value: T): Buffer {
    const src = this.codec.encode(value)
    const bytes = Buffer.from(src.subarray(this.codec.encodedStart, this.codec.encodedEnd))
    this.checkSize(bytes.length)
    return bytes
  }

  private checkSize(length: number): void {
    if (length > this.segment.maxMessageBytes) throw new MessageTooLarge(length, this.segment.maxMessageBytes)
  }

  private enqueue(bytes: Buffer, type: number, options: SendOptions): Promise<void> {
    const { timeout, signal } = options
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ bytes, type, resolve, reject, deadline: timeout === undefined ? Infinity : performance.now() + timeout, timeout: timeout ?? Infinity, signal })
      if (!this.flushing) void this.flush()
    })
  }

  /** Writes queued sends in order as room appears; checks deadlines, aborts and the receiver. */
  private async flush(): Promise<void> {
    this.flushing = true
    let turns = 0
    try {
      while (this.waiters.length > 0) {
        const now = performance.now()
        const head = this.waiters[0]!
        if (this.closed) return this.failAll(new Closed(`channel '${this.name}'`))
        if (head.signal?.aborted) { this.waiters.shift(); head.reject(head.signal.reason); continue }
        if (now >= head.deadline) { this.waiters.shift(); head.reject(new ChannelFull(this.name, head.timeout)); continue }
        try {
          this.checkReceiver(now, false) // at most every RECHECK_MS
        } catch (err) {
          return this.failAll(err)
        }
        const sender = this.sender!
        if (sender.tryWrite(head.bytes, head.type)) {
          this.waiters.shift()
          this.afterWrite(sender)
          head.resolve()
          turns = 0
          continue
        }
        // Full. A receiver that is draining frees room within microseconds:
        // look again on the next few event-loop turns first. Then ask the
        // receiver to ring us once an eighth of the lane is free (the parking
        // protocol turned around: see ROOM_WANTED in @ipc/core's lane
        // layout) and sleep: a blocked sender uses no CPU. It still wakes
        // every RECHECK_MS to notice deadlines, aborts and a dead receiver.
        // Looking again only pays while the receiver has a core of its own:
        // with more senders than cores, every turn spent polling is taken
        // from the receiver that would free the room (8 senders on 2 cores:
        // 5% more aggregate throughput sleeping at once), so then sleep now.
        if (turns++ < (this.segment.lanesInUse + 1 <= CORES ? SPIN_TURNS : 0)) {
          await new Promise((r) => setImmediate(r))
          continue
        }
        turns = 0
        this.ensureRoomSleeper()
        if (!sender.waitForRoom(head.bytes.length)) continue // room appeared meanwhile
        await this.sleepForRoom(Math.max(0, Math.min(head.deadline - now, ROOM_RECHECK_MS)), head.signal)
        sender.cancelRoomWait()
      }
    } finally {
      this.flushing = false
    }
  }

  /**
   * Makes this sender wakeable by the receiver's room doorbell: registers
   * the sleeper (installing the signal handler or FIFO), then publishes the
   * lane's doorbell address, in that order, so nobody rings us before we
   * can take it. In a worker thread a 'signal' bus uses the thread's FIFO.
   */
  private ensureRoomSleeper(): void {
    if (this.roomRegistered) return
    const bell = ownBell(this.host.doorbell, this.host.doorbellSignal, 'room')
    registerSleeper(this.roomSleeper, roomToken(this.token), bell, this.host.runtimeDir)
    this.roomRegistered = true
    this.segment.setLaneBell(this.sender!.lane, selfIdentity(), bell)
  }

  /** Resolves when the receiver rings for room, after `ms`, or on abort. */
  private sleepForRoom(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.roomWake = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      this.roomWake = done
    })
  }

  private failAll(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err)
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
    if (!this.fresh || this.gone !== null) {
      this.fresh = true
      setImmediate(this.clearFresh)
      const now = performance.now()
      if (this.gone !== null || now - this.receiverCheckedAt > RECHECK_MS) this.checkReceiver(now, this.gone !== null)
    }
    if (this.sender !== null) return this.sender
    const lane = this.segment.claimLane(selfIdentity(), isAlive)
    if (lane === null) throw new TooManySenders(this.name, this.segment.lanes)
    this.sender = lane
    this.laneRelease = releaseOnTerminate(this.token, CHANNEL_OWNERS + 8 * lane.lane, 8, identityWord(selfIdentity()), 0n)
    return lane
  }

  /**
   * Reads the receiver from the channel header (it may have changed by a
   * takeover) and throws PeerGone if it died. No receiver yet is fine:
   * messages wait in the ring for the first one.
   */
  private checkReceiver(now: number, force: boolean): void {
    if (!force && now - this.receiverCheckedAt <= RECHECK_MS) return
    this.receiverCheckedAt = now
    const r = this.segment.receiver()
    if (r === null) { this.receiverSeen = null; this.gone = null; return }
    const gone = this.gone
    if (gone !== null && gone.pid === r.pid && gone.startTime === r.startTime) throw new PeerGone(r.pid, `receiver of channel '${this.name}'`)
    this.gone = null
    if (!receiverAlive(r, now)) {
      this.gone = r
      throw new PeerGone(r.pid, `receiver of channel '${this.name}'`)
    }
    const seen = this.receiverSeen
    if (r.bell === null) return // its claim is in flight: it drains once set up
    if (seen === null || seen.pid !== r.pid || seen.startTime !== r.startTime || seen.bell.kind !== r.bell.kind || seen.bell.thread !== r.bell.thread) {
      const target = r as Target
      if (r.pid !== SELF_PID) checkCanRing(target, this.host.runtimeDir)
      this.receiverSeen = target
    }
  }

  /**
   * Batched commits. trySend() and its kin write the record. When the
   * receiver has read everything published so far it is waiting, and the
   * record is published at once (the seq_cst store of the lane's write
   * position, which the receiver polls). Otherwise the receiver is busy and
   * records are published together: at the end of the current synchronous
   * burst (a queued microtask) or every PUBLISH_EVERY messages, whichever
   * comes first. A stream thus costs one store and one cache-line handover
   * per batch instead of per message, a lone message pays nothing for it,
   * and everything is visible before any other task runs. A full lane and
   * close() publish first.
   */
  private staged(): void {
    // A receiver that has read everything is waiting: publish at once.
    if (++this.stagedCount === 1 && this.sender!.consumerCaughtUp()) {
      this.publishStaged()
      return
    }
    if (this.stagedCount >= PUBLISH_EVERY) this.publishStaged()
    else if (!this.publishQueued) {
      this.publishQueued = true
      void resolved.then(this.publishSoon)
      unpublished.add(this) // so that process.exit() in this same burst loses nothing
    }
  }

  /** @internal publishes what a burst staged (also at process exit). */
  readonly publishSoon = (): void => {
    this.publishQueued = false
    unpublished.delete(this)
    if (this.sender === null || this.closed) return
    try {
      this.publishStaged()
    } catch (err) {
      // Ringing the receiver failed unexpectedly (the messages are published
      // and stay in the ring): report it where a caller can see it.
      if (this.listenerCount('error') > 0) this.emit('error', err)
      else process.emitWarning(`@ipc/bus: channel '${this.name}' could not ring its receiver: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  private publishStaged(): void {
    if (this.stagedCount === 0) return
    this.stagedCount = 0
    const sender = this.sender!
    sender.publish()
    this.afterWrite(sender)
  }

  private afterWrite(sender: ChannelSender): void {
    if (!sender.shouldRing()) return
    // The receiver parked and we won the right to wake it. Ring the instance
    // that receives now, by the address it published with its claim.
    const now = performance.now()
    if (now - this.receiverCheckedAt > RECHECK_MS) this.checkReceiver(now, true)
    const r = this.segment.receiver()
    // No receiver, or one whose claim is in flight: a new receiver drains
    // once it is set up, so nothing waits on this ring.
    if (r === null || r.bell === null) return
    if (!ring(r as Target, this.token, this.host.runtimeDir, now)) {
      // The message is committed and stays in the ring for a receiver that
      // takes over; this sender learns of the death on its next send.
      this.receiverCheckedAt = -Infinity
    }
  }

  // =========================================================== receiving

  /**
   * Starts receiving (on the first 'message' listener or iterator): makes
   * sure this instance can be woken (signal handler or FIFO), then claims
   * the receiver and publishes its doorbell address with the claim. Throws
   * ChannelBusy if another live receiver holds it (another process, or
   * another bus instance or thread of this one), NotMainThread for the
   * 'signal' doorbell in a worker, or the doorbell's error; nothing stays
   * claimed or registered when it throws.
   */
  private startReceiving(): void {
    if (this.closed) throw new Closed(`channel '${this.name}'`)
    if (this.receiving) return
    const bell = ownBell(this.host.doorbell, this.host.doorbellSignal, 'receive')
    registerSleeper(this.sleeper, this.token, bell, this.host.runtimeDir)
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
    this.releasePending = false
    this.parked = false
    this.receiverRelease = releaseOnTerminate(this.token, CHANNEL_RECEIVER, 8, identityWord(selfIdentity()), 0n)
    this.host.retain()
    this.schedule()
  }

  /**
   * Stops receiving (the last consumer went, close(), or a failure): no
   * record is taken off the ring any more, and the receiver claim is given
   * back, so that another process, or a later listener here, gets every
   * message not yet delivered, in order.
   */
  private stopReceiving(): void {
    if (!this.receiving) return
    this.receiving = false
    this.parked = false
    unregisterSleeper(this.token, this.sleeper)
    cancelRelease(this.receiverRelease)
    this.receiverRelease = null
    if (this.parkedCheck !== null) {
      clearTimeout(this.parkedCheck)
      this.parkedCheck = null
    }
    if (this.draining) {
      this.segment.haltDrain()
      this.releasePending = true // after the drain has stored its read positions
    } else {
      this.segment.releaseReceiver(selfIdentity())
    }
    this.host.release()
  }

  /**
   * Whether a record taken off the ring now would reach a consumer: a
   * 'message' listener, or a pending next() of an iterator. An iterator
   * alongside listeners keeps a copy of each message, up to highWaterMark.
   */
  private canTake(): boolean {
    if (!this.receiving || this.closed || this.paused) return false
    const listeners = this.currentListeners.length
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
    // Passes over the lanes (at most MAX_PER_LANE records from each, so a
    // busy lane cannot starve the others) until they come back short or
    // MAX_PER_RUN records were delivered: a fast lone sender then costs one
    // event-loop turn per MAX_PER_RUN records, not per MAX_PER_LANE.
    let n = 0
    for (;;) {
      const got = this.drainOnce(MAX_PER_RUN - n)
      n += got
      if (got < MAX_PER_LANE || n >= MAX_PER_RUN || !this.canTake()) break
    }
    if (!this.canTake()) return // stopped, closed, paused or no consumer: records stay in the ring
    if (n > 0) { this.continueSoon(n); return }
    if (this.spin()) {
      this.continueSoon(this.drainOnce())
      return
    }
    if (this.segment.park()) {
      this.parked = true
      if (backstopOn()) this.armParkedCheck()
      return
    }
    this.schedule()
  }

  /**
   * Runs again after a drain. A spinning receiver (spinMicros > 0) comes
   * back as a microtask rather than on the next event-loop turn: promise
   * continuations of the listener (say, the code that sends the next ping)
   * still run first, but the turn's epoll call and timers phase are
   * skipped, which would otherwise cost more than a whole round trip and,
   * once a reply lands during it, every round trip after (the reply is
   * found by the next turn's drain, which schedules another turn). At most
   * HOT_RUNS runs or MAX_PER_RUN records in a row, then one full turn, so
   * I/O and timers are never starved. A receiver that does not spin always
   * yields the turn.
   */
  private continueSoon(delivered: number): void {
    if (this.scheduled || !this.receiving || this.closed || this.paused) return
    this.scheduled = true
    this.hotRecords += delivered
    if (this.host.spinMicros > 0 && ++this.hotRuns < HOT_RUNS && this.hotRecords < MAX_PER_RUN) {
      void resolved.then(this.run)
    } else {
      this.hotRuns = 0
      this.hotRecords = 0
      setImmediate(this.run)
    }
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
        this.segment.releaseReceiver(selfIdentity())
      }
    }
    if (this.segment.roomWanted.length > 0) this.ringForRoom()
    return n
  }

  /** Wakes the senders waiting for the room the last drain freed. */
  private ringForRoom(): void {
    const lanes = this.segment.roomWanted
    const now = performance.now()
    const token = roomToken(this.token)
    for (const lane of lanes) {
      const owner = this.segment.laneOwnerBell(lane)
      if (owner === null || owner.bell === null) continue // gone, or not wakeable: it polls
      try {
        ring(owner as Target, token, this.host.runtimeDir, now)
      } catch {
        // It looks again every ROOM_RECHECK_MS anyway; a failed ring only delays it.
      }
    }
    lanes.length = 0
  }

  /**
   * Stops taking messages off the ring (they wait there, and senders feel
   * backpressure once it fills) until resume(). Called from a 'message'
   * listener, no further message is delivered after the current one.
   */
  pause(): this {
    this.paused = true
    if (this.draining) this.segment.haltDrain()
    return this
  }

  /** Starts taking messages again after pause(). */
  resume(): this {
    if (!this.paused) return this
    this.paused = false
    if (this.parked) return this // a doorbell will wake us when there is data
    this.schedule()
    return this
  }

  get isPaused(): boolean {
    return this.paused
  }

  /** Busy-polls for spinMicros; true when data arrived. */
  private spin(): boolean {
    const micros = this.host.spinMicros
    if (micros === 0) return false
    const deadline = performance.now() + micros / 1000
    const segment = this.segment
    // The clock is read every 16 polls: a poll is a few loads, a clock read
    // costs more than that, and the window need not be exact.
    for (;;) {
      for (let i = 0; i < 16; i++) if (segment.hasData()) return true
      if (performance.now() >= deadline) return false
    }
  }

  /**
   * The backstop of the parking protocol. A sender that wins the parked
   * word's compare-and-swap must then ring; if it is killed in between (a
   * few microseconds; seen under SIGKILL in test/bus/faults.test.ts), the
   * word says AWAKE, so no other sender rings, and the receiver would sleep
   * on data forever. So a parked receiver looks at its lanes (a couple of
   * atomic loads) PARKED_CHECK_MS after it parks, then at doubling
   * intervals up to PARKED_CHECK_MAX_MS while it stays parked: a sender
   * that wakes a freshly parked receiver and dies is covered within 250 ms,
   * any other within 2 s, and a receiver idle for long wakes once every 2 s
   * (0.1% of a core at a steady 250 ms, measured by the bench's idle cell;
   * the backoff keeps it near nothing). Finding data while parked means a
   * ring was lost (or is in flight: the ring that follows is then spurious,
   * which is harmless).
   */
  private armParkedCheck(): void {
    if (this.parkedCheck !== null && this.parkedCheckMs === PARKED_CHECK_MS) {
      this.parkedCheck.refresh()
      return
    }
    this.scheduleParkedCheck(PARKED_CHECK_MS)
  }

  private scheduleParkedCheck(ms: number): void {
    if (this.parkedCheck !== null) clearTimeout(this.parkedCheck)
    this.parkedCheckMs = ms
    this.parkedCheck = setTimeout(this.checkParked, ms)
    this.parkedCheck.unref() // the channel's retain() is what keeps the process alive
  }

  private readonly checkParked = (): void => {
    if (!this.parked || this.closed || !this.receiving) return
    if (this.segment.hasData()) {
      this.segment.countRescue() // a wakeup the doorbell did not deliver
      this.wake()
    } else this.scheduleParkedCheck(Math.min(this.parkedCheckMs * 2, PARKED_CHECK_MAX_MS))
  }

  private wake(): void {
    if (!this.parked) return // a late or spurious ring: we are already running
    this.parked = false
    // Doorbells are delivered from an event-loop callback (the signal pipe
    // or the FIFO), so drain right here rather than one more turn later.
    if (!this.scheduled) this.run()
  }

  private onRecord(v: T): void {
    if (this.iterating) {
      const pull = this.pulls.shift()
      if (pull !== undefined) pull.resolve({ value: v, done: false })
      else this.queue.push(v)
    }
    const listeners = this.currentListeners
    if (listeners.length > 0) {
      try {
        if (listeners.length === 1) listeners[0]!.call(this, v)
        else for (const listener of listeners.slice()) listener.call(this, v)
      } catch (err) {
        // A throwing listener must not stop delivery (nor make the ring
        // deliver the batch twice): report it and go on.
        if (this.listenerCount('error') > 0) this.emit('error', err)
        else process.emitWarning(`@ipc/bus: a 'message' listener of channel '${this.name}' threw: ${err instanceof Error ? err.stack : String(err)}`)
      }
    }
    // Never take a record nobody will get: it stays in the ring.
    if (!this.canTake()) this.segment.haltDrain()
  }

  private fail(err: unknown): void {
    this.stopReceiving()
    for (const p of this.pulls.splice(0)) p.reject(err)
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else process.emitWarning(`@ipc/bus: channel '${this.name}' stopped receiving: ${err instanceof Error ? err.message : String(err)}`)
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
    this.startReceiving()
    this.iterating = true
    let ended = false
    const end = (): Promise<IteratorResult<T>> => {
      if (!ended) {
        ended = true
        this.iterating = false
        this.queue.length = 0 // copies of what listeners got
        for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true })
        if (this.listenerCount('message') === 0) this.stopReceiving()
        else if (!this.draining) this.schedule() // the listeners no longer wait for the iterator
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
          if (this.currentListeners.length === 0 && this.canTake()) this.drainOnce(1)
          if (this.pulls.length > 0) this.schedule()
        })
      },
      return: end,
      throw: end,
    }
  }

  // =========================================================== lifecycle

  /** Counters of this channel and each lane. */
  stats(): ChannelStats {
    const s = this.segment.stats()
    return {
      name: this.name,
      role: this.receiving ? 'receiver' : this.sender !== null ? 'sender' : 'idle',
      parks: s.parks,
      drains: s.drains,
      backstopRescues: s.rescues,
      lanes: s.lanes.map((lane, i) => ({ owner: this.segment.laneOwner(i)?.pid ?? null, ...lane })),
    }
  }

  /**
   * Stops sending and receiving here. Pending sends reject with Closed;
   * unread messages stay in the ring for the next receiver; this process's
   * lane is released (what it wrote is still delivered).
   */
  close(): void {
    if (this.closed) return
    if (this.sender !== null) this.publishStaged() // what trySend accepted is delivered
    this.closed = true
    this.failAll(new Closed(`channel '${this.name}'`))
    this.stopReceiving()
    for (const p of this.pulls.splice(0)) p.resolve({ value: undefined, done: true })
    if (this.roomRegistered) {
      unregisterSleeper(roomToken(this.token), this.roomSleeper)
      this.roomRegistered = false
      this.roomWake?.()
    }
    if (this.sender !== null) {
      this.segment.releaseLane(this.sender, selfIdentity())
      this.sender = null
      cancelRelease(this.laneRelease)
      this.laneRelease = null
    }
    this.host.forget(this.name)
  }
}
