/**
 * The one msgpackr configuration every part of the bus uses.
 *
 * Encoding goes into msgpackr's own reused scratch buffer (REUSE_BUFFER_MODE |
 * RESET_BUFFER_MODE: no allocation per message); the ring copies it once.
 * Decoding reads in place from a slice of the ring given as (data, start, end).
 * Binary values are copied out (copyBuffers), because the ring bytes they
 * came from are reused as soon as the read position moves on. Two cases copy
 * the payload to a reused scratch buffer first: payloads under 140 bytes
 * (msgpackr then decodes their strings in JS, about 2x faster for small
 * messages than a call into its native string extractor, which it makes
 * whenever the payload ends 140+ bytes into the buffer), and payloads in a
 * SharedArrayBuffer while the native extractor is loaded (it refuses shared
 * memory). Larger payloads in an shm mapping (a plain ArrayBuffer) decode in
 * place.
 *
 * With a StructureStore (the bus directory's structure region), plain objects
 * are encoded as msgpackr records whose key lists ("structures") are shared
 * by every process of the bus instead of travelling with each message: a
 * sender saves a new structure to the store before the message that uses it
 * is published, and a receiver that meets an unknown structure id reloads
 * them from the store. Without a store, objects are plain msgpack maps.
 *
 * The store is small and never shrinks, so it fills up: after
 * maxSharedStructures shapes, or when a shape's keys no longer fit in its
 * bytes (StructureStore.fits). A shape that is not shared is never refused:
 * it is written self-describing, as a msgpackr record definition ("own"
 * structure: its keys, then its values) in every message that uses it, which
 * any receiver decodes without the store; only slower and larger. Shapes
 * shared before keep their short ids. The record ids: msgpackr's one-byte ids
 * 0x40-0x5f are shared structures, 0x60-0x7f own ones. Only 31 of the 32
 * shared ids are handed out, so that msgpackr never hands out own ids on its
 * own (it does once all 32 are taken) while shouldShareStructure hands out
 * others: two counters over the same ids would collide in one message. Two-
 * byte ids (more than 32 shared) are not used: msgpackr decodes a two-byte
 * id through the structure at the one-byte id its first byte names, which
 * exists for an own id above 0x7f only when the store has every shared id
 * below it, and a store that filled up by bytes does not.
 *
 * What does not survive the trip: -0 arrives as 0 (msgpack has no negative
 * integer zero); without a store a JS Map arrives as a plain object; class
 * instances arrive as plain objects of their own enumerable fields. Functions,
 * symbols and cyclic values throw Unserializable.
 */
import { Buffer } from 'node:buffer'
import { C1, Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE, isNativeAccelerationEnabled } from 'msgpackr'
import { WordCopier } from './bytes.js'
import { CorruptSegment, IpcError, Unserializable } from './errors.js'

/**
 * Where shared structures live. load() returns the current list; save()
 * stores a new list only if nobody saved since that list was loaded (else
 * returns false, and msgpackr reloads and retries).
 */
export interface StructureStore {
  load(): unknown[]
  save(structures: unknown[]): boolean
  /**
   * Whether the first `count` entries of `structures` (a list load() returned,
   * grown by msgpackr) plus `keys` would fit in the store; without it any
   * number of bytes fits. Called in the middle of an encode: it must not
   * encode anything with msgpackr (its write position is module-wide).
   */
  fits?(structures: readonly unknown[], count: number, keys: readonly string[]): boolean
}

/**
 * Thrown by a StructureStore's save() when the list does not fit (fits()
 * said it would: a bug). The codec stops sharing new shapes and encodes
 * again, so the value is still sent.
 */
export class StructuresDoNotFit extends RangeError {
  override name = 'StructuresDoNotFit'
}

/** Shared structures a codec may add at most (see the top of this file). */
export const MAX_SHARED_STRUCTURES = 31

export interface CodecOptions {
  /** Shared record structures; without it objects are encoded as maps. */
  structures?: StructureStore
  /**
   * How many structures the store may hold before this codec stops adding
   * (0..31; larger values count as 31). Default 31. Shapes beyond it, or
   * that do not fit in the store's bytes, are encoded self-describing.
   */
  maxSharedStructures?: number
}

const ENCODE_MODE = REUSE_BUFFER_MODE | RESET_BUFFER_MODE
/** Below this size msgpackr decodes strings in JS when the payload starts at offset 0 (see above). */
const SMALL_PAYLOAD = 140

interface ScratchBuffer extends Buffer { start: number; end: number }
interface PackrStructures extends Array<unknown> { uninitialized?: boolean; sharedLength?: number }

