/**
 * What every peer program shares: the messages (basics.ts) and the
 * measurement procedures (stream, fan-out throughput, fan-out latency,
 * round trip, idle CPU; request/reply in reqrep.ts). A peer only supplies
 * a transport (the Peer interface); the procedures are the same for every
 * system, so every system is measured the same way.
 *
 * Control messages ({op: ...}, control.ts) travel on the Node IPC channel
 * (or the worker thread's port) between a host and its workers, never
 * inside a measured window — except for child_process IPC and MessagePort,
 * whose data shares that channel; they are told apart by the `op` field.
 */
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { LARGE_PAYLOAD, payloadBytes, type Cell, type RunResult, type Shape } from '../suite/cell.js'
import { percentile } from '../suite/stats.js'
import { immediate, measureIdle, newTick, now, repeat, setTick, sleeps, split, type Tick } from './basics.js'
import { Workers, isControl, parentEndpoint, sink, type Control, type Endpoint } from './control.js'
import { clientControl, requestIdle, requestReply } from './reqrep.js'

export { childEndpoint, isControl, sink, threadEndpoint, Workers, type Control, type Endpoint } from './control.js'
export { immediate, newTick, now, payload, setTick, TICK_SCHEMA, type Tick } from './basics.js'

// ================================================================ pinning

/** Pins this process (all its threads) to one CPU with taskset, when asked to. */
export function pinSelf(cell: Cell, slot: number): void {
  if (!cell.pin) return
  const cpu = slot % os.cpus().length
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' })
  } catch {
    // taskset missing: the runner already noted it; run unpinned
  }
}

// ================================================================ the transport a peer supplies

export type Role = 'sender' | 'subscriber' | 'ponger' | 'idler' | 'client'

export interface Peer {
  /** host: set up (create a bus, listen on a socket, ...). */
  open(cell: Cell): Promise<void>
  /** host: start worker i with `role`; the worker runs runWorker() with this peer. */
  spawn(i: number, role: Role, cell: Cell): Endpoint
  /** host: after every worker said ready (e.g. accept their connections). */
  connected?(workers: Workers): Promise<void>
  /** host: deliver every message any worker sends to the host to fn. */
  receive(fn: (value: unknown) => void): void
  /** host: send n messages of shape to each of workers 0..targets-1. */
  publish(n: number, shape: Shape, targets: number): Promise<void>
  /** host: one message to worker 0 now (a ping). */
  sendOne(value: Tick): void
  /**
   * host: one message to every worker now (fan-out latency), encoded at
   * once (the value is reused afterwards); a promise when it had to wait
   * for room (backpressure), resolved once the message is written.
   */
  publishOne(value: Tick): void | Promise<unknown>
  /**
   * host, request/reply (reqrep.ts): answer every request from every
   * worker with the request itself, until close(); called before the
   * clients start.
   */
  serve?(): void
  close(): Promise<void>

  /** worker: join (attach to the bus, connect, ...). */
  attach(cell: Cell, index: number): Promise<void>
  /** worker: deliver every message the host sends this worker to fn. */
  workerReceive(fn: (value: unknown) => void): void
  /** worker: send n messages of shape (ids base..base+n-1) to the host, respecting backpressure. */
  workerStream(n: number, shape: Shape, base: number): Promise<void>
  /** worker: one message to the host now (a pong). */
  workerSendOne(value: unknown): void
  /** worker, request/reply: send one request to the host's server; resolves with the reply. */
  request?(value: Tick): Promise<unknown>
  /** worker: a control message the generic worker does not know. */
  workerControl?(m: Control): void
  /** A note recorded with the cell's results (e.g. which fan-out API was used). */
  note?(cell: Cell): string | undefined
}

// ================================================================ the host

export function cellFromEnv(): Cell {
  const raw = (workerData as { cell?: Cell } | null)?.cell ?? process.env.BENCH_CELL
  if (raw === undefined) throw new Error('BENCH_CELL is not set: peers are started by the bench runner (node dist/run.js)')
  return typeof raw === 'string' ? (JSON.parse(raw) as Cell) : raw
}

/** A peer program's entry: host or worker, by how it was started. */
export async function main(peer: Peer): Promise<void> {
  const role = ((workerData as { role?: string } | null)?.role ?? process.env.BENCH_ROLE) as Role | undefined
  if (role !== undefined) return runWorker(peer, role)
  return runHost(peer)
}

