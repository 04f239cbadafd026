/**
 * What crosses NATS. Values keep their msgpack encoding, but
 * self-describing: the bus shares record structures through its directory,
 * which another host does not have, so the bridge encodes once with its own
 * Packr that never uses records (plain msgpack maps and arrays any msgpack
 * decoder reads).
 *
 *   topic message     subject <prefix>.t.<topic>, data msgpack(value),
 *                     header Ipc-Origin: <bridge id>
 *   request           subject <prefix>.s.<service>, data msgpack(payload),
 *                     headers Ipc-Origin, Ipc-Timeout: <ms left> (absent: none)
 *   reply             data msgpack([status, value])
 *
 * The deadline travels as the time left, not as a time of day: the two
 * hosts' clocks need not agree.
 */
import { Packr } from 'msgpackr'

export const ORIGIN_HEADER = 'Ipc-Origin'
export const TIMEOUT_HEADER = 'Ipc-Timeout'

/** A reply's status: the value, the handler's error (RemoteErrorInfo), no server, or the far side timed out. */
export const REPLY_OK = 1
export const REPLY_ERROR = 0
export const REPLY_NO_SERVER = 2
export const REPLY_TIMEOUT = 3
export type ReplyStatus = typeof REPLY_OK | typeof REPLY_ERROR | typeof REPLY_NO_SERVER | typeof REPLY_TIMEOUT

// The bus's own types (moreTypes: Map, Set, typed arrays, ...), never records.
const packr = new Packr({ useRecords: false, moreTypes: true, mapsAsObjects: true })

export function encode(value: unknown): Uint8Array {
  return packr.pack(value)
}

export function decode(data: Uint8Array): unknown {
  return packr.unpack(data)
}

export function encodeReply(status: ReplyStatus, value: unknown): Uint8Array {
  return packr.pack([status, value])
}

export function decodeReply(data: Uint8Array): [ReplyStatus, unknown] {
  const r = packr.unpack(data) as unknown
  if (!Array.isArray(r) || typeof r[0] !== 'number') throw new TypeError('not a bridge reply')
  return [r[0] as ReplyStatus, r[1]]
}