export class Codec {
  /** Where the last encode() put its bytes in the returned scratch buffer. */
  encodedStart = 0
  encodedEnd = 0
  private readonly packr: Packr
  private readonly shared: boolean
  /** Reused unpack range: no object per decode. */
  private readonly range = { start: 0, end: 0 }
  /** The last `data` decode() saw, and whether it must be copied first (see above). */
  private lastData: Uint8Array | null = null
  private lastNeedsCopy = false
  private scratch = Buffer.allocUnsafeSlow(0)
  private scratchWords = new Uint32Array(0)
  private readonly copier = new WordCopier()
  /** How many shared structures this codec lets the store reach. */
  private readonly maxShared: number
  /** Set when the store refused a list fits() accepted: share no more shapes. */
  private sharingClosed = false

  constructor(options: CodecOptions = {}) {
    const store = options.structures
    this.shared = store !== undefined
    const max = options.maxSharedStructures ?? MAX_SHARED_STRUCTURES
    if (!(Number.isInteger(max) && max >= 0)) throw new RangeError(`maxSharedStructures must be an integer from 0, got ${max}`)
    this.maxShared = Math.min(max, MAX_SHARED_STRUCTURES)
    const writeFunction = (fn: unknown): never => {
      throw new Unserializable(`function ${(fn as { name?: string }).name || '(anonymous)'}`)
    }
    this.packr = new Packr({
      moreTypes: true,
      useRecords: this.shared,
      mapsAsObjects: !this.shared,
      copyBuffers: true,
      writeFunction,
      ...(store === undefined ? {} : {
        // one-byte record ids only: 32 shared (31 handed out), 32 own
        maxSharedStructures: MAX_SHARED_STRUCTURES + 1,
        maxOwnStructures: 32,
        getStructures: () => store.load(),
        saveStructures: (structures: unknown[]) => store.save(structures),
        shouldShareStructure: (keys: string[]) => this.mayShare(store, keys),
      }),
    } as unknown as ConstructorParameters<typeof Packr>[0])
  }

  /**
   * msgpackr asks before it gives a new shape a shared id: only while the
   * store holds fewer than maxShared and the keys fit in its bytes; else the
   * shape goes self-describing. Always consulted, because the count stays
   * below msgpackr's own limit (see the top of this file).
   */
  private mayShare(store: StructureStore, keys: string[]): boolean {
    if (this.sharingClosed) return false
    const structures = (this.packr as unknown as { structures: PackrStructures }).structures
    const count = structures.sharedLength ?? 0
    if (count >= this.maxShared) return false
    return store.fits === undefined || store.fits(structures, count, keys)
  }

  /**
   * Encodes `value` into the codec's scratch buffer and returns it; the bytes
   * are [encodedStart, encodedEnd) and are valid until the next encode().
   * Throws Unserializable for values msgpack cannot represent.
   */
  encode(value: unknown): Buffer {
    let out: ScratchBuffer
    try {
      out = this.packr.pack(value, ENCODE_MODE) as ScratchBuffer
    } catch (error) {
      if (this.shared) (this.packr as unknown as { structures: PackrStructures }).structures.uninitialized = true
      if (!(error instanceof StructuresDoNotFit) || this.sharingClosed) throw asUnserializable(value, error)
      this.sharingClosed = true // the store's accounting and ours disagree: keep every new shape self-describing
      return this.encode(value)
    }
    // msgpackr marks the reused buffer with start/end, except on the call
    // that saves new shared structures: that one returns a plain subarray.
    this.lastScratch = out
    if (out.start === undefined) {
      this.encodedStart = 0
      this.encodedEnd = out.length
    } else {
      this.encodedStart = out.start
      this.encodedEnd = out.end
    }
    return out
  }

  /** Encodes into a new Buffer of its own. */
  pack(value: unknown): Buffer {
    const scratch = this.encode(value)
    return Buffer.from(scratch.subarray(this.encodedStart, this.encodedEnd))
  }

  /** The scratch buffer the last encode() returned. */
  private lastScratch: Buffer | null = null

  /**
   * A copy of what the last encode() wrote, in a Buffer of its own: for a
   * caller that found, after encoding, that the bytes must outlive the
   * next encode (a message too large for one record), without encoding again.
   */
  copyLastEncoded(): Buffer {
    if (this.lastScratch === null) throw new Error('copyLastEncoded() before any encode()')
    return Buffer.from(this.lastScratch.subarray(this.encodedStart, this.encodedEnd))
  }

  /** Decodes data[start, end) in place; a payload that is not valid msgpack throws CorruptSegment. */
  decode(data: Uint8Array, start = 0, end = data.length): unknown {
    if (start === end) throw badPayload(start, 0, 'is empty, which is not msgpack')
    if (data !== this.lastData) {
      this.lastData = data
      this.lastNeedsCopy = isNativeAccelerationEnabled && data.buffer instanceof SharedArrayBuffer
    }
    const range = this.range
    const length = end - start
    if (length < SMALL_PAYLOAD || this.lastNeedsCopy) {
      if (this.scratch.length < length) {
        this.scratch = Buffer.allocUnsafeSlow(Math.max(length + 3, 2 * this.scratch.length, 256))
        this.scratchWords = new Uint32Array(this.scratch.buffer, this.scratch.byteOffset, this.scratch.length >>> 2)
      }
      this.copier.copy(data, start, end, this.scratch, this.scratchWords, 0)
      data = this.scratch
      range.start = 0
      range.end = length
    } else {
      range.start = start
      range.end = end
    }
    let value: unknown
    try {
      value = this.packr.unpack(data, range)
    } catch (error) {
      throw badPayload(start, `${end - start} bytes`, `do not decode: ${(error as Error).message}`, { cause: error })
    }
    if (value === C1) throw badPayload(start, '0xc1', 'is the never-used msgpack byte')
    return value
  }

