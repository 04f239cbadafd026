/**
 * What the measurement procedures (common.ts, reqrep.ts) and the peers
 * share: the messages, the clock, the run loop and the idle-CPU window.
 * Re-exported by common.ts, which peers import.
 */
import { WARMUP_CAP_MS, payloadBytes, type Cell, type RunResult, type Shape } from '../suite/cell.js'

// ================================================================ messages

export interface Tick { id: number; ts: number; kind: string; px: number; qty: number }

/** The schema-channel declaration of a Tick (issue 14 part 3), the same in every process. */
export const TICK_SCHEMA = { id: 'u32', ts: 'f64', kind: 'string', px: 'f64', qty: 'u32' } as const

const TS0 = 1_700_000_000_000
const KINDS = ['trade', 'quote'] as const

export function newTick(): Tick {
  return { id: 0, ts: TS0, kind: 'trade', px: 100, qty: 1 }
}

/** The i-th message of a stream (the same for every system). */
export function setTick(t: Tick, i: number): Tick {
  t.id = i
  t.ts = TS0 + i
  t.kind = KINDS[i & 1]!
  t.px = 100 + (i % 64) * 0.25
  t.qty = (i * 7) % 1000
  return t
}

const payloads = new Map<Shape, Buffer>()

/**
 * The raw payload of `shape`: byte i is i & 0xff (what receivers of large
 * payloads check). Built once per process, on the first call (the warm-up
 * run's): a 64 MiB one takes a few hundred ms of first-touch page faults,
 * which must not land inside a measured run. Never changed afterwards
 * (senders may hand it to a write uncopied).
 */
export function payload(shape: Shape): Buffer {
  let bytes = payloads.get(shape)
  if (bytes === undefined) {
    bytes = Buffer.alloc(payloadBytes(shape))
    for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff
    payloads.set(shape, bytes)
  }
  return bytes
}

export const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
export const now = (): bigint => process.hrtime.bigint()

// ================================================================ runs

/** Splits n into k near-equal parts. */
export function split(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0))
}

/** Runs the warm-up (unmeasured; WARMUP_CAP_MS) and the measured runs. */
export async function repeat(cell: Cell, body: (n: number) => Promise<RunResult>): Promise<RunResult[]> {
  const started = Date.now()
  for (let left = cell.warmup; left > 0;) {
    const n = Math.min(left, Math.max(cell.messages, 1))
    await body(n)
    left -= n
    if (Date.now() - started > WARMUP_CAP_MS) break
  }
  const out: RunResult[] = []
  for (let r = 0; r < cell.runs; r++) out.push(await body(cell.messages))
  return out
}

/**
 * CPU used by this whole process (every thread) over windowMs, after
 * settleMs: percent of one core, and the process's voluntary context
 * switches in the window (its sleeps: 1 is the measuring timer's own wake,
 * so anything above it is a wake of the system's). On this VM one wake
 * after seconds asleep costs 0.3-3 ms of CPU, so with one wake per window
 * the percentage is mostly that wake; the count is the exact part.
 */
export async function measureIdle(settleMs: number, windowMs: number): Promise<{ percent: number; switches: number }> {
  await new Promise((r) => setTimeout(r, settleMs))
  const r0 = process.resourceUsage().voluntaryContextSwitches
  const c0 = process.cpuUsage()
  const t0 = now()
  await new Promise((r) => setTimeout(r, windowMs))
  const c = process.cpuUsage(c0)
  const wallMicros = Number(now() - t0) / 1000
  const switches = process.resourceUsage().voluntaryContextSwitches - r0
  return { percent: ((c.user + c.system) / wallMicros) * 100, switches }
}

/** measureIdle's switches as a run's note reads them. */
export function sleeps(switches: number): string {
  return `${switches} sleep${switches === 1 ? '' : 's'}`
}
