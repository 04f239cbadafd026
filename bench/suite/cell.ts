/**
 * What the runner tells a forked host process to measure (one table cell),
 * and what the host reports back. Shared by the runner and every peer.
 */

/** The systems compared. */
export type SystemId = 'bus' | 'ipc-json' | 'ipc-advanced' | 'unix-socket' | 'message-port' | 'c-ring' | 'msgpack-encode'

/**
 * stream: `senders` worker processes send to the host, which receives.
 * fanout: the host publishes every message to `subscribers` worker processes (published msgs/s).
 * fanlat: the host publishes timestamped messages to `subscribers` workers,
 *   one every `gapMs`; each subscriber records publish-to-deliver latency.
 * rtt: the host pings one worker, which echoes; one round trip at a time.
 * idle: the host sends a short burst to one worker, which then measures its own CPU while idle.
 * reqrep: the host serves requests; `senders` client workers each send one
 *   at a time, awaiting each reply (closed loop): requests/s and latency.
 * reqidle: one client sends a burst of requests; then it and the host measure their own CPU while idle.
 */
export type Kind = 'stream' | 'fanout' | 'fanlat' | 'rtt' | 'idle' | 'reqrep' | 'reqidle'

/** object: {id, ts, kind, px, qty}; raw64 / raw64k / raw1m / raw64m: a Buffer of 64 B / 64 KiB / 1 MiB / 64 MiB. */
export type Shape = 'object' | 'raw64' | 'raw64k' | 'raw1m' | 'raw64m'

/**
 * A warm-up longer than a run (a workload's warmupRuns) goes in runs of at
 * most `messages`, and stops after the first that ends past this many ms:
 * the slow peers (child_process IPC at 0.02 M msgs/s in fan-out) would
 * otherwise warm up for minutes, long after their JIT settled.
 */
export const WARMUP_CAP_MS = 8000

export interface Cell {
  system: SystemId
  workload: string
  kind: Kind
  shape: Shape
  /** Messages per measured run (round trips for rtt, burst size for idle, requests over every client for reqrep). */
  messages: number
  /** Messages of the warm-up that precedes the measured runs (in runs of at most `messages` when longer: see WARMUP_CAP_MS). */
  warmup: number
  runs: number
  /** stream: sending workers; reqrep: client workers. */
  senders: number
  subscribers: number
  /** rtt: ms between round trips (0: back to back); fanlat: ms between publishes (fractions spin on setImmediate, >= 1 sleeps). */
  gapMs: number
  /** idle, reqidle: ms to wait after the burst before measuring, and ms measured. */
  settleMs: number
  windowMs: number
  /** Pin the host to CPU 0 and worker i to CPU (1 + i) mod cores (taskset). */
  pin: boolean
  /** @ipc/bus options for this cell. */
  bus: {
    doorbell?: 'signal' | 'pipe'
    /** A number, or 'adaptive' (spin up to 100 µs only right after a message arrived). */
    spinMicros?: number | 'adaptive'
    ringBytes?: string
    sendMany?: number
    /**
     * fanout: how the bus publisher publishes. 'try': tryPublish, `await
     * publish()` when it returns false; 'many': publishMany in batches;
     * 'await': `await publish()` each; 'auto' (default): the fastest of
     * those the bus has, timed during the warm-up run.
     */
    publish?: 'auto' | 'try' | 'many' | 'await'
    /** stream of objects: the 'up' channel is a schema channel ({id: u32, ts: f64, kind: string, px: f64, qty: u32}) on both sides. */
    schema?: boolean
    /**
     * with schema: the receiver gets one reused flyweight view (zeroCopy)
     * and reads every field of it. Raw payloads: the receiving channel's
     * zeroCopy option (default true: views of the ring; false: the default
     * receiver, a Buffer of its own per message).
     */
    zeroCopy?: boolean
  }
}

/** One measured run, as reported by a host. */
export interface RunResult {
  /** stream/fanout: first send to last receive; reqrep: first request sent to last reply received. */
  seconds?: number
  messages?: number
  bytes?: number
  /** rtt, reqrep: microseconds per round trip; fanlat: microseconds over every delivery (each subscriber's receive minus the publish). */
  p50?: number
  p99?: number
  p999?: number
  /** fanlat: microseconds until the LAST subscriber received a message (max over subscribers, per message). */
  lastP50?: number
  lastP99?: number
  /** idle: CPU time / wall time of the idle receiver, percent of one core (reqidle: the higher of server and client). */
  cpuPercent?: number
  /** Anything the procedure wants recorded (reqidle: each process's CPU). */
  note?: string
}

export type HostReport = { type: 'result'; runs: RunResult[]; note?: string } | { type: 'error'; message: string }

const PAYLOAD_BYTES: Record<Shape, number> = { object: 0, raw64: 64, raw64k: 64 * 1024, raw1m: 1024 * 1024, raw64m: 64 * 1024 * 1024 }

/** Bytes of one raw payload of `shape` (0 for objects). */
export function payloadBytes(shape: Shape): number {
  return PAYLOAD_BYTES[shape]
}

/**
 * Payloads from this size up are "large": every system's receiver checks
 * each one it gets (common.ts), and the senders of the socket and child
 * process peers write them on their own instead of batching copies.
 */
export const LARGE_PAYLOAD = 1024 * 1024
