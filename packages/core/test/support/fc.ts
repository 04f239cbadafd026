/**
 * One seed per test process, fixed with FC_SEED=<n>, printed so that a
 * failure can be replayed (fast-check's own failure report repeats it with
 * the shrunk path).
 */
import fc from 'fast-check'

export const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0

let announced = false
/** fast-check parameters with the process seed; logs the seed once. */
export function params(numRuns: number, extra: fc.Parameters<unknown> = {}): fc.Parameters<unknown> {
  if (!announced) {
    announced = true
    console.log(`fast-check seed ${SEED} (replay with FC_SEED=${SEED})`)
  }
  return { seed: SEED, numRuns, ...extra }
}

/** Deterministic payload bytes for message `seq` of `length`, so any byte can be checked. */
export function payload(seq: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (seq * 131 + i * 7 + (seq >>> 8)) & 0xff
  return bytes
}
