/**
 * Request/reply on the bus: `bus.serve(name, handler)` and
 * `await bus.request(name, payload, {timeout, signal, retries})`.
 *
 * Channels (see patterns.ts). Each server receives on its own channel
 * `s:<name>:<pid>.<n>`; the directory's channel table is the registry of
 * servers. Each client process (one per Bus) receives every reply on one
 * channel `r:<pid>.<n>`, made on its first request. Requests carry
 * [client token, id, reply channel, deadline, payload]; replies carry
 * [id, ok, value or error]. The id correlates: a reply whose id is no longer
 * pending (timed out, aborted) is discarded and counted (`lateReplies`).
 *
 * Spreading: a client lists the servers of a name again only when the
 * directory changed, and sends to them round robin.
 *
 * NoServer is raised at once, when no server of that name is listed (or
 * every listed one is dead): waiting out the deadline for a server that may
 * never come would only delay the error. A caller that expects a server to
 * come up retries.
 *
 * Deadlines: `timeout` (default 30 s; Infinity for none) is per attempt; at
 * the deadline the request rejects with RequestTimeout. The deadline travels
 * with the request: a server skips a request whose deadline passed before it
 * got to it (the caller gave up), without running the handler.
 *
 * Dead servers: while (and only while) requests are pending, a ref'd timer
 * checks every 100 ms that the servers they went to still have a receiver;
 * a server seen gone on two checks in a row (the second one lets a reply
 * already in our ring be read first) rejects its pending requests with
 * PeerGone. A request that could not even be written because its server was
 * already dead goes to the next server (nothing was sent, so nothing ran).
 * A pending request keeps the process alive; an idle client uses no timer
 * and does not keep the process alive.
 *
 * At-most-once: `retries: n` sends a request that timed out again, up to n
 * times, with the same id, to the same server (a server remembers only the
 * ids it saw itself, so a retry never goes elsewhere; if that server died,
 * the request rejects with PeerGone, because it may have run). The server
 * remembers, per client, the ids it is running and, for the `rememberIds`
 * most recently finished ones (default 256) of each of the `rememberClients`
 * most recently seen clients (default 256), the reply, for `rememberMs`
 * (default 60 s). A repeated id that is running is ignored (its reply goes
 * out when it finishes); a finished one gets the stored reply again. Beyond
 * those bounds the id is forgotten and a retry would run the handler again:
 * keep `timeout * (retries + 1)` well under rememberMs. Ids are unique per
 * client token (random per Bus), so a reused pid never inherits old replies.
 */
import { randomBytes } from 'node:crypto'
import type { Channel } from './channel.js'
import { ChannelFull, Closed, InvalidArgType, MessageTooLarge, NoServer, PeerGone, RemoteError, RequestTimeout, Unserializable, type RemoteErrorInfo } from './errors.js'
import { checkRequestOptions, checkServeOptions, type ChannelOptions } from './options.js'
import { checkPatternName, freshName, parseSuffix, report, type PatternHost } from './patterns.js'

export interface RequestContext {
  /** The request's id, unique per client. */
  id: number
  /** The calling client (a random token per Bus). */
  client: string
  /** When the caller gives up (Date.now() ms); Infinity for never. */
  deadline: number
}

export type Handler<Req = any, Res = any> = (payload: Req, context: RequestContext) => Res | Promise<Res>

export interface ServeOptions {
  /** Handlers running at once in this server; more requests wait in the ring. Default 64. */
  concurrency?: number
  /** Stops serving when aborted (like server.close()). */
  signal?: AbortSignal
  /** Ring of each client's lane into this server. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Most client processes sending to this server at once. Default: the bus's maxSenders. */
  maxSenders?: number
  /** Finished ids remembered per client for at-most-once retries. Default 256. */
  rememberIds?: number
  /** Clients whose ids are remembered. Default 256. */
  rememberClients?: number
  /** How long a finished id is remembered, ms. Default 60 000. */
  rememberMs?: number
}

export interface RequestOptions {
  /** Per attempt, in ms; Infinity for none. Default 30 000. */
  timeout?: number
  /** Aborting rejects the request with signal.reason (a reply that comes later is discarded). */
  signal?: AbortSignal
  /** Attempts after a timeout, with the same id, to the same server. Default 0. */
  retries?: number
}

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

