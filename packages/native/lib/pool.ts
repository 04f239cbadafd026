/**
 * Buffers for large received messages whose memory is reused once V8 has
 * collected them (src/BufferPool.cc has the why: a fresh 1 MiB Buffer per
 * message faults on every page). Sizes from 128 KiB to 16 MiB come from the
 * pool; smaller and larger ones, or every size where the addon may not
 * create external buffers, are a plain Buffer.allocUnsafe(). Like
 * allocUnsafe, the bytes are not zeroed: the caller writes all of them.
 */
import { Buffer } from 'node:buffer'
import { native } from './binding.js'
import type { PoolStats } from './native-types.js'

export type { PoolStats }

/** Smallest pooled size: glibc serves smaller ones from its heap, larger ones by mmap (fresh pages). */
export const POOL_MIN_BYTES = 128 * 1024
/** Largest pooled size. */
export const POOL_MAX_BYTES = 16 * 1024 * 1024

/** A Buffer of `size` bytes (not zeroed), pooled when 128 KiB to 16 MiB. */
export function allocPooled(size: number): Buffer {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`allocPooled size must be a non-negative integer, got ${size}`)
  if (size < POOL_MIN_BYTES || size > POOL_MAX_BYTES) return Buffer.allocUnsafe(size)
  return native.allocPooled(size) ?? Buffer.allocUnsafe(size)
}

/** The pool's state. */
export function poolStats(): PoolStats {
  return native.poolStats()
}
