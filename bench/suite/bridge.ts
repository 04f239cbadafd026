/**
 * The bridge benchmark (issue 17), `node dist/run.js --only=bridge
 * [--runs=3] [--quick]`: a value published on host A's bus reaching a
 * subscriber on host B's bus through two @ipc/bridge-nats bridges and one
 * nats-server, beside a plain NATS client publishing to a plain NATS
 * subscriber through the same server, in the same run. Each side is a
 * process of its own (../peers/bridge.ts); both encode the same value with
 * msgpackr.
 *
 * - throughput: the publisher publishes `messages` values back to back;
 *   msgs/s from its first publish to the subscriber's last receipt;
 * - latency: `paced` values, one every `gapMs`, stamped with the monotonic
 *   clock at publish; p50/p99 of the one-way latency at the subscriber.
 *
 * Each system gets a warm-up burst, then `runs` measured bursts and paced
 * runs, alternating systems run by run (a machine's drift hits both). The
 * issue's target: the bridge costs at most 20% of plain NATS throughput.
 * Writes results/bridge.json. Starts its own nats-server (Debian's
 * `nats-server`) on a free loopback port.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { startLocalNatsServer } from '@ipc/bridge-nats/local-server'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { percentile, summarize } from './stats.js'

export const BRIDGE_ID = 'bridge'

type Mode = 'bridged' | 'nats'
const LABEL: Record<Mode, string> = { bridged: 'bus A -> bridge -> NATS -> bridge -> bus B', nats: 'plain NATS client -> NATS -> plain NATS client' }
const PEER = fileURLToPath(new URL('../peers/bridge.js', import.meta.url))

export interface BridgeBenchOptions { runs: number; quick: boolean }

interface Row { mode: Mode; label: string; rates: number[]; rate: number; p50us: number; p99us: number; lost: number }

/** A peer process and the next message it sends. */
class Peer {
  private readonly inbox: unknown[] = []
  private readonly waiting: Array<(m: unknown) => void> = []
  readonly child: ChildProcess

  constructor(mode: Mode, role: 'pub' | 'sub', url: string) {
    this.child = fork(PEER, [mode, role, url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m) => {
      const w = this.waiting.shift()
      if (w !== undefined) w(m)
      else this.inbox.push(m)
    })
  }

  next<T>(timeoutMs = 120_000): Promise<T> {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift() as T)
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a bridge bench peer did not answer in time')), timeoutMs)
      this.waiting.push((m) => { clearTimeout(timer); resolve(m as T) })
    })
  }

  send(m: unknown): void {
    this.child.send(m as object)
  }
}

/** A publisher and a subscriber, and the values they lost so far (both paths are at-most-once). */
interface Pair { pub: Peer; sub: Peer; lost: number }

let burstId = 0

async function burst(p: Pair, n: number): Promise<number> {
  const id = ++burstId
  p.sub.send({ op: 'burst', n, id })
  await p.sub.next()
  const done = p.sub.next<{ count: number; tLast: number }>()
  p.pub.send({ op: 'burst', n, id })
  const { t0 } = await p.pub.next<{ t0: number }>()
  const { count, tLast } = await done
  p.lost += n - count
  return count / ((tLast - t0) / 1e9)
}

async function paced(p: Pair, n: number, gapMs: number): Promise<number[]> {
  const id = ++burstId
  p.sub.send({ op: 'paced', n, gapMs, id })
  await p.sub.next()
  const done = p.sub.next<{ latencies: number[]; count: number }>()
  p.pub.send({ op: 'paced', n, gapMs, id })
  await p.pub.next()
  const { latencies, count } = await done
  p.lost += n - count
  return latencies
}

export async function runBridgeBench(o: BridgeBenchOptions): Promise<void> {
  const messages = o.quick ? 20_000 : 200_000
  const pacedN = o.quick ? 200 : 2_000
  const gapMs = 1
  const nats = await startLocalNatsServer() // throws naming Debian's package nats-server when there is none
  const pairs = new Map<Mode, Pair>()
  try {
    for (const mode of ['bridged', 'nats'] as const) {
      const sub = new Peer(mode, 'sub', nats.url)
      await sub.next()
      const pub = new Peer(mode, 'pub', nats.url)
      await pub.next()
      pairs.set(mode, { pub, sub, lost: 0 })
    }
    const rates = new Map<Mode, number[]>([['bridged', []], ['nats', []]])
    const latencies = new Map<Mode, number[]>([['bridged', []], ['nats', []]])
    for (const [mode, p] of pairs) {
      await burst(p, Math.floor(messages / 5)) // warm-up: JIT, connections, the bridge's subscriptions
      console.log(`bridge bench: ${mode} warmed up`)
    }
    for (let run = 0; run < o.runs; run++) {
      for (const [mode, p] of pairs) {
        rates.get(mode)!.push(await burst(p, messages))
        latencies.get(mode)!.push(...await paced(p, pacedN, gapMs))
        console.log(`bridge bench: ${mode} run ${run + 1}/${o.runs}: ${(rates.get(mode)!.at(-1)! / 1e3).toFixed(0)} k msgs/s`)
      }
    }
    const rows: Row[] = [...pairs.keys()].map((mode) => {
      const l = [...latencies.get(mode)!].sort((a, b) => a - b)
      return { mode, label: LABEL[mode], rates: rates.get(mode)!, rate: summarize(rates.get(mode)!).median, p50us: percentile(l, 0.5) / 1e3, p99us: percentile(l, 0.99) / 1e3, lost: pairs.get(mode)!.lost }
    })
    const ratio = rows[0]!.rate / rows[1]!.rate
    console.log(`\nbridge (median of ${o.runs} runs; ${messages} msgs per throughput run, ${pacedN} paced at ${gapMs} ms per latency run)`)
    console.table(rows.map((r) => ({ path: r.label, 'k msgs/s': (r.rate / 1e3).toFixed(0), 'p50 µs': r.p50us.toFixed(0), 'p99 µs': r.p99us.toFixed(0), lost: r.lost })))
    console.log(`bridged / plain NATS throughput: ${(ratio * 100).toFixed(0)}% (target: at least 80%) ${ratio >= 0.8 ? 'met' : 'MISSED'}`)
    const file = new URL('../../results/bridge.json', import.meta.url)
    writeFileSync(file, JSON.stringify({
      workload: BRIDGE_ID, date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
      runs: o.runs, messages, paced: pacedN, gapMs, rows, ratio,
    }, null, 2) + '\n')
    console.log(`results written to ${fileURLToPath(file)}`)
  } finally {
    await Promise.all([...pairs.values()].flatMap((p) => [p.pub, p.sub]).map(async (peer) => {
      if (peer.child.exitCode !== null) return
      const exited = once(peer.child, 'exit')
      try { peer.send({ op: 'exit' }) } catch { peer.child.kill('SIGKILL') }
      void peer.next<{ stats?: Record<string, unknown> }>(5000).then(({ stats }) => {
        if (stats !== undefined) console.log(`bridge bench: a bridge's counters: ${JSON.stringify({ ...stats, topics: undefined, services: undefined })}`)
      }, () => {})
      const timer = setTimeout(() => peer.child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }))
    nats.child.kill('SIGTERM')
    await once(nats.child, 'exit')
  }
}
