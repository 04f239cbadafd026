/**
 * The bus directory over memory laid out by ./layout.ts: the bus name, a
 * table of channels (name -> segment), a table of members, and the region
 * where msgpackr shared structures live (see ./structures.ts). Every value
 * read back is validated; impossible ones throw CorruptSegment.
 */
import { CorruptSegment, NotABus } from '../errors.js'
import { identityWord, readIdentity, type Identity, type IsAlive } from '../identity.js'
import { MAX_DOORBELL } from '../doorbell.js'
import {
  CHANNELS, CHANNEL_ENTRY, CHANNEL_SLOTS, CH_CAPACITY, CH_KIND, CH_LANES, CH_NAME, CH_NAME_LENGTH, CH_OWNER, CH_SEGMENT,
  CHANNEL_GENERATION, CH_STATE, DIRECTORY_MAGIC, DIRECTORY_VERSION, INITIALISED, INITIALISED_DONE, MAGIC, MAX_KIND, MAX_NAME_BYTES,
  MAX_SLOTS, MAX_STRUCTURE_BYTES, MEMBER_ENTRY, MEMBER_SLOTS, M_DOORBELL, M_HEARTBEAT, M_IDENTITY, M_SIGNAL, M_STATE,
  NAME, NAME_LENGTH, SLOT_CLAIMED, SLOT_READY, STRUCTURE_BYTES, VERSION, directoryBytes, membersOffset,
} from './layout.js'
import { Slots } from './slots.js'
import { StructureRegion } from './structures.js'

export interface DirectoryOptions {
  /** Bus name, 1..64 UTF-8 bytes. */
  name: string
  /** Channel slots. Default 64. */
  channels?: number
  /** Member slots. Default 64. */
  members?: number
  /** Bytes of each structure copy (multiple of 8). Default 16 KiB. */
  structureBytes?: number
}

export const DIRECTORY_DEFAULTS = { channels: 64, members: 64, structureBytes: 16 * 1024 } as const

export interface ChannelEntry {
  /** Slot index in the channel table. */
  index: number
  name: string
  segmentId: number
  kind: number
  capacity: number
  lanes: number
  owner: Identity
}

export interface MemberEntry {
  index: number
  pid: number
  startTime: number
  doorbellKind: number
  signal: number
  heartbeat: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Bytes of memory a directory with these options needs. */
export function directorySize(options: Omit<DirectoryOptions, 'name'> = {}): number {
  const o = { ...DIRECTORY_DEFAULTS, ...options }
  return directoryBytes(o.channels, o.members, o.structureBytes)
}

/** Writes a fresh directory at `byteOffset`; INITIALISED is stored last. */
export function initializeDirectory(buffer: ArrayBufferLike, byteOffset: number, options: DirectoryOptions): void {
  const o = { ...DIRECTORY_DEFAULTS, ...options }
  const name = encodeName(o.name, 'options.name')
  checkCount(o.channels, 'options.channels')
  checkCount(o.members, 'options.members')
  if (!Number.isInteger(o.structureBytes) || o.structureBytes < 64 || o.structureBytes > MAX_STRUCTURE_BYTES || o.structureBytes % 8 !== 0) {
    throw new RangeError(`options.structureBytes must be a multiple of 8 from 64 to ${MAX_STRUCTURE_BYTES}, got ${o.structureBytes}`)
  }
  const bytes = directoryBytes(o.channels, o.members, o.structureBytes)
  if (byteOffset % 8 !== 0 || byteOffset + bytes > buffer.byteLength) {
    throw new RangeError(`the directory needs ${bytes} bytes at an 8-aligned offset, got offset ${byteOffset} in ${buffer.byteLength}`)
  }
  new Uint8Array(buffer, byteOffset, bytes).fill(0)
  const words = new Int32Array(buffer, byteOffset, CHANNELS / 4)
  words[VERSION >> 2] = DIRECTORY_VERSION
  words[CHANNEL_SLOTS >> 2] = o.channels
  words[MEMBER_SLOTS >> 2] = o.members
  words[STRUCTURE_BYTES >> 2] = o.structureBytes
  words[NAME_LENGTH >> 2] = name.length
  new Uint8Array(buffer, byteOffset + NAME, MAX_NAME_BYTES).set(name)
  Atomics.store(words, MAGIC >> 2, DIRECTORY_MAGIC)
  Atomics.store(words, INITIALISED >> 2, INITIALISED_DONE) // last: the directory is complete
}

export class Directory {
  readonly name: string
  readonly channelSlots: number
  readonly memberSlots: number
  /** The shared msgpackr structures of this bus; pass to `new Codec({ structures })`. */
  readonly structures: StructureRegion
  private readonly bytes: Uint8Array
  private readonly i32: Int32Array
  private readonly i64: BigInt64Array
  private readonly f64: Float64Array
  private readonly membersAt: number
  private readonly slots: Slots

