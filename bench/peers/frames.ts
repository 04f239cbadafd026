/**
 * Length-prefixed frames on a Unix socket stream, as both socket peers
 * write them: [u32 LE length][length bytes]. Splits what arrives into
 * whole frames and keeps a partial one for the next chunk.
 */
export class FrameSplitter {
  private pending: Buffer | null = null

  /** `onFrame(buf, start, stop)` gets each whole frame's bytes after its length word. */
  constructor(private readonly onFrame: (buf: Buffer, start: number, stop: number) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk])
      this.pending = null
    }
    const end = buf.length
    let pos = 0
    while (end - pos >= 4) {
      const start = pos + 4
      const stop = start + buf.readUInt32LE(pos)
      if (stop > end) break
      this.onFrame(buf, start, stop)
      pos = stop
    }
    if (pos < end) this.pending = buf.subarray(pos)
  }
}
