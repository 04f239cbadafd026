/**
 * The suite: which workloads, on which systems, with how many messages.
 * Every system of a workload gets the same counts. Quick mode divides them
 * (a smoke run of about a minute); it is not for comparing.
 */
import { WARMUP_CAP_MS, type Cell, type Kind, type Shape, type SystemId } from './cell.js'

export interface SystemInfo { id: SystemId; label: string; note: string }

export const SYSTEMS: SystemInfo[] = [
  { id: 'bus', label: '@ipc/bus', note: 'shared-memory lanes, msgpack with shared structures; trySend, `await send()` when full; on(\'message\')' },
  { id: 'unix-socket', label: 'Unix socket + msgpackr', note: 'length-prefixed msgpackr frames (sequential structures), 64 KiB batched writes, write()/drain backpressure' },
  { id: 'ipc-json', label: 'child_process IPC json', note: "process.send, serialization 'json' (bytes as base64)" },
  { id: 'ipc-advanced', label: 'child_process IPC advanced', note: "process.send, serialization 'advanced' (V8 serializer)" },
  { id: 'message-port', label: 'MessagePort (in-process)', note: 'worker_threads in ONE process: a reference, not a cross-process system' },
  { id: 'c-ring', label: 'C SPSC ring', note: 'bench/c/ring.c: mmap shared memory + fork, C11 acquire/release, publish every 64 records, spinning' },
  { id: 'msgpack-encode', label: 'msgpack encode alone', note: "the objects row's ceiling: the bus's codec (msgpackr, shared structures) encoding the same ticks in one process, nothing sent (bench/peers/encode-only.ts); no sender that encodes with it goes faster" },
]

export type Unit = 'M msgs/s' | 'MB/s' | 'µs' | '% CPU' | 'k req/s'

export interface Workload {
  id: string
  label: string
  kind: Kind
  shape: Shape
  unit: Unit
  /** Messages per run (round trips for rtt, burst size for idle and reqidle, requests over all clients for reqrep); quick mode's count. */
  messages: number
  quickMessages: number
  senders?: number
  subscribers?: number
  gapMs?: number
  /** idle, reqidle: ms between the end of the traffic and the measured window (default 300). */
  settleMs?: number
  /** Warm-up messages, as a multiple of `messages` (default: see cellFor). */
  warmupRuns?: number
  /** Runs of the fast systems (LONG_RUN_SYSTEMS) carry this many times `messages` (see STREAM_LONG_RUNS). */
  longRuns?: number
  systems: SystemId[]
  /** Per-system cell tweaks (bus options). */
  bus?: Cell['bus']
  note?: string
}

const NODE_SYSTEMS: SystemId[] = ['bus', 'unix-socket', 'ipc-json', 'ipc-advanced', 'message-port']
/** Spinning for the whole run: the receiver never parks (1 s is the option's maximum; pings come every few µs). */
const SPIN = 1_000_000
/** Request/reply: the bus and the Unix socket peers (the others have no Peer.serve / Peer.request). */
const RPC_SYSTEMS: SystemId[] = ['bus', 'unix-socket']
const RPC_NOTE = 'closed loop: each client process sends a {id, ts, kind, px, qty} request and awaits the reply (the request echoed) before the next; latency per request in the client (process.hrtime.bigint()), req/s over all clients from the first request to the last reply; bus: `bus.serve(\'svc\', (req) => req)` in the host, `await bus.request(\'svc\', req)` in the clients (default request options: 30 s timeout); Unix socket: the host accepts one connection per client, frames [u32 length][u32 request id][msgpackr body] (sequential structures per connection), each request one write(), the replies to one read one write(), matched to their request by id'
const SCHEMA = { schema: true } as const
/**
 * Fan-out runs are short (250 000 messages, ~0.2 s) and k + 1 processes
 * warm up at once on two CPUs: with a fifth of a run as warm-up, both the
 * bus and the socket still got faster run after run (bus 1.27, 1.55, 1.70,
 * 1.78, 2.27 M msgs/s; socket 0.80, 0.92, 0.95, 1.00, 1.07), so the median
 * measured the JIT's progress. Every system gets this many runs first.
 */
