/**
 * child_process IPC (process.send / child.send) with serialization 'json'
 * or 'advanced' (cell.system says which). The host forks its workers with
 * that serialization; data and control share the IPC channel.
 *
 * Backpressure: send() returns false once the channel's write queue is
 * long; the sender then yields to the event loop (which writes the queue
 * out) before sending more. Raw bytes travel as Buffers with 'advanced';
 * with 'json' as base64 strings, encoded per message by the sender and
 * decoded by the receiver (JSON has no bytes). Large payloads (1 MiB and
 * up): the sender waits for send()'s callback instead (sendLarge).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LARGE_PAYLOAD, type Cell, type Shape } from '../suite/cell.js'
import { childEndpoint, immediate, main, newTick, payload, setTick, sink, type Endpoint, type Peer, type Role, type Tick } from './common.js'

class ChildIpcPeer implements Peer {
  private json = true
  private children: ChildProcess[] = []

  async open(cell: Cell): Promise<void> {
    this.json = cell.system === 'ipc-json'
  }

  spawn(i: number, role: Role): Endpoint {
    const cp = fork(fileURLToPath(import.meta.url), [], {
      serialization: this.json ? 'json' : 'advanced',
      env: { ...process.env, BENCH_ROLE: role, BENCH_INDEX: String(i) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.children.push(cp)
    return childEndpoint(cp)
  }

  private decoder(fn: (value: unknown) => void): (value: unknown) => void {
    // JSON carries bytes as base64 text: decode, as a user must.
    return this.json ? (v) => fn(typeof v === 'string' ? Buffer.from(v, 'base64') : v) : fn
  }

  receive(fn: (value: unknown) => void): void {
    sink.fn = this.decoder(fn)
  }

  async publish(n: number, shape: Shape, targets: number): Promise<void> {
    const tick = newTick()
    const bytes = shape === 'object' ? null : payload(shape)
    const to = this.children.slice(0, targets)
    for (let i = 0; i < n; i++) {
      const v = bytes === null ? setTick(tick, i) : this.json ? bytes.toString('base64') : bytes
      let full = false
      for (let c = 0; c < to.length; c++) if (!to[c]!.send(v)) full = true
      if (full) await immediate()
    }
  }

  sendOne(value: Tick): void {
    this.children[0]!.send(value)
  }

  publishOne(value: Tick): Promise<void> | undefined {
    // child.send serializes per child: there is no encode-once here.
    let full = false
    for (const cp of this.children) if (!cp.send(value)) full = true
    return full ? immediate() : undefined
  }

  async close(): Promise<void> {
    for (const cp of this.children) if (cp.exitCode === null) cp.kill('SIGKILL')
  }

  async attach(cell: Cell): Promise<void> {
    this.json = cell.system === 'ipc-json'
  }

  workerReceive(fn: (value: unknown) => void): void {
    sink.fn = this.decoder(fn)
  }

  async workerStream(n: number, shape: Shape, base: number): Promise<void> {
    const send = process.send!.bind(process)
    if (shape === 'object') {
      const tick = newTick()
      for (let i = 0; i < n; i++) {
        if (!send(setTick(tick, base + i))) await immediate()
      }
      return
    }
    const bytes = payload(shape)
    if (bytes.length >= LARGE_PAYLOAD) return sendLarge(bytes, n, this.json)
    for (let i = 0; i < n; i++) {
      if (!send(this.json ? bytes.toString('base64') : bytes)) await immediate()
    }
  }

  workerSendOne(value: unknown): void {
    process.send!(value as object)
  }
}

/** Bytes of large messages a sender lets be queued in its IPC channel, unwritten (at least two messages). */
const LARGE_WINDOW = 16 * 1024 * 1024

/**
 * Large payloads: yielding once to the event loop when send() returns
 * false (as for small messages) would let a fast sender queue messages far
 * faster than the channel writes them (hundreds of MiB of serialized
 * copies); so a sender waits for send()'s callback (the message written)
 * once LARGE_WINDOW bytes, or two messages, are unwritten.
 */
async function sendLarge(bytes: Buffer, n: number, json: boolean): Promise<void> {
  const window = Math.max(2, Math.floor(LARGE_WINDOW / bytes.length))
  const unwritten: Array<Promise<void>> = []
  for (let i = 0; i < n; i++) {
    const written = new Promise<void>((resolve, reject) => {
      process.send!(json ? bytes.toString('base64') : bytes, undefined, undefined, (err: Error | null) => (err ? reject(err) : resolve()))
    })
    written.catch(() => {}) // a failed write fails the stream below, not the process
    unwritten.push(written)
    if (unwritten.length >= window) await unwritten.shift()
  }
  await Promise.all(unwritten)
}

await main(new ChildIpcPeer())