export interface RpcStats {
  requests: number
  replies: number
  remoteErrors: number
  timeouts: number
  retries: number
  peerGone: number
  lateReplies: number
  pending: number
  servers: ServerStats[]
}

const DEFAULT_TIMEOUT = 30_000
const WATCH_MS = 100
/** Reply channels a process keeps open to send replies on (least recently used ones are closed). */
const REPLY_CHANNELS = 64

type Request = [client: string, id: number, replyTo: string, deadline: number, payload: unknown]
type Reply = [id: number, ok: 0 | 1, value: unknown]

interface Pending {
  id: number
  service: string
  resolve: (value: any) => void
  reject: (err: unknown) => void
  timeoutMs: number
  retriesLeft: number
  attempts: number
  timer: NodeJS.Timeout | null
  server: Channel<Request> | null
  serverPid: number
  /** Consecutive liveness checks that found the server gone. */
  suspect: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | null
}

interface ServiceState {
  generation: number
  names: string[]
  next: number
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
  private readonly memory = new Map<string, Map<number, { reply: Reply | null; at: number }>>()
  private readonly counts = { handled: 0, failed: 0, deduplicated: 0, expired: 0 }
  private readonly signal: AbortSignal | undefined
  private readonly onAbort: () => void
  private readonly concurrency: number
  private readonly rememberIds: number
  private readonly rememberClients: number
  private readonly rememberMs: number

  /** @internal Made by bus.serve(). */
  constructor(private readonly rpc: Rpc, private readonly channel: Channel<Request>, name: string, private readonly handler: Handler, options: ServeOptions) {
    this.name = name
    this.channelName = channel.name
    this.concurrency = options.concurrency ?? 64
    this.rememberIds = options.rememberIds ?? 256
    this.rememberClients = options.rememberClients ?? 256
    this.rememberMs = options.rememberMs ?? 60_000
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
        if (!this.closed) report(this.rpc.host, `server '${this.name}'`, err)
        return
      }
      if (next.done || this.closed) return
      this.accept(next.value)
    }
  }

  private accept(request: Request): void {
    if (!Array.isArray(request) || request.length !== 5 || typeof request[0] !== 'string' || typeof request[1] !== 'number' || typeof request[2] !== 'string') return
    const [client, id, replyTo, deadline, payload] = request
    const now = Date.now()
    let ids = this.memory.get(client)
    if (ids !== undefined) {
      this.memory.delete(client) // most recently seen last
      this.memory.set(client, ids)
      const seen = ids.get(id)
      if (seen !== undefined && (seen.reply === null || now - seen.at < this.rememberMs)) {
        this.counts.deduplicated++
        if (seen.reply !== null) this.rpc.reply(replyTo, seen.reply, deadline)
        return
      }
    } else {
      ids = new Map()
      this.memory.set(client, ids)
      this.trimClients()
    }
    if (typeof deadline === 'number' && now > deadline) { this.counts.expired++; return }
    const entry = { reply: null as Reply | null, at: now }
    ids.set(id, entry)
    this.running++
    const done = this.run(payload, { id, client, deadline: typeof deadline === 'number' ? deadline : Infinity }).then((reply) => {
      reply[0] = id
      entry.reply = reply
      entry.at = Date.now()
      ids.delete(id) // finished: now ordered by finishing time
      ids.set(id, entry)
      this.trimIds(ids, entry.at)
      this.rpc.reply(replyTo, reply, deadline)
    }).finally(() => {
      this.inflight.delete(done)
      this.running--
      this.idle.shift()?.()
    })
    this.inflight.add(done)
  }

  private async run(payload: unknown, context: RequestContext): Promise<Reply> {
    try {
      const value = await this.handler(payload, context)
      this.counts.handled++
      return [context.id, 1, value]
    } catch (err) {
      this.counts.failed++
      return [context.id, 0, errorInfo(err)]
    }
  }

  /** Forgets the oldest finished ids beyond rememberIds, and any older than rememberMs. */
  private trimIds(ids: Map<number, { reply: Reply | null; at: number }>, now: number): void {
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
      this.rpc.forget(this)
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

/** A thrown value as plain data for the wire. */
function errorInfo(err: unknown): RemoteErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { name: err.name, message: err.message, code: code === undefined ? undefined : String(code), stack: err.stack }
  }
  return { name: 'Error', message: String(err), code: undefined, stack: undefined }
}