const FANOUT_WARMUP_RUNS = 4
const FANOUT_WARMUP_NOTE = `every system warms up with ${FANOUT_WARMUP_RUNS} runs' worth of messages first, stopping after the run that ends past ${WARMUP_CAP_MS / 1000} s (the child_process and MessagePort peers stop after one) (with a fifth of a run, both the bus and the socket still got faster from run to run: the median measured the JIT's progress)`
/**
 * Fan-out rows size the topic as the README's "Sizing for fan-out" tells
 * users to: with more processes than CPUs, a subscriber descheduled for a
 * few ms fills a 1 MiB ring and stalls the publisher. Measured with one
 * harness, alternating, same sitting: 4 subscribers 2.23 / 2.23 M msgs/s
 * with 1 MiB, 2.45 / 2.56 with 4 MiB; 8 subscribers 1.23 / 1.28 against
 * 1.46 / 1.45.
 */
const FANOUT_RING = '4 MiB'
const FANOUT_RING_NOTE = `bus: the host declares the topic with \`bus.topic('fan', { ringBytes: '${FANOUT_RING}' })\` before the workers subscribe (README, "Sizing for fan-out")`
/**
 * Object and 64-byte streams run 1 000 000 messages (0.1-0.3 s for the bus
 * and the socket): with a fifth of a run as warm-up, both still got faster
 * from run to run in full runs (bus objects 3.90, 4.60, 5.01 M msgs/s,
 * socket 2.63, 2.72, 3.18; socket raw64 4.21, 5.97, 7.48), so the median
 * measured the JIT's progress, as in fan-out. Every system gets this many
 * runs first (the slow peers stop at WARMUP_CAP_MS).
 */
const STREAM_WARMUP_RUNS = 3
/**
 * A run of 1 000 000 messages lasts 0.05-0.3 s on the bus, the socket and
 * the C ring: one 20 ms stall of this VM (a GC, a host preemption) moved a
 * run by 10-20 %, and the three runs of one cell spread as widely (bus
 * schema 10.0, 11.8, 12.1 M msgs/s; socket objects 2.07, 3.77, 3.33). Their
 * runs are this many times longer (0.3-1.5 s); the slow peers (0.2-0.4 M
 * msgs/s) keep 1 000 000, which already takes them seconds.
 */
const STREAM_LONG_RUNS = 5
const LONG_RUN_SYSTEMS: ReadonlySet<SystemId> = new Set(['bus', 'unix-socket', 'c-ring', 'msgpack-encode'])
const STREAM_WARMUP_NOTE = `every system warms up with ${STREAM_WARMUP_RUNS} runs' worth of messages per sender first, stopping after the run that ends past ${WARMUP_CAP_MS / 1000} s (with a fifth of a run, both the bus and the socket still got faster from run to run); the bus, the Unix socket, the C ring and msgpack encode alone run ${STREAM_LONG_RUNS} times as many messages per run as the row says (a run of theirs lasted 0.05-0.3 s, and one stall of the VM moved it by 10-20 %)`
const stream = (note?: string): { warmupRuns: number; longRuns: number; note: string } => ({ warmupRuns: STREAM_WARMUP_RUNS, longRuns: STREAM_LONG_RUNS, note: note === undefined ? STREAM_WARMUP_NOTE : `${note}; ${STREAM_WARMUP_NOTE}` })
/** Fan-out runs of the bus and the socket last 0.1-0.4 s at 250 000 messages: 4x as many (as STREAM_LONG_RUNS, for the same reason). */
const FANOUT_LONG_RUNS = 4
const FANOUT_LONG_NOTE = `the bus and the Unix socket publish ${FANOUT_LONG_RUNS} times as many messages per run as the row says (their runs lasted 0.1-0.4 s)`
/** Round trips warm up longer (docs/design.md, "Idle strategy"): the hot one's tail, the idle one's wake path. */
const RTT_WARMUP_RUNS = 3
const IDLE_WARMUP_NOTE = `every system warms up with ${RTT_WARMUP_RUNS} runs' worth of round trips first (stopping after the run that ends past ${WARMUP_CAP_MS / 1000} s): the wake path's functions run once per round trip, so a process pair reaches steady state only after thousands of them (bus, one pair, 1 000 round trips per round: p50 101, 88, 49, 41, 47, 38 µs)`
/** Issue 16's large messages: the bus, the Unix socket and child_process IPC advanced (JSON would be base64 text). */
const LARGE_SYSTEMS: SystemId[] = ['bus', 'unix-socket', 'ipc-advanced']
const LARGE_NOTE = "one sender sends the same Buffer (byte i = i & 0xff) n times; every receiver gets each message as one Buffer of its own and checks its length and its first, middle and last bytes, and the run fails unless the lengths add up to n x the size; bus: default options (1 MiB ring, so each message travels as fragments of a 128 KiB record, reassembled into a new Buffer), `trySendBytes`, `await sendBytes()` when full, on('message') without zeroCopy; Unix socket: each message written as its length word plus the payload, uncopied (one writev), write()/drain backpressure, the receiver collects a frame of 256 KiB or more that goes on past its read chunk into a new Buffer of the frame's length (one copy); child_process IPC advanced: `process.send(buffer, cb)`, the sender waits for the callback of the oldest message once 16 MiB (or 2 messages) are unwritten"
const LARGE_VIEW_NOTE = "bus only: the row above with a zeroCopy receiving channel: the reassembled message is lent to the listener for the call, and its memory may take the lane's next large message (no fresh pages per message); the socket has no such receiver here (its row's receiver gets a new Buffer per message)"
const FANLAT_NOTE = 'publish-to-deliver latency: Number(process.hrtime.bigint()) (CLOCK_MONOTONIC, one clock for every process) stamped just before publishing, minus the same clock at each subscriber\'s handler; p50/p99/p99.9 over every delivery (messages x subscribers), "last" rows: until the last subscriber has it'