async function runHost(peer: Peer): Promise<void> {
  const cell = cellFromEnv()
  pinSelf(cell, 0)
  // A worker's failure rejects every pending wait; the first one is reported, the rest are moot.
  process.on('unhandledRejection', () => {})
  let workers: Workers | null = null
  let report: object
  try {
    await peer.open(cell)
    const spawn = (count: number, role: Role): Promise<Workers> => {
      workers = new Workers(Array.from({ length: count }, (_, i) => peer.spawn(i, role, cell)))
      return ready(peer, workers)
    }
    let runs: RunResult[]
    switch (cell.kind) {
      case 'stream': runs = await stream(peer, cell, spawn); break
      case 'fanout': runs = await fanout(peer, cell, await spawn(cell.subscribers, 'subscriber')); break
      case 'fanlat': runs = await fanLatency(peer, cell, await spawn(cell.subscribers, 'subscriber')); break
      case 'rtt': runs = await roundTrips(peer, cell, spawn); break
      case 'idle': runs = await idle(peer, cell, await spawn(1, 'idler')); break
      case 'reqrep': runs = await requestReply(peer, cell, spawn); break
      case 'reqidle': runs = await requestIdle(peer, cell, spawn); break
    }
    report = { type: 'result', runs, note: peer.note?.(cell) }
  } catch (err) {
    report = { type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }
  } finally {
    const w = workers as Workers | null
    if (w !== null) await w.stop()
    await peer.close().catch(() => {})
  }
  process.send!(report, () => process.exit(0))
}

async function ready(peer: Peer, workers: Workers): Promise<Workers> {
  await workers.all('ready')
  await peer.connected?.(workers)
  return workers
}

async function stream(peer: Peer, cell: Cell, spawn: (count: number, role: Role) => Promise<Workers>): Promise<RunResult[]> {
  let count = 0
  let target = 0
  let end = 0n
  let done: () => void = () => {}
  const bytes = payloadBytes(cell.shape)
  const check = bytes >= LARGE_PAYLOAD ? new PayloadCheck(bytes) : null
  // Counting is all the receiver does: every system has decoded the message
  // by now. Large payloads are checked too (cheaply): whole, one Buffer each.
  peer.receive(check === null
    ? () => {
        if (++count === target) {
          end = now()
          done()
        }
      }
    : (v) => {
        check.add(v)
        if (++count === target) {
          end = now()
          done()
        }
      })
  const workers = await spawn(cell.senders, 'sender')
  return repeat(cell, async (n) => {
    count = 0
    target = n
    check?.reset()
    const faults = check !== null ? process.resourceUsage().minorPageFault : 0
    const received = new Promise<void>((resolve) => { done = resolve })
    const sent = workers.all('sent')
    let base = 0
    split(n, workers.size).forEach((part, i) => {
      workers.send(i, { op: 'go', n: part, base })
      base += part
    })
    const [acks] = await Promise.race([Promise.all([sent, received]), workers.failed()])
    const start = acks.map((a) => BigInt(a.start as string)).reduce((a, b) => (a < b ? a : b))
    if (check === null) return { seconds: Number(end - start) / 1e9, messages: n, bytes: n * bytes }
    check.verify(n)
    // Large payloads: how much of what arrived landed in memory the receiving process touched for the first time.
    const perMiB = ((process.resourceUsage().minorPageFault - faults) * (1 << 20)) / (n * bytes)
    return { seconds: Number(end - start) / 1e9, messages: n, bytes: n * bytes, note: `receiver ${perMiB.toFixed(0)} page faults/MiB` }
  })
}

/**
 * What a stream's receiver got, for large payloads (payload(): byte i is
 * i & 0xff): each message must be one Buffer of the payload's length whose
 * first, middle and last bytes are right, and the lengths must add up to
 * what was sent, so that no system is timed for less than the whole
 * transfer. A few loads per message: nothing next to a MiB of copying.
 */
class PayloadCheck {
  private received = 0
  private bad = 0
  private first = ''

  constructor(private readonly bytes: number) {}

  reset(): void {
    this.received = 0
    this.bad = 0
    this.first = ''
  }

  add(v: unknown): void {
    const b = this.bytes
    const mid = b >>> 1
    if (!Buffer.isBuffer(v)) return this.wrong(`a ${v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v}, not a Buffer`)
    this.received += v.length
    if (v.length !== b) return this.wrong(`${v.length} bytes, not ${b}`)
    if (v[0] !== 0 || v[mid] !== (mid & 0xff) || v[b - 1] !== ((b - 1) & 0xff)) this.wrong('bytes differ from the payload sent')
  }

