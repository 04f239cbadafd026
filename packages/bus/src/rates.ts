/**
 * Rates from cumulative counters, over about the last second: what
 * bus.stats() reports (messages/s, bytes/s, parks/s) and what `ipc-bus top`
 * shows. Nothing runs in the background: each sample() keeps the counters
 * it was given, and the rate is taken against the newest sample at least a
 * second old (or the oldest one kept, when none is that old yet).
 */
import { performance } from 'node:perf_hooks'

/** How far back samples are kept (ms): enough to always have one a second old. */
const KEEP_MS = 2500

export class RateMeter {
  private readonly samples: Array<{ t: number; values: readonly number[] }> = []

  constructor(private readonly windowMs = 1000) {}

  /**
   * Records cumulative `values` and returns their rates per second over the
   * last windowMs (or since the oldest sample kept), or null on the first
   * call (nothing to compare with yet).
   */
  sample(values: readonly number[], now = performance.now()): number[] | null {
    while (this.samples.length > 1 && now - this.samples[1]!.t >= this.windowMs && now - this.samples[0]!.t > KEEP_MS) this.samples.shift()
    let base: { t: number; values: readonly number[] } | undefined
    for (const s of this.samples) {
      if (now - s.t >= this.windowMs) base = s
      else break
    }
    base ??= this.samples[0]
    this.samples.push({ t: now, values: [...values] })
    if (base === undefined || now - base.t <= 0) return null
    const seconds = (now - base.t) / 1000
    return values.map((v, i) => Math.max(0, (v - (base.values[i] ?? 0)) / seconds))
  }
}