export const WORKLOADS: Workload[] = [
  { id: 'objects', label: 'objects {id, ts, kind, px, qty}, 1 → 1', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: [...NODE_SYSTEMS, 'msgpack-encode'], ...stream() },
  { id: 'objects-many', label: 'objects, sendMany(64) batches', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: ['bus'], bus: { sendMany: 64 }, ...stream('bus only: the batched send API') },
  { id: 'objects-schema', label: 'objects, bus schema channel, 1 → 1', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: ['bus', 'unix-socket'], bus: SCHEMA, ...stream("bus: `bus.channel('up', { schema: { id: 'u32', ts: 'f64', kind: 'string', px: 'f64', qty: 'u32' } })` on both sides, trySend / `await send()`, on('message') gets decoded objects; Unix socket: the same batched msgpackr path as the objects row (issue 14 part 3 wants the bus ≥ 4x it)") },
  { id: 'objects-schema-view', label: 'objects, bus schema channel, zeroCopy view, 1 → 1', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: ['bus'], bus: { ...SCHEMA, zeroCopy: true }, ...stream('bus only: the schema channel with zeroCopy: the listener gets one reused flyweight view and reads every field of it (the string too), as a receiver that uses the message would') },
  { id: 'raw64', label: 'raw 64-byte payloads, 1 → 1', kind: 'stream', shape: 'raw64', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: [...NODE_SYSTEMS, 'c-ring'], ...stream() },
  { id: 'bytes64k', label: '64 KiB messages, 1 → 1', kind: 'stream', shape: 'raw64k', unit: 'MB/s', messages: 10_000, quickMessages: 1_000, senders: 1, systems: NODE_SYSTEMS, bus: { ringBytes: '4 MiB' }, note: 'bus: ringBytes 4 MiB' },
  // Issue 16: messages larger than a lane's record, with default bus options (1 MiB ring: 128 KiB records, so fragments).
  { id: 'bytes1m', label: '1 MiB messages, 1 → 1', kind: 'stream', shape: 'raw1m', unit: 'MB/s', messages: 500, quickMessages: 50, senders: 1, systems: LARGE_SYSTEMS, bus: { zeroCopy: false }, note: LARGE_NOTE },
  { id: 'bytes1m-view', label: '1 MiB messages, bus zeroCopy receiver, 1 → 1', kind: 'stream', shape: 'raw1m', unit: 'MB/s', messages: 500, quickMessages: 50, senders: 1, systems: ['bus'], bus: { zeroCopy: true }, note: LARGE_VIEW_NOTE },
  { id: 'bytes64m', label: '64 MiB messages, 1 → 1', kind: 'stream', shape: 'raw64m', unit: 'MB/s', messages: 8, quickMessages: 2, senders: 1, systems: LARGE_SYSTEMS, bus: { zeroCopy: false }, note: LARGE_NOTE },
  { id: 'bytes64m-view', label: '64 MiB messages, bus zeroCopy receiver, 1 → 1', kind: 'stream', shape: 'raw64m', unit: 'MB/s', messages: 8, quickMessages: 2, senders: 1, systems: ['bus'], bus: { zeroCopy: true }, note: LARGE_VIEW_NOTE },
  ...[1, 4, 8].map((k): Workload => ({
    id: `fanout${k}`, label: `fan-out to ${k} subscriber${k === 1 ? '' : 's'} (messages published/s)`, kind: 'fanout', shape: 'object', unit: 'M msgs/s',
    messages: 250_000, quickMessages: 25_000, subscribers: k, systems: NODE_SYSTEMS, bus: { ringBytes: FANOUT_RING }, warmupRuns: FANOUT_WARMUP_RUNS, longRuns: FANOUT_LONG_RUNS, note: `${FANOUT_RING_NOTE}; ${FANOUT_WARMUP_NOTE}; ${FANOUT_LONG_NOTE}`,
  })),
  ...[4, 8].map((k): Workload => ({
    id: `fanout${k}-schema`, label: `fan-out to ${k} subscribers, bus schema topic (messages published/s)`, kind: 'fanout', shape: 'object', unit: 'M msgs/s',
    messages: 250_000, quickMessages: 25_000, subscribers: k, systems: ['bus', 'unix-socket'], bus: { ...SCHEMA, ringBytes: FANOUT_RING }, warmupRuns: FANOUT_WARMUP_RUNS, longRuns: FANOUT_LONG_RUNS,
    note: `bus: the publisher declares \`bus.topic('fan', { schema: { id: 'u32', ts: 'f64', kind: 'string', px: 'f64', qty: 'u32' } })\` before its ${k} workers subscribe (policy 'block', no schema option: they decode with the stored one into objects), ringBytes ${FANOUT_RING}; Unix socket: the same peer as the fanout${k} row (msgpackr); ${FANOUT_WARMUP_NOTE}; ${FANOUT_LONG_NOTE}`,
  })),
  { id: 'fanout-lat4', label: 'fan-out latency to 4 subscribers, steady stream (a message every 20 µs)', kind: 'fanlat', shape: 'object', unit: 'µs', messages: 20_000, quickMessages: 2_000, subscribers: 4, gapMs: 0.02, systems: NODE_SYSTEMS, note: `${FANLAT_NOTE}; bus: default options (spinMicros 0: subscribers park between messages when idle, as the others sleep in epoll)` },
  { id: 'fanout-lat4-idle', label: 'fan-out latency to 4 subscribers from idle (a message every 2 ms)', kind: 'fanlat', shape: 'object', unit: 'µs', messages: 1_000, quickMessages: 100, subscribers: 4, gapMs: 2, systems: NODE_SYSTEMS, bus: { spinMicros: 0 }, note: 'subscribers parked between messages; bus: spinMicros 0, signal doorbell (the defaults)' },
  { id: 'senders1', label: '1 sender → 1 receiver (objects)', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 1, systems: NODE_SYSTEMS, ...stream() },
  { id: 'senders2', label: '2 senders → 1 receiver (aggregate)', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 2, systems: NODE_SYSTEMS, ...stream() },
  { id: 'senders4', label: '4 senders → 1 receiver (aggregate)', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 4, systems: NODE_SYSTEMS, ...stream() },
  { id: 'senders8', label: '8 senders → 1 receiver (aggregate)', kind: 'stream', shape: 'object', unit: 'M msgs/s', messages: 1_000_000, quickMessages: 100_000, senders: 8, systems: NODE_SYSTEMS, ...stream() },
  { id: 'rtt-hot', label: 'round trip, hot: bus & C spinning, others back to back', kind: 'rtt', shape: 'object', unit: 'µs', messages: 20_000, quickMessages: 2_000, systems: [...NODE_SYSTEMS, 'c-ring'], bus: { spinMicros: SPIN }, warmupRuns: RTT_WARMUP_RUNS, note: `bus: spinMicros ${SPIN} on both sides; the others wait in epoll (they cannot spin); every system warms up with ${RTT_WARMUP_RUNS} runs' worth of round trips first (a tail percentile of the first ~60 000 round trips of a Node process pair measures its JIT settling, not the transport: p99.9 641 µs in the 2nd 20 000, 36 µs in the 5th)` },
  { id: 'rtt-idle', label: 'round trip from idle (1 ms between pings); bus: signal doorbell', kind: 'rtt', shape: 'object', unit: 'µs', messages: 2_000, quickMessages: 200, gapMs: 1, systems: NODE_SYSTEMS, bus: { doorbell: 'signal', spinMicros: 0 }, warmupRuns: RTT_WARMUP_RUNS, note: IDLE_WARMUP_NOTE },
  { id: 'rtt-idle-pipe', label: 'round trip from idle; bus: pipe doorbell', kind: 'rtt', shape: 'object', unit: 'µs', messages: 2_000, quickMessages: 200, gapMs: 1, systems: ['bus'], bus: { doorbell: 'pipe', spinMicros: 0 }, warmupRuns: RTT_WARMUP_RUNS, note: IDLE_WARMUP_NOTE },
  ...[1, 4].flatMap((k): Workload[] => {
    const base = { kind: 'reqrep', shape: 'object', unit: 'k req/s', messages: 20_000 * k, quickMessages: 2_000 * k, senders: k } as const
    const clients = `${k} client process${k === 1 ? '' : 'es'}`
    return [
      { ...base, id: `reqrep${k}`, label: `request/reply back to back, ${clients}`, systems: RPC_SYSTEMS, note: k === 1 ? RPC_NOTE : 'as with 1 client, each client process its own closed loop against the one server' },
      { ...base, id: `reqrep${k}-adaptive`, label: `request/reply back to back, ${clients}; bus: spinMicros 'adaptive'`, systems: ['bus'], bus: { spinMicros: 'adaptive' }, note: "bus only, spinMicros 'adaptive' in every process: a receiver spins up to 100 µs only right after a message arrived, then parks" },
    ]
  }),
  { id: 'idle-cpu', label: 'idle receiver CPU (after a 1000-message burst)', kind: 'idle', shape: 'object', unit: '% CPU', messages: 1_000, quickMessages: 1_000, systems: NODE_SYSTEMS, note: 'process.cpuUsage of the receiving process over the window, percent of one core; the one run near 1% in each column is V8\'s one-off memory-reducer GC (Mark-Compact (reduce), ~8 s after start, seen with --trace-gc), not polling; the note of each run (results JSON, progress line) counts the sleeps of the process in the window (voluntary context switches: 1 is the own wake of the measuring timer, which on this VM costs 0.3-3 ms of CPU, 0.015-0.15 % of the window)' },
  { id: 'idle-cpu-reqrep', label: "idle CPU after request/reply traffic; bus: spinMicros 'adaptive'", kind: 'reqidle', shape: 'object', unit: '% CPU', messages: 2_000, quickMessages: 2_000, senders: 1, settleMs: 0, systems: RPC_SYSTEMS, bus: { spinMicros: 'adaptive' }, note: "one client sends 2,000 requests back to back to the host's server; from the moment its last reply is in (no settling time), the client and the server each measure their own process.cpuUsage over the window; the higher of the two, percent of one core (issue 14 part 2: ≤ 0.1% with 'adaptive'); each run's note gives both and each process's sleeps in the window (1: only the measuring timer's wake)" },
  { id: 'idle-cpu-reqrep-spin0', label: 'idle CPU after request/reply traffic; bus: default options (spinMicros 0)', kind: 'reqidle', shape: 'object', unit: '% CPU', messages: 2_000, quickMessages: 2_000, senders: 1, settleMs: 0, systems: ['bus'], note: "bus only, the same measurement with the default options: what 'adaptive' adds, if anything" },
]

