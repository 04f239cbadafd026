/**
 * A topic segment (./layout.ts): P broadcast lanes and a table of S
 * subscriber slots over one piece of memory. This file validates one
 * (TopicSegment; ./initialize.ts writes a fresh one) and owns the claim
 * protocols: lanes (CAS of the owner word, as a channel's lanes) and
 * subscriber slots (CAS of the owner word, then STATE by generation). The hot
 * paths are ./publisher.ts and ./subscriber.ts.
 *
 * Liveness is the caller's: core makes no system calls. A dead subscriber's
 * slot is never waited on by identity checks on the write path; the bus
 * frees it with reclaimSubscriber / reclaimDeadSubscribers (the slots a
 * blocked publisher names in blockers() are the ones worth checking), after
 * which every publisher stops gating on it.
 */
import { Buffer } from 'node:buffer'
import { defaultCodec, type Codec } from '../codec.js'
import { CorruptSegment, NotABus } from '../errors.js'
import { identityWord, readIdentity, type Identity, type IsAlive } from '../identity.js'
import { bellWord, readBell, type BellAddress } from '../doorbell.js'
import { AWAKE } from '../ring/park.js'
import type { LaneView } from './chain.js'
import {
  BYTES_WRITTEN, DOORBELLS_RUNG, EPOCH, FULL_EVENTS, INITIAL_POSITION, INTENT, LANES, LANES_USED, LANE_CAPACITY, LATEST, LATEST_NONE,
  MAGIC, MAX_MESSAGE, MAX_TOPIC_LANES, MAX_TOPIC_SLOTS, MESSAGES_WRITTEN, POLICY_BLOCK, POLICY_DROP, SLOTS, SUB_ACTIVE, SUB_BELL,
  SUB_BYTES_READ, SUB_CLAIMING, SUB_CURSORS, SUB_DROPPED, SUB_FREE, SUB_LAPS, SUB_MESSAGES_READ, SUB_OWNER, SUB_PARKED, SUB_PARKS,
  SCHEMA_BYTES, SUB_POLICY, SUB_STATE, TOPIC_MAGIC, TOPIC_VERSION, VERSION, WRITE, dataOffset, isValidTopicCapacity, laneBellsOffset,
  laneLineOffset, ownersOffset, schemaOffset, slotOffset, topicBytes, topicMaxMessageLimit,
} from './layout.js'
import { MAX_SCHEMA_BYTES } from '../channel/layout.js'
import { schemaFromText, type Schema } from '../schema/schema.js'
import { TopicPublisher } from './publisher.js'
import { TopicSubscriber, checkSubscribeOptions, type SubscribeOptions } from './subscriber.js'

/** One subscriber slot as read from shared memory (may be in flux). */
export interface SubscriberInfo {
  slot: number
  state: 'claiming' | 'active'
  policy: 'block' | 'drop'
  owner: Identity | null
  bell: BellAddress | null
  /** Cursor of every lane. */
  cursors: number[]
  messagesRead: number
  bytesRead: number
  dropped: number
  laps: number
  parks: number
}

export interface TopicLaneStats {
  write: number
  messagesWritten: number
  bytesWritten: number
  fullEvents: number
  doorbellsRung: number
}

export { topicBytes }
export { initializeTopic, type TopicLayoutOptions } from './initialize.js'

export class TopicSegment {
  readonly lanes: number
  readonly slots: number
  readonly laneCapacity: number
  readonly maxMessageBytes: number
  readonly initialPosition: number
  /** Header and tables as i32 words (lanes' lines, owner table, subscriber slots). */
  readonly words: Int32Array
  /** The same memory as f64 counters. */
  readonly counters: Float64Array
  /** One view per lane (./chain.ts). */
  readonly views: readonly LaneView[]
  readonly codec: Codec
  /** The same memory as i64 words (identities, lane bells). */
  readonly ids: BigInt64Array
  /** The topic's record schema (its values are TYPE_SCHEMA records), or null (msgpack). */
  readonly schema: Schema | null