  /**
   * Wraps an initialized directory. Throws NotABus when the magic or version
   * is wrong or INITIALISED is not yet set, CorruptSegment for impossible
   * sizes or names.
   */
  constructor(buffer: ArrayBufferLike, byteOffset = 0, options: { isAlive?: IsAlive; self?: Identity } = {}) {
    if (byteOffset % 8 !== 0 || byteOffset + CHANNELS > buffer.byteLength) throw new NotABus(`${buffer.byteLength} bytes at offset ${byteOffset} cannot hold a directory`)
    const head = new Int32Array(buffer, byteOffset, CHANNELS / 4)
    const magic = Atomics.load(head, MAGIC >> 2) >>> 0
    if (magic !== DIRECTORY_MAGIC) throw new NotABus(`no bus directory: magic 0x${magic.toString(16)} is not 0x${DIRECTORY_MAGIC.toString(16)}`)
    const version = head[VERSION >> 2]!
    if (version !== DIRECTORY_VERSION) throw new NotABus(`bus directory has layout version ${version}, this build reads ${DIRECTORY_VERSION}`)
    const initialised = Atomics.load(head, INITIALISED >> 2)
    if (initialised !== INITIALISED_DONE) throw new NotABus(`bus directory is not initialised yet (initialised=${initialised})`)
    const channels = head[CHANNEL_SLOTS >> 2]!
    const members = head[MEMBER_SLOTS >> 2]!
    const structureBytes = head[STRUCTURE_BYTES >> 2]!
    if (channels < 1 || channels > MAX_SLOTS) throw new CorruptSegment('directory.channelSlots', channels, `is not from 1 to ${MAX_SLOTS}`)
    if (members < 1 || members > MAX_SLOTS) throw new CorruptSegment('directory.memberSlots', members, `is not from 1 to ${MAX_SLOTS}`)
    if (structureBytes < 64 || structureBytes > MAX_STRUCTURE_BYTES || structureBytes % 8 !== 0) {
      throw new CorruptSegment('directory.structureBytes', structureBytes, 'is not a multiple of 8 from 64 to 1 MiB')
    }
    const size = directoryBytes(channels, members, structureBytes)
    if (byteOffset + size > buffer.byteLength) throw new CorruptSegment('directory sizes', size, `exceed the ${buffer.byteLength}-byte buffer`)
    this.bytes = new Uint8Array(buffer, byteOffset, size)
    this.i32 = new Int32Array(buffer, byteOffset, size / 4)
    this.i64 = new BigInt64Array(buffer, byteOffset, size / 8)
    this.f64 = new Float64Array(buffer, byteOffset, size / 8)
    this.slots = new Slots(this.i32, this.i64)
    this.channelSlots = channels
    this.memberSlots = members
    this.membersAt = membersOffset(channels)
    this.name = this.readName(NAME, head[NAME_LENGTH >> 2]!, 'directory.name')
    this.structures = new StructureRegion(this.i32, this.i64, this.bytes, channels, members, structureBytes, options.isAlive,
      options.self ? identityWord(options.self) : 0n)
  }

