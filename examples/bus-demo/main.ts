/**
 * The bus demo (`pnpm demo`): a parent forks workers and streams orders to
 * them while they stream fills back, then measures round-trip latency with
 * a spinning receiver and with each doorbell, beside child_process IPC
 * (JSON over a socketpair) measured in the same run.
 *
 *   node examples/dist/bus-demo/main.js [--orders 500000] [--workers 2] [--pings 2000]
 *
 * Numbers depend on the machine; on a 2-vCPU VM, a sleeping process is woken
 * in ~20-60 µs whatever the mechanism, so doorbell round trips land near a
 * Unix socket's, and only a spinning receiver gets near shared memory's ~1 µs.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Bus, type BusOptions } from '@ipc/bus'

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '500000' },
    workers: { type: 'string', default: '2' },
    pings: { type: 'string', default: '2000' },
  },
})
const ORDERS = Number(args.orders)
const WORKERS = Number(args.workers)
const PINGS = Number(args.pings)
const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url))
const KINDS = ['limit', 'market', 'stop']

function order(id: number) {
  return { id, ts: 1732147200000 + id, kind: KINDS[id % 3]!, px: 100 + (id % 1000) / 100, qty: 1 + (id % 500) }
}

function fmtRate(n: number, ns: bigint): string {
  const perSec = (n * 1e9) / Number(ns)
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(2)} M/s` : `${(perSec / 1e3).toFixed(0)} k/s`
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const rows: Array<[string, string, string]> = []

/** Waits until a worker receives on each channel, so that start-up is not timed. */
async function receiversReady(channels: Array<{ receiverPid: number | null }>): Promise<void> {
  while (channels.some((c) => c.receiverPid === null)) await new Promise((r) => setTimeout(r, 5))
}

/** One way: ORDERS orders to one worker that counts them. */
async function oneWayOverBus(): Promise<bigint> {
  await using bus = await Bus.create({ ringBytes: '1 MiB' })
  const done = new Promise((resolve) => bus.channel('done').once('message', resolve))
  const child = bus.fork(workerPath, ['sink', String(ORDERS)])
  const orders = bus.channel<ReturnType<typeof order>>('orders:0')
  await receiversReady([orders])
  const t0 = process.hrtime.bigint()
  for (let id = 0; id < ORDERS; id++) {
    const o = order(id)
    if (!orders.trySend(o)) await orders.send(o) // full: wait for room (backpressure)
  }
  await done
  const elapsed = process.hrtime.bigint() - t0
  await once(child, 'exit')
  return elapsed
}

/** One way over process.send, one object per message or batched. */
async function oneWayOverIpc(batch: number): Promise<bigint> {
  const child = fork(workerPath, ['ipc-sink', String(ORDERS)], { serialization: 'json' })
  await once(child, 'spawn')
  await new Promise((r) => setTimeout(r, 100)) // let it load, as the bus run waits for its receiver
  const done = once(child, 'message')
  const t0 = process.hrtime.bigint()
  let pending: ReturnType<typeof order>[] = []
  for (let id = 0; id < ORDERS; id++) {
    const o = order(id)
    let ok = true
    if (batch === 1) ok = child.send(o)
    else {
      pending.push(o)
      if (pending.length === batch || id === ORDERS - 1) { ok = child.send(pending); pending = [] }
    }
    if (!ok) await new Promise((r) => setImmediate(r)) // respect the channel's backlog
  }
  await done
  const elapsed = process.hrtime.bigint() - t0
  child.send('bye')
  await once(child, 'exit')
  return elapsed
}

/** Orders out to WORKERS workers, fills back, all at once. Returns the elapsed ns. */
async function streamOverBus(): Promise<bigint> {
  await using bus = await Bus.create({ ringBytes: '1 MiB' })
  const fills = bus.channel<{ id: number; qty: number }>('fills')
  let received = 0
  let checksum = 0
  const done = new Promise<void>((resolve) => fills.on('message', (f) => {
    checksum += f.qty
    if (++received === ORDERS) resolve()
  }))
  const children = Array.from({ length: WORKERS }, (_, i) => bus.fork(workerPath, ['stream', String(i)]))
  const lanes = children.map((_, i) => bus.channel<ReturnType<typeof order> | 'bye'>(`orders:${i}`))
  await receiversReady(lanes)
  const t0 = process.hrtime.bigint()
  for (let id = 0; id < ORDERS; id++) {
    const lane = lanes[id % WORKERS]!
    const o = order(id)
    if (!lane.trySend(o)) await lane.send(o) // full: wait for room (backpressure)
  }
  await done
  const elapsed = process.hrtime.bigint() - t0
  let expected = 0
  for (let id = 0; id < ORDERS; id++) expected += 1 + (id % 500)
  if (checksum !== expected) throw new Error(`fills do not add up: ${checksum} != ${expected}`)
  for (const lane of lanes) await lane.send('bye')
  await Promise.all(children.map((c) => once(c, 'exit')))
  return elapsed
}

