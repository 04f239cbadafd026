/**
 * A channel segment: K single-producer lanes drained by one receiver.
 * Senders claim a lane each (CAS on its owner word); the receiver drains all
 * lanes round-robin, a bounded batch per lane, and parks on the channel's
 * `parked` word when all are empty.
 */
import { Codec, defaultCodec } from '../codec.js'
import { CorruptSegment, NotABus } from '../errors.js'
import { identityWord, readIdentity, type Identity, type IsAlive } from '../identity.js'
import type { RecordHandler } from '../ring/lane.js'
import { LaneProducer } from '../ring/producer.js'
import { LaneConsumer } from '../ring/consumer.js'
import { isValidCapacity } from '../ring/layout.js'
import { PARKED as PARKED_STATE, park, shouldRing } from '../ring/park.js'
import { bellWord, readBell, type BellAddress } from '../doorbell.js'
import {
  BELL_OWNER, CHANNEL_MAGIC, CHANNEL_VERSION, DRAINS, LANES, LANES_USED, LANE_CAPACITY, MAGIC, MAX_LANES, OWNERS, PARKED, PARKS,
  MAX_MESSAGE, MAX_MESSAGE_LIMIT, MAX_SCHEMA_BYTES, RECEIVER, RECEIVER_BELL, RESCUES, SCHEMA_BYTES, VERSION, channelBytes, laneBellsOffset, laneOffset, schemaOffset,
} from './layout.js'
import { schemaFromText, type Schema } from '../schema/schema.js'