  /** True when `buffer` holds a complete directory at `byteOffset` (magic set, INITIALISED written). */
  static isInitialised(buffer: ArrayBufferLike, byteOffset = 0): boolean {
    if (byteOffset + CHANNELS > buffer.byteLength) return false
    const head = new Int32Array(buffer, byteOffset, CHANNELS / 4)
    return Atomics.load(head, MAGIC >> 2) >>> 0 === DIRECTORY_MAGIC && Atomics.load(head, INITIALISED >> 2) === INITIALISED_DONE
  }

  // ---- channels ----------------------------------------------------------------

  /**
   * Registers a channel, or returns the entry that already has this name
   * (`created` false). Two processes adding the same name at once end with one
   * entry: each writes its name while CLAIMED, then looks for the same name in
   * any other claimed or ready slot and, if it finds one, gives its slot back
   * and looks again.
   */
  addChannel(entry: Omit<ChannelEntry, 'index'>): { entry: ChannelEntry; created: boolean } {
    const name = encodeName(entry.name, 'channel name')
    if (!(Number.isInteger(entry.kind) && entry.kind >= 0 && entry.kind <= MAX_KIND)) throw new RangeError(`channel kind must be 0..${MAX_KIND}, got ${entry.kind}`)
    if (!(Number.isInteger(entry.segmentId) && entry.segmentId >= 0 && entry.segmentId <= 0x7fffffff)) throw new RangeError(`segmentId must be a non-negative int32, got ${entry.segmentId}`)
    if (!(entry.capacity >>> 0 === entry.capacity && entry.lanes >>> 0 === entry.lanes)) throw new RangeError(`capacity and lanes must be u32, got ${entry.capacity}, ${entry.lanes}`)
    const owner = identityWord(entry.owner)
    for (let attempt = 0; attempt < 1000; attempt++) {
      const existing = this.findChannel(entry.name)
      if (existing) return { entry: existing, created: false }
      const slot = this.slots.claim(CHANNELS, CHANNEL_ENTRY, this.channelSlots, CH_OWNER, owner)
      if (slot < 0) throw new RangeError(`all ${this.channelSlots} channel slots of bus "${this.name}" are taken`)
      const at = CHANNELS + slot * CHANNEL_ENTRY
      this.bytes.set(name, at + CH_NAME)
      this.i32[(at + CH_NAME_LENGTH) >> 2] = name.length
      Atomics.store(this.i32, (at + CH_STATE) >> 2, SLOT_CLAIMED)
      if (this.nameTakenElsewhere(slot, name)) {
        this.slots.free(at, CH_STATE, CH_OWNER)
        continue
      }
      this.i32[(at + CH_SEGMENT) >> 2] = entry.segmentId
      this.i32[(at + CH_KIND) >> 2] = entry.kind
      this.i32[(at + CH_CAPACITY) >> 2] = entry.capacity
      this.i32[(at + CH_LANES) >> 2] = entry.lanes
      Atomics.store(this.i32, (at + CH_STATE) >> 2, SLOT_READY) // publish the entry
      Atomics.add(this.i32, CHANNEL_GENERATION >> 2, 1)
      return { entry: this.readChannel(slot)!, created: true }
    }
    throw new Error(`could not register channel "${entry.name}": 1000 attempts collided with concurrent writers`)
  }

  /** The ready entry named `name`, or undefined. */
  findChannel(name: string): ChannelEntry | undefined {
    for (let i = 0; i < this.channelSlots; i++) {
      const entry = this.readChannel(i)
      if (entry && entry.name === name) return entry
    }
    return undefined
  }

  /** Every ready channel entry. */
  channels(): ChannelEntry[] {
    return collect(this.channelSlots, (i) => this.readChannel(i))
  }

  /**
   * Frees channel slot `index`. With `segmentId`, only if the slot still
   * holds that segment (so a stale entry that someone else already replaced
   * is not removed twice). Returns whether it removed.
   */
  removeChannel(index: number, segmentId?: number): boolean {
    const at = CHANNELS + this.checkIndex(index, this.channelSlots) * CHANNEL_ENTRY
    if (segmentId !== undefined) {
      const entry = this.readChannel(index)
      if (entry === null || entry.segmentId !== segmentId) return false
    }
    this.slots.free(at, CH_STATE, CH_OWNER)
    Atomics.add(this.i32, CHANNEL_GENERATION >> 2, 1)
    return true
  }