  /** Wraps an initialized segment, validating its header and every lane's positions. */
  constructor(buffer: ArrayBufferLike, byteOffset = 0, codec: Codec = defaultCodec()) {
    if (byteOffset % 8 !== 0 || byteOffset + laneLineOffset(0) > buffer.byteLength) throw new RangeError(`no room for a topic header at offset ${byteOffset} of ${buffer.byteLength}`)
    const head = new Int32Array(buffer, byteOffset, laneLineOffset(0) / 4)
    const magic = Atomics.load(head, MAGIC >> 2) >>> 0
    if (magic !== TOPIC_MAGIC) throw new NotABus(`no topic at offset ${byteOffset}: magic 0x${magic.toString(16)} is not 0x${TOPIC_MAGIC.toString(16)}`)
    const version = head[VERSION >> 2]!
    if (version !== TOPIC_VERSION) throw new NotABus(`topic has layout version ${version}, this build reads ${TOPIC_VERSION}`)
    const lanes = head[LANES >> 2]!
    if (lanes < 1 || lanes > MAX_TOPIC_LANES) throw new CorruptSegment('topic.lanes', lanes, `is not from 1 to ${MAX_TOPIC_LANES}`)
    const slots = head[SLOTS >> 2]!
    if (slots < 1 || slots > MAX_TOPIC_SLOTS) throw new CorruptSegment('topic.slots', slots, `is not from 1 to ${MAX_TOPIC_SLOTS}`)
    const capacity = head[LANE_CAPACITY >> 2]! >>> 0
    if (!isValidTopicCapacity(capacity)) throw new CorruptSegment('topic.laneCapacity', capacity, 'is not a power of two from 128 to 2^30')
    const max = head[MAX_MESSAGE >> 2]! >>> 0
    if (max > topicMaxMessageLimit(capacity)) throw new CorruptSegment('topic.maxMessageBytes', max, `exceeds laneCapacity/4-16 = ${topicMaxMessageLimit(capacity)}`)
    const initial = head[INITIAL_POSITION >> 2]! >>> 0
    if ((initial & 7) !== 0) throw new CorruptSegment('topic.initialPosition', initial, 'is not 8-byte aligned')
    if (byteOffset + topicBytes(lanes, slots, capacity) > buffer.byteLength) {
      throw new CorruptSegment('topic.lanes', lanes, `lanes of ${capacity} bytes and ${slots} slots do not fit the ${buffer.byteLength}-byte buffer`)
    }
    const schemaBytes = head[SCHEMA_BYTES >> 2]! >>> 0
    if (schemaBytes > MAX_SCHEMA_BYTES || byteOffset + topicBytes(lanes, slots, capacity, schemaBytes) > buffer.byteLength) {
      throw new CorruptSegment('topic.schemaBytes', schemaBytes, `is more than ${MAX_SCHEMA_BYTES} or runs past the buffer`)
    }
    if (schemaBytes === 0) this.schema = null
    else {
      const text = Buffer.from(buffer as ArrayBuffer, byteOffset + schemaOffset(lanes, slots, capacity), schemaBytes).toString('utf8')
      this.schema = schemaFromText(text)
      if (this.schema === null) throw new CorruptSegment('topic.schema', text.slice(0, 80), 'is not a schema text')
    }
    const tables = dataOffset(lanes, slots, capacity, 0)
    this.lanes = lanes
    this.slots = slots
    this.laneCapacity = capacity
    this.maxMessageBytes = max
    this.initialPosition = initial
    this.codec = codec
    this.words = new Int32Array(buffer, byteOffset, tables / 4)
    this.counters = new Float64Array(buffer, byteOffset, tables / 8)
    this.ids = new BigInt64Array(buffer, byteOffset, tables / 8)
    const views: LaneView[] = []
    for (let i = 0; i < lanes; i++) {
      const at = byteOffset + dataOffset(lanes, slots, capacity, i)
      const line = laneLineOffset(i) >> 2
      // A live publisher may move WRITE and INTENT between the loads: with
      // WRITE loaded before and after INTENT, the WRITE of the moment INTENT
      // was read lies between them, so INTENT - before is at most the
      // progress in between plus a ring (exactly a ring when nothing moved).
      const before = Atomics.load(this.words, line + (WRITE >> 2)) >>> 0
      const intent = Atomics.load(this.words, line + (INTENT >> 2)) >>> 0
      const write = Atomics.load(this.words, line + (WRITE >> 2)) >>> 0
      if ((write & 7) !== 0 || ((intent - before) >>> 0) > ((write - before) >>> 0) + capacity) throw impossibleWrite(i, write, intent, capacity)
      views.push({
        index: i, words: this.words, line, capacity, mask: capacity - 1, maxMessageBytes: max, initial,
        data: Buffer.from(buffer as ArrayBuffer, at, capacity),
        view: new DataView(buffer as ArrayBuffer, at, capacity),
        records: new Uint32Array(buffer, at, capacity / 4),
        atomics: new Int32Array(buffer, at, capacity / 4),
      })
    }
    this.views = views
  }

