/**
 * Every error class of @ipc/core. Each has a fixed `name`, a stable `code`
 * (the bus re-exports these), an optional `cause`, and a message that names
 * the offending value. Expected outcomes (ring full, nothing to read) are
 * return values, never errors.
 */

/** Base class: every error raised by @ipc/core and @ipc/bus is an IpcError. */
export class IpcError extends Error {
  /** Stable machine-readable code, e.g. 'ERR_CHANNEL_FULL'. */
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A message is larger than the ring's maxMessageBytes (nothing was written). */
export class MessageTooLarge extends IpcError {
  override readonly name = 'MessageTooLarge'
  readonly bytes: number
  readonly maxMessageBytes: number
  constructor(bytes: number, maxMessageBytes: number) {
    super('ERR_MESSAGE_TOO_LARGE', `message of ${bytes} bytes exceeds maxMessageBytes=${maxMessageBytes}`)
    this.bytes = bytes
    this.maxMessageBytes = maxMessageBytes
  }
}

/** A value msgpack cannot encode: function, symbol, cyclic object... (nothing was written). */
export class Unserializable extends IpcError {
  override readonly name = 'Unserializable'
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_UNSERIALIZABLE', `cannot serialize ${what}`, options)
  }
}

/** The ring stayed full until a deadline (raised by the bus; core returns false instead). */
export class ChannelFull extends IpcError {
  override readonly name = 'ChannelFull'
  constructor(channel: string, timeoutMs: number) {
    super('ERR_CHANNEL_FULL', `channel "${channel}" stayed full for ${timeoutMs} ms`)
  }
}

/** The process on the other end is dead. */
export class PeerGone extends IpcError {
  override readonly name = 'PeerGone'
  readonly pid: number
  constructor(pid: number, what = 'peer') {
    super('ERR_PEER_GONE', `${what} process ${pid} is gone`)
    this.pid = pid
  }
}

/** Memory that does not start with the expected magic number and version. */
export class NotABus extends IpcError {
  override readonly name = 'NotABus'
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_NOT_A_BUS', what, options)
  }
}

/** The operating system refused access (raised by the bus from EACCES/EPERM). */
export class PermissionDenied extends IpcError {
  override readonly name = 'PermissionDenied'
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_PERMISSION_DENIED', what, options)
  }
}

/** A value read from shared memory is impossible; `where` names the field, `value` the bad value. */
export class CorruptSegment extends IpcError {
  override readonly name = 'CorruptSegment'
  readonly where: string
  readonly value: unknown
  constructor(where: string, value: unknown, why: string, options?: { cause?: unknown }) {
    super('ERR_CORRUPT_SEGMENT', `corrupt shared memory at ${where}: ${String(value)} ${why}`, options)
    this.where = where
    this.value = value
  }
}

/** The object was closed (or its memory detached) and cannot be used any more. */
export class Closed extends IpcError {
  override readonly name = 'Closed'
  constructor(what: string) {
    super('ERR_CLOSED', `${what} is closed`)
  }
}
