/**
 * Request/reply over Unix socket connections with msgpackr, the way one
 * would write it by hand (used by unix-socket.ts): one server accepting a
 * connection per client; frames are
 *
 *   [u32 LE length of the rest][u32 LE request id][msgpackr body]
 *
 * with one Packr / Unpackr (sequential structures) per direction of each
 * connection. A client numbers its requests and writes each at once (one
 * write() per request); the server decodes every frame of a read, calls the
 * handler, and writes the replies to that read in one write(). Replies are
 * matched to pending requests by id (a Map), so a client may have any
 * number in flight; a closed connection rejects what is pending.
 */
import type net from 'node:net'
import { Packr, Unpackr } from 'msgpackr'
import { FrameSplitter } from './frames.js'

/** Splits a byte stream into frames and decodes their bodies ([u32 id][body]) in place. */
class RpcReader {
  private readonly unpackr = new Unpackr({ sequential: true })
  private readonly range = { start: 0, end: 0 }
  private readonly frames = new FrameSplitter((buf, start, stop) => {
    this.range.start = start + 4
    this.range.end = stop
    this.fn(buf.readUInt32LE(start), this.unpackr.unpack(buf, this.range))
  })

  constructor(private readonly fn: (id: number, value: unknown) => void) {}

  push(chunk: Buffer): void {
    this.frames.push(chunk)
  }
}

/** Encodes frames into a scratch buffer; take() copies them out for one write(). */
class RpcWriter {
  private readonly packr = new Packr({ sequential: true })
  private buf = Buffer.allocUnsafe(4096)
  private pos = 0

  get size(): number {
    return this.pos
  }

  add(id: number, value: unknown): void {
    const body = this.packr.pack(value)
    const need = this.pos + 8 + body.length
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, need))
      this.buf.copy(bigger, 0, 0, this.pos)
      this.buf = bigger
    }
    this.buf.writeUInt32LE(4 + body.length, this.pos)
    this.buf.writeUInt32LE(id, this.pos + 4)
    this.buf.set(body, this.pos + 8)
    this.pos = need
  }

  /** The frames so far, in a buffer of their own (the socket keeps it until written). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos)
    this.buf.copy(out, 0, 0, this.pos)
    this.pos = 0
    return out
  }
}

/** Server side of one connection: every request answered with handler(request), the replies to one read in one write(). */
export function serveConnection(socket: net.Socket, handler: (request: unknown) => unknown): void {
  const writer = new RpcWriter()
  const reader = new RpcReader((id, request) => writer.add(id, handler(request)))
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk)
    if (writer.size > 0) socket.write(writer.take())
  })
}

interface Pending { resolve: (value: unknown) => void; reject: (err: Error) => void }

/** Client side of one connection. */
export class RpcClient {
  private readonly writer = new RpcWriter()
  private readonly pending = new Map<number, Pending>()
  private nextId = 1

  constructor(private readonly socket: net.Socket) {
    const reader = new RpcReader((id, value) => {
      const p = this.pending.get(id)
      if (p === undefined) return // not ours (cannot happen here: no timeouts)
      this.pending.delete(id)
      p.resolve(value)
    })
    socket.on('data', (chunk: Buffer) => reader.push(chunk))
    socket.on('close', () => {
      const err = new Error('the connection to the server closed')
      for (const p of this.pending.values()) p.reject(err)
      this.pending.clear()
    })
  }

  request(value: unknown): Promise<unknown> {
    const id = this.nextId
    this.nextId = (id + 1) >>> 0 || 1
    this.writer.add(id, value)
    this.socket.write(this.writer.take())
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }))
  }
}
