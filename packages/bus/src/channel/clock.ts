/**
 * The receivers' clock for spinning and idle decisions: monotonic
 * milliseconds from an arbitrary origin, read without allocating.
 *
 * Why not performance.now(): in Node 20 it returns through a C++ binding and
 * every call boxes its double as a new heap number. A spinning receiver
 * reads the clock every 16 polls, and with performance.now() that made
 * 57 MB/s of garbage with no message in flight: a scavenge every ~70 ms on
 * each side of a hot round trip, 0.2-3 ms each, which was the hot round
 * trip's p99.9 (docs/design.md, "Idle strategy"). process.hrtime() fills a
 * typed array in the binding and builds its [seconds, nanoseconds] pair in
 * JavaScript, which the optimizing compiler removes once the caller is
 * optimized (escape analysis): measured, 0 collections over 5 million
 * reads against 80 with performance.now().
 *
 * Its readings are not comparable with performance.now()'s: they stay
 * inside ./idle.ts and ./cpus.ts.
 */
export function clockMs(): number {
  // 'Legacy' in the docs, not deprecated; hrtime.bigint() would allocate a BigInt per read.
  const t = process.hrtime()
  return t[0] * 1e3 + t[1] / 1e6
}
