/**
 * Byte copies for the hot path. Stores into shared memory one byte at a time
 * cost about 1.5 ns each and a native call (set, Buffer.copy) 17-20 ns for 64
 * bytes, most of it the call (docs/design.md, "Copying a payload"), so
 * short payloads go 4 bytes at a time through Uint32Array views when both
 * ends are 4-byte aligned (payload slots in a lane are 8-byte aligned, and
 * so are msgpackr's and our scratch buffers), and long ones use set().
 *
 * set() between Uint8Arrays where either side is a SharedArrayBuffer (our
 * segments) goes byte by byte in V8 (relaxed atomics per element): about
 * 1 GB/s into shared memory, and Buffer.copy / Buffer.from of a shared view
 * 0.2-0.9 GB/s, against 10-13 GB/s for set() between Uint32Array views of
 * the same bytes (measured on Node 20, 128 KiB copies). So a long copy whose
 * ends are both 4-byte aligned goes through Uint32Array views.
 */
const LONG = 256

/** Copies src[start, end) to dst at `at` (either may be shared memory). */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  const n = end - start
  if (n <= 64) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!
    return
  }
  const from = src.byteOffset + start
  const to = dst.byteOffset + at
  if (n >= LONG && ((from | to) & 3) === 0 && end <= src.length && at + n <= dst.length) {
    const words = n >>> 2
    new Uint32Array(dst.buffer, to, words).set(new Uint32Array(src.buffer, from, words))
    for (let i = words << 2; i < n; i++) dst[at + i] = src[start + i]!
    return
  }
  dst.set(start === 0 && end === src.length ? src : src.subarray(start, end), at)
}

/** A copy of src[start, end) in a Buffer of its own (fast out of shared memory, see copyBytes). */
export function copyOut(src: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start)
  copyBytes(src, start, end, out, 0)
  return out
}

/** Constructs a Buffer over (buffer, byteOffset, length), as Buffer.from(arrayBuffer, ...) does without its argument checks. */
type BufferConstructor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer

/**
 * Node's own Buffer class: Buffer[Symbol.species] is the FastBuffer that
 * Buffer.from, subarray and slice construct (a genuine Buffer). Calling it
 * directly costs about 15 ns where subarray() costs about 40 (species
 * lookup and argument clamping, Node 20); should a Node ever answer
 * otherwise, subarray() stands in.
 */
const NodeBuffer: BufferConstructor | null = (() => {
  const species = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species]
  if (typeof species !== 'function') return null
  try {
    const probe = new (species as BufferConstructor)(new ArrayBuffer(8), 4, 2)
    return Buffer.isBuffer(probe) && probe.byteOffset === 4 && probe.length === 2 ? (species as BufferConstructor) : null
  } catch {
    return null
  }
})()

/**
 * Buffers that view bytes of a longer array (a zeroCopy receiver's records
 * in the ring), made without subarray()'s overhead; the source's buffer and
 * offset are looked up only when the source is a new one (see WordCopier).
 */
export class Views {
  private source: Uint8Array | null = null
  private sourceBuffer: ArrayBufferLike = new ArrayBuffer(0)
  private sourceOffset = 0

  /** A Buffer viewing src[start, end) (0 <= start <= end <= src.length: the caller's bounds). */
  of(src: Uint8Array, start: number, end: number): Buffer {
    if (NodeBuffer === null) return Buffer.from(src.buffer, src.byteOffset + start, end - start)
    if (src !== this.source) {
      this.source = src
      this.sourceBuffer = src.buffer
      this.sourceOffset = src.byteOffset
    }
    return new NodeBuffer(this.sourceBuffer, this.sourceOffset + start, end - start)
  }
}

/**
 * Word-at-a-time copier that caches, per source array, its byte offset and
 * a Uint32Array view of its buffer. Reading `src.buffer` is a call into the
 * runtime (JSTypedArray::GetBuffer, ~1% of a sender's profile when done per
 * message) and `byteOffset` a builtin; a typed array's buffer and offset
 * never change, and the sources here are few and long-lived (msgpackr's
 * reused output buffer, a lane's data region), so both are looked up only
 * when the source array is a new one.
 */
export class WordCopier {
  private source: Uint8Array | null = null
  private sourceOffset = 0
  private sourceBuffer: ArrayBufferLike | null = null
  private sourceWords: Uint32Array<ArrayBufferLike> = new Uint32Array(0)

  /**
   * Copies src[start, end) to dst[at...]; `dstWords` must view dst's bytes
   * from dst's own start (dst.byteOffset 4-aligned).
   */
  copy(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstWords: Uint32Array<ArrayBufferLike>, at: number): void {
    const n = end - start
    if (src !== this.source) {
      const buffer = src.buffer
      this.source = src
      this.sourceOffset = src.byteOffset
      // Many small Buffers share Node's 8 KiB pool: one view serves them all.
      if (buffer !== this.sourceBuffer) {
        this.sourceBuffer = buffer
        this.sourceWords = new Uint32Array(buffer, 0, buffer.byteLength >>> 2)
      }
    }
    const from = this.sourceOffset + start
    // A detached source (length 0) takes the checked byte path too.
    if (n > LONG || ((from | at) & 3) !== 0 || end > src.length) {
      copyBytes(src, start, end, dst, at)
      return
    }
    const words = this.sourceWords
    const s = from >>> 2
    const d = at >>> 2
    const whole = n >>> 2
    // Eight words per turn: a one-word loop ran about 2 ns a word here
    // (a 64-byte record's tryWrite 35 ns, 26 ns this way; docs/design.md).
    let i = 0
    for (; i + 8 <= whole; i += 8) {
      const a = s + i
      const b = d + i
      dstWords[b] = words[a]!; dstWords[b + 1] = words[a + 1]!; dstWords[b + 2] = words[a + 2]!; dstWords[b + 3] = words[a + 3]!
      dstWords[b + 4] = words[a + 4]!; dstWords[b + 5] = words[a + 5]!; dstWords[b + 6] = words[a + 6]!; dstWords[b + 7] = words[a + 7]!
    }
    for (; i < whole; i++) dstWords[d + i] = words[s + i]!
    for (let i = whole << 2; i < n; i++) dst[at + i] = src[start + i]!
  }
}
