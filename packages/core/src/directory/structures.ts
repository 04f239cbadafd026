/**
 * The shared-structures region of the bus directory (./layout.ts): the
 * msgpackr structures every codec of a bus shares, so that an object shape
 * is sent as a small record id instead of its keys.
 */
import { Packr } from 'msgpackr'
import { StructuresDoNotFit, type StructureStore } from '../codec.js'
import { CorruptSegment } from '../errors.js'
import { readIdentity, type IsAlive } from '../identity.js'
import { STRUCT_GENERATION, STRUCT_LENGTHS, STRUCT_WRITER, structureOffset } from './layout.js'

/**
 * msgpackr's shared structures, kept in two copies so that readers never
 * wait: the generation word says which copy is current; a writer takes the
 * region by CAS even -> odd, fills the other copy, and publishes by CAS
 * odd -> odd + 1 (which flips the current copy). save() succeeds only if the
 * generation is still the one this process last loaded, so concurrent
 * writers are detected and msgpackr reloads and retries. A reader accepts a
 * copy when at most one publish happened while it read (only the second
 * writer after it could touch its copy).
 *
 * Each list load() returns carries the generation it was read at, its
 * encoded size and its entry count (non-enumerable symbol keys, invisible to
 * msgpackr and to equality checks): save() compares against the generation
 * that list was loaded at (so two codecs over one region stay independent),
 * and fits() knows how many bytes the list grown by new keys would take
 * without encoding anything.
 */
export class StructureRegion implements StructureStore {
  /** Generation of the copy last loaded by this process (even); for lists that carry none. */
  private seen = 0
  private readonly plain = new Packr({ useRecords: false, moreTypes: false })

  constructor(
    private readonly i32: Int32Array,
    private readonly i64: BigInt64Array,
    private readonly bytes: Uint8Array,
    private readonly channelSlots: number,
    private readonly memberSlots: number,
    /** Bytes of each copy. */
    readonly capacity: number,
    private readonly isAlive: IsAlive | undefined,
    /** This process's identity word, recorded while it holds the region (0 = unknown). */
    private readonly self: bigint,
    /** How long a writer may hold the region before it counts as stuck. */
    private readonly stuckMs = 200,
  ) {}

  /** Current generation (even = stable); bumps by 2 per successful save. */
  get generation(): number {
    return Atomics.load(this.i32, STRUCT_GENERATION >> 2) >>> 0
  }