export { channelBytes }
export { initializeChannel, type ChannelLayoutOptions } from './initialize.js'

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
  /** Largest message, whole (MAX_MESSAGE): what is larger than maxRecordBytes travels as fragments. */
  readonly maxMessageBytes: number
  /** Largest record payload of the lanes. */
  readonly maxRecordBytes: number
  /** The receiver's parked word is parked[PARKED_INDEX]. */
  readonly parked: Int32Array
  private readonly buffer: ArrayBufferLike
  private readonly byteOffset: number
  private readonly words: Int32Array
  private readonly counters: Float64Array
  private readonly owners: BigInt64Array
  private readonly receiverCell: BigInt64Array
  private readonly bellOwnerCell: BigInt64Array
  private readonly laneBells: BigInt64Array
  private readonly consumers: LaneConsumer[]
  /** Shared with every lane consumer: haltDrain() stops the drain in progress before its next record. */
  private readonly halt = { halted: false }
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
    const schemaBytes = words[SCHEMA_BYTES >> 2]! >>> 0
    if (schemaBytes > MAX_SCHEMA_BYTES || byteOffset + channelBytes(lanes, capacity, schemaBytes) > buffer.byteLength) {
      throw new CorruptSegment('channel.schemaBytes', schemaBytes, `is more than ${MAX_SCHEMA_BYTES} or runs past the buffer`)
    }
    if (schemaBytes === 0) this.schema = null
    else {
      const text = Buffer.from(buffer as ArrayBuffer, byteOffset + schemaOffset(lanes, capacity), schemaBytes).toString('utf8')
      this.schema = schemaFromText(text)
      if (this.schema === null) throw new CorruptSegment('channel.schema', text.slice(0, 80), 'is not a schema text')
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
    this.bellOwnerCell = new BigInt64Array(buffer, byteOffset + BELL_OWNER, 1)
    this.laneBells = new BigInt64Array(buffer, byteOffset + laneBellsOffset(lanes), lanes)
    this.codec = codec
    this.consumers = []
    for (let i = 0; i < lanes; i++) {
      const lane = new LaneConsumer(buffer, byteOffset + laneOffset(lanes, capacity, i), codec, this.halt)
      if (lane.capacity !== capacity) throw laneCapacityDiffers(i, lane.capacity, capacity)
      this.consumers.push(lane)
    }
    this.maxRecordBytes = this.consumers[0]!.maxMessageBytes
    const maxMessage = words[MAX_MESSAGE >> 2]! >>> 0
    if (maxMessage < this.maxRecordBytes || maxMessage > MAX_MESSAGE_LIMIT) {
      throw new CorruptSegment('channel.maxMessageBytes', maxMessage, `is not from the record limit ${this.maxRecordBytes} to ${MAX_MESSAGE_LIMIT}`)
    }
    this.maxMessageBytes = maxMessage
  }

  /** The channel's record schema (its records are TYPE_SCHEMA), or null. */
  readonly schema: Schema | null

  /** Index of the parked word in `parked`. */
  static readonly PARKED_INDEX = PARKED >> 2

  // ---- receiver ------------------------------------------------------------

  /**
   * Makes `me` the receiver (as claimReceiver) and publishes its doorbell
   * address (see the publish rule in layout.ts). Returns null on success,
   * else the live receiver.
   */
  claimReceiverWithBell(me: Identity, bell: BellAddress, isAlive: IsAlive): Identity | null {
    const word = bellWord(bell) // validates before anything is written
    const holder = this.claimReceiver(me, isAlive)
    if (holder !== null) return holder
    Atomics.store(this.bellOwnerCell, 0, 0n)
    Atomics.store(this.words, RECEIVER_BELL >> 2, word | 0)
    Atomics.store(this.bellOwnerCell, 0, identityWord(me))
    return null
  }

  /** Test helper: makes `receiver` the receiver outright (no CAS, no liveness check), with `bell` if given. */
  setReceiver(receiver: Identity, bell?: BellAddress): void {
    const id = identityWord(receiver)
    const word = bell === undefined ? 0 : bellWord(bell)
    Atomics.store(this.bellOwnerCell, 0, 0n)
    Atomics.store(this.words, RECEIVER_BELL >> 2, word | 0)
    Atomics.store(this.receiverCell, 0, id)
    Atomics.store(this.bellOwnerCell, 0, id)
  }

  /**
   * Makes `me` the receiver by CAS on the RECEIVER word: succeeds when there
   * is none (0) or the current one is dead by `isAlive`; returns null on
   * success, else the live receiver (`me` itself when another instance of
   * this process holds it). This is the only way two processes
   * racing to receive can be told apart: exactly one CAS wins.
   */
  claimReceiver(me: Identity, isAlive: IsAlive): Identity | null {
    const word = identityWord(me)
    const cell = this.receiverCell
    for (let attempt = 0; attempt < 16; attempt++) {
      const current = Atomics.load(cell, 0)
      // Our own identity: another bus instance or worker thread of this
      // process receives. Only one may (each has its own read positions).
      if (current === word) return me
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

  /** Gives up the receiver role (BELL_OWNER cleared, then CAS me -> 0); false when `me` was not the receiver. */
  releaseReceiver(me: Identity): boolean {
    const word = identityWord(me)
    if (Atomics.load(this.receiverCell, 0) !== word) return false
    Atomics.compareExchange(this.bellOwnerCell, 0, word, 0n)
    return Atomics.compareExchange(this.receiverCell, 0, word, 0n) === word
  }

  /** The receiver's identity alone (one atomic load), or null. */
  receiverIdentity(): Identity | null {
    return readIdentity(Atomics.load(this.receiverCell, 0), 'channel.receiver')
  }

  /**
   * The receiver and its doorbell address (null when none is published yet:
   * a claim in flight, or a receiver of an older build), or null when there
   * is no receiver. The address counts only when BELL_OWNER, read before and
   * after it, is the receiver.
   */
  receiver(): (Identity & { bell: BellAddress | null }) | null {
    const id = Atomics.load(this.receiverCell, 0)
    const who = readIdentity(id, 'channel.receiver')
    if (who === null) return null
    const before = Atomics.load(this.bellOwnerCell, 0)
    const word = Atomics.load(this.words, RECEIVER_BELL >> 2)
    const after = Atomics.load(this.bellOwnerCell, 0)
    const valid = before === id && after === id && Atomics.load(this.receiverCell, 0) === id
    return { ...who, bell: valid ? readBell(word) : null }
  }

  /**
   * A cheap stamp of the current receiver claim and its published doorbell
   * (three 32-bit loads, no allocation): both halves of RECEIVER and
   * RECEIVER_BELL, mixed. A sender that cached receiver() under one stamp may ring
   * that cached address while the stamp is unchanged.
   */
  receiverStamp(): number {
    const w = this.words
    return (Atomics.load(w, RECEIVER >> 2) ^ Math.imul(Atomics.load(w, (RECEIVER >> 2) + 1), 0x85ebca6b) ^ Math.imul(Atomics.load(w, RECEIVER_BELL >> 2), 0x9e3779b1)) | 0
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

  /** True when any lane holds records nobody has read (from the ring's own positions: valid in any process). */
  hasUnread(): boolean {
    const used = this.lanesInUse
    for (let i = 0; i < used; i++) if (this.consumers[i]!.hasData()) return true
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
    const consumers = this.consumers
    const k = this.lanesInUse
    if (k === 0) return 0
    const halt = this.halt
    halt.halted = false
    const first = this.next < k ? this.next : 0
    let i = first
    let total = 0
    for (let visited = 0; visited < k && total < maxTotal && !halt.halted; visited++) {
      const lane = consumers[i]!
      this.draining = lane
      this.drainingLane = i
      const n = Math.min(maxPerLane, maxTotal - total)
      total += lane.drain(handler, n)
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

  /** True while the receiver's parked word says PARKED (a plain look, no CAS: a new sender's hello ring, see docs/design.md "The parking protocol"). */
  receiverParked(): boolean {
    return Atomics.load(this.words, PARKED >> 2) === PARKED_STATE
  }

  /** Counts a parked-receiver backstop check that found data: a wakeup the doorbell did not deliver. */
  countRescue(): void {
    this.counters[RESCUES >> 3]! += 1
  }

  /** Index of the lane whose drain is handing records over: a record handler's lane. */
  drainingLane = 0

  /** The lane whose drain is handing records over (see consumeCurrent()). */
  private draining: LaneConsumer | null = null

  /**
   * From a drain's handler, once the record's bytes are copied out: marks
   * it read in the ring at once (see LaneConsumer.consume), so a receiver
   * killed later in the batch leaves nothing it took to be taken again.
   */
  consumeCurrent(): void {
    this.draining?.consume()
  }

  /**
   * Stops the drain in progress before it hands over its next record (call
   * from the record handler): the records not handed over stay in the ring,
   * unread. Every drain starts un-halted.
   */
  haltDrain(): void {
    this.halt.halted = true
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
    if (Atomics.load(this.owners, sender.lane) !== word) return false
    Atomics.store(this.laneBells, sender.lane, 0n)
    return Atomics.compareExchange(this.owners, sender.lane, word, 0n) === word
  }

  /**
   * Publishes the doorbell address by which `owner`, the owner of lane
   * `index`, is woken when room appears: only once that doorbell is ready.
   */
  setLaneBell(index: number, owner: Identity, bell: BellAddress): void {
    const tag = identityWord(owner) & 0xffffffffn
    Atomics.store(this.laneBells, index, BigInt.asIntN(64, (tag << 32n) | BigInt(bellWord(bell))))
  }

  /** Owner of lane `index` and its doorbell address (null while unknown), or null for a free lane. */
  laneOwnerBell(index: number): (Identity & { bell: BellAddress | null }) | null {
    const before = Atomics.load(this.owners, index)
    const who = readIdentity(before, `channel lane ${index} owner`)
    if (who === null) return null
    const word = Atomics.load(this.laneBells, index)
    const valid = Atomics.load(this.owners, index) === before && BigInt.asUintN(32, word >> 32n) === (before & 0xffffffffn)
    return { ...who, bell: valid ? readBell(Number(word & 0xffffffffn)) : null }
  }

  /**
   * True when lane `index` will get no further record from the owner that
   * wrote its last ones: that owner is gone (released the lane, or died)
   * and everything it wrote is read. The owner is read first, the lane's
   * write position after (why: docs/design.md, "Large messages"). Only
   * meaningful in the process that claimed the receiver.
   */
  laneDeserted(index: number, isAlive: IsAlive): boolean {
    const owner = this.laneOwner(index)
    if (owner !== null && isAlive(owner.pid, owner.startTime)) return false
    return !this.consumers[index]!.unread()
  }

  /** Who owns lane `index`, or null. */
  laneOwner(index: number): Identity | null {
    return readIdentity(Atomics.load(this.owners, index), `channel lane ${index} owner`)
  }

  /** The data region of lane `index` (its ring's bytes), for the receiver's prefault (see @ipc/bus prefault.ts). */
  laneData(index: number): Buffer {
    return this.consumers[index]!.data
  }

  /** Statistics of every lane and of the receiver. */
  stats(): { parks: number; drains: number; rescues: number; lanes: ReturnType<LaneConsumer['stats']>[] } {
    const c = this.counters
    return { parks: c[PARKS >> 3]!, drains: c[DRAINS >> 3]!, rescues: c[RESCUES >> 3]!, lanes: this.consumers.map((l) => l.stats()) }
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

/** Out of the constructor's loop over lanes (docs/design.md, "Error messages off the hot path"; cold here, but the lint rule covers the file). */
function laneCapacityDiffers(lane: number, found: number, capacity: number): CorruptSegment {
  return new CorruptSegment(`channel lane ${lane} capacity`, found, `differs from the channel's ${capacity}`)
}
