/**
 * A channel segment: K single-producer lanes drained by one receiver.
 * Senders claim a lane each (CAS on its owner word); the receiver drains all
 * lanes round-robin, a bounded batch per lane, and parks on the channel's
 * `parked` word when all are empty.
 */
import { Codec, defaultCodec } from '../codec.js'
import { CorruptSegment, NotABus } from '../errors.js'
import { identityWord, readIdentity, type Identity, type IsAlive } from '../identity.js'
import { LaneConsumer, LaneProducer, initializeLane, type RecordHandler, type ValueHandler } from '../ring/lane.js'
import { isValidCapacity } from '../ring/layout.js'
import { park, shouldRing } from '../ring/park.js'
import {
  CHANNEL_MAGIC, CHANNEL_VERSION, CLOSED, DOORBELL_KIND, DOORBELL_NONE, DOORBELL_SIGNAL_NO, DRAINS, LANES,
  LANES_USED, LANE_CAPACITY, MAGIC, MAX_DOORBELL, MAX_LANES, OWNERS, PARKED, PARKS, RECEIVER, VERSION, channelBytes, laneOffset,
} from './layout.js'

export interface ChannelOptions {
  /** Number of lanes K (senders that can attach at once), 1..1024. */
  lanes: number
  /** Data bytes per lane, a power of two from 64 B to 1 GiB. */
  laneCapacity: number
  /** Largest payload; default laneCapacity / 8. */
  maxMessageBytes?: number
  /** Starting position of every lane (tests start just below 2^32). */
  initialPosition?: number
}

export interface Doorbell {
  /** DOORBELL_NONE | DOORBELL_SIGNAL | DOORBELL_PIPE | DOORBELL_SPIN. */
  kind: number
  /** Signal number for DOORBELL_SIGNAL, else 0. */
  signal: number
}

export { channelBytes }

/** Writes a fresh channel segment (header, empty owner table, K empty lanes) at `byteOffset`. */
export function initializeChannel(buffer: ArrayBufferLike, byteOffset: number, options: ChannelOptions): void {
  const { lanes, laneCapacity } = options
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) throw new RangeError(`options.lanes must be an integer from 1 to ${MAX_LANES}, got ${lanes}`)
  if (!isValidCapacity(laneCapacity)) throw new RangeError(`options.laneCapacity must be a power of two from 64 to 2^30, got ${laneCapacity}`)
  const bytes = channelBytes(lanes, laneCapacity)
  if (byteOffset % 8 !== 0 || byteOffset + bytes > buffer.byteLength) {
    throw new RangeError(`a channel of ${lanes} x ${laneCapacity} bytes needs ${bytes} bytes at an 8-aligned offset, got offset ${byteOffset} in ${buffer.byteLength}`)
  }
  const header = new Uint8Array(buffer, byteOffset, laneOffset(lanes, laneCapacity, 0))
  header.fill(0)
  for (let i = 0; i < lanes; i++) {
    initializeLane(buffer, byteOffset + laneOffset(lanes, laneCapacity, i), {
      capacity: laneCapacity, maxMessageBytes: options.maxMessageBytes, initialPosition: options.initialPosition,
    })
  }
  const words = new Int32Array(buffer, byteOffset, OWNERS / 4)
  words[VERSION >> 2] = CHANNEL_VERSION
  words[LANES >> 2] = lanes
  words[LANE_CAPACITY >> 2] = laneCapacity
  Atomics.store(words, MAGIC >> 2, CHANNEL_MAGIC) // last: a half-built segment has no magic
}

/** A lane producer bound to its channel: knows its lane and whether to ring the receiver. */
export class ChannelSender extends LaneProducer {
  constructor(
    buffer: ArrayBufferLike, byteOffset: number, codec: Codec,
    /** Index of the claimed lane. */
    readonly lane: number,
    private readonly parked: Int32Array,
  ) {
    super(buffer, byteOffset, codec)
  }

  /** Call after a successful write: true when this sender must ring the receiver's doorbell (see ring/park.ts). */
  shouldRing(): boolean {
    if (!shouldRing(this.parked, PARKED >> 2)) return false
    this.countDoorbell()
    return true
  }
}

