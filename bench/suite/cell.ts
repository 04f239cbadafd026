/**
 * What the runner tells a forked host process to measure (one table cell),
 * and what the host reports back. Shared by the runner and every peer.
 */

/** The systems compared. */
export type SystemId = 'bus' | 'ipc-json' | 'ipc-advanced' | 'unix-socket' | 'message-port' | 'c-ring'

/**
 * stream: `senders` worker processes send to the host, which receives.
 * fanout: the host publishes every message to `subscribers` worker processes (published msgs/s).
 * fanlat: the host publishes timestamped messages to `subscribers` workers,
 *   one every `gapMs`; each subscriber records publish-to-deliver latency.
 * rtt: the host pings one worker, which echoes; one round trip at a time.
 * idle: the host sends a short burst to one worker, which then measures its own CPU while idle.
 */
export type Kind = 'stream' | 'fanout' | 'fanlat' | 'rtt' | 'idle'

/** object: {id, ts, kind, px, qty}; raw64 / raw64k: a Buffer of 64 B / 64 KiB. */
export type Shape = 'object' | 'raw64' | 'raw64k'

export interface Cell {
  system: SystemId
  workload: string
  kind: Kind
  shape: Shape
  /** Messages per measured run (round trips for rtt, burst size for idle). */
  messages: number
  /** Messages of the warm-up run that precedes the measured runs. */
  warmup: number
  runs: number
  senders: number
  subscribers: number
  /** rtt: ms between round trips (0: back to back); fanlat: ms between publishes (fractions spin on setImmediate, >= 1 sleeps). */
  gapMs: number
  /** idle: ms to wait after the burst before measuring, and ms measured. */
  settleMs: number
  windowMs: number
  /** Pin the host to CPU 0 and worker i to CPU (1 + i) mod cores (taskset). */
  pin: boolean
  /** @ipc/bus options for this cell. */
  bus: {
    doorbell?: 'signal' | 'pipe'
    spinMicros?: number
    ringBytes?: string
    sendMany?: number
    /**
     * fanout: how the bus publisher publishes. 'try': tryPublish, `await
     * publish()` when it returns false; 'many': publishMany in batches;
     * 'await': `await publish()` each; 'auto' (default): the fastest of
     * those the bus has, timed during the warm-up run.
     */
    publish?: 'auto' | 'try' | 'many' | 'await'
  }
}

/** One measured run, as reported by a host. */
export interface RunResult {
  /** stream/fanout: first send to last receive. */
  seconds?: number
  messages?: number
  bytes?: number
  /** rtt: microseconds; fanlat: microseconds over every delivery (each subscriber's receive minus the publish). */
  p50?: number
  p99?: number
  p999?: number
  /** fanlat: microseconds until the LAST subscriber received a message (max over subscribers, per message). */
  lastP50?: number
  lastP99?: number
  /** idle: CPU time / wall time of the idle receiver, percent of one core. */
  cpuPercent?: number
  /** Anything the peer wants recorded (e.g. which fan-out API it used). */
  note?: string
}

export type HostReport = { type: 'result'; runs: RunResult[]; note?: string } | { type: 'error'; message: string }

export function payloadBytes(shape: Shape): number {
  return shape === 'raw64' ? 64 : shape === 'raw64k' ? 65536 : 0
}
