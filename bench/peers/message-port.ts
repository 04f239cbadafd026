/**
 * worker_threads MessagePort: the in-process reference. The host process's
 * main thread and its workers are threads of ONE process (not separate
 * processes like every other system): structured clone over a MessagePort,
 * no system call per message.
 *
 * postMessage has no backpressure, so the receiver returns credit every
 * WINDOW / 4 messages and a sender waits when WINDOW messages are
 * unacknowledged (otherwise a fast sender queues without bound).
 */
import { Worker } from 'node:worker_threads'
import type { Cell, Shape } from '../suite/cell.js'
import { main, newTick, payload, setTick, sink, threadEndpoint, type Control, type Endpoint, type Peer, type Role, type Tick } from './common.js'

function window(shape: Shape): number {
  return shape === 'raw64k' ? 64 : 16384
}

/** Flow control of one direction of one port: the sender's side. */
class Credit {
  sent = 0
  acked = 0
  private wake: (() => void) | null = null

  constructor(readonly limit: number) {}

  /** Resolves once fewer than limit messages are unacknowledged. */
  wait(): Promise<void> | null {
    if (this.sent - this.acked < this.limit) return null
    return new Promise((resolve) => { this.wake = resolve })
  }

  ack(total: number): void {
    this.acked = total
    const w = this.wake
    if (w !== null && this.sent - this.acked < this.limit) {
      this.wake = null
      w()
    }
  }
}

class MessagePortPeer implements Peer {
  private cell: Cell | null = null
  private readonly workers: Worker[] = []
  private readonly endpoints: Endpoint[] = []
  private credits: Credit[] = []

  async open(cell: Cell): Promise<void> {
    this.cell = cell
  }

  spawn(i: number, role: Role, cell: Cell): Endpoint {
    const w = new Worker(new URL(import.meta.url), { workerData: { cell, role, index: i } })
    this.workers.push(w)
    this.credits.push(new Credit(window(cell.shape)))
    const ep = threadEndpoint(w)
    this.endpoints.push(ep)
    w.on('message', (m: unknown) => {
      if ((m as Control | null)?.op === 'credit') this.credits[i]!.ack((m as Control).total as number)
    })
    return ep
  }

  receive(fn: (value: unknown) => void): void {
    const received: number[] = []
    const every = window(this.cell!.shape) / 4
    sink.fn = (v, from) => {
      fn(v)
      const n = (received[from] = (received[from] ?? 0) + 1)
      if (n % every === 0) this.endpoints[from]!.send({ op: 'credit', total: n })
    }
  }

  async publish(n: number, shape: Shape, targets: number): Promise<void> {
    const tick = newTick()
    const bytes = shape === 'object' ? null : payload(shape)
    for (let i = 0; i < n; i++) {
      const v = bytes === null ? setTick(tick, i) : bytes
      for (let t = 0; t < targets; t++) {
        const c = this.credits[t]!
        const wait = c.wait()
        if (wait !== null) await wait
        this.workers[t]!.postMessage(v)
        c.sent++
      }
    }
  }

  sendOne(value: Tick): void {
    this.workers[0]!.postMessage(value)
    this.credits[0]!.sent++
  }

  publishOne(value: Tick, from = 0): Promise<void> | undefined {
    for (let t = from; t < this.workers.length; t++) {
      const c = this.credits[t]!
      const wait = c.wait()
      if (wait !== null) return wait.then(() => this.publishOne(value, t))
      this.workers[t]!.postMessage(value)
      c.sent++
    }
    return undefined
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  // ---- worker thread
  private port: import('node:worker_threads').MessagePort | null = null
  private credit = new Credit(1)

  async attach(cell: Cell): Promise<void> {
    this.cell = cell
    this.port = (await import('node:worker_threads')).parentPort
    this.credit = new Credit(window(cell.shape))
  }

  workerReceive(fn: (value: unknown) => void): void {
    let n = 0
    const every = window(this.cell!.shape) / 4
    sink.fn = (v) => {
      fn(v)
      if (++n % every === 0) this.port!.postMessage({ op: 'credit', total: n })
    }
  }

  workerControl(m: Control): void {
    if (m.op === 'credit') this.credit.ack(m.total as number)
  }

  async workerStream(n: number, shape: Shape, base: number): Promise<void> {
    const tick = newTick()
    const bytes = shape === 'object' ? null : payload(shape)
    const port = this.port!
    const c = this.credit
    for (let i = 0; i < n; i++) {
      const wait = c.wait()
      if (wait !== null) await wait
      port.postMessage(bytes === null ? setTick(tick, base + i) : bytes)
      c.sent++
    }
  }

  workerSendOne(value: unknown): void {
    this.port!.postMessage(value)
  }
}

await main(new MessagePortPeer())
