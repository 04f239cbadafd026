/**
 * @ipc/bus, written the way its README shows: a private bus, workers started
 * with bus.fork() that join with Bus.attach(), typed channels, trySend()
 * with an `await send()` fallback when the lane is full (or sendMany in
 * batches when the cell asks for it), on('message') to receive.
 *
 * Channels: workers send to the host on 'up'; the host sends to worker i on
 * `to${i}`. Fan-out uses bus.publish/bus.subscribe when the bus has them,
 * else one channel per subscriber (the note says which).
 */
import { Bus, type BusOptions, type Channel } from '@ipc/bus'
import type { Cell, Shape } from '../suite/cell.js'
import { childEndpoint, main, newTick, payload, setTick, type Endpoint, type Peer, type Role, type Tick } from './common.js'

/** The pub/sub API, when this build of the bus has it. */
interface PubSub {
  publish(topic: string, value: unknown): unknown
  subscribe(topic: string, fn: (value: unknown) => void): unknown
}

const TOPIC = 'fan'

function options(cell: Cell): BusOptions {
  const o: BusOptions = {}
  if (cell.bus.doorbell !== undefined) o.doorbell = cell.bus.doorbell
  if (cell.bus.spinMicros !== undefined) o.spinMicros = cell.bus.spinMicros
  if (cell.bus.ringBytes !== undefined) o.ringBytes = cell.bus.ringBytes
  return o
}

function pubsub(bus: Bus): PubSub | null {
  const b = bus as unknown as Partial<PubSub>
  return typeof b.publish === 'function' && typeof b.subscribe === 'function' ? (b as PubSub) : null
}

const isThenable = (r: unknown): r is Promise<unknown> => r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function'

class BusPeer implements Peer {
  private bus: Bus | null = null
  private cell: Cell | null = null
  private index = 0
  private to0: Channel<Tick> | null = null
  private up: Channel<unknown> | null = null

  private get b(): Bus {
    if (this.bus === null) throw new Error('bus not open')
    return this.bus
  }

  async open(cell: Cell): Promise<void> {
    this.cell = cell
    this.bus = await Bus.create(options(cell))
  }

  spawn(i: number, role: Role): Endpoint {
    return childEndpoint(this.b.fork(new URL(import.meta.url), [], {
      env: { ...process.env, BENCH_ROLE: role, BENCH_INDEX: String(i) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }))
  }

  receive(fn: (value: unknown) => void): void {
    // Raw payloads as views of the ring (zeroCopy): the fair match for the
    // socket peer, which hands out views of its read chunks.
    this.b.channel('up', { zeroCopy: this.cell?.shape !== 'object' }).on('message', fn)
  }

  async publish(n: number, shape: Shape, targets: number): Promise<void> {
    const tick = newTick()
    const ps = this.cell!.kind === 'fanout' ? pubsub(this.b) : null
    if (ps !== null) {
      for (let i = 0; i < n; i++) {
        const r = ps.publish(TOPIC, setTick(tick, i))
        if (isThenable(r)) await r
      }
      return
    }
    const channels = Array.from({ length: targets }, (_, t) => this.b.channel<Tick>(`to${t}`))
    if (shape !== 'object') throw new Error('the bus peer publishes objects only')
    for (let i = 0; i < n; i++) {
      setTick(tick, i)
      for (let c = 0; c < channels.length; c++) {
        const ch = channels[c]!
        if (!ch.trySend(tick)) await ch.send(tick)
      }
    }
  }

  sendOne(value: Tick): void {
    const ch = (this.to0 ??= this.b.channel<Tick>('to0'))
    if (!ch.trySend(value)) void ch.send(value)
  }

  async close(): Promise<void> {
    await this.bus?.close()
  }

  async attach(cell: Cell, index: number): Promise<void> {
    this.cell = cell
    this.index = index
    this.bus = await Bus.attach()
  }

  workerReceive(fn: (value: unknown) => void): void {
    const ps = this.cell!.kind === 'fanout' ? pubsub(this.b) : null
    if (ps !== null) ps.subscribe(TOPIC, fn)
    else this.b.channel(`to${this.index}`).on('message', fn)
  }

  async workerStream(n: number, shape: Shape, base: number): Promise<void> {
    if (shape === 'object') {
      const ch = this.b.channel<Tick>('up')
      const many = this.cell!.bus.sendMany ?? 0
      if (many > 0) return sendMany(ch, n, base, many)
      const tick = newTick()
      for (let i = 0; i < n; i++) {
        setTick(tick, base + i)
        if (!ch.trySend(tick)) await ch.send(tick)
      }
      return
    }
    const ch = this.b.channel<Buffer>('up')
    const bytes = payload(shape)
    for (let i = 0; i < n; i++) {
      if (!ch.trySendBytes(bytes)) await ch.sendBytes(bytes)
    }
  }

  workerSendOne(value: unknown): void {
    const ch = (this.up ??= this.b.channel('up'))
    if (!ch.trySend(value)) void ch.send(value)
  }

  note(cell: Cell): string | undefined {
    if (cell.kind === 'fanout') return this.bus !== null && pubsub(this.bus) !== null ? 'bus.publish / bus.subscribe' : '4 channels, one per subscriber (no bus.publish yet): each message encoded 4 times'
    if (cell.bus.sendMany) return `sendMany in batches of ${cell.bus.sendMany}`
    if (cell.shape !== 'object' && cell.kind === 'stream') return 'receiver takes raw payloads as views of the ring (zeroCopy)'
    return undefined
  }
}

async function sendMany(ch: Channel<Tick>, n: number, base: number, size: number): Promise<void> {
  const batch = Array.from({ length: size }, newTick)
  for (let sent = 0; sent < n;) {
    const k = Math.min(size, n - sent)
    for (let j = 0; j < k; j++) setTick(batch[j]!, base + sent + j)
    await ch.sendMany(k === size ? batch : batch.slice(0, k))
    sent += k
  }
}

await main(new BusPeer())
