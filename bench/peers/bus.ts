/**
 * @ipc/bus, written the way its README shows: a private bus, workers started
 * with bus.fork() that join with Bus.attach(), typed channels, trySend()
 * with an `await send()` fallback when the lane is full (or sendMany in
 * batches when the cell asks for it), on('message') to receive.
 *
 * Channels: workers send to the host on 'up'; the host sends to worker i on
 * `to${i}`. Fan-out (throughput and latency) is pub/sub on one topic:
 * bus.publish / bus.subscribe (policy 'block': every message counted). The
 * publisher uses tryPublish (synchronous; false when a block subscriber has
 * no room, then `await publish()`, which resolves once the value is
 * written) or publishMany in batches, whichever the cell asks for; 'auto'
 * times each one this bus has during the warm-up run and keeps the
 * fastest. A bus without tryPublish gets `await publish()` per message.
 * The cell's note says what was used.
 *
 * Schema objects (cell.bus.schema): 'up' is a schema channel declared with
 * TICK_SCHEMA on both sides; with cell.bus.zeroCopy the host's listener
 * gets one reused view and reads every field of it. Schema fan-out: the
 * host declares the topic with bus.topic(TOPIC, { schema: TICK_SCHEMA })
 * and the workers subscribe without a schema (the stored one). Request/reply: the
 * host serves 'svc' with an echo handler, clients `await bus.request()`.
 */
import { Bus, type BusOptions, type Channel, type ChannelOptions } from '@ipc/bus'
import { LARGE_PAYLOAD, payloadBytes, type Cell, type Shape } from '../suite/cell.js'
import { childEndpoint, main, newTick, now, payload, setTick, TICK_SCHEMA, type Endpoint, type Peer, type Role, type Tick } from './common.js'

/** The pub/sub API; tryPublish and publishMany come with the broadcast-topic rewrite (issue 13). */
interface PubSub {
  publish(topic: string, value: unknown): Promise<number>
  subscribe(topic: string, fn: (value: unknown) => void, options?: { policy?: 'block' | 'drop' }): unknown
  tryPublish?(topic: string, value: unknown): boolean
  publishMany?(topic: string, values: unknown[]): Promise<number>
}

type Mode = 'try' | 'many' | 'await'

const TOPIC = 'fan'
/** The request/reply service. */
const SERVICE = 'svc'
/** publishMany's batch size. */
const MANY = 64

const MODE_NOTE: Record<Mode, string> = {
  try: 'tryPublish, `await publish()` when it returns false',
  many: `publishMany in batches of ${MANY}`,
  await: '`await publish()` per message (this build has no tryPublish)',
}

function options(cell: Cell): BusOptions {
  const o: BusOptions = {}
  if (cell.bus.doorbell !== undefined) o.doorbell = cell.bus.doorbell
  if (cell.bus.spinMicros !== undefined) o.spinMicros = cell.bus.spinMicros
  if (cell.bus.ringBytes !== undefined) o.ringBytes = cell.bus.ringBytes
  return o
}

function pubsub(bus: Bus): PubSub {
  const b = bus as unknown as Partial<PubSub>
  if (typeof b.publish !== 'function' || typeof b.subscribe !== 'function') throw new Error('this build of @ipc/bus has no bus.publish / bus.subscribe')
  return b as PubSub
}

/** The publishing modes this bus has (`await publish()` only when it has neither tryPublish nor publishMany). */
function modes(ps: PubSub): Mode[] {
  const out: Mode[] = []
  if (typeof ps.tryPublish === 'function') out.push('try')
  if (typeof ps.publishMany === 'function') out.push('many')
  if (out.length === 0) out.push('await')
  return out
}

const isThenable = (r: unknown): r is Promise<unknown> => r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function'
const isPubSub = (cell: Cell | null): boolean => cell?.kind === 'fanout' || cell?.kind === 'fanlat'

/** The 'up' channel's options: a schema channel when the cell asks for one. */
function upOptions(cell: Cell, receiving: boolean): ChannelOptions {
  if (cell.bus.schema === true) return { schema: TICK_SCHEMA, ...(receiving && cell.bus.zeroCopy === true ? { zeroCopy: true } : {}) }
  // Raw payloads as views of the ring (zeroCopy): the fair match for the
  // socket peer, which hands out views of its read chunks; unless the cell
  // says (the large-message rows measure both receivers).
  return receiving ? { zeroCopy: cell.shape !== 'object' && cell.bus.zeroCopy !== false } : {}
}