export class ChannelSegment {
  readonly lanes: number
  readonly laneCapacity: number
  readonly maxMessageBytes: number
  /** The receiver's parked word is parked[PARKED_INDEX]. */
  readonly parked: Int32Array
  private readonly buffer: ArrayBufferLike
  private readonly byteOffset: number
  private readonly words: Int32Array
  private readonly counters: Float64Array
  private readonly owners: BigInt64Array
  private readonly receiverCell: BigInt64Array
  private readonly consumers: LaneConsumer[]
  private readonly codec: Codec
  private next = 0

  /** Wraps an initialized segment, validating its header and every lane header. */
  constructor(buffer: ArrayBufferLike, byteOffset = 0, codec: Codec = defaultCodec()) {
    if (byteOffset % 8 !== 0 || byteOffset + OWNERS > buffer.byteLength) throw new RangeError(`no room for a channel header at offset ${byteOffset} of ${buffer.byteLength}`)
    const words = new Int32Array(buffer, byteOffset, OWNERS / 4)
    const magic = Atomics.load(words, MAGIC >> 2) >>> 0
    if (magic !== CHANNEL_MAGIC) throw new NotABus(`no channel at offset ${byteOffset}: magic 0x${magic.toString(16)} is not 0x${CHANNEL_MAGIC.toString(16)}`)
    const version = words[VERSION >> 2]!
    if (version !== CHANNEL_VERSION) throw new NotABus(`channel has layout version ${version}, this build reads ${CHANNEL_VERSION}`)
    const lanes = words[LANES >> 2]!
    if (lanes < 1 || lanes > MAX_LANES) throw new CorruptSegment('channel.lanes', lanes, `is not from 1 to ${MAX_LANES}`)
    const capacity = words[LANE_CAPACITY >> 2]! >>> 0
    if (!isValidCapacity(capacity)) throw new CorruptSegment('channel.laneCapacity', capacity, 'is not a power of two from 64 to 2^30')
    if (byteOffset + channelBytes(lanes, capacity) > buffer.byteLength) {
      throw new CorruptSegment('channel.lanes', lanes, `lanes of ${capacity} bytes do not fit the ${buffer.byteLength}-byte buffer`)
    }
    this.buffer = buffer
    this.byteOffset = byteOffset
    this.lanes = lanes
    this.laneCapacity = capacity
    this.words = words
    this.parked = words
    this.counters = new Float64Array(buffer, byteOffset, OWNERS / 8)
    this.owners = new BigInt64Array(buffer, byteOffset + OWNERS, lanes)
    this.receiverCell = new BigInt64Array(buffer, byteOffset + RECEIVER, 1)
    this.codec = codec
    this.consumers = []
    for (let i = 0; i < lanes; i++) {
      const lane = new LaneConsumer(buffer, byteOffset + laneOffset(lanes, capacity, i), codec)
      if (lane.capacity !== capacity) throw new CorruptSegment(`channel lane ${i} capacity`, lane.capacity, `differs from the channel's ${capacity}`)
      this.consumers.push(lane)
    }
    this.maxMessageBytes = this.consumers[0]!.maxMessageBytes
  }

  /** Index of the parked word in `parked`. */
  static readonly PARKED_INDEX = PARKED >> 2

  // ---- receiver ------------------------------------------------------------

  /** Records who receives and how to wake it; the identity is written last. */
  setReceiver(receiver: Identity, doorbell: Doorbell = { kind: DOORBELL_NONE, signal: 0 }): void {
    if (!(doorbell.kind >= 0 && doorbell.kind <= MAX_DOORBELL)) throw new RangeError(`doorbell.kind must be 0..${MAX_DOORBELL}, got ${doorbell.kind}`)
    if (!(Number.isInteger(doorbell.signal) && doorbell.signal >= 0 && doorbell.signal < 65)) throw new RangeError(`doorbell.signal must be 0..64, got ${doorbell.signal}`)
    const word = identityWord(receiver)
    Atomics.store(this.words, DOORBELL_KIND >> 2, doorbell.kind)
    Atomics.store(this.words, DOORBELL_SIGNAL_NO >> 2, doorbell.signal)
    Atomics.store(this.receiverCell, 0, word) // publish the receiver
  }