  private wrong(what: string): void {
    if (this.bad++ === 0) this.first = what
  }

  /** Throws (the cell fails) unless every one of n messages was whole. */
  verify(n: number): void {
    if (this.bad > 0) throw new Error(`the receiver got ${this.bad} wrong message${this.bad === 1 ? '' : 's'} of ${n} (first: ${this.first})`)
    if (this.received !== n * this.bytes) throw new Error(`the receiver got ${this.received} bytes, not ${n * this.bytes} (${n} x ${this.bytes})`)
  }
}

/**
 * Fan-out throughput. Each run's note gives the CPU each process spent per
 * message published (process.cpuUsage, every thread): the publisher (this
 * process, from the first publish until the last subscriber has it) and the
 * subscribers' mean (each from its arm to its last message; subscriber
 * threads of the host's own process, MessagePort's, give one total). On a machine
 * with fewer cores than processes the row measures their sum
 * (docs/design.md, "Fan-out: where a message's CPU goes").
 */
async function fanout(peer: Peer, cell: Cell, workers: Workers): Promise<RunResult[]> {
  return repeat(cell, async (n) => {
    const armed = workers.all('armed')
    workers.broadcast({ op: 'arm', n })
    await armed
    const got = workers.all('got')
    const cpu = process.cpuUsage()
    const start = now()
    await Promise.race([peer.publish(n, cell.shape, workers.size), workers.failed()])
    const done = await got
    const used = process.cpuUsage(cpu)
    const ends = done.map((m) => BigInt(m.end as string))
    const end = ends.reduce((a, b) => (a > b ? a : b))
    const perMessage = (micros: number): string => ((micros * 1000) / n).toFixed(0)
    const note = done.some((m) => m.cpuMicros === null)
      ? `CPU ns/msg: ${perMessage(used.user + used.system)} (one process: the publisher and its subscriber threads together)`
      : `CPU ns/msg: publisher ${perMessage(used.user + used.system)}, subscriber ${perMessage(done.reduce((sum, m) => sum + (m.cpuMicros as number), 0) / done.length)}`
    return { seconds: Number(end - start) / 1e9, messages: n, note }
  })
}

/**
 * Publish-to-deliver latency: the host publishes one message every gapMs
 * (a fraction of a ms: it waits on setImmediate, so its event loop keeps
 * turning; 1 ms or more: it sleeps in a timer, and so do the subscribers),
 * stamping each with Number(process.hrtime.bigint()) just before the
 * publish: CLOCK_MONOTONIC in ns, the same clock in every process of the
 * host. Each subscriber records its receive time minus that stamp per
 * message and sends its samples back after the run.
 */
async function fanLatency(peer: Peer, cell: Cell, workers: Workers): Promise<RunResult[]> {
  const tick = newTick()
  const gapNs = BigInt(Math.round(cell.gapMs * 1e6))
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
  return repeat(cell, async (n) => {
    const armed = workers.all('armed')
    workers.broadcast({ op: 'arm', n, latency: true })
    await armed
    const got = workers.all('samples')
    const publishing = (async () => {
      let next = now()
      for (let i = 0; i < n; i++) {
        if (cell.gapMs >= 1) await sleep(cell.gapMs)
        else while (now() < next) await immediate()
        setTick(tick, i)
        const t = now()
        tick.ts = Number(t)
        const wait = peer.publishOne(tick)
        if (wait !== undefined) await wait
        next = t + gapNs
      }
    })()
    const [, replies] = await Promise.race([Promise.all([publishing, got]), workers.failed()])
    const subs = replies.map((m) => m.ns as number[])
    const all = new Float64Array(n * subs.length)
    const last = new Float64Array(n).fill(-Infinity)
    subs.forEach((ns, k) => {
      for (let j = 0; j < n; j++) {
        const us = ns[j]! / 1000
        all[k * n + j] = us
        if (us > last[j]!) last[j] = us
      }
    })
    all.sort()
    last.sort()
    return {
      p50: percentile(all, 0.5), p99: percentile(all, 0.99), p999: percentile(all, 0.999),
      lastP50: percentile(last, 0.5), lastP99: percentile(last, 0.99), messages: n,
    }
  })
}

