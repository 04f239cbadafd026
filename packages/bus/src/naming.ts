/**
 * Bus names and System V keys. A named bus lives at a key derived from its
 * name (FNV-1a, 32 bits, with the top nibble fixed to 0x5 so our keys stay
 * clear of 0 = IPC_PRIVATE and of small hand-picked keys). A hash can
 * collide, so the directory also stores the full name and Bus.open checks
 * it: a foreign segment at our key is reported as NotABus, never used.
 */
import { MAX_NAME_BYTES } from '@ipc/core'
import { InvalidArgType, InvalidArgValue, OutOfRange } from './errors.js'

/**
 * Returns name if it is a non-empty string of at most `maxBytes` (default
 * MAX_NAME_BYTES, the directory's limit) UTF-8 bytes without NUL; else
 * throws InvalidArgType (not a string), InvalidArgValue (empty, NUL) or
 * OutOfRange (too long).
 */
export function checkName(what: string, name: unknown, maxBytes = MAX_NAME_BYTES): string {
  if (typeof name !== 'string') throw new InvalidArgType(what, 'of type string', name)
  if (name.length === 0) throw new InvalidArgValue(what, name, 'must be a non-empty string')
  if (name.includes('\0')) throw new InvalidArgValue(what, name, 'must not contain NUL')
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > maxBytes) throw new OutOfRange(what, `at most ${maxBytes} UTF-8 bytes long (this one is ${bytes})`, name)
  return name
}

/** The System V key of a named bus. */
export function busKey(name: string): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(`@ipc/bus:${name}`, 'utf8')) {
    h ^= byte
    h = Math.imul(h, 0x01000193)
  }
  return ((h & 0x0fffffff) | 0x50000000) | 0
}

/** What a directory entry lists (its `kind` field): a channel, or a topic (../patterns/topics.ts). */
export const KIND_CHANNEL = 0
export const KIND_TOPIC = 1
