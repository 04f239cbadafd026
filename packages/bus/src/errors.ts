/**
 * Every error class a user of @ipc/bus can catch. The ring-level ones come
 * from @ipc/core (re-exported here); the bus adds the lifecycle ones. All
 * of those extend IpcError and carry a stable `code`.
 *
 * Bad arguments and options are the exception, on purpose: they throw
 * Node's own kind of error (InvalidArgType, InvalidArgValue: TypeError;
 * OutOfRange: RangeError; codes ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
 * ERR_OUT_OF_RANGE, with Node's wording), which cannot also be IpcErrors
 * (a class has one superclass): test `err.code`, which every error has.
 */
import { inspect } from 'node:util'
import { IpcError } from '@ipc/core'

export {
  IpcError, MessageTooLarge, Unserializable, ChannelFull, PeerGone, NotABus, PermissionDenied, CorruptSegment, Closed,
} from '@ipc/core'

/** Bus.create() found a live bus of that name. */
export class BusExists extends IpcError {
  override readonly name = 'BusExists'
  constructor(readonly busName: string) {
    super('ERR_BUS_EXISTS', `a bus named '${busName}' already exists and has live members (use Bus.open to join it)`)
  }
}

/** Bus.open() found no bus of that name (or only a dead one, which it reclaimed). */
export class NoSuchBus extends IpcError {
  override readonly name = 'NoSuchBus'
  constructor(readonly busName: string, detail = 'no bus of that name exists', options?: { cause?: unknown }) {
    super('ERR_NO_SUCH_BUS', `cannot open bus '${busName}': ${detail}`, options)
  }
}

/** A channel or topic was opened with a schema that differs from the one it was created with (`channel` is the channel's or topic's name). */
export class SchemaMismatch extends IpcError {
  override readonly name = 'SchemaMismatch'
  constructor(readonly channel: string, readonly stored: string | null, readonly requested: string, readonly kind: 'channel' | 'topic' = 'channel') {
    super('ERR_SCHEMA_MISMATCH', `${kind} '${channel}' was created ${stored === null ? 'without a schema' : `with schema ${stored}`}; opened with ${requested}`)
  }
}

/** Another live process already receives on this channel. */
export class ChannelBusy extends IpcError {
  override readonly name = 'ChannelBusy'
  constructor(readonly channel: string, readonly receiverPid: number) {
    super('ERR_CHANNEL_BUSY', `channel '${channel}' already has a receiver (pid ${receiverPid}); a channel has one receiver and any number of senders`)
  }
}

/** Every lane of a channel (or a topic) is held by a live sender (publisher). */
export class TooManySenders extends IpcError {
  override readonly name = 'TooManySenders'
  /** `channel` is the channel's or the topic's name; `what` says which. */
  constructor(readonly channel: string, readonly lanes: number, readonly what: 'channel' | 'topic' = 'channel') {
    super('ERR_TOO_MANY_SENDERS', `${what} '${channel}' has ${lanes} lanes and every one is held by a live ${what === 'topic' ? 'publishing' : 'sending'} process (raise options.maxSenders${what === 'topic' ? ' where the topic is created' : ''})`)
  }
}

/** Every subscriber slot of a topic is held by a live subscription. */
export class TooManySubscribers extends IpcError {
  override readonly name = 'TooManySubscribers'
  constructor(readonly topic: string, readonly slots: number) {
    super('ERR_TOO_MANY_SUBSCRIBERS', `topic '${topic}' has ${slots} subscriber slots and every one is held by a live subscription (raise options.maxSubscribers where the topic is created)`)
  }
}

/** Bus.attach() was called in a process that was not started by bus.fork(). */
export class NotForked extends IpcError {
  override readonly name = 'NotForked'
  constructor() {
    super('ERR_NOT_FORKED', 'Bus.attach() needs the IPC_BUS_ATTACH environment variable that bus.fork() gives its children')
  }
}

/** A request got no reply before its deadline (a reply that comes later is discarded). */
export class RequestTimeout extends IpcError {
  override readonly name = 'RequestTimeout'
  constructor(readonly service: string, readonly timeoutMs: number, readonly attempts = 1) {
    super('ERR_REQUEST_TIMEOUT', `request to service '${service}' got no reply within ${timeoutMs} ms${attempts > 1 ? ` (each of ${attempts} attempts)` : ''}`)
  }
}

/** No live process serves this name on the bus (raised at once: see rpc.ts). */
export class NoServer extends IpcError {
  override readonly name = 'NoServer'
  constructor(readonly service: string) {
    super('ERR_NO_SERVER', `no live process serves '${service}' on this bus`)
  }
}

/** What a remote handler threw, as the server saw it. */
export interface RemoteErrorInfo {
  name: string
  message: string
  code?: string | undefined
  stack?: string | undefined
}