async function streamOverIpc(): Promise<bigint> {
  const children = Array.from({ length: WORKERS }, () => fork(workerPath, ['ipc'], { serialization: 'json' }))
  await new Promise((r) => setTimeout(r, 150)) // let them load, as the bus run waits for its receivers
  let received = 0
  const done = new Promise<void>((resolve) => {
    for (const c of children) c.on('message', () => { if (++received === ORDERS) resolve() })
  })
  const t0 = process.hrtime.bigint()
  for (let id = 0; id < ORDERS; id++) {
    if (!children[id % WORKERS]!.send(order(id))) await new Promise((r) => setImmediate(r)) // respect the backlog
  }
  await done
  const elapsed = process.hrtime.bigint() - t0
  for (const c of children) c.send('bye')
  await Promise.all(children.map((c) => once(c, 'exit')))
  return elapsed
}

async function roundTripsOverBus(label: string, options: BusOptions, idleMs: number): Promise<void> {
  await using bus = await Bus.create(options)
  const pong = bus.channel<number>('pong')
  const ping = bus.channel<number | 'bye'>('ping')
  const child = bus.fork(workerPath, ['echo'])
  const rtts: number[] = []
  let resolveOne: (() => void) | null = null
  pong.on('message', () => resolveOne?.())
  for (let i = -100; i < PINGS; i++) {
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs)) // let both sides park
    const t0 = process.hrtime.bigint()
    const back = new Promise<void>((r) => { resolveOne = r })
    ping.trySend(i)
    await back
    if (i >= 0) rtts.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  await ping.send('bye')
  await once(child, 'exit')
  rtts.sort((a, b) => a - b)
  rows.push([`round trip, ${label}`, `p50 ${percentile(rtts, 50).toFixed(1)} µs`, `p99 ${percentile(rtts, 99).toFixed(1)} µs`])
}

async function roundTripsOverIpc(idleMs: number): Promise<void> {
  const child = fork(workerPath, ['ipc'], { serialization: 'json' })
  const rtts: number[] = []
  for (let i = -100; i < PINGS; i++) {
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs))
    const t0 = process.hrtime.bigint()
    child.send({ ping: i })
    await once(child, 'message')
    if (i >= 0) rtts.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  child.send('bye')
  await once(child, 'exit')
  rtts.sort((a, b) => a - b)
  rows.push([`round trip, child_process IPC${idleMs > 0 ? ' from idle' : ''}`, `p50 ${percentile(rtts, 50).toFixed(1)} µs`, `p99 ${percentile(rtts, 99).toFixed(1)} µs`])
}

console.log(`@ipc/bus demo: ${ORDERS.toLocaleString('en')} orders {id, ts, kind, px, qty} per stream, then ${PINGS} pings per mode\n`)
const oneBus = await oneWayOverBus()
rows.push(['one way to 1 worker, @ipc/bus', fmtRate(ORDERS, oneBus), `${(Number(oneBus) / 1e6).toFixed(0)} ms`])
const oneIpc = await oneWayOverIpc(1)
rows.push(['one way to 1 worker, child_process IPC (json)', fmtRate(ORDERS, oneIpc), `${(Number(oneIpc) / 1e6).toFixed(0)} ms`])
const oneIpcBatched = await oneWayOverIpc(100)
rows.push(['one way to 1 worker, child_process IPC (json, 100 per send)', fmtRate(ORDERS, oneIpcBatched), `${(Number(oneIpcBatched) / 1e6).toFixed(0)} ms`])
rows.push(['  bus vs IPC json / vs IPC json batched', `${(Number(oneIpc) / Number(oneBus)).toFixed(1)}x`, `${(Number(oneIpcBatched) / Number(oneBus)).toFixed(1)}x`])
const busNs = await streamOverBus()
rows.push([`orders out to ${WORKERS} workers + fills back, @ipc/bus`, fmtRate(ORDERS, busNs), `${(Number(busNs) / 1e6).toFixed(0)} ms`])
const ipcNs = await streamOverIpc()
rows.push([`orders out to ${WORKERS} workers + fills back, child_process IPC (json)`, fmtRate(ORDERS, ipcNs), `${(Number(ipcNs) / 1e6).toFixed(0)} ms`])
rows.push(['  bus vs IPC json', `${(Number(ipcNs) / Number(busNs)).toFixed(1)}x`, ''])
await roundTripsOverBus('spinning receivers (spinMicros 200000)', { spinMicros: 200_000 }, 0)
await roundTripsOverBus('signal doorbell, woken from idle', { doorbell: 'signal' }, 2)
await roundTripsOverBus('pipe doorbell, woken from idle', { doorbell: 'pipe' }, 2)
await roundTripsOverIpc(2)

const width = Math.max(...rows.map((r) => r[0].length))
for (const [what, a, b] of rows) console.log(`  ${what.padEnd(width)}  ${a.padStart(12)}  ${b.padStart(12)}`)
