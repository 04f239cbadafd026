/**
 * Request/reply procedures (issue 14 part 2), for peers that have
 * Peer.serve and Peer.request: the host is the server (it answers every
 * request with the request itself), `senders` client workers each send
 * {id, ts, kind, px, qty} requests one at a time, awaiting each reply
 * before sending the next (a closed loop, one in flight per client).
 *
 * reqrep: per run, n requests split over the clients; each client times
 *   every request with process.hrtime.bigint() (just before the request,
 *   just after its reply resolved) and stamps its first send and last
 *   reply. Rate: n / (last reply of any client - first send of any
 *   client); p50/p99/p99.9 over every request of every client.
 * reqidle: one client sends a burst of n requests the same way; once its
 *   last reply is in it says so, and it and the host (the server) each
 *   measure their own CPU over the same window (after settleMs). The run's
 *   value is the higher of the two (both are receivers: the server of
 *   requests, the client of replies); both are in the run's note.
 */
import type { Cell, RunResult } from '../suite/cell.js'
import { percentile } from '../suite/stats.js'
import { measureIdle, newTick, now, repeat, setTick, sleeps, split, type Tick } from './basics.js'
import type { Control, Endpoint, Workers } from './control.js'
import type { Peer, Role } from './common.js'

type Spawn = (count: number, role: Role) => Promise<Workers>

function serve(peer: Peer): void {
  if (peer.serve === undefined || peer.request === undefined) throw new Error('this peer has no request/reply (Peer.serve / Peer.request)')
  // Before any client starts: a bus client raises NoServer at once when no server is listed.
  peer.serve()
}

export async function requestReply(peer: Peer, cell: Cell, spawn: Spawn): Promise<RunResult[]> {
  serve(peer)
  const workers = await spawn(cell.senders, 'client')
  return repeat(cell, async (n) => {
    const replied = workers.all('replied')
    let base = 0
    split(n, workers.size).forEach((part, i) => {
      workers.send(i, { op: 'requests', n: part, base })
      base += part
    })
    const acks = await replied
    const start = acks.map((a) => BigInt(a.start as string)).reduce((a, b) => (a < b ? a : b))
    const end = acks.map((a) => BigInt(a.end as string)).reduce((a, b) => (a > b ? a : b))
    const us = Float64Array.from(acks.flatMap((a) => a.ns as number[]), (ns) => ns / 1000).sort()
    return { seconds: Number(end - start) / 1e9, messages: n, p50: percentile(us, 0.5), p99: percentile(us, 0.99), p999: percentile(us, 0.999) }
  })
}

export async function requestIdle(peer: Peer, cell: Cell, spawn: Spawn): Promise<RunResult[]> {
  serve(peer)
  const workers = await spawn(1, 'client')
  return repeat(cell, async (n) => {
    const quiet = workers.next(0, 'quiet')
    const cpu = workers.next(0, 'cpu')
    workers.send(0, { op: 'burst', n, settleMs: cell.settleMs, windowMs: cell.windowMs })
    await quiet
    const server = await measureIdle(cell.settleMs, cell.windowMs)
    const c = await cpu
    const client = c.percent as number
    return { cpuPercent: Math.max(server.percent, client), messages: n, note: `server ${server.percent.toFixed(3)}% (${sleeps(server.switches)}), client ${client.toFixed(3)}% (${sleeps(c.switches as number)})` }
  })
}

/**
 * n requests (ids base..base+n-1), one at a time; fills ns (per request,
 * nanoseconds) when given; resolves with the time the last reply arrived.
 * A reply that is not the request echoed is an error.
 */
async function requests(peer: Peer, n: number, base: number, ns: Float64Array | null): Promise<bigint> {
  const request = peer.request!.bind(peer)
  const req = newTick()
  let t1 = now()
  for (let i = 0; i < n; i++) {
    setTick(req, base + i)
    const t0 = now()
    const reply = (await request(req)) as Tick
    t1 = now()
    if (ns !== null) ns[i] = Number(t1 - t0)
    if (reply.id !== req.id || reply.kind !== req.kind) throw new Error(`request ${req.id}: got a reply for ${reply.id} (${reply.kind})`)
  }
  return t1
}

/** The client's side of the control protocol; false when `m` is not one of its messages. */
export function clientControl(peer: Peer, m: Control, parent: Endpoint, fail: (err: unknown) => void): boolean {
  switch (m.op) {
    case 'requests': {
      const n = m.n as number
      const ns = new Float64Array(n)
      const start = now()
      requests(peer, n, m.base as number, ns)
        .then((end) => parent.send({ op: 'replied', start: start.toString(), end: end.toString(), ns: Array.from(ns, Math.round) }), fail)
      return true
    }
    case 'burst':
      requests(peer, m.n as number, 0, null)
        .then(() => {
          parent.send({ op: 'quiet' })
          return measureIdle(m.settleMs as number, m.windowMs as number)
        })
        .then(({ percent, switches }) => parent.send({ op: 'cpu', percent, switches }), fail)
      return true
    default:
      return false
  }
}