/**
 * The server's handler threw (or its reply could not be sent). `remote`
 * holds the thrown error's name, message, code and stack; `remoteCode`
 * and `remoteName` are shortcuts; `code` is always 'ERR_REMOTE'.
 */
export class RemoteError extends IpcError {
  override readonly name = 'RemoteError'
  readonly remote: RemoteErrorInfo
  readonly remoteName: string
  readonly remoteCode: string | undefined
  readonly remoteStack: string | undefined
  constructor(readonly service: string, readonly serverPid: number, remote: RemoteErrorInfo) {
    super('ERR_REMOTE', `service '${service}' (pid ${serverPid}) failed: ${remote.name}: ${remote.message}`)
    this.remote = remote
    this.remoteName = remote.name
    this.remoteCode = remote.code
    this.remoteStack = remote.stack
  }
}

/** Every member slot of the bus is held by a live process (dead members' slots are reclaimed first). */
export class BusFull extends IpcError {
  override readonly name = 'BusFull'
  constructor(readonly busName: string, readonly maxMembers: number) {
    super('ERR_BUS_FULL', `bus '${busName}' has ${maxMembers} member slots and every one is held by a live member (raise maxMembers when the bus is created)`)
  }
}

/** Every channel slot of the bus holds a channel that is in use (abandoned, drained channels are reclaimed first). */
export class TooManyChannels extends IpcError {
  override readonly name = 'TooManyChannels'
  constructor(readonly busName: string, readonly maxChannels: number) {
    super('ERR_TOO_MANY_CHANNELS', `bus '${busName}' has ${maxChannels} channel slots and every one holds a channel in use (raise maxChannels when the bus is created)`)
  }
}

/** Something that needs the process's main thread (a 'signal' doorbell) was asked for from a worker thread. */
export class NotMainThread extends IpcError {
  override readonly name = 'NotMainThread'
  constructor(what: string) {
    super('ERR_NOT_MAIN_THREAD', `${what} needs the main thread: signals reach only the main thread of a Node process; in a worker thread open the bus with { doorbell: 'pipe' }`)
  }
}

// ============================================================ arguments

/** Node's wording for a value in a message: `'abc'`, `42`, `[Array]`, truncated. */
function shown(value: unknown): string {
  let text = inspect(value, { depth: -1, colors: false })
  if (text.length > 28) text = `${text.slice(0, 25)}...`
  return text
}

/** Node's "Received ..." for a value of the wrong type. */
function receivedType(value: unknown): string {
  if (value === null || value === undefined) return `Received ${String(value)}`
  if (typeof value === 'function') return `Received function ${value.name === '' ? '<anonymous>' : value.name}`
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name
    return typeof ctor === 'string' && ctor !== '' ? `Received an instance of ${ctor}` : `Received ${shown(value)}`
  }
  return `Received type ${typeof value} (${shown(value)})`
}

/** Node's errors print as `TypeError [ERR_X]: message`; so do ours. */
function tagStack(err: Error & { code: string }): void {
  const name = err.name
  err.name = `${name} [${err.code}]`
  void err.stack // V8 formats the stack's first line on first access
  delete (err as { name?: string }).name // back to the prototype's 'TypeError' / 'RangeError'
}

/** 'options.timeout' is a property, 'name' an argument (Node's wording). */
const kind = (name: string): string => (name.includes('.') ? 'property' : 'argument')

/** An argument or option of the wrong type (like Node's ERR_INVALID_ARG_TYPE). `expected`: 'of type number', 'an instance of AbortSignal'. */
export class InvalidArgType extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE'
  constructor(readonly argument: string, expected: string, value: unknown) {
    super(`The "${argument}" ${kind(argument)} must be ${expected}. ${receivedType(value)}`)
    tagStack(this)
  }
  override toString(): string { return `${this.name} [${this.code}]: ${this.message}` }
}

/** An argument or option of the right type but a wrong value, or an unknown option (like Node's ERR_INVALID_ARG_VALUE). */
export class InvalidArgValue extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE'
  constructor(readonly argument: string, value: unknown, reason = 'is invalid') {
    super(`The ${kind(argument)} '${argument}' ${reason}. Received ${shown(value)}`)
    tagStack(this)
  }
  override toString(): string { return `${this.name} [${this.code}]: ${this.message}` }
}

/** A number (or size) outside what is allowed (like Node's ERR_OUT_OF_RANGE). `range`: 'an integer', '>= 0', 'from 1 to 1024'. */
export class OutOfRange extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE'
  constructor(readonly argument: string, range: string, value: unknown) {
    super(`The value of "${argument}" is out of range. It must be ${range}. Received ${typeof value === 'number' ? String(value) : shown(value)}`)
    tagStack(this)
  }
  override toString(): string { return `${this.name} [${this.code}]: ${this.message}` }
}