  /** Index in `words` of field `field` (a SUB_* offset) of subscriber slot `slot`. */
  slotWord(slot: number, field: number): number {
    return (slotOffset(this.lanes, slot) + field) >> 2
  }

  /** Index in `words` of slot `slot`'s cursor of lane `lane`. */
  cursorWord(slot: number, lane: number): number {
    return ((slotOffset(this.lanes, slot) + SUB_CURSORS) >> 2) + lane
  }

  /** Index in `counters` of f64 field `field` of lane `lane`'s line or, with `slot`, of a slot. */
  counterIndex(field: number, lane: number, slot = -1): number {
    return ((slot < 0 ? laneLineOffset(lane) : slotOffset(this.lanes, slot)) + field) >> 3
  }

  /** The subscriber table's epoch (bumped on every claim and release). */
  epoch(): number {
    return Atomics.load(this.words, EPOCH >> 2)
  }

  /** Lanes ever claimed: every lane >= it has never had a publisher. */
  lanesUsed(): number {
    return Math.min(Atomics.load(this.words, LANES_USED >> 2), this.lanes)
  }

  // ---- publishers ------------------------------------------------------------

  /**
   * Claims a lane for `owner`: a free one (CAS 0 -> owner), else, with
   * `isAlive`, one whose owner is dead (CAS old -> owner; the lane goes on
   * from where the dead publisher's last burst ended, its seq numbers too).
   * Returns null when every lane is taken.
   */
  claimLane(owner: Identity, isAlive?: IsAlive): TopicPublisher | null {
    const word = identityWord(owner)
    const ids = this.ids
    const base = ownersOffset(this.lanes) >> 3
    for (let i = 0; i < this.lanes; i++) {
      if (Atomics.load(ids, base + i) === 0n && Atomics.compareExchange(ids, base + i, 0n, word) === 0n) return this.publisher(i)
    }
    if (isAlive === undefined) return null
    for (let i = 0; i < this.lanes; i++) {
      const current = Atomics.load(ids, base + i)
      const id = readIdentity(current, `topic lane ${i} owner`)
      if (id === null || isAlive(id.pid, id.startTime)) continue
      if (Atomics.compareExchange(ids, base + i, current, word) === current) return this.publisher(i)
    }
    return null
  }

  /** Gives a lane back; what it published stays readable. Only the owner may release. */
  releaseLane(publisher: TopicPublisher, owner: Identity): boolean {
    const word = identityWord(owner)
    const at = (ownersOffset(this.lanes) >> 3) + publisher.lane
    if (Atomics.load(this.ids, at) !== word) return false
    Atomics.store(this.ids, (laneBellsOffset(this.lanes) >> 3) + publisher.lane, 0n)
    return Atomics.compareExchange(this.ids, at, word, 0n) === word
  }

  /** Publishes the doorbell by which `owner`, the owner of lane `index`, is woken when room appears. */
  setLaneBell(index: number, owner: Identity, bell: BellAddress): void {
    const tag = identityWord(owner) & 0xffffffffn
    Atomics.store(this.ids, (laneBellsOffset(this.lanes) >> 3) + index, BigInt.asIntN(64, (tag << 32n) | BigInt(bellWord(bell))))
  }

  /** Owner of lane `index` and its doorbell address (null while unknown), or null for a free lane. */
  laneOwnerBell(index: number): (Identity & { bell: BellAddress | null }) | null {
    const at = (ownersOffset(this.lanes) >> 3) + index
    const before = Atomics.load(this.ids, at)
    const who = readIdentity(before, `topic lane ${index} owner`)
    if (who === null) return null
    const word = Atomics.load(this.ids, (laneBellsOffset(this.lanes) >> 3) + index)
    const valid = Atomics.load(this.ids, at) === before && BigInt.asUintN(32, word >> 32n) === (before & 0xffffffffn)
    return { ...who, bell: valid ? readBell(Number(word & 0xffffffffn)) : null }
  }

  /** Byte offset of lane `index`'s owner word (an i64 identity word; for an exit action that frees it). */
  laneOwnerOffset(index: number): number {
    return ownersOffset(this.lanes) + 8 * index
  }