  /**
   * Makes `me` the receiver by CAS on the RECEIVER word: succeeds when there
   * is none (0) or the current one is dead by `isAlive`; returns null on
   * success, else the live receiver. This is the only way two processes
   * racing to receive can be told apart: exactly one CAS wins. (The bus
   * looks up how to wake a receiver in the directory's member table, keyed
   * by this identity, so nothing else needs publishing with it.)
   */
  claimReceiver(me: Identity, isAlive: IsAlive): Identity | null {
    const word = identityWord(me)
    const cell = this.receiverCell
    for (let attempt = 0; attempt < 16; attempt++) {
      const current = Atomics.load(cell, 0)
      if (current === word) return null
      const holder = readIdentity(current, 'channel.receiver')
      if (holder !== null && isAlive(holder.pid, holder.startTime)) return holder
      if (Atomics.compareExchange(cell, 0, current, word) === current) {
        // Another process may have drained since this object was made (it
        // was a sender here, or a receiver that handed over): read on from
        // where the ring says, not from where this object last looked.
        for (const lane of this.consumers) lane.resync()
        this.next = 0
        return null
      }
    }
    throw new CorruptSegment('channel.receiver', 'changing', 'kept changing under 16 compare-and-swap attempts')
  }

  /** Gives up the receiver role (CAS me -> 0); false when `me` was not the receiver. */
  releaseReceiver(me: Identity): boolean {
    const word = identityWord(me)
    return Atomics.compareExchange(this.receiverCell, 0, word, 0n) === word
  }

  /** The receiver's identity alone (one atomic load), or null. */
  receiverIdentity(): Identity | null {
    return readIdentity(Atomics.load(this.receiverCell, 0), 'channel.receiver')
  }

  /** The receiver and its doorbell, or null before setReceiver. */
  receiver(): (Identity & { doorbell: Doorbell }) | null {
    const id = readIdentity(Atomics.load(this.receiverCell, 0), 'channel.receiver')
    if (id === null) return null
    const kind = Atomics.load(this.words, DOORBELL_KIND >> 2)
    if (kind < 0 || kind > MAX_DOORBELL) throw new CorruptSegment('channel.doorbellKind', kind, 'is not a doorbell kind')
    const signal = Atomics.load(this.words, DOORBELL_SIGNAL_NO >> 2)
    if (signal < 0 || signal > 64) throw new CorruptSegment('channel.doorbellSignal', signal, 'is not a signal number')
    return { ...id, doorbell: { kind, signal } }
  }

  /**
   * The receiver's poll: true when any lane holds records it has not read.
   * Looks only at lanes [0, LANES_USED) and compares each WRITE with this
   * process's own read position (one atomic load per lane in use). Only
   * meaningful in the process that claimed the receiver.
   */
  hasData(): boolean {
    const consumers = this.consumers
    const used = this.lanesInUse
    for (let i = 0; i < used; i++) if (consumers[i]!.unread()) return true
    return false
  }

  /**
   * How many lanes senders have claimed so far: LANES_USED, a high-water
   * mark, clamped to K (a corrupt value can only make the receiver poll
   * lanes that are all empty, never index past the table).
   */
  get lanesInUse(): number {
    const used = Atomics.load(this.words, LANES_USED >> 2) >>> 0
    return used < this.lanes ? used : this.lanes
  }

  /**
   * Drains lanes round-robin, at most `maxPerLane` records from each and
   * `maxTotal` overall, starting one lane further each call so that no lane
   * is favoured. Returns how many records were handed to `handler`.
   */
  drain(handler: RecordHandler, maxPerLane = 256, maxTotal = Infinity): number {
    return this.roundRobin(handler, false, maxPerLane, maxTotal)
  }

