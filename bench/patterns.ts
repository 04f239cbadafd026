/**
 * Pub/sub and request/reply between real processes (issue 5):
 *
 *   node bench/dist/run.js patterns          (after `npx -y pnpm@10.34.9 build`)
 *
 * - rpc, 1 and 4 client processes: each client sends requests one at a
 *   time (one in flight per client) to one server process, timing each
 *   round trip; rows give aggregate round trips per second, p50 and p99.
 * - publish to 1 and 4 subscriber processes: one publisher process
 *   publishes TICK objects (awaiting every 256th publish, 'block' policy)
 *   until every subscriber has received all of them; rate = messages
 *   published per second (each delivered to every subscriber).
 *
 * The parent is the server / the publisher; clients and subscribers are
 * forked (bus.fork) from this same file with --role. Default doorbell
 * (signal), no spinning. BENCH_RPC (round trips per client, default
 * 20 000) and BENCH_PUBS (default 300 000) set the sizes.
 */
import { once } from 'node:events'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Bus } from '@ipc/bus'

export interface Row { name: string; messages: number; seconds: number; rate: number; note: string }

const TICK = { id: 1, ts: 1_700_000_000_123, kind: 'trade', px: 101.25, qty: 300 }
const RPC = Number(process.env.BENCH_RPC ?? 20_000)
const PUBS = Number(process.env.BENCH_PUBS ?? 300_000)
const WARMUP = 2000
const self = fileURLToPath(import.meta.url)

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

const exits = new WeakMap<ChildProcess, Promise<unknown>>()

async function forkAll(bus: Bus, role: string, n: number, args: string[] = []): Promise<ChildProcess[]> {
  const children = Array.from({ length: n }, () => bus.fork(self, ['--role', role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  for (const c of children) exits.set(c, once(c, 'exit'))
  await Promise.all(children.map((c) => once(c, 'message'))) // 'ready'
  return children
}

async function rpc(clients: number): Promise<Row> {
  const bus = await Bus.create({ ringBytes: '1 MiB' })
  const server = bus.serve('echo', (x: unknown) => x)
  try {
    const children = await forkAll(bus, 'client', clients, [String(RPC)])
    const results = children.map((c) => once(c, 'message') as Promise<[{ seconds: number; latencies: number[] }]>)
    for (const c of children) c.send('go')
    const done = (await Promise.all(results)).map(([r]) => r)
    await Promise.all(children.map((c) => exits.get(c)))
    const all = Float64Array.from(done.flatMap((r) => r.latencies)).sort()
    const seconds = Math.max(...done.map((r) => r.seconds))
    const total = clients * RPC
    return {
      name: `request/reply, ${clients} client process${clients > 1 ? 'es' : ''}`,
      messages: total, seconds, rate: total / seconds,
      note: `p50 ${(quantile(all, 0.5) * 1000).toFixed(1)} µs, p99 ${(quantile(all, 0.99) * 1000).toFixed(1)} µs (one in flight per client)`,
    }
  } finally {
    await server.close()
    await bus.close()
  }
}

async function publish(subscribers: number): Promise<Row> {
  const bus = await Bus.create({ ringBytes: '1 MiB' })
  try {
    const children = await forkAll(bus, 'subscriber', subscribers, [String(PUBS)])
    const finished = children.map((c) => once(c, 'message'))
    const start = performance.now()
    for (let i = 0; i < PUBS; i++) {
      TICK.id = i
      const p = bus.publish('ticks', TICK)
      if ((i & 255) === 255) await p
    }
    await Promise.all(finished)
    const seconds = (performance.now() - start) / 1000
    await Promise.all(children.map((c) => exits.get(c)))
    return {
      name: `publish to ${subscribers} subscriber process${subscribers > 1 ? 'es' : ''}`,
      messages: PUBS, seconds, rate: PUBS / seconds,
      note: `{id, ts, kind, px, qty}, 'block' policy; ${(subscribers * PUBS / seconds / 1e6).toFixed(2)} M deliveries/s in all`,
    }
  } finally {
    await bus.close()
  }
}

export async function run(): Promise<{ rows: Row[] }> {
  const rows: Row[] = []
  rows.push(await rpc(1))
  rows.push(await rpc(4))
  rows.push(await publish(1))
  rows.push(await publish(4))
  for (const r of rows) console.log(`${r.name}: ${Math.round(r.rate).toLocaleString('en')} /s  ${r.note}`)
  return { rows }
}

// ---------------------------------------------------------------- children

async function client(n: number): Promise<void> {
  const bus = await Bus.attach()
  for (let i = 0; i < WARMUP; i++) await bus.request('echo', i)
  process.send!('ready')
  await once(process, 'message')
  const latencies = new Array<number>(n)
  const start = performance.now()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await bus.request('echo', TICK)
    latencies[i] = performance.now() - t
  }
  const seconds = (performance.now() - start) / 1000
  process.send!({ seconds, latencies }, () => void bus.close().then(() => process.exit(0)))
}

async function subscriber(n: number): Promise<void> {
  const bus = await Bus.attach()
  let got = 0
  bus.subscribe('ticks', () => {
    if (++got === n) process.send!('done', () => void bus.close().then(() => process.exit(0)))
  })
  process.send!('ready')
}

const role = process.argv.indexOf('--role')
if (role >= 0 && process.argv[1] === self) {
  const [, name, count] = process.argv.slice(role)
  if (name === 'client') await client(Number(count))
  else if (name === 'subscriber') await subscriber(Number(count))
}
