/**
 * The client side of request/reply: `bus.request(name, payload, {timeout,
 * signal, retries})`. One client per bus.
 *
 * Each client receives every reply on one channel `r:<pid>.<n>`, made on its
 * first request (see ../names.ts; the wire shapes are in wire.ts). The id
 * correlates: a reply whose id is no longer pending (timed out, aborted) is
 * discarded and counted (`lateReplies`).
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
 * with the request (the server skips it once passed).
 *
 * Dead servers: while (and only while) requests are pending, a ref'd timer
 * checks every 100 ms that the servers they went to still have a receiver;
 * a server seen gone on two checks in a row (the second one lets a reply
 * already in our ring be read first) rejects its pending requests with
 * PeerGone. A request that could not even be written because its server was
 * already dead goes to the next server (nothing was sent, so nothing ran).
 * A pending request keeps the process alive; an idle client does not (its
 * timers are unref'd, and stop at their next tick).
 *
 * Timers cost nothing per request: one deadline timer is armed for the
 * earliest deadline pending (a request with a later one arms nothing) and,
 * when it fires, times out what is due and re-arms for the next; the watch
 * interval starts with the first pending request and stops at its first
 * tick with none. A closed loop of requests creates no timer at all.
 *
 * At-most-once: `retries: n` sends a request that timed out again, up to n
 * times, with the same id, to the same server (a server remembers only the
 * ids it saw itself, so a retry never goes elsewhere; if that server died,
 * the request rejects with PeerGone, because it may have run). How long a
 * server remembers is in server.ts.
 */
import { randomBytes } from 'node:crypto'
import type { Channel } from '../../channel/channel.js'
import { resolved } from '../../channel/idle.js'
import { ChannelFull, Closed, NoServer, PeerGone, RemoteError, RequestTimeout } from '../../errors.js'
import { checkRequestOptions } from '../../options.js'
import type { PatternHost } from '../host.js'
import { checkPatternName, newReplyName, parseServer, serverPrefix } from '../names.js'
import type { RequestOptions } from '../../options.js'
import { NO_SERVER, isReply, remoteInfo, type Reply, type Request } from './wire.js'

/** What a client counted (bus.stats().rpc). */
export interface ClientStats {
  requests: number
  replies: number
  remoteErrors: number
  timeouts: number
  retries: number
  peerGone: number
  lateReplies: number
  pending: number
}

const DEFAULT_TIMEOUT = 30_000
const WATCH_MS = 100

/** A request waiting for its reply. */
interface Pending {
  id: number
  service: string
  resolve: (value: any) => void
  reject: (err: unknown) => void
  timeoutMs: number
  retriesLeft: number
  attempts: number
  /** When this attempt times out (Date.now() ms), Infinity for never. */
  deadline: number
  payload: unknown
  server: Channel<Request> | null
  serverPid: number
  /** Consecutive liveness checks that found the server gone. */
  suspect: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | null
}

/** The servers listed for a service at a directory generation, and whose turn is next. */
interface ServiceState {
  generation: number
  names: string[]
  /** The receiving process of each of names (parsed once per generation, not per request). */
  pids: number[]
  next: number
}

export class Client {
  private readonly token = randomBytes(6).toString('base64url')
  private nextId = 0
  private replies: Channel<Reply> | null = null
  private replyName = ''
  private readonly pending = new Map<number, Pending>()
  private readonly services = new Map<string, ServiceState>()
  private watch: NodeJS.Timeout | null = null
  /** The deadline timer (unref'd; the watch keeps the process alive) and the deadline it is armed for. */
  private deadlineTimer: NodeJS.Timeout | null = null
  private armedFor = Infinity
  private readonly counts = { requests: 0, replies: 0, remoteErrors: 0, timeouts: 0, retries: 0, peerGone: 0, lateReplies: 0 }

  constructor(private readonly host: PatternHost) {}

  /** Checks the options (see ../../options.ts) and the name on every call, before anything is created or sent; rejects (never throws) with what they throw. */
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
          id: ++this.nextId, service, resolve, reject, timeoutMs, retriesLeft: retries, attempts: 0, deadline: Infinity, payload, server: null, serverPid: 0, suspect: 0, signal, onAbort: null,
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
    p.deadline = deadline
    const message: Request = [this.token, p.id, this.replyName, deadline, payload]
    for (;;) {
      if (p.server === null) {
        const next = this.pick(p.service)
        if (next === null) return this.settle(p, new NoServer(p.service), false)
        p.server = next
        p.serverPid = this.pickedPid
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
      if (deadline < this.armedFor) this.armDeadline(deadline)
      return
    }
  }