  /** Who owns lane `index`, or null. */
  laneOwner(index: number): Identity | null {
    return readIdentity(Atomics.load(this.ids, (ownersOffset(this.lanes) >> 3) + index), `topic lane ${index} owner`)
  }

  private publisher(i: number): TopicPublisher {
    const words = this.words
    for (;;) {
      const used = Atomics.load(words, LANES_USED >> 2)
      if (used >= i + 1 || Atomics.compareExchange(words, LANES_USED >> 2, used, i + 1) === used) break
    }
    return new TopicPublisher(this, i)
  }

  // ---- subscribers -----------------------------------------------------------

  /**
   * Claims a subscriber slot for `owner` (a free one; with `isAlive`, else
   * one whose owner is dead, reclaimed first) and joins: see TopicSubscriber
   * for where it starts reading. Returns null when every slot is taken.
   */
  subscribe(owner: Identity, options: SubscribeOptions, isAlive?: IsAlive): TopicSubscriber | null {
    checkSubscribeOptions(options, this.laneCapacity)
    const word = identityWord(owner)
    const bell = options.bell === undefined || options.bell === null ? 0 : bellWord(options.bell)
    const policy = options.policy === 'drop' ? POLICY_DROP : POLICY_BLOCK
    let slot = this.claimSlot(word)
    if (slot < 0 && isAlive !== undefined) {
      // Claim again whatever the count: a publisher may have freed the same
      // dead slot between our look at it and our compare-and-swap (ours then
      // fails, yet the slot is free).
      this.reclaimDeadSubscribers(isAlive)
      slot = this.claimSlot(word)
    }
    if (slot < 0) return null
    const words = this.words
    const stateAt = this.slotWord(slot, SUB_STATE)
    const generation = ((Atomics.load(words, stateAt) >>> 2) + 1) & 0x3fffffff
    Atomics.store(words, stateAt, (generation << 2) | SUB_CLAIMING)
    words[this.slotWord(slot, SUB_POLICY)] = policy
    Atomics.store(words, this.slotWord(slot, SUB_BELL), bell | 0)
    Atomics.store(words, this.slotWord(slot, SUB_PARKED), AWAKE)
    for (const field of [SUB_MESSAGES_READ, SUB_BYTES_READ, SUB_DROPPED, SUB_LAPS, SUB_PARKS]) this.counters[this.counterIndex(field, 0, slot)] = 0
    // Provisional cursors, gated on by a publisher that sees the slot ACTIVE
    // before the subscriber has resolved where it starts: the lane's end, or
    // with history the oldest position that may still be intact, so that no
    // publisher that saw the slot overwrites history it is about to read.
    const history = (options.history ?? 0) > 0
    for (let i = 0; i < this.lanes; i++) {
      const line = this.views[i]!.line
      const write = Atomics.load(words, line + (WRITE >> 2))
      const oldest = Atomics.load(words, line + (INTENT >> 2)) - this.laneCapacity
      const empty = Atomics.load(words, line + (LATEST >> 2)) === LATEST_NONE
      Atomics.store(words, this.cursorWord(slot, i), history && !empty ? oldest | 0 : write)
    }
    const claiming = (generation << 2) | SUB_CLAIMING
    if (Atomics.compareExchange(words, stateAt, claiming, (generation << 2) | SUB_ACTIVE) !== claiming) {
      throw new CorruptSegment(`topic subscriber slot ${slot} state`, Atomics.load(words, stateAt), 'changed under its live claimer')
    }
    Atomics.add(words, EPOCH >> 2, 1)
    try {
      return new TopicSubscriber(this, slot, generation, word, policy, options)
    } catch (error) {
      // a lane it cannot read (CorruptSegment): give the slot back rather than gate publishers on it
      if (Atomics.compareExchange(words, stateAt, (generation << 2) | SUB_ACTIVE, generation << 2) === ((generation << 2) | SUB_ACTIVE)) {
        Atomics.add(words, EPOCH >> 2, 1)
        Atomics.compareExchange(this.ids, this.slotWord(slot, SUB_OWNER) >> 1, word, 0n)
      }
      throw error
    }
  }