class BusPeer implements Peer {
  private bus: Bus | null = null
  private cell: Cell | null = null
  private index = 0
  private to0: Channel<Tick> | null = null
  private up: Channel<unknown> | null = null
  private ps: PubSub | null = null
  /** fanout: the publishing mode, once chosen; and the warm-up rates (M msgs/s) when 'auto' compared several. */
  private mode: Mode | null = null
  private rates: Partial<Record<Mode, number>> = {}
  private fn: (value: unknown) => void = () => {}
  private server: { close(): Promise<void> } | null = null
  /** schema + zeroCopy: a sum of every field read from the views (kept, so the reads are not optimized away). */
  touched = 0

  private get b(): Bus {
    if (this.bus === null) throw new Error('bus not open')
    return this.bus
  }

  async open(cell: Cell): Promise<void> {
    this.cell = cell
    this.bus = await Bus.create(options(cell))
    if (isPubSub(cell)) {
      this.ps = pubsub(this.bus)
      // Declared before the workers subscribe, so that its sizes and schema
      // are the host's (they ask for none: a schema topic's is stored).
      if (cell.bus.schema === true || cell.bus.ringBytes !== undefined) {
        this.bus.topic(TOPIC, { ...(cell.bus.schema === true ? { schema: TICK_SCHEMA } : {}), ...(cell.bus.ringBytes !== undefined ? { ringBytes: cell.bus.ringBytes } : {}) })
      }
    }
  }