export interface SuiteOptions {
  quick: boolean
  runs: number
  pin: boolean
  only: string[] | null
  systems: SystemId[] | null
}

export function cellFor(w: Workload, system: SystemId, o: SuiteOptions): Cell {
  const messages = (o.quick ? w.quickMessages : w.messages) * (w.longRuns !== undefined && LONG_RUN_SYSTEMS.has(system) ? w.longRuns : 1)
  return {
    system,
    workload: w.id,
    kind: w.kind,
    shape: w.shape,
    messages,
    // Warm-up is per process: each of k senders sends as many messages as a
    // lone sender does (messages / 5), so that every process's JIT reaches
    // steady state before the measured runs, whatever the sender count.
    // Request/reply counts grow with the clients already: messages / 5 over all of them.
    warmup: w.warmupRuns !== undefined ? w.warmupRuns * messages * (w.kind === 'stream' ? (w.senders ?? 1) : 1) : w.kind === 'idle' || w.kind === 'reqidle' ? messages : Math.max(1, Math.floor(messages / (w.kind === 'rtt' || w.kind === 'fanlat' ? 10 : 5))) * (w.kind === 'stream' ? (w.senders ?? 1) : 1),
    runs: o.runs,
    senders: w.senders ?? 1,
    subscribers: w.subscribers ?? 4,
    gapMs: w.gapMs ?? 0,
    settleMs: w.settleMs ?? 300,
    windowMs: o.quick ? 500 : 2000,
    pin: o.pin,
    bus: system === 'bus' ? (w.bus ?? {}) : {},
  }
}