function remoteInfo(value: unknown): RemoteErrorInfo {
  const v = (value ?? {}) as Partial<RemoteErrorInfo>
  return {
    name: typeof v.name === 'string' ? v.name : 'Error',
    message: typeof v.message === 'string' ? v.message : String(v.message),
    code: typeof v.code === 'string' ? v.code : undefined,
    stack: typeof v.stack === 'string' ? v.stack : undefined,
  }
}

export class Rpc {
  private readonly token = randomBytes(6).toString('base64url')
  private nextId = 0
  private replies: Channel<Reply> | null = null
  private replyName = ''
  private readonly pending = new Map<number, Pending>()
  private readonly services = new Map<string, ServiceState>()
  private readonly servers = new Set<Server>()
  /** Channels to clients we reply to, least recently used first. */
  private readonly replyTo = new Map<string, Channel<Reply>>()
  private replyGeneration = -1
  private watch: NodeJS.Timeout | null = null
  private readonly counts = { requests: 0, replies: 0, remoteErrors: 0, timeouts: 0, retries: 0, peerGone: 0, lateReplies: 0 }

  constructor(readonly host: PatternHost) {}

  // ============================================================ serving

  /**
   * Everything is checked, on every call, before anything is created: the
   * options (InvalidArgType / InvalidArgValue / OutOfRange, see options.ts),
   * the name, the handler; then the channel's sizes against the bus's
   * (bus.channel() checks them before it creates anything).
   */
  serve(name: string, handler: Handler, options?: ServeOptions): Server {
    options = checkServeOptions(options)
    checkPatternName('service name', name)
    if (typeof handler !== 'function') throw new InvalidArgType('handler', 'of type function', handler)
    if (options.signal?.aborted) throw options.signal.reason
    const channelName = freshName(this.host, `s:${name}:`)
    const channelOptions: ChannelOptions = { ringBytes: options.ringBytes, maxSenders: options.maxSenders }
    const channel = this.host.channel<Request>(channelName, channelOptions)
    const server = new Server(this, channel, name, handler, options)
    this.servers.add(server)
    return server
  }

  /** @internal A server closed (its channel too): remove the channel from the directory. */
  forget(server: Server): void {
    if (!this.servers.delete(server)) return
    try {
      this.host.dropChannel(server.channelName, { force: true })
    } catch {
      // bus closed
    }
  }

  /** @internal Sends a reply to a client's reply channel; a gone client is forgotten. */
  reply(replyTo: string, reply: Reply, deadline: number): void {
    let channel: Channel<Reply> | null
    try {
      channel = this.replyChannel(replyTo)
    } catch (err) {
      report(this.host, `replying on '${replyTo}'`, err)
      return
    }
    if (channel === null) return // the client left (its reply channel is gone)
    let bytesOk = true
    try {
      if (channel.trySend(reply)) return
    } catch (err) {
      if (err instanceof PeerGone || err instanceof Closed) { this.dropReplyChannel(replyTo, channel); return }
      if (!(err instanceof Unserializable || err instanceof MessageTooLarge) || reply[1] === 0) { report(this.host, `replying on '${replyTo}'`, err); return }
      // The handler's value cannot travel: tell the caller why instead.
      reply[1] = 0
      reply[2] = errorInfo(err)
      bytesOk = false
    }
    if (!bytesOk) return this.reply(replyTo, reply, deadline)
    // The client's ring is full: wait, but not past its deadline.
    const timeout = typeof deadline === 'number' && Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : undefined
    channel.send(reply, { timeout }).catch((err: unknown) => {
      if (err instanceof PeerGone || err instanceof Closed) this.dropReplyChannel(replyTo, channel)
      else if (!(err instanceof ChannelFull)) report(this.host, `replying on '${replyTo}'`, err)
    })
  }

  private replyChannel(name: string): Channel<Reply> | null {
    const generation = this.host.channelGeneration
    if (generation !== this.replyGeneration) {
      // Clients that closed their bus removed their reply channels: let go of ours.
      this.replyGeneration = generation
      const listed = new Set(this.host.channelNames('r:'))
      for (const [n, ch] of this.replyTo) {
        if (listed.has(n)) continue
        this.replyTo.delete(n)
        if (!ch.isReceiving) ch.close()
      }
    }
    const known = this.replyTo.get(name)
    if (known !== undefined) {
      this.replyTo.delete(name)
      this.replyTo.set(name, known)
      return known
    }
    const channel = this.host.existingChannel<Reply>(name)
    if (channel === null) return null
    this.replyTo.set(name, channel)
    if (this.replyTo.size > REPLY_CHANNELS) {
      const [oldest, ch] = this.replyTo.entries().next().value!
      this.replyTo.delete(oldest)
      if (!ch.isReceiving) ch.close() // (our own reply channel stays)
    }
    return channel
  }