  spawn(i: number, role: Role): Endpoint {
    return childEndpoint(this.b.fork(new URL(import.meta.url), [], {
      env: { ...process.env, BENCH_ROLE: role, BENCH_INDEX: String(i) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }))
  }

  receive(fn: (value: unknown) => void): void {
    const cell = this.cell!
    const ch = this.b.channel('up', upOptions(cell, true))
    if (cell.bus.schema === true && cell.bus.zeroCopy === true) {
      ch.on('message', (v: unknown) => {
        const t = v as Tick
        this.touched += t.id + t.ts + t.px + t.qty + t.kind.length
        fn(v)
      })
    } else {
      ch.on('message', fn)
    }
  }

  serve(): void {
    this.server = this.b.serve(SERVICE, (req: unknown) => req)
  }

  request(value: Tick): Promise<unknown> {
    return this.b.request(SERVICE, value)
  }

  async publish(n: number, shape: Shape, targets: number): Promise<void> {
    if (shape !== 'object') throw new Error('the bus peer publishes objects only')
    if (this.ps !== null) {
      if (this.mode === null) await this.choose(n)
      else await this.publishWith(this.mode, 0, n)
      return
    }
    // idle: plain channels, one per target
    const channels = Array.from({ length: targets }, (_, t) => this.b.channel<Tick>(`to${t}`))
    const tick = newTick()
    for (let i = 0; i < n; i++) {
      setTick(tick, i)
      for (let c = 0; c < channels.length; c++) {
        const ch = channels[c]!
        if (!ch.trySend(tick)) await ch.send(tick)
      }
    }
  }

  /**
   * The first (warm-up) run: settles the mode. With one candidate (or one
   * asked for), it is used throughout; with several, rounds of n/(2k)
   * messages per candidate, timed in the second round, then the rest with
   * the fastest.
   */
  private async choose(n: number): Promise<void> {
    const have = modes(this.ps!)
    const asked = this.cell!.bus.publish ?? 'auto'
    const candidates = asked === 'auto' ? have : [have.includes(asked) ? asked : have[0]!]
    if (candidates.length === 1) {
      this.mode = candidates[0]!
      return this.publishWith(this.mode, 0, n)
    }
    const chunk = Math.floor(n / (2 * candidates.length))
    let base = 0
    for (let round = 0; round < 2; round++) {
      for (const m of candidates) {
        const t0 = now()
        await this.publishWith(m, base, chunk)
        if (round === 1) this.rates[m] = chunk / (Number(now() - t0) / 1e3)
        base += chunk
      }
    }
    this.mode = candidates.reduce((a, b) => (this.rates[b]! > this.rates[a]! ? b : a))
    await this.publishWith(this.mode, base, n - base)
  }

  private async publishWith(mode: Mode, base: number, n: number): Promise<void> {
    const ps = this.ps!
    if (mode === 'many') {
      const batch = Array.from({ length: MANY }, newTick)
      for (let sent = 0; sent < n;) {
        const k = Math.min(MANY, n - sent)
        for (let j = 0; j < k; j++) setTick(batch[j]!, base + sent + j)
        await ps.publishMany!(TOPIC, k === MANY ? batch : batch.slice(0, k))
        sent += k
      }
      return
    }
    const tick = newTick()
    if (mode === 'try') {
      const tryPublish = ps.tryPublish!.bind(ps)
      for (let i = 0; i < n; i++) {
        setTick(tick, base + i)
        if (!tryPublish(TOPIC, tick)) await ps.publish(TOPIC, tick)
      }
      return
    }
    for (let i = 0; i < n; i++) await ps.publish(TOPIC, setTick(tick, base + i))
  }

  publishOne(value: Tick): Promise<unknown> | undefined {
    const ps = this.ps!
    if (typeof ps.tryPublish === 'function' && ps.tryPublish(TOPIC, value)) return undefined
    return ps.publish(TOPIC, value)
  }

  sendOne(value: Tick): void {
    const ch = (this.to0 ??= this.b.channel<Tick>('to0'))
    if (!ch.trySend(value)) void ch.send(value)
  }

  async close(): Promise<void> {
    await this.server?.close()
    await this.bus?.close()
  }

  async attach(cell: Cell, index: number): Promise<void> {
    this.cell = cell
    this.index = index
    this.bus = await Bus.attach()
    if (isPubSub(cell)) {
      // Subscribed before the worker says ready: every publish after that reaches it.
      const sub = pubsub(this.bus).subscribe(TOPIC, (v) => this.fn(v), { policy: 'block' })
      if (isThenable(sub)) await sub
    }
  }

  workerReceive(fn: (value: unknown) => void): void {
    if (isPubSub(this.cell)) this.fn = fn
    else this.b.channel(`to${this.index}`).on('message', fn)
  }

  async workerStream(n: number, shape: Shape, base: number): Promise<void> {
    if (shape === 'object') {
      const ch = this.b.channel<Tick>('up', upOptions(this.cell!, false))
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
    if (cell.kind === 'fanout' && this.mode !== null) {
      const rates = Object.entries(this.rates).map(([m, r]) => `${m === 'try' ? 'tryPublish' : m === 'many' ? `publishMany(${MANY})` : 'await publish'} ${r.toFixed(2)}`)
      return `bus.publish / bus.subscribe (policy 'block')${cell.bus.schema === true ? ' on a schema topic (bus.topic with TICK_SCHEMA; subscribers get decoded objects)' : ''}; publisher: ${MODE_NOTE[this.mode]}${rates.length > 1 ? ` (the fastest while warming up; publisher-side M msgs/s in the warm-up run: ${rates.join(', ')})` : ''}`
    }
    if (cell.kind === 'fanlat' && this.ps !== null) {
      const spin = cell.bus.spinMicros ? `; spinMicros ${cell.bus.spinMicros}` : ''
      return `bus.publish / bus.subscribe (policy 'block'); publisher: ${typeof this.ps.tryPublish === 'function' ? MODE_NOTE.try : MODE_NOTE.await}${spin}`
    }
    if (cell.kind === 'reqrep' || cell.kind === 'reqidle') return `bus.serve / await bus.request${cell.bus.spinMicros !== undefined ? `; spinMicros ${cell.bus.spinMicros}` : ''}`
    if (cell.bus.schema === true) return `schema channel${cell.bus.sendMany ? `, sendMany in batches of ${cell.bus.sendMany}` : ', trySend / `await send()` when full'}; receiver: ${cell.bus.zeroCopy === true ? 'zeroCopy (one reused view), every field read' : 'decoded objects'}`
    if (cell.bus.sendMany) return `sendMany in batches of ${cell.bus.sendMany}`
    if (cell.shape !== 'object' && cell.kind === 'stream' && payloadBytes(cell.shape) >= LARGE_PAYLOAD) {
      return `${options(cell).ringBytes ?? 'default ring (1 MiB)'}, each message ${payloadBytes(cell.shape) >> 20} MiB sent as fragments, reassembled by the receiver; receiver: ${cell.bus.zeroCopy === false ? "on('message') with default options (a Buffer of its own per message)" : 'zeroCopy channel'}`
    }
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
