/**
 * One side of the bridge benchmark (../suite/bridge.ts), a process of its
 * own: `node peers/bridge.js <bridged|nats> <pub|sub> <nats url>`.
 *
 *   bridged: a private bus with its own @ipc/bridge-nats bridge (topic
 *            'bench'); pub publishes on the bus (tryPublish, `await
 *            publish()` when full), sub subscribes on the bus: the value
 *            crosses bus -> bridge -> NATS -> bridge -> bus.
 *   nats:    a plain NATS client; pub publishes msgpack on subject
 *            'plain.bench', sub subscribes to it: NATS alone.
 *
 * Both encode the same value ({id, ts, kind, px, qty}) with msgpackr. The
 * orchestrator sends commands on the IPC channel:
 *
 *   {op: 'burst', n, id}  pub: publish n values back to back (the event loop
 *                         gets a turn every 1000) and answer {t0}, the
 *                         monotonic clock before the first.
 *                         sub: answer {count, tLast} once n values of burst
 *                         `id` arrived, or none for a second (values lost:
 *                         count < n); tLast: the clock at the last.
 *   {op: 'paced', n, gapMs, id}  pub: one value every gapMs, stamped with
 *                         the clock just before it is published.
 *                         sub: answer {latencies, count} (ns, one per value) once n arrived (or lost).
 *   {op: 'exit'}              answer {stats}: the bridge's counters (bridged)
 *
 * The clock is process.hrtime.bigint() (CLOCK_MONOTONIC: one clock for every
 * process of the machine), so sub - stamp is the one-way latency.
 */
import { Bus } from '@ipc/bus'
import { bridgeNats, type NatsBridge } from '@ipc/bridge-nats'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Packr } from 'msgpackr'

interface Value { id: number; ts: number; kind: string; px: number; qty: number; burst: number }
type Command = { op: 'burst'; n: number; id: number } | { op: 'paced'; n: number; gapMs: number; id: number } | { op: 'exit' }

const [mode = 'nats', role = 'sub', url = 'nats://127.0.0.1:4222'] = process.argv.slice(2)
const TOPIC = 'bench'
/** Plain NATS's subject: not the bridge's (`ipc.t.bench`), or the bridges would import the plain runs' values too. */
const SUBJECT = 'plain.bench'
const KINDS = ['limit', 'market', 'stop']
const now = (): number => Number(process.hrtime.bigint())
const packr = new Packr({ useRecords: false })
const send = (m: unknown): void => { process.send!(m) }

let bus: Bus | null = null
let bridge: NatsBridge | null = null
let nc: NatsConnection | null = null
if (mode === 'bridged') {
  bus = await Bus.create()
  bridge = await bridgeNats(bus, { servers: url, topics: [TOPIC] })
} else {
  nc = await connect({ servers: url })
}

/** What the subscriber is waiting for. */
let want: { id: number; n: number; count: number; paced: boolean; latencies: number[]; tLast: number; seen: number; timer: NodeJS.Timeout } | null = null

/** Answers for the current burst: all n arrived, or (both paths are at-most-once) nothing more came for a second. */
function finish(): void {
  const w = want!
  want = null
  clearInterval(w.timer)
  send(w.paced ? { latencies: w.latencies, count: w.count } : { count: w.count, tLast: w.tLast })
}

function onValue(v: Value): void {
  const w = want
  if (w === null || v.burst !== w.id) return
  w.tLast = now()
  if (w.paced) w.latencies.push(w.tLast - v.ts)
  if (++w.count === w.n) finish()
}

function arm(id: number, n: number, paced: boolean): void {
  const w = { id, n, count: 0, paced, latencies: [] as number[], tLast: 0, seen: -1, timer: setInterval(() => {
    if (w.count > 0 && w.count === w.seen) finish() // lost values: answer with what came
    w.seen = w.count
  }, 1000) }
  want = w
}

if (role === 'sub') {
  if (bus !== null) bus.subscribe(TOPIC, onValue)
  else {
    nc!.subscribe(SUBJECT, { callback: (err, msg) => { if (err === null) onValue(packr.unpack(msg.data) as Value) } })
    await nc!.flush()
  }
}

function value(i: number, burst: number, ts: number): Value {
  return { id: i, ts, kind: KINDS[i % 3]!, px: 100 + (i % 1000) / 100, qty: 1 + (i % 500), burst }
}

/**
 * Publishes one value: on the bus, or to NATS. Synchronous unless the bus
 * has no room (then the promise of the publish that waits for it): an
 * `await` per value would hand the NATS client a microtask per value, and it
 * writes its buffer to the socket on each (a write per message).
 */
function publish(v: Value): Promise<unknown> | null {
  if (bus !== null) return bus.tryPublish(TOPIC, v) ? null : bus.publish(TOPIC, v)
  nc!.publish(SUBJECT, packr.pack(v))
  return null
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

async function run(c: Command): Promise<void> {
  if (c.op === 'exit') {
    const stats = bridge?.stats()
    await bridge?.close()
    await bus?.close()
    if (nc !== null) { await nc.flush(); await nc.close() }
    send({ exited: true, stats })
    process.disconnect()
    return
  }
  if (role === 'sub') {
    arm(c.id, c.n, c.op === 'paced')
    send({ armed: true })
    return
  }
  if (c.op === 'burst') {
    const t0 = now()
    for (let i = 0; i < c.n; i++) {
      const wait = publish(value(i, c.id, 0))
      if (wait !== null) await wait
      if (i % 1000 === 999) await turn() // the NATS client writes on its own turns
    }
    send({ t0 })
  } else {
    for (let i = 0; i < c.n; i++) {
      const due = Date.now() + c.gapMs
      await publish(value(i, c.id, now()))
      while (Date.now() < due) await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())))
    }
    send({ sent: c.n })
  }
}

process.on('message', (c: Command) => void run(c))
send({ ready: true })
