/**
 * A server, as bus.serve() returns it: receives requests on its own channel
 * `s:<name>:<pid>.<n>` (see ../names.ts), runs the handler on up to
 * `concurrency` of them at once, and hands each reply to replies.ts.
 *
 * Deadlines: a request whose deadline passed before the server got to it
 * (the caller gave up) is skipped without running the handler.
 *
 * At-most-once: a client retries a request that timed out with the same id,
 * to the same server (client.ts). The server remembers, per client, the ids
 * it is running and, for the `rememberIds` most recently finished ones
 * (default 256) of each of the `rememberClients` most recently seen clients
 * (default 256), the reply, for `rememberMs` (default 60 s). A repeated id
 * that is running is ignored (its reply goes out when it finishes); a
 * finished one gets the stored reply again. Beyond those bounds the id is
 * forgotten and a retry would run the handler again: keep
 * `timeout * (retries + 1)` well under rememberMs.
 */
import type { Channel } from '../../channel/channel.js'
import type { ServeOptions } from '../../options.js'
import { NoServer } from '../../errors.js'
import { NO_SERVER, errorInfo, isRequest, type Reply, type Request } from './wire.js'

export interface RequestContext {
  /** The request's id, unique per client. */
  id: number
  /** The calling client (a random token per Bus). */
  client: string
  /** When the caller gives up (Date.now() ms); Infinity for never. */
  deadline: number
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'

export type Handler<Req = any, Res = any> = (payload: Req, context: RequestContext) => Res | Promise<Res>

export interface ServerStats {
  name: string
  channel: string
  handled: number
  failed: number
  /** Repeated ids answered from memory (or ignored while still running). */
  deduplicated: number
  /** Requests skipped because their deadline had passed. */
  expired: number
  running: number
}

/** What a server needs from request/reply (rpc/index.ts hands it one). */
export interface ServerContext {
  /** Sends a reply to a client's reply channel (see replies.ts). */
  reply(replyTo: string, reply: Reply, deadline: number): void
  /** The server closed its channel: remove it from the directory. */
  closed(server: Server): void
  /** Reports an error that ended the server's receive loop (see ../report.ts). */
  report(what: string, err: unknown): void
}

/** What a server remembers of one request id: null while it runs, then its reply. */
interface Seen {
  reply: Reply | null
  at: number
}

export class Server implements Disposable, AsyncDisposable {
  readonly name: string
  /** The channel this server receives requests on. */
  readonly channelName: string
  private readonly iterator: AsyncIterator<Request>
  private closed = false
  private closing: Promise<void> | null = null
  private running = 0
  private readonly idle: Array<() => void> = []
  private readonly inflight = new Set<Promise<void>>()
  /** client token -> id -> 'running' | stored reply; Map order = least recently used first. */
  private readonly memory = new Map<string, Map<number, Seen>>()
  private readonly counts = { handled: 0, failed: 0, deduplicated: 0, expired: 0 }
  private readonly signal: AbortSignal | undefined
  private readonly onAbort: () => void
  private readonly concurrency: number
  private readonly rememberIds: number
  private readonly rememberClients: number
  private readonly rememberMs: number
  private readonly relay: boolean

  /** @internal Made by bus.serve(). */
  constructor(private readonly ctx: ServerContext, private readonly channel: Channel<Request>, name: string, private readonly handler: Handler, options: ServeOptions) {
    this.name = name
    this.channelName = channel.name
    this.concurrency = options.concurrency ?? 64
    this.rememberIds = options.rememberIds ?? 256
    this.rememberClients = options.rememberClients ?? 256
    this.rememberMs = options.rememberMs ?? 60_000
    this.relay = options.relay ?? false
    this.iterator = channel[Symbol.asyncIterator]() // claims the receiver now
    this.signal = options.signal
    this.onAbort = () => void this.close()
    this.signal?.addEventListener('abort', this.onAbort, { once: true })
    void this.loop()
  }

  private async loop(): Promise<void> {
    for (;;) {
      while (this.running >= this.concurrency) await new Promise<void>((r) => this.idle.push(r))
      let next: IteratorResult<Request>
      try {
        next = await this.iterator.next()
      } catch (err) {
        if (!this.closed) this.ctx.report(`server '${this.name}' threw`, err)
        return
      }
      if (next.done || this.closed) return
      this.accept(next.value)
    }
  }