  /** Changes whenever a channel entry is added or removed (see layout.ts). */
  get channelGeneration(): number {
    return Atomics.load(this.i32, CHANNEL_GENERATION >> 2) >>> 0
  }

  /** Reads slot `index`: the entry when READY, else null. */
  readChannel(index: number): ChannelEntry | null {
    const at = CHANNELS + this.checkIndex(index, this.channelSlots) * CHANNEL_ENTRY
    const where = `directory channel ${index}`
    return this.slots.stableRead(at, CH_STATE, CH_OWNER, where, (owner) => {
      const kind = this.i32[(at + CH_KIND) >> 2]!
      if (kind < 0 || kind > MAX_KIND) throw new CorruptSegment(`${where} kind`, kind, `is not 0..${MAX_KIND}`)
      const segmentId = this.i32[(at + CH_SEGMENT) >> 2]!
      if (segmentId < 0) throw new CorruptSegment(`${where} segment id`, segmentId, 'is negative')
      return {
        index, owner, kind, segmentId,
        name: this.readName(at + CH_NAME, this.i32[(at + CH_NAME_LENGTH) >> 2]!, `${where} name`),
        capacity: this.i32[(at + CH_CAPACITY) >> 2]! >>> 0,
        lanes: this.i32[(at + CH_LANES) >> 2]! >>> 0,
      }
    })
  }

  // ---- members -------------------------------------------------------------------

  /** Registers a member process; returns its slot index. RangeError when the table is full. */
  addMember(member: Identity & { doorbellKind: number; signal: number; heartbeat?: number }): number {
    if (!(member.doorbellKind >= 0 && member.doorbellKind <= MAX_DOORBELL)) throw new RangeError(`doorbellKind must be 0..${MAX_DOORBELL}, got ${member.doorbellKind}`)
    if (!(Number.isInteger(member.signal) && member.signal >= 0 && member.signal <= 64)) throw new RangeError(`signal must be 0..64, got ${member.signal}`)
    const slot = this.slots.claim(this.membersAt, MEMBER_ENTRY, this.memberSlots, M_IDENTITY, identityWord(member))
    if (slot < 0) throw new RangeError(`all ${this.memberSlots} member slots of bus "${this.name}" are taken`)
    const at = this.membersAt + slot * MEMBER_ENTRY
    this.i32[(at + M_DOORBELL) >> 2] = member.doorbellKind
    this.i32[(at + M_SIGNAL) >> 2] = member.signal
    this.f64[(at + M_HEARTBEAT) >> 3] = member.heartbeat ?? 0
    Atomics.store(this.i32, (at + M_STATE) >> 2, SLOT_READY) // publish the entry
    return slot
  }

  /** Stores a member's heartbeat (plain store; readers may see it late). */
  heartbeat(index: number, now: number): void {
    this.f64[(this.membersAt + this.checkIndex(index, this.memberSlots) * MEMBER_ENTRY + M_HEARTBEAT) >> 3] = now
  }

  /**
   * Byte offsets (from the directory's start) of member `index`'s state and
   * identity words: what a process registers to be released natively when a
   * worker thread is torn down (see @ipc/native addExitStore).
   */
  memberWords(index: number): { state: number; identity: number } {
    const at = this.membersAt + this.checkIndex(index, this.memberSlots) * MEMBER_ENTRY
    return { state: at + M_STATE, identity: at + M_IDENTITY }
  }

  removeMember(index: number): void {
    this.slots.free(this.membersAt + this.checkIndex(index, this.memberSlots) * MEMBER_ENTRY, M_STATE, M_IDENTITY)
  }