  private dropReplyChannel(name: string, channel: Channel<Reply>): void {
    this.replyTo.delete(name)
    try {
      this.host.dropChannel(name)
    } catch {
      // bus closed
    }
    if (!channel.isReceiving) channel.close()
  }

  // ============================================================ requesting

  /** Checks the options (see options.ts) and the name on every call, before anything is created or sent; rejects (never throws) with what they throw. */
  request<Res = unknown>(service: string, payload: unknown, options?: RequestOptions): Promise<Res> {
    try {
      const o = checkRequestOptions(options)
      checkPatternName('service name', service)
      const timeoutMs = o.timeout ?? DEFAULT_TIMEOUT
      const retries = o.retries ?? 0
      const signal = o.signal
      if (signal?.aborted) return Promise.reject(signal.reason)
      this.ensureReplies()
      return new Promise<Res>((resolve, reject) => {
        const p: Pending = {
          id: ++this.nextId, service, resolve, reject, timeoutMs, retriesLeft: retries, attempts: 0, timer: null, server: null, serverPid: 0, suspect: 0, signal, onAbort: null,
        }
        this.counts.requests++
        this.pending.set(p.id, p)
        if (signal !== undefined) {
          p.onAbort = () => this.settle(p, signal.reason, false)
          signal.addEventListener('abort', p.onAbort, { once: true })
        }
        this.attempt(p, payload)
        if (this.pending.has(p.id)) this.startWatch()
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Sends (or, after a timeout, sends again) request p. */
  private attempt(p: Pending, payload: unknown): void {
    p.attempts++
    const deadline = Number.isFinite(p.timeoutMs) ? Date.now() + p.timeoutMs : Infinity
    const message: Request = [this.token, p.id, this.replyName, deadline, payload]
    for (;;) {
      if (p.server === null) {
        const next = this.pick(p.service)
        if (next === null) return this.settle(p, new NoServer(p.service), false)
        p.server = next
        p.serverPid = parseSuffix(next.name.slice(p.service.length + 3))?.pid ?? 0
      }
      const server = p.server
      let sent: boolean
      try {
        sent = server.trySend(message)
      } catch (err) {
        if (err instanceof PeerGone || err instanceof Closed) {
          // Nothing was written. On the first attempt the request reached no
          // server: try the next one. A retry must not go elsewhere.
          if (p.attempts === 1) p.server = null
          this.serverGone(server)
          if (p.server === null) continue
          return
        }
        return this.settle(p, err, false) // Unserializable, MessageTooLarge, TooManySenders
      }
      if (!sent) {
        // The server's ring is full: wait for room until the deadline.
        server.send(message, { timeout: Number.isFinite(p.timeoutMs) ? p.timeoutMs : undefined, signal: p.signal }).catch((err: unknown) => {
          if (!this.pending.has(p.id)) return
          if (err instanceof ChannelFull) return // the request timer fires too
          if (err instanceof PeerGone) return this.serverGone(server)
          if (p.signal?.aborted) return
          this.settle(p, err, false)
        })
      }
      if (Number.isFinite(p.timeoutMs)) p.timer = setTimeout(() => this.timedOut(p, payload), p.timeoutMs)
      return
    }
  }

  private timedOut(p: Pending, payload: unknown): void {
    p.timer = null
    if (!this.pending.has(p.id)) return
    if (p.retriesLeft > 0) {
      p.retriesLeft--
      this.counts.retries++
      this.attempt(p, payload)
      return
    }
    this.counts.timeouts++
    this.settle(p, new RequestTimeout(p.service, p.timeoutMs, p.attempts), false)
  }

  /** Resolves or rejects p once; later replies for its id are discarded. */
  private settle(p: Pending, value: unknown, ok: boolean): void {
    if (!this.pending.delete(p.id)) return
    if (p.timer !== null) clearTimeout(p.timer)
    if (p.onAbort !== null) p.signal!.removeEventListener('abort', p.onAbort)
    if (this.pending.size === 0) this.stopWatch()
    if (ok) p.resolve(value)
    else p.reject(value)
  }

  /** The next live-looking server of service, round robin; null when none is listed. */
  private pick(service: string): Channel<Request> | null {
    const generation = this.host.channelGeneration
    let state = this.services.get(service)
    if (state === undefined || state.generation !== generation) {
      const prefix = `s:${service}:`
      const names = this.host.channelNames(prefix).filter((n) => parseSuffix(n.slice(prefix.length))?.flag === '')
      state = { generation, names, next: state?.next ?? 0 }
      this.services.set(service, state)
    }
    if (state.names.length === 0) return null
    for (let tries = 0; tries < state.names.length; tries++) {
      const name = state.names[state.next++ % state.names.length]!
      const channel = this.host.existingChannel<Request>(name)
      if (channel !== null) return channel
    }
    return null
  }

  private onReply(reply: Reply): void {
    if (!Array.isArray(reply)) return
    const p = this.pending.get(reply[0])
    if (p === undefined) { this.counts.lateReplies++; return }
    if (reply[1] === 1) {
      this.counts.replies++
      this.settle(p, reply[2], true)
    } else {
      this.counts.remoteErrors++
      this.settle(p, new RemoteError(p.service, p.serverPid, remoteInfo(reply[2])), false)
    }
  }

  /** This client's reply channel, made on the first request. */
  private ensureReplies(): void {
    if (this.replies !== null) return
    this.replyName = freshName(this.host, 'r:')
    const channel = this.host.channel<Reply>(this.replyName)
    channel.on('message', (reply) => this.onReply(reply))
    // Receiving keeps the loop alive (bus.retain); an idle client should
    // not: pending requests hold it instead (the watch timer is ref'd).
    this.host.release()
    this.replies = channel
  }

  /** A server is gone: reject the requests it had, remove it. */
  private serverGone(server: Channel<Request>): void {
    for (const p of [...this.pending.values()]) {
      if (p.server === server) {
        this.counts.peerGone++
        this.settle(p, new PeerGone(p.serverPid, `server of '${p.service}'`), false)
      }
    }
    this.removeServer(server, true)
  }

  private removeServer(server: Channel<Request>, force: boolean): void {
    try {
      this.host.dropChannel(server.name, { force })
    } catch {
      // bus closed
    }
    if (!server.isReceiving) server.close()
  }

  private startWatch(): void {
    if (this.watch === null) this.watch = setInterval(() => this.check(), WATCH_MS) // ref'd: pending requests keep the process alive
  }

  private stopWatch(): void {
    if (this.watch !== null) clearInterval(this.watch)
    this.watch = null
  }

  /** Every 100 ms while requests are pending: is each of their servers still receiving? */
  private check(): void {
    const verdict = new Map<Channel<Request>, boolean>()
    for (const p of this.pending.values()) {
      const server = p.server
      if (server === null) continue
      let alive = verdict.get(server)
      if (alive === undefined) {
        alive = server.receiverPid !== null
        verdict.set(server, alive)
      }
      p.suspect = alive ? 0 : p.suspect + 1
    }
    for (const [server, alive] of verdict) {
      if (alive) continue
      const due = [...this.pending.values()].filter((p) => p.server === server && p.suspect >= 2)
      if (due.length === 0) continue
      for (const p of due) {
        this.counts.peerGone++
        this.settle(p, new PeerGone(p.serverPid, `server of '${p.service}'`), false)
      }
      if (![...this.pending.values()].some((p) => p.server === server)) this.removeServer(server, true)
    }
  }

  // ============================================================ lifecycle

  stats(): RpcStats {
    return { ...this.counts, pending: this.pending.size, servers: [...this.servers].map((s) => s.stats()) }
  }

  /** Rejects pending requests with Closed, stops every server, removes our channels. Called by bus.close(). */
  close(): void {
    for (const p of [...this.pending.values()]) this.settle(p, new Closed(`request to '${p.service}' (the bus closed)`), false)
    this.stopWatch()
    for (const server of [...this.servers]) void server.close()
    for (const ch of this.replyTo.values()) if (!ch.isReceiving) ch.close()
    this.replyTo.clear()
    if (this.replies !== null) {
      this.host.retain() // balances the release in ensureReplies: closing the channel releases once
      this.replies.close()
      this.host.dropChannel(this.replyName, { force: true })
      this.replies = null
    }
  }
}