  /** (Re-)arms the deadline timer for `at` (Date.now() ms). */
  private armDeadline(at: number): void {
    this.armedFor = at
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer)
    this.deadlineTimer = setTimeout(this.onDeadline, Math.max(0, at - Date.now()))
    this.deadlineTimer.unref()
  }

  /** The deadline timer fired: time out what is due, re-arm for the earliest deadline left. */
  private readonly onDeadline = (): void => {
    this.deadlineTimer = null
    this.armedFor = Infinity
    const now = Date.now()
    for (const p of [...this.pending.values()]) if (p.deadline <= now) this.timedOut(p)
    let next = Infinity
    for (const p of this.pending.values()) if (p.deadline < next) next = p.deadline
    if (next < Infinity && next < this.armedFor) this.armDeadline(next)
  }

  private timedOut(p: Pending): void {
    if (!this.pending.has(p.id)) return
    if (p.retriesLeft > 0) {
      p.retriesLeft--
      this.counts.retries++
      this.attempt(p, p.payload)
      return
    }
    this.counts.timeouts++
    this.settle(p, new RequestTimeout(p.service, p.timeoutMs, p.attempts), false)
  }

  /** Resolves or rejects p once; later replies for its id are discarded. */
  private settle(p: Pending, value: unknown, ok: boolean): void {
    if (!this.pending.delete(p.id)) return
    if (p.onAbort !== null) p.signal!.removeEventListener('abort', p.onAbort)
    if (ok) p.resolve(value)
    else p.reject(value)
    if (this.pending.size === 0 && this.watch !== null) {
      // An idle client keeps nobody alive, and sleeps: the watch stops once
      // the turn's microtasks found no new request (queued after the
      // settle, so an `await request()` loop sends its next one first and
      // keeps the interval). Left to its next tick, it woke an idle client
      // once, up to WATCH_MS after its last reply.
      this.watch.unref()
      void resolved.then(this.stopIfIdle)
    }
  }

  private readonly stopIfIdle = (): void => {
    if (this.pending.size !== 0) return
    this.stopWatch()
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer) // nothing is due: no wake in timeoutMs either
    this.deadlineTimer = null
    this.armedFor = Infinity
  }

  /** The next live-looking server of service, round robin; null when none is listed. */
  private pick(service: string): Channel<Request> | null {
    const generation = this.host.channelGeneration
    let state = this.services.get(service)
    if (state === undefined || state.generation !== generation) {
      const names: string[] = []
      const pids: number[] = []
      for (const name of this.host.channelNames(serverPrefix(service))) {
        const server = parseServer(name, service)
        if (server === null) continue
        names.push(name)
        pids.push(server.pid)
      }
      state = { generation, names, pids, next: state?.next ?? 0 }
      this.services.set(service, state)
    }
    if (state.names.length === 0) return null
    for (let tries = 0; tries < state.names.length; tries++) {
      const i = state.next++ % state.names.length
      const channel = this.host.existingChannel<Request>(state.names[i]!)
      if (channel !== null) {
        this.pickedPid = state.pids[i]!
        return channel
      }
    }
    return null
  }

  /** The receiving process of the channel pick() returned last. */
  private pickedPid = 0

  private onReply(reply: unknown): void {
    if (!isReply(reply)) return
    const p = this.pending.get(reply[0])
    if (p === undefined) { this.counts.lateReplies++; return }
    if (reply[1] === 1) {
      this.counts.replies++
      this.settle(p, reply[2], true)
    } else if (reply[1] === NO_SERVER) {
      this.settle(p, new NoServer(p.service), false) // a relay found no server behind it
    } else {
      this.counts.remoteErrors++
      this.settle(p, new RemoteError(p.service, p.serverPid, remoteInfo(reply[2])), false)
    }
  }

  /** This client's reply channel, made on the first request. */
  private ensureReplies(): void {
    if (this.replies !== null) return
    this.replyName = newReplyName(this.host)
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
    else this.watch.ref()
  }

  private stopWatch(): void {
    if (this.watch !== null) clearInterval(this.watch)
    this.watch = null
  }

  /** Every 100 ms while requests are pending: is each of their servers still receiving? */
  private check(): void {
    if (this.pending.size === 0) return this.stopWatch()
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

  stats(): ClientStats {
    return { ...this.counts, pending: this.pending.size }
  }

  /** Rejects pending requests with Closed and removes our reply channel. Called by bus.close(). */
  close(): void {
    for (const p of [...this.pending.values()]) this.settle(p, new Closed(`request to '${p.service}' (the bus closed)`), false)
    this.stopWatch()
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer)
    this.deadlineTimer = null
    this.armedFor = Infinity
    if (this.replies !== null) {
      this.host.retain() // balances the release in ensureReplies: closing the channel releases once
      this.replies.close()
      this.host.dropChannel(this.replyName, { force: true })
      this.replies = null
    }
  }
}