  /** drain() decoding each payload with the codec. */
  receive(onValue: ValueHandler, maxPerLane = 256, maxTotal = Infinity): number {
    return this.roundRobin(onValue, true, maxPerLane, maxTotal)
  }

  private roundRobin(handler: RecordHandler | ValueHandler, decode: boolean, maxPerLane: number, maxTotal: number): number {
    const consumers = this.consumers
    const k = this.lanesInUse
    if (k === 0) return 0
    const first = this.next < k ? this.next : 0
    let i = first
    let total = 0
    for (let visited = 0; visited < k && total < maxTotal; visited++) {
      const lane = consumers[i]!
      const n = Math.min(maxPerLane, maxTotal - total)
      total += decode ? lane.receive(handler as ValueHandler, n) : lane.drain(handler as RecordHandler, n)
      if (lane.takeRoomWanted()) this.roomWanted.push(i)
      i = i + 1 === k ? 0 : i + 1
    }
    this.next = i === first ? (first + 1 === k ? 0 : first + 1) : i
    if (total > 0) this.counters[DRAINS >> 3]! += 1
    return total
  }

  /**
   * Lanes whose waiting producer the last drains freed room for (each
   * reported once; see ROOM_WANTED in ../ring/layout.ts). The receiver wakes
   * their owners, then empties the list.
   */
  readonly roomWanted: number[] = []

  /** The receiver's half of the parking protocol: true = may sleep until the doorbell rings. */
  park(): boolean {
    this.counters[PARKS >> 3]! += 1
    return park(this.words, PARKED >> 2, this)
  }

  /** Marks the channel closed (senders check `closed`). */
  close(): void {
    Atomics.store(this.words, CLOSED >> 2, 1)
  }

  get closed(): boolean {
    return Atomics.load(this.words, CLOSED >> 2) !== 0
  }

  // ---- senders -------------------------------------------------------------

  /**
   * Claims a lane for `owner`: a free one (CAS 0 -> owner), else one whose
   * owner `isAlive` says is dead and which is drained (CAS old -> owner).
   * Returns null when every lane is taken.
   */
  claimLane(owner: Identity, isAlive?: IsAlive): ChannelSender | null {
    const word = identityWord(owner)
    const owners = this.owners
    for (let i = 0; i < owners.length; i++) {
      if (Atomics.load(owners, i) === 0n && Atomics.compareExchange(owners, i, 0n, word) === 0n) return this.sender(i)
    }
    if (isAlive === undefined) return null
    for (let i = 0; i < owners.length; i++) {
      const current = Atomics.load(owners, i)
      const id = readIdentity(current, `channel lane ${i} owner`)
      if (id === null || isAlive(id.pid, id.startTime) || this.consumers[i]!.hasData()) continue
      if (Atomics.compareExchange(owners, i, current, word) === current) return this.sender(i)
    }
    return null
  }

  /** Gives a lane back (its unread records are still delivered). Only the owner may release. */
  releaseLane(sender: ChannelSender, owner: Identity): boolean {
    const word = identityWord(owner)
    return Atomics.compareExchange(this.owners, sender.lane, word, 0n) === word
  }

  /** Who owns lane `index`, or null. */
  laneOwner(index: number): Identity | null {
    return readIdentity(Atomics.load(this.owners, index), `channel lane ${index} owner`)
  }

  /** Statistics of every lane and of the receiver. */
  stats(): { parks: number; drains: number; lanes: ReturnType<LaneConsumer['stats']>[] } {
    return { parks: this.counters[PARKS >> 3]!, drains: this.counters[DRAINS >> 3]!, lanes: this.consumers.map((c) => c.stats()) }
  }

  /** The sender of lane i, once LANES_USED covers it (before anything is written there). */
  private sender(i: number): ChannelSender {
    const words = this.words
    for (;;) {
      const used = Atomics.load(words, LANES_USED >> 2)
      if (used >= i + 1 || Atomics.compareExchange(words, LANES_USED >> 2, used, i + 1) === used) break
    }
    return new ChannelSender(this.buffer, this.byteOffset + laneOffset(this.lanes, this.laneCapacity, i), this.codec, i, this.words)
  }
}