  readMember(index: number): MemberEntry | null {
    const at = this.membersAt + this.checkIndex(index, this.memberSlots) * MEMBER_ENTRY
    const where = `directory member ${index}`
    return this.slots.stableRead(at, M_STATE, M_IDENTITY, where, (id) => {
      const doorbellKind = this.i32[(at + M_DOORBELL) >> 2]!
      if (doorbellKind < 0 || doorbellKind > MAX_DOORBELL) throw new CorruptSegment(`${where} doorbell`, doorbellKind, 'is not a doorbell kind')
      const signal = this.i32[(at + M_SIGNAL) >> 2]!
      if (signal < 0 || signal > 64) throw new CorruptSegment(`${where} signal`, signal, 'is not a signal number')
      return { index, ...id, doorbellKind, signal, heartbeat: this.f64[(at + M_HEARTBEAT) >> 3]! }
    })
  }

  /** Every ready member entry. */
  members(): MemberEntry[] {
    return collect(this.memberSlots, (i) => this.readMember(i))
  }

  /**
   * Frees member slots of dead processes and slots of either table left
   * CLAIMED by a process that died while filling them. Returns how many.
   */
  gc(isAlive: IsAlive): number {
    let freed = 0
    const sweep = (base: number, entry: number, slots: number, stateAt: number, idAt: number, freeReady: boolean): void => {
      for (let i = 0; i < slots; i++) {
        const at = base + i * entry
        const word = Atomics.load(this.i64, (at + idAt) >> 3)
        const id = readIdentity(word, `directory slot ${i} owner`)
        if (id === null || isAlive(id.pid, id.startTime)) continue
        const state = this.slots.state(at + stateAt, `directory slot ${i} state`)
        if (state === SLOT_READY && !freeReady) continue
        this.slots.free(at, stateAt, idAt)
        freed++
      }
    }
    sweep(CHANNELS, CHANNEL_ENTRY, this.channelSlots, CH_STATE, CH_OWNER, false)
    sweep(this.membersAt, MEMBER_ENTRY, this.memberSlots, M_STATE, M_IDENTITY, true)
    return freed
  }

  // ---- helpers ---------------------------------------------------------------------

  private nameTakenElsewhere(slot: number, name: Uint8Array): boolean {
    for (let i = 0; i < this.channelSlots; i++) {
      if (i === slot) continue
      const at = CHANNELS + i * CHANNEL_ENTRY
      const state = Atomics.load(this.i32, (at + CH_STATE) >> 2)
      if (state !== SLOT_CLAIMED && state !== SLOT_READY) continue
      if (this.i32[(at + CH_NAME_LENGTH) >> 2] !== name.length) continue
      let same = true
      for (let j = 0; j < name.length && same; j++) same = this.bytes[at + CH_NAME + j] === name[j]
      if (same) return true
    }
    return false
  }

  private readName(at: number, length: number, where: string): string {
    if (!(length >= 1 && length <= MAX_NAME_BYTES)) throw new CorruptSegment(`${where} length`, length, `is not 1..${MAX_NAME_BYTES}`)
    try {
      return decoder.decode(this.bytes.subarray(at, at + length))
    } catch (error) {
      throw new CorruptSegment(where, `${length} bytes`, 'are not valid UTF-8', { cause: error })
    }
  }

  private checkIndex(index: number, slots: number): number {
    if (!(Number.isInteger(index) && index >= 0 && index < slots)) throw new RangeError(`slot index must be 0..${slots - 1}, got ${index}`)
    return index
  }
}

/** The non-null results of read(0..slots-1). */
function collect<T>(slots: number, read: (index: number) => T | null): T[] {
  const list: T[] = []
  for (let i = 0; i < slots; i++) {
    const entry = read(i)
    if (entry !== null) list.push(entry)
  }
  return list
}

function encodeName(name: string, what: string): Uint8Array {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string, got ${typeof name}`)
  const bytes = encoder.encode(name)
  if (bytes.length < 1 || bytes.length > MAX_NAME_BYTES) throw new RangeError(`${what} must be 1..${MAX_NAME_BYTES} UTF-8 bytes, got ${bytes.length} ("${name}")`)
  return bytes
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SLOTS) throw new RangeError(`${what} must be an integer from 1 to ${MAX_SLOTS}, got ${n}`)
}
