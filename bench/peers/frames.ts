/**
 * Length-prefixed frames on a Unix socket stream, as both socket peers
 * write them: [u32 LE length][length bytes]. Splits what arrives into
 * whole frames and keeps a partial one for the next chunk. A long frame
 * (COLLECT bytes and up: a large payload) that goes on past its chunk is
 * collected in a buffer of its own instead (its length is known from its
 * length word), each later chunk copied in once: a 64 MiB frame costs one
 * copy, not the quadratic cost of concatenating every 64 KiB chunk onto
 * what is pending.
 */

/** Frames from this length up are collected in a buffer of their own (4 read chunks of 64 KiB). */
const COLLECT = 256 * 1024

export class FrameSplitter {
  private pending: Buffer | null = null
  /** A long frame being collected (its bytes after the length word), and how much of it is in. */
  private body: Buffer | null = null
  private filled = 0

  /** `onFrame(buf, start, stop)` gets each whole frame's bytes after its length word. */
  constructor(private readonly onFrame: (buf: Buffer, start: number, stop: number) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk
    let pos = 0
    if (this.body !== null) {
      pos = this.fill(chunk, 0)
      if (this.body !== null) return
    } else if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk])
      this.pending = null
    }
    const end = buf.length
    while (end - pos >= 4) {
      const start = pos + 4
      const length = buf.readUInt32LE(pos)
      const stop = start + length
      if (stop > end) {
        if (length < COLLECT) break
        this.body = Buffer.allocUnsafe(length)
        this.filled = 0
        this.fill(buf, start)
        return
      }
      this.onFrame(buf, start, stop)
      pos = stop
    }
    if (pos < end) this.pending = buf.subarray(pos)
  }

  /** Copies buf[pos..] into the frame being collected, up to its end; hands it out once whole. Returns where buf's next frame starts. */
  private fill(buf: Buffer, pos: number): number {
    const body = this.body!
    const n = Math.min(body.length - this.filled, buf.length - pos)
    buf.copy(body, this.filled, pos, pos + n)
    this.filled += n
    if (this.filled === body.length) {
      this.body = null
      this.onFrame(body, 0, body.length)
    }
    return pos + n
  }
}
