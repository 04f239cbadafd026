/**
 * A Unix domain socket with length-prefixed msgpackr frames, written the
 * way a competent engineer would: [u32 LE length][msgpack body] frames are
 * packed into 64 KiB batches and each batch is one write(); when write()
 * returns false the sender waits for 'drain'. Each direction of each
 * connection has one Packr / Unpackr with `sequential` structures (a
 * record's keys go over the wire once, then only its values). The
 * receiver decodes in place from the chunk it got (no copy per frame);
 * raw payloads are handed out as views of that chunk (a frame longer than
 * its chunk, such as a large payload, is collected into a Buffer of its
 * own: frames.ts). Large payloads (1 MiB and up) are not batched: each is
 * written as its length word and the payload, uncopied, in one writev.
 *
 * The host listens; workers connect. Fan-out encodes each frame once and
 * writes the same batch to every subscriber (for latency, each frame on
 * its own, at once, to every subscriber). Request/reply (Peer.serve /
 * Peer.request) runs its own framing with request ids: unix-socket-rpc.ts.
 */
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Packr, Unpackr } from 'msgpackr'
import { LARGE_PAYLOAD, type Cell, type Shape } from '../suite/cell.js'
import { childEndpoint, main, newTick, payload, setTick, type Endpoint, type Peer, type Role, type Tick, type Workers } from './common.js'
import { RpcClient, serveConnection } from './unix-socket-rpc.js'
import { FrameSplitter } from './frames.js'

const BATCH = 64 * 1024

/** Builds batches of frames; one Packr per outgoing stream. */
class FrameWriter {
  private readonly packr = new Packr({ sequential: true })
  private buf = Buffer.allocUnsafe(BATCH * 2)
  private pos = 0

  get size(): number {
    return this.pos
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes))
    this.buf.copy(bigger, 0, 0, this.pos)
    this.buf = bigger
  }

  value(v: unknown): void {
    this.bytes(this.packr.pack(v))
  }

  bytes(body: Uint8Array): void {
    this.room(4 + body.length)
    this.buf.writeUInt32LE(body.length, this.pos)
    this.buf.set(body, this.pos + 4)
    this.pos += 4 + body.length
  }

  /** One frame on its own (a ping or pong: written at once, not batched). */
  frame(v: unknown): Buffer {
    const body = this.packr.pack(v)
    const out = Buffer.allocUnsafe(4 + body.length)
    out.writeUInt32LE(body.length, 0)
    out.set(body, 4)
    return out
  }

  /** The batch so far; the writer starts a new buffer (the socket keeps the old one until written). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos)
    this.buf = Buffer.allocUnsafe(BATCH * 2)
    this.pos = 0
    return out
  }
}

/** Splits a byte stream into frames; one Unpackr per incoming stream. */
class FrameReader {
  private readonly unpackr = new Unpackr({ sequential: true })
  private readonly range = { start: 0, end: 0 }
  private readonly frames = new FrameSplitter((buf, start, stop) => {
    if (this.raw) {
      this.fn(buf.subarray(start, stop))
    } else {
      this.range.start = start
      this.range.end = stop
      this.fn(this.unpackr.unpack(buf, this.range))
    }
  })

  constructor(private readonly raw: boolean, private readonly fn: (value: unknown) => void) {}

  push(chunk: Buffer): void {
    this.frames.push(chunk)
  }
}

async function write(sockets: net.Socket[], chunk: Buffer): Promise<void> {
  const waits: Array<Promise<unknown>> = []
  for (const s of sockets) if (!s.write(chunk)) waits.push(once(s, 'drain'))
  if (waits.length > 0) await Promise.all(waits)
}

/**
 * Writes n messages of shape (ids from base) to sockets in 64 KiB batches;
 * large payloads each as their length word and the payload itself (one
 * writev, the payload not copied: it is never changed).
 */