  private accept(message: unknown): void {
    if (!isRequest(message)) return
    const [client, id, replyTo, deadline, payload] = message
    const now = Date.now()
    let ids = this.memory.get(client)
    if (ids !== undefined) {
      this.memory.delete(client) // most recently seen last
      this.memory.set(client, ids)
      const seen = ids.get(id)
      if (seen !== undefined && (seen.reply === null || now - seen.at < this.rememberMs)) {
        this.counts.deduplicated++
        if (seen.reply !== null) this.ctx.reply(replyTo, seen.reply, deadline)
        return
      }
    } else {
      ids = new Map()
      this.memory.set(client, ids)
      this.trimClients()
    }
    if (typeof deadline === 'number' && now > deadline) { this.counts.expired++; return }
    const entry: Seen = { reply: null, at: now }
    ids.set(id, entry)
    const context: RequestContext = { id, client, deadline: typeof deadline === 'number' ? deadline : Infinity }
    // A handler that returns a value (not a promise) is answered in this
    // same turn: no promise, no microtask hop per request (the async path
    // below cost a request/reply server ~2 µs of CPU per request).
    let result: unknown
    try {
      result = this.handler(payload, context)
    } catch (err) {
      return this.finish(ids, entry, replyTo, deadline, this.failure(id, err))
    }
    if (!isThenable(result)) {
      this.counts.handled++
      return this.finish(ids, entry, replyTo, deadline, [id, 1, result])
    }
    this.running++
    const done = this.settle(id, result).then((reply) => this.finish(ids, entry, replyTo, deadline, reply)).finally(() => {
      this.inflight.delete(done)
      this.running--
      this.idle.shift()?.()
    })
    this.inflight.add(done)
  }

  /** Stores the reply of a finished request (for repeated ids) and sends it. */
  private finish(ids: Map<number, Seen>, entry: Seen, replyTo: string, deadline: number, reply: Reply): void {
    entry.reply = reply
    entry.at = Date.now()
    ids.delete(reply[0]) // finished: now ordered by finishing time
    ids.set(reply[0], entry)
    this.trimIds(ids, entry.at)
    this.ctx.reply(replyTo, reply, deadline)
  }

  /** The reply of a handler's promise. */
  private async settle(id: number, result: PromiseLike<unknown>): Promise<Reply> {
    try {
      const value = await result
      this.counts.handled++
      return [id, 1, value]
    } catch (err) {
      return this.failure(id, err)
    }
  }

  private failure(id: number, err: unknown): Reply {
    this.counts.failed++
    // A relay (a bridge) passes "no server anywhere" on as itself, not as its own failure.
    return [id, this.relay && err instanceof NoServer ? NO_SERVER : 0, errorInfo(err)]
  }

  /** Forgets the oldest finished ids beyond rememberIds, and any older than rememberMs. */
  private trimIds(ids: Map<number, Seen>, now: number): void {
    let excess = ids.size - this.rememberIds
    for (const [id, e] of ids) {
      if (e.reply === null) continue // running: never forgotten
      if (excess <= 0 && now - e.at < this.rememberMs) break
      ids.delete(id)
      excess--
    }
  }

  private trimClients(): void {
    for (const [client, ids] of this.memory) {
      if (this.memory.size <= this.rememberClients) break
      if ([...ids.values()].some((e) => e.reply === null)) continue // has running requests
      this.memory.delete(client)
    }
  }

  stats(): ServerStats {
    return { name: this.name, channel: this.channelName, ...this.counts, running: this.running }
  }

  /**
   * Stops serving: removes this server's channel (new requests go to other
   * servers, or fail with NoServer), lets running handlers finish and send
   * their replies. Requests still queued in its ring are not run: their
   * callers get PeerGone.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closed = true
      this.signal?.removeEventListener('abort', this.onAbort)
      this.channel.close()
      this.ctx.closed(this)
      for (const wake of this.idle.splice(0)) wake()
      this.closing = Promise.all([...this.inflight]).then(() => undefined)
    }
    return this.closing
  }

  [Symbol.dispose](): void {
    void this.close()
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