async function roundTrips(peer: Peer, cell: Cell, spawn: (count: number, role: Role) => Promise<Workers>): Promise<RunResult[]> {
  let samples = new Float64Array(0)
  let i = 0
  let target = 0
  let sentAt = 0n
  let done: () => void = () => {}
  const tick = newTick()
  const ping = (): void => {
    setTick(tick, i)
    sentAt = now()
    peer.sendOne(tick)
  }
  // The pong handler records the sample and sends the next ping itself:
  // the way a latency-sensitive user writes it (no promise per round trip).
  peer.receive(() => {
    samples[i++] = Number(now() - sentAt) / 1000
    if (i === target) done()
    else if (cell.gapMs > 0) setTimeout(ping, cell.gapMs)
    else ping()
  })
  const workers = await spawn(1, 'ponger')
  return repeat(cell, async (n) => {
    samples = new Float64Array(n)
    i = 0
    target = n
    const finished = new Promise<void>((resolve) => { done = resolve })
    if (cell.gapMs > 0) setTimeout(ping, cell.gapMs)
    else ping()
    await Promise.race([finished, workers.failed()])
    samples.sort()
    return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), p999: percentile(samples, 0.999), messages: n }
  })
}

async function idle(peer: Peer, cell: Cell, workers: Workers): Promise<RunResult[]> {
  return repeat(cell, async (n) => {
    const armed = workers.all('armed')
    workers.broadcast({ op: 'arm', n, settleMs: cell.settleMs, windowMs: cell.windowMs })
    await armed
    const cpu = workers.next(0, 'cpu')
    await peer.publish(n, cell.shape, 1)
    const m = await cpu
    return { cpuPercent: m.percent as number, messages: n, note: sleeps(m.switches as number) }
  })
}

// ================================================================ the worker

async function runWorker(peer: Peer, role: Role): Promise<void> {
  const cell = cellFromEnv()
  const index = Number((workerData as { index?: number } | null)?.index ?? process.env.BENCH_INDEX ?? 0)
  if (parentPort === null) pinSelf(cell, 1 + index) // a thread cannot be pinned apart from its process this way
  const parent = parentEndpoint()
  const fail = (err: unknown): void => {
    parent.send({ op: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  }
  if (parentPort === null) process.on('disconnect', () => process.exit(0)) // the host is gone
  try {
    await peer.attach(cell, index)
  } catch (err) {
    fail(err)
    return
  }

  let count = 0
  let target = -1
  let onTarget: () => void = () => {}
  // fanlat: receive time minus publish stamp (ns) per message id; null when only counting.
  let samples: Float64Array | null = null
  const counting = (v: unknown): void => {
    if (samples !== null) samples[(v as Tick).id] = Number(now()) - (v as Tick).ts
    if (++count === target) onTarget()
  }
  if (role === 'ponger') peer.workerReceive((v) => peer.workerSendOne(v))
  else if (role !== 'sender' && role !== 'client') peer.workerReceive(counting)

  const control = (m: Control): void => {
    switch (m.op) {
      case 'go': {
        const start = now()
        peer.workerStream(m.n as number, cell.shape, m.base as number)
          .then(() => parent.send({ op: 'sent', start: start.toString() }), fail)
        break
      }
      case 'arm': {
        count = 0
        target = m.n as number
        samples = m.latency === true ? new Float64Array(target).fill(NaN) : null
        const cpu = process.cpuUsage()
        onTarget = role === 'subscriber'
          ? samples !== null
            ? () => parent.send({ op: 'samples', ns: Array.from(samples!, Math.round) })
            : () => {
              const end = now()
              const used = process.cpuUsage(cpu)
              // A worker thread's process.cpuUsage is its whole process's: no share of its own.
              parent.send({ op: 'got', end: end.toString(), cpuMicros: parentPort === null ? used.user + used.system : null })
            }
          : () => measureIdle(m.settleMs as number, m.windowMs as number).then(({ percent, switches }) => parent.send({ op: 'cpu', percent, switches }))
        parent.send({ op: 'armed' })
        break
      }
      case 'exit':
        process.exit(0)
        break
      default:
        if (role === 'client' && clientControl(peer, m, parent, fail)) break
        peer.workerControl?.(m)
    }
  }
  parent.onMessage((m) => {
    if (isControl(m)) control(m)
    else sink.fn(m, -1)
  })
  parent.send({ op: 'ready' })
}