async function stream(writer: FrameWriter, sockets: net.Socket[], n: number, shape: Shape, base: number): Promise<void> {
  const tick = newTick()
  const bytes = shape === 'object' ? null : payload(shape)
  if (bytes !== null && bytes.length >= LARGE_PAYLOAD) {
    const word = Buffer.alloc(4)
    word.writeUInt32LE(bytes.length)
    for (let i = 0; i < n; i++) {
      const waits: Array<Promise<unknown>> = []
      for (const s of sockets) {
        s.cork()
        s.write(word)
        const more = s.write(bytes)
        s.uncork()
        if (!more) waits.push(once(s, 'drain'))
      }
      if (waits.length > 0) await Promise.all(waits)
    }
    return
  }
  for (let i = 0; i < n; i++) {
    if (bytes === null) writer.value(setTick(tick, base + i))
    else writer.bytes(bytes)
    if (writer.size >= BATCH) await write(sockets, writer.take())
  }
  if (writer.size > 0) await write(sockets, writer.take())
}

class UnixSocketPeer implements Peer {
  private path = ''
  private server: net.Server | null = null
  private readonly sockets: net.Socket[] = []
  private readonly writer = new FrameWriter()
  private raw = false
  /** Request/reply: connections carry requests and replies (unix-socket-rpc.ts). */
  private rpc = false
  private fn: (value: unknown) => void = () => {}

  async open(cell: Cell): Promise<void> {
    this.raw = cell.shape !== 'object'
    this.path = join(os.tmpdir(), `ipc-bench-${process.pid}.sock`)
    rmSync(this.path, { force: true })
    this.server = net.createServer((s) => {
      s.setNoDelay?.(true)
      this.sockets.push(s)
      if (this.rpc) return serveConnection(s, (request) => request)
      const reader = new FrameReader(this.raw, (v) => this.fn(v))
      s.on('data', (chunk: Buffer) => reader.push(chunk))
    })
    this.server.listen(this.path)
    await once(this.server, 'listening')
  }

  spawn(i: number, role: Role): Endpoint {
    return childEndpoint(fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, BENCH_ROLE: role, BENCH_INDEX: String(i), BENCH_SOCKET: this.path },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }))
  }

  async connected(workers: Workers): Promise<void> {
    while (this.sockets.length < workers.size) await new Promise((r) => setTimeout(r, 5))
  }

  receive(fn: (value: unknown) => void): void {
    this.fn = fn
  }

  serve(): void {
    this.rpc = true // before any client connects
  }

  async publish(n: number, shape: Shape, targets: number): Promise<void> {
    await stream(this.writer, this.sockets.slice(0, targets), n, shape, 0)
  }

  sendOne(value: Tick): void {
    this.sockets[0]!.write(this.writer.frame(value))
  }

  publishOne(value: Tick): Promise<void> | undefined {
    // One frame, encoded once, written to every subscriber's socket.
    const frame = this.writer.frame(value)
    let waits: Array<Promise<unknown>> | null = null
    for (const s of this.sockets) if (!s.write(frame)) (waits ??= []).push(once(s, 'drain'))
    return waits === null ? undefined : Promise.all(waits).then(() => {})
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    this.server?.close()
    rmSync(this.path, { force: true })
  }

  // ---- worker
  private socket: net.Socket | null = null
  private client: RpcClient | null = null

  async attach(cell: Cell): Promise<void> {
    this.raw = cell.shape !== 'object'
    const s = net.connect(process.env.BENCH_SOCKET!)
    await once(s, 'connect')
    s.setNoDelay?.(true)
    this.socket = s
    if (cell.kind === 'reqrep' || cell.kind === 'reqidle') {
      this.client = new RpcClient(s)
      return
    }
    const reader = new FrameReader(this.raw, (v) => this.fn(v))
    s.on('data', (chunk: Buffer) => reader.push(chunk))
  }

  request(value: Tick): Promise<unknown> {
    return this.client!.request(value)
  }

  workerReceive(fn: (value: unknown) => void): void {
    this.fn = fn
  }

  workerStream(n: number, shape: Shape, base: number): Promise<void> {
    return stream(this.writer, [this.socket!], n, shape, base)
  }

  workerSendOne(value: unknown): void {
    this.socket!.write(this.writer.frame(value))
  }
}

await main(new UnixSocketPeer())
