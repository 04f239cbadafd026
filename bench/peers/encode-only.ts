/**
 * The objects row's ceiling, as the C ring is the raw rows': the bus's own
 * codec (msgpackr with shared structures, @ipc/core Codec) encoding the
 * row's ticks in one process and sending nothing. A sender that encodes
 * with it cannot go faster, whatever its transport; the bus's and the
 * socket's objects rates read against it (docs/design.md, "Where two ratio
 * targets meet the machine"). Started by the runner as a host (BENCH_CELL);
 * stream cells only.
 */
import { Codec } from '@ipc/core'
import type { RunResult } from '../suite/cell.js'
import { newTick, now, repeat, setTick } from './basics.js'
import { cellFromEnv, pinSelf } from './common.js'

/** Shared structures kept in memory, as a bus keeps them in its directory segment (one shape here: it always fits). */
function memoryStore(): { load(): unknown[]; save(structures: unknown[]): boolean } {
  let saved: unknown[] = []
  return { load: () => saved, save: (structures) => { saved = structures.slice(); return true } }
}

async function main(): Promise<void> {
  const cell = cellFromEnv()
  if (cell.kind !== 'stream' || cell.shape !== 'object') throw new Error(`encode-only runs object streams, not ${cell.kind} ${cell.shape}`)
  pinSelf(cell, 0)
  const codec = new Codec({ structures: memoryStore() })
  const tick = newTick()
  let bytes = 0
  const runs = await repeat(cell, async (n): Promise<RunResult> => {
    const start = now()
    for (let i = 0; i < n; i++) {
      codec.encode(setTick(tick, i))
      bytes += codec.encodedEnd - codec.encodedStart // used, so the encode is not dead code
    }
    return { seconds: Number(now() - start) / 1e9, messages: n }
  })
  if (bytes === 0) throw new Error('encode-only: nothing was encoded')
  return new Promise((resolve) => process.send!({ type: 'result', runs }, () => resolve()))
}

main().then(() => process.exit(0), (err: unknown) => {
  process.send!({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1))
})