  load(): unknown[] {
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const g1 = Atomics.load(this.i32, STRUCT_GENERATION >> 2) >>> 0
      const stable = (g1 & ~1) >>> 0
      const copy = (g1 >>> 1) & 1
      const length = Atomics.load(this.i32, (STRUCT_LENGTHS >> 2) + copy) >>> 0
      const at = structureOffset(this.channelSlots, this.memberSlots, this.capacity, copy)
      const snapshot = length <= this.capacity ? this.bytes.slice(at, at + length) : null
      const g2 = Atomics.load(this.i32, STRUCT_GENERATION >> 2) >>> 0
      if (((g2 - stable) >>> 0) > 2) continue // a writer may have reused our copy: read again
      if (snapshot === null) throw new CorruptSegment('directory structures length', length, `exceeds the ${this.capacity}-byte copy`)
      this.seen = stable
      const list = snapshot.length === 0 ? [] : this.decode(snapshot)
      return tag(list, stable, snapshot.length === 0 ? EMPTY_LIST_BYTES : snapshot.length, list.length)
    }
    throw new CorruptSegment('directory structures generation', this.generation, 'kept changing for 10000 reads')
  }

  /**
   * Whether the first `count` entries of `structures` and `keys` fit in a
   * copy. Exact for lists load() returned (and fits() grew); false for any
   * other list, so its shapes are not shared. Encodes nothing (see
   * StructureStore.fits).
   */
  fits(structures: readonly unknown[], count: number, keys: readonly string[]): boolean {
    const tagged = structures as TaggedList
    if (tagged[COUNT] !== count || tagged[BYTES] === undefined) return false
    const keysBytes = keyListBytes(keys)
    if (keysBytes < 0) return false
    const bytes = tagged[BYTES] - arrayHeaderBytes(count) + arrayHeaderBytes(count + 1) + keysBytes
    if (bytes > this.capacity) return false
    tagged[COUNT] = count + 1 // msgpackr shares the keys as entry `count` next
    tagged[BYTES] = bytes
    return true
  }

  save(structures: unknown[]): boolean {
    const encoded = this.plain.pack(Array.from(structures))
    if (encoded.length > this.capacity) {
      throw new StructuresDoNotFit(`shared structures need ${encoded.length} bytes, more than the ${this.capacity} the bus directory keeps for them`)
    }
    const gen = STRUCT_GENERATION >> 2
    const seen = (structures as TaggedList)[GENERATION] ?? this.seen
    const current = Atomics.compareExchange(this.i32, gen, seen | 0, (seen + 1) | 0) >>> 0
    if (current !== seen) {
      if (current & 1) this.waitOrSteal(current)
      return false // somebody else saved: msgpackr reloads and retries
    }
    const writer = STRUCT_WRITER >> 3
    Atomics.store(this.i64, writer, this.self)
    const copy = 1 - ((seen >>> 1) & 1)
    this.bytes.set(encoded, structureOffset(this.channelSlots, this.memberSlots, this.capacity, copy))
    Atomics.store(this.i32, (STRUCT_LENGTHS >> 2) + copy, encoded.length)
    Atomics.store(this.i64, writer, 0n)
    // publish: the other copy becomes current (fails only if our hold was stolen)
    if (Atomics.compareExchange(this.i32, gen, (seen + 1) | 0, (seen + 2) | 0) >>> 0 !== ((seen + 1) >>> 0)) return false
    this.seen = (seen + 2) >>> 0
    tag(structures, this.seen, encoded.length, structures.length) // msgpackr goes on with this list: it is now current
    return true
  }

  /**
   * Another writer holds the region: wait up to stuckMs for it; a holder that
   * never finishes and is not known to be alive has its hold broken by moving
   * the generation to the next even value with the same current copy.
   */
  private waitOrSteal(held: number): void {
    const gen = STRUCT_GENERATION >> 2
    const deadline = Date.now() + this.stuckMs
    while (Date.now() < deadline) {
      if ((Atomics.load(this.i32, gen) >>> 0) !== held) return
    }
    const id = readIdentity(Atomics.load(this.i64, STRUCT_WRITER >> 3), 'directory structures writer')
    if (id !== null && this.isAlive?.(id.pid, id.startTime)) {
      throw new CorruptSegment('directory structures generation', held, `is held by live process ${id.pid} for over ${this.stuckMs} ms`)
    }
    Atomics.compareExchange(this.i32, gen, held | 0, (held + 3) | 0)
  }

  private decode(bytes: Uint8Array): unknown[] {
    let value: unknown
    try {
      value = this.plain.unpack(bytes)
    } catch (error) {
      throw new CorruptSegment('directory structures', `${bytes.length} bytes`, 'do not decode', { cause: error })
    }
    if (!Array.isArray(value) || value.length > 8160) throw new CorruptSegment('directory structures', typeof value, 'is not a list of at most 8160 structures')
    for (const keys of value) {
      if (keys === null || keys === undefined) continue
      if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string' && typeof k !== 'number')) {
        throw new CorruptSegment('directory structures', JSON.stringify(keys)?.slice(0, 80), 'is not a list of keys')
      }
    }
    return value
  }
}

const GENERATION = Symbol('structures generation')
const BYTES = Symbol('structures bytes')
const COUNT = Symbol('structures count')
/** A structure list with what StructureRegion knows about it. */
interface TaggedList extends Array<unknown> { [GENERATION]?: number; [BYTES]?: number; [COUNT]?: number }
/** msgpack of [] (an empty copy holds 0 bytes, but saving [] would write this). */
const EMPTY_LIST_BYTES = 1

/** Sets the tags, non-enumerable (a tagged list still equals its entries). */
function tag(list: unknown[], generation: number, bytes: number, count: number): unknown[] {
  return Object.defineProperties(list, {
    [GENERATION]: { value: generation, writable: true, configurable: true, enumerable: false },
    [BYTES]: { value: bytes, writable: true, configurable: true, enumerable: false },
    [COUNT]: { value: count, writable: true, configurable: true, enumerable: false },
  })
}

/** Bytes of a msgpack array header for `length` entries. */
function arrayHeaderBytes(length: number): number {
  return length < 0x10 ? 1 : length < 0x10000 ? 3 : 5
}

/**
 * keyListBytes() of key lists seen before: msgpackr hands fits() the same
 * array for a shape each time (its transition's __keys__), and a shape that
 * did not fit is asked about in every message that carries it.
 */
const keyListSizes = new WeakMap<readonly string[], number>()

/**
 * Bytes msgpackr writes for a list of string keys: it picks a string's
 * header by its UTF-8 length, and writes a lone surrogate as 3 bytes (as
 * below); -1 if a key is not a string.
 */
function keyListBytes(keys: readonly string[]): number {
  let bytes = keyListSizes.get(keys)
  if (bytes === undefined) {
    bytes = countKeyListBytes(keys)
    keyListSizes.set(keys, bytes)
  }
  return bytes
}

function countKeyListBytes(keys: readonly string[]): number {
  let bytes = arrayHeaderBytes(keys.length)
  for (const key of keys) {
    if (typeof key !== 'string') return -1
    const length = utf8Length(key)
    bytes += length + (length < 0x20 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5)
  }
  return bytes
}

function utf8Length(text: string): number {
  let length = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) length += 1
    else if (c < 0x800) length += 2
    else if ((c & 0xfc00) === 0xd800 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      length += 4
      i++
    } else length += 3
  }
  return length
}