  /**
   * Decodes a batch of records in one msgpackr call (unpackMultiple): its
   * per-call setup, and one native string extraction for every string of
   * the batch, instead of one of each per message. Record k is
   * data[offsets[k], offsets[k] + lengths[k]), the first at 0, each next at
   * the following 8-byte boundary, with the gap filled by fillGap(). Hands
   * each value to `each` with its record's index, in order, while `each`
   * returns true; returns how many values it handed over. It stops without
   * a word at a record that does not decode as exactly one value: the
   * caller decodes that one alone with decode(), which says why. What
   * `each` throws propagates as it is.
   */
  decodeBatch(data: Buffer, offsets: ArrayLike<number>, lengths: ArrayLike<number>, n: number, each: (value: unknown, index: number) => boolean): number {
    if (n === 0) return 0
    let k = 0
    let thrown: { error: unknown } | null = null
    const source = data.subarray(0, offsets[n - 1]! + lengths[n - 1]!) // unpackMultiple reads a whole buffer
    this.dropOwnStructures() // as unpack() does before it reads; sequential mode skips that
    try {
      (this.packr as unknown as PackrMultiple).unpackMultiple(source, (value, start, stop) => {
        const at = offsets[k]!
        // Not a record: the filler in the gap before record k, which starts where record k - 1 ended.
        if (start !== at) return k > 0 && stop === at
        // Record k holds more or less than one value, or msgpack's never-used byte: stop before it.
        if (stop !== at + lengths[k]! || value === C1) return false
        k++
        try {
          return each(value, k - 1)
        } catch (error) {
          thrown = { error }
          return false
        }
      })
    } catch {
      // msgpackr could not read record k: stop before it (decode() will say why).
    } finally {
      this.dropOwnStructures() // sequential mode kept the batch's own structures
    }
    if (thrown !== null) throw (thrown as { error: unknown }).error
    return k
  }

  /** Forgets self-describing ("own") structures, keeping the shared ones (what msgpackr does before each non-sequential read or write). */
  private dropOwnStructures(): void {
    const structures = (this.packr as unknown as { structures?: PackrStructures }).structures
    if (structures === undefined) return
    const sharedLength = structures.sharedLength ?? 0
    if (structures.length > sharedLength) structures.length = sharedLength
  }
}

/**
 * decode()'s errors, built out of line: decode() runs inside drain loops,
 * where a template literal with a number in a throw costs its conversion
 * on every message on Node 20 (docs/design.md, "Error messages off the hot
 * path").
 */
function badPayload(start: number, value: unknown, detail: string, options?: { cause: unknown }): CorruptSegment {
  return new CorruptSegment(`message payload at ${start}`, value, detail, options)
}

/** msgpackr's unpackMultiple with a callback (typed loosely in its .d.ts). */
interface PackrMultiple {
  unpackMultiple(source: Uint8Array, forEach: (value: unknown, start: number, end: number) => boolean | undefined): void
}

/**
 * Fills data[from, to) (0 to 7 bytes: the gap after a record, up to the next
 * 8-byte boundary) with one msgpack value, a fixstr of spaces, so that a
 * batch of records reads as one msgpack sequence (Codec.decodeBatch).
 */
export function fillGap(data: Uint8Array, from: number, to: number): void {
  if (from >= to) return
  data[from] = 0xa0 | (to - from - 1)
  for (let i = from + 1; i < to; i++) data[i] = 0x20
}

let shared: Codec | undefined
/** The process-wide codec without shared structures, created on first use. */
export function defaultCodec(): Codec {
  return (shared ??= new Codec())
}

function asUnserializable(value: unknown, error: unknown): IpcError {
  if (error instanceof IpcError) return error
  const message = (error as Error)?.message ?? String(error)
  if (error instanceof RangeError && /call stack/i.test(message)) {
    return new Unserializable(`${describe(value)}: it is cyclic or nested too deeply`, { cause: error })
  }
  return new Unserializable(`${describe(value)}: ${message}`, { cause: error })
}

function describe(value: unknown): string {
  if (typeof value === 'symbol') return value.toString()
  if (typeof value === 'object' && value !== null) return `a value of type ${value.constructor?.name ?? 'Object'}`
  return `a value of type ${typeof value}`
}
