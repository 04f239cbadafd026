/**
 * Messages larger than a record: the sender cuts the message's bytes into
 * fragments, each one record of type TYPE_FRAGMENT (./layout.ts) in its own
 * lane, written in order as room appears; the receiver copies each into one
 * buffer per lane and hands the message over when the last byte is in.
 * Why fragments through the lane, not a segment per message: see
 * docs/design.md, "Large messages". This file owns the fragment layout.
 *
 * A fragment record's payload (offsets from the payload's start; the
 * payload is 8-byte aligned in the lane):
 *
 *   offset  size  field    meaning
 *   0       4     TOTAL    u32 bytes of the whole message, > the record limit
 *   4       4     OFFSET   u32 where this fragment's bytes go in the message;
 *                          0 for the first fragment
 *   8       4     TYPE     u32 the message's own record type (TYPE_VALUE,
 *                          TYPE_BYTES or TYPE_SCHEMA)
 *   12      4     (zero)
 *   16      n     bytes    message[OFFSET, OFFSET + n), n >= 1
 *
 * The fragments of one message are consecutive records of its lane, OFFSET
 * rising by each fragment's n, the last ending at TOTAL. Whatever breaks
 * that (a first fragment or a whole record while a message is unfinished, an
 * OFFSET or TOTAL that does not follow) means the message's sender gave up
 * its lane in the middle (it died, or closed): the unfinished message is
 * dropped, never delivered in part, and counted (Reassembler.abandoned).
 */
import { copyBytes } from '../bytes.js'
import { CorruptSegment } from '../errors.js'

/** Bytes of the fragment header. */
export const FRAGMENT_HEADER = 16

/** Message bytes one fragment carries in lanes whose records hold at most `maxRecordBytes` (a multiple of 8, or 0 when too small to fragment). */
export function fragmentBytes(maxRecordBytes: number): number {
  const n = (maxRecordBytes - FRAGMENT_HEADER) & ~7
  return n >= 8 ? n : 0
}

/** Writes the fragment header at data[at, at + FRAGMENT_HEADER) (the table above). */
export function writeFragmentHeader(data: Buffer, at: number, total: number, offset: number, type: number): void {
  data.writeUInt32LE(total, at)
  data.writeUInt32LE(offset, at + 4)
  data.writeUInt32LE(type, at + 8)
  data.writeUInt32LE(0, at + 12)
}

/** A message in the making, in one lane. */
interface Partial {
  bytes: Buffer
  type: number
  filled: number
}

/** The receiver's side: one unfinished message at most per lane, so memory is bounded by lanes x maxMessageBytes. */
export class Reassembler {
  private readonly partials: Array<Partial | null>
  /** Lanes whose current message is being skipped (its first fragment was lost or refused): until the next first fragment or whole record. */
  private readonly skipping: boolean[]
  /** Lanes with a message in the making (a cheap check for the receiver's hot path). */
  pendingCount = 0
  /** Unfinished messages dropped (their sender gave up the lane mid-message, or the receiver changed). */
  abandoned = 0
  /** Record type of the message accept() last completed. */
  completedType = 0

  /**
   * `alloc` makes each message's Buffer (not zeroed: every byte is written
   * before it is delivered); the bus passes @ipc/native's allocPooled, whose
   * large Buffers reuse memory already mapped.
   */
  constructor(lanes: number, private readonly maxMessageBytes: number, private readonly alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size)) {
    this.partials = Array.from({ length: lanes }, () => null)
    this.skipping = Array.from({ length: lanes }, () => false)
    this.spares = Array.from({ length: lanes }, () => null)
  }

  /** True when lane `lane` has a message in the making. */
  pending(lane: number): boolean {
    return this.partials[lane] !== null
  }

  /** Lanes with a message in the making. */
  pendingLanes(): number[] {
    const out: number[] = []
    for (let i = 0; i < this.partials.length; i++) if (this.partials[i] !== null) out.push(i)
    return out
  }

  /** Bytes held for unfinished messages. */
  heldBytes(): number {
    let n = 0
    for (const p of this.partials) if (p !== null) n += p.bytes.length
    return n
  }

  /**
   * Takes fragment record data[start, end) of `lane`. Returns the whole
   * message once its last fragment is in (its type in completedType), else
   * null. Throws CorruptSegment for a fragment no sender could have written
   * (too short, a TOTAL over the channel's limit).
   */
  accept(lane: number, data: Buffer, start: number, end: number): Buffer | null {
    const n = end - start - FRAGMENT_HEADER
    if (n < 1) throw new CorruptSegment('fragment length', end - start, `is not more than the ${FRAGMENT_HEADER}-byte fragment header`)
    const total = data.readUInt32LE(start)
    const offset = data.readUInt32LE(start + 4)
    const type = data.readUInt32LE(start + 8)
    if (total > this.maxMessageBytes) throw new CorruptSegment('fragment total', total, `is over the channel's maxMessageBytes ${this.maxMessageBytes}`)
    if (type > 0xffff || offset + n > total) throw new CorruptSegment('fragment', `${offset}+${n} of ${total}, type ${type}`, 'does not fit its message')
    let p = this.partials[lane]!
    if (offset === 0) {
      if (p !== null) this.abandon(lane) // a new message while one was unfinished
      this.skipping[lane] = false
      const spare = this.spares[lane] ?? null
      p = { bytes: spare !== null && spare.length >= total ? spare.subarray(0, total) : this.alloc(total), type, filled: 0 }
      this.partials[lane] = p
      this.pendingCount++
    } else if (p === null || p.filled !== offset || p.bytes.length !== total || p.type !== type) {
      // The middle of a message whose start this receiver never took (a
      // receiver before it took it), or a lane handed over mid-message.
      if (p !== null) this.abandon(lane)
      else if (!this.skipping[lane]) { this.skipping[lane] = true; this.abandoned++ }
      return null
    }
    copyBytes(data, start + FRAGMENT_HEADER, end, p.bytes, offset)
    p.filled += n
    if (p.filled < total) return null
    this.partials[lane] = null
    this.pendingCount--
    this.completedType = p.type
    return p.bytes
  }

  /** A whole record arrived on `lane`: a message unfinished there will never be. */
  whole(lane: number): void {
    this.skipping[lane] = false
    if (this.partials[lane] !== null) this.abandon(lane)
  }

  /**
   * `bytes`, a message accept() returned for `lane`, is no longer used by
   * anyone (it was lent as a view for the length of a listener call): its
   * memory may take lane's next message. Fresh memory costs page faults on
   * first touch (about 0.35 GB/s on some VMs), reused memory does not.
   */
  recycle(lane: number, bytes: Buffer): void {
    const spare = this.spares[lane] ?? null
    if (spare === null || bytes.length > spare.length) this.spares[lane] = bytes
  }

  /** Lets go of recycled memory. */
  dropSpares(): void {
    this.spares.fill(null)
  }

  /** Per lane: memory of an earlier message that the next may use (see recycle()). */
  private readonly spares: Array<Buffer | null>

  /** Drops lane's unfinished message (its sender is gone), counting it. */
  abandon(lane: number): void {
    if (this.partials[lane] === null) return
    this.partials[lane] = null
    this.pendingCount--
    this.abandoned++
  }

  /** Drops every unfinished message (the receiver stopped: another may take the lanes on). */
  abandonAll(): void {
    for (let i = 0; i < this.partials.length; i++) {
      if (this.partials[i] === null) continue
      this.abandon(i)
      this.skipping[i] = true // its remaining fragments are that same message: not counted again
    }
  }
}