  /** CAS of a free slot's owner word 0 -> `word`; the slot index or -1. */
  private claimSlot(word: bigint): number {
    for (let slot = 0; slot < this.slots; slot++) {
      const at = this.slotWord(slot, SUB_OWNER) >> 1
      if (Atomics.load(this.ids, at) === 0n && Atomics.compareExchange(this.ids, at, 0n, word) === 0n) return slot
    }
    return -1
  }

  /**
   * Frees slot `slot` if its owner is dead by `isAlive`: CAS STATE
   * CLAIMING/ACTIVE(g) -> FREE(g), EPOCH += 1, CAS OWNER dead -> 0. Returns
   * true when this call freed it. Publishers stop gating on it at their next
   * rescan (the epoch changed).
   */
  reclaimSubscriber(slot: number, isAlive: IsAlive): boolean {
    const words = this.words
    const stateAt = this.slotWord(slot, SUB_STATE)
    const ownerAt = this.slotWord(slot, SUB_OWNER) >> 1
    const state = Atomics.load(words, stateAt)
    const owner = Atomics.load(this.ids, ownerAt)
    if (Atomics.load(words, stateAt) !== state) return false // in flux: another claim or release is under way
    const id = readIdentity(owner, `topic subscriber slot ${slot} owner`)
    if (id === null || isAlive(id.pid, id.startTime)) return false
    if ((state & 3) !== SUB_FREE) {
      if (Atomics.compareExchange(words, stateAt, state, (state & ~3) | SUB_FREE) !== state) return false
      Atomics.add(words, EPOCH >> 2, 1)
    }
    return Atomics.compareExchange(this.ids, ownerAt, owner, 0n) === owner
  }

  /** Frees every slot whose owner is dead; returns how many. */
  reclaimDeadSubscribers(isAlive: IsAlive): number {
    let n = 0
    for (let slot = 0; slot < this.slots; slot++) if (this.reclaimSubscriber(slot, isAlive)) n++
    return n
  }

  /** Owner of subscriber slot `slot`, or null for a free slot. */
  subscriberOwner(slot: number): Identity | null {
    return readIdentity(Atomics.load(this.ids, this.slotWord(slot, SUB_OWNER) >> 1), `topic subscriber slot ${slot} owner`)
  }

  /** Subscriber slot `slot` as it is now, or null when free. */
  subscriber(slot: number): SubscriberInfo | null {
    const words = this.words
    const state = Atomics.load(words, this.slotWord(slot, SUB_STATE)) & 3
    if (state === SUB_FREE) return null
    const c = this.counters
    const cursors: number[] = []
    for (let i = 0; i < this.lanes; i++) cursors.push(Atomics.load(words, this.cursorWord(slot, i)) >>> 0)
    return {
      slot, state: state === SUB_ACTIVE ? 'active' : 'claiming',
      policy: words[this.slotWord(slot, SUB_POLICY)] === POLICY_DROP ? 'drop' : 'block',
      owner: this.subscriberOwner(slot),
      bell: readBell(Atomics.load(words, this.slotWord(slot, SUB_BELL))),
      cursors,
      messagesRead: c[this.counterIndex(SUB_MESSAGES_READ, 0, slot)]!, bytesRead: c[this.counterIndex(SUB_BYTES_READ, 0, slot)]!,
      dropped: c[this.counterIndex(SUB_DROPPED, 0, slot)]!, laps: c[this.counterIndex(SUB_LAPS, 0, slot)]!,
      parks: c[this.counterIndex(SUB_PARKS, 0, slot)]!,
    }
  }

  /** Statistics of every lane (may be late: plain stores by each lane's publisher). */
  laneStats(): TopicLaneStats[] {
    const c = this.counters
    return this.views.map((view, i) => ({
      write: Atomics.load(this.words, view.line + (WRITE >> 2)) >>> 0,
      messagesWritten: c[this.counterIndex(MESSAGES_WRITTEN, i)]!, bytesWritten: c[this.counterIndex(BYTES_WRITTEN, i)]!,
      fullEvents: c[this.counterIndex(FULL_EVENTS, i)]!, doorbellsRung: c[this.counterIndex(DOORBELLS_RUNG, i)]!,
    }))
  }
}

/** Out of the constructor's loop over lanes (docs/design.md, "Error messages off the hot path"; cold here, but the lint rule covers the file). */
function impossibleWrite(lane: number, write: number, intent: number, capacity: number): CorruptSegment {
  return new CorruptSegment(`topic lane ${lane} write`, write, `is impossible with intent=${intent} and capacity=${capacity}`)
}
