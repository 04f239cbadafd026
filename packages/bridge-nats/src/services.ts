/**
 * The service half of a bridge. Per bridged service, one of two modes,
 * chosen again every pollMs from bus.servers(service) (the bridge's own
 * relay excluded):
 *
 *   local   live servers here: the bridge answers NATS requests on
 *           `<prefix>.s.<service>` in queue group `<prefix>.s.<service>`
 *           (several hosts with servers share the load, one gets each
 *           request) by calling them with bus.request. Local clients reach
 *           them directly: local servers are preferred.
 *   remote  none here: the bridge serves the service on the bus as a relay
 *           (serve option `relay`) that forwards each request as one NATS
 *           request. With no responder anywhere NATS answers at once (no
 *           responders) and the caller gets NoServer, as on one host.
 *
 * The modes exclude each other on one host, so a request never comes back
 * to the host it left. Across the switch (a server starting or stopping
 * here) a request may meet the other mode; it then gets NoServer (or
 * PeerGone, queued in a relay that stopped), never a loop.
 *
 * Semantics end to end:
 * - Deadlines: the caller's own RequestTimeout fires at its deadline, as on
 *   one host. Behind it, as a handler on one host runs to completion and
 *   keeps its reply for a retry of the same id, the relay keeps waiting for
 *   the far reply `replyLinger` ms longer (header Ipc-Timeout: the time left
 *   plus the linger; the far bridge calls its servers with that timeout, so
 *   a far server skips a request only once that has passed).
 * - Errors: the far handler's error comes back as data (name, message, code,
 *   stack) and is rethrown by the relay, so the caller's RemoteError carries
 *   the original name, code and message (serverPid is the relaying bridge's).
 * - At-most-once: the relay is a bus server, so a client's retries of one
 *   id are answered from its memory; it sends each request to NATS once and
 *   the far bridge calls bus.request once, without retries. A request lost
 *   with the NATS connection is a timeout, never run twice.
 */
import { NoServer, RemoteError, RequestTimeout, type RequestContext, type Server } from '@ipc/bus'
import { headers, type Msg, type Subscription as NatsSubscription } from '@nats-io/transport-node'
import type { BridgeContext } from './context.js'
import { BridgeBadMessage, BridgeMessageTooLarge } from './errors.js'
import {
  ORIGIN_HEADER, REPLY_ERROR, REPLY_NO_SERVER, REPLY_OK, REPLY_TIMEOUT, TIMEOUT_HEADER, decode, decodeReply, encode, encodeReply, type ReplyStatus,
} from './wire.js'

/** How much longer than the caller the relay's NATS request waits (the caller's own timeout fires first). */
const GRACE_MS = 250
/** A NATS request needs a timeout: for a caller that waits forever, this (about 24 days, the longest timer). */
const FOREVER_MS = 0x7fffffff - GRACE_MS
/** The longest finite timeout bus.request takes (Node's longest timer). */
const MAX_TIMER_MS = 0x7fffffff
/** Bytes a reply's headers may take (NATS adds none of ours to a reply, only its status line). */
const REQUEST_HEADER_BYTES = 128

interface ServiceState {
  readonly service: string
  readonly subject: string
  relay: Server | null
  natsSub: NatsSubscription | null
}

export class ServiceBridge {
  private readonly states: ServiceState[]
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(private readonly ctx: BridgeContext, services: readonly string[], private readonly concurrency: number, private readonly linger: number) {
    this.states = services.map((service) => ({ service, subject: ctx.subjects.service(service), relay: null, natsSub: null }))
  }

  start(): void {
    this.check()
    if (this.states.length > 0) {
      this.timer = setInterval(() => this.check(), this.ctx.pollMs)
      this.timer.unref()
    }
  }

  /** Puts each service in the mode its local servers call for. */
  private check(): void {
    if (this.closed) return
    for (const s of this.states) {
      try {
        const local = this.ctx.bus.servers(s.service).filter((x) => x.channel !== s.relay?.channelName)
        if (local.length > 0) this.goLocal(s)
        else this.goRemote(s)
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ERR_CLOSED') return this.stop('the bus closed') // closed before the bridge: nothing left to watch
        this.ctx.report(err)
      }
    }
  }

  private stop(why: string): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.ctx.debug('services: stopped looking for local servers: %s', why)
  }

  private goLocal(s: ServiceState): void {
    if (s.relay !== null) {
      void s.relay.close()
      s.relay = null
    }
    if (s.natsSub === null) {
      s.natsSub = this.ctx.nc.subscribe(s.subject, { queue: s.subject, callback: (err, msg) => { if (err === null) void this.answer(s, msg) } })
      this.ctx.debug('service %s: served here, answering %s', s.service, s.subject)
    }
  }

  private goRemote(s: ServiceState): void {
    if (s.natsSub !== null) {
      s.natsSub.unsubscribe()
      s.natsSub = null
    }
    if (s.relay === null) {
      s.relay = this.ctx.inner.serve(s.service, (payload: unknown, rc: RequestContext) => this.forward(s, payload, rc), { relay: true, concurrency: this.concurrency })
      this.ctx.debug('service %s: no server here, relaying to %s', s.service, s.subject)
    }
  }

  // ------------------------------------------------ remote mode: the relay's handler

  private async forward(s: ServiceState, payload: unknown, rc: RequestContext): Promise<unknown> {
    if (!this.ctx.connected()) throw new NoServer(s.service) // NATS is down: no server reachable
    const left = rc.deadline - Date.now()
    if (left <= 0) throw new RequestTimeout(s.service, 0)
    const data = encode(payload)
    const max = this.ctx.maxPayload()
    if (data.length + REQUEST_HEADER_BYTES > max) {
      this.ctx.counts.tooLarge++
      throw new BridgeMessageTooLarge(s.subject, data.length + REQUEST_HEADER_BYTES, max)
    }
    const h = headers()
    h.set(ORIGIN_HEADER, this.ctx.id)
    const wait = Math.ceil(left) + this.linger // the far side's timeout; Infinity stays Infinity
    if (Number.isFinite(wait)) h.set(TIMEOUT_HEADER, String(wait))
    this.ctx.counts.requestsOut++
    let reply: Msg
    try {
      reply = await this.ctx.nc.request(s.subject, data, { timeout: Number.isFinite(wait) ? Math.min(wait + GRACE_MS, FOREVER_MS) : FOREVER_MS, headers: h })
    } catch (err) {
      if (isNoResponders(err)) throw new NoServer(s.service)
      if (isTimeout(err)) throw new RequestTimeout(s.service, Math.ceil(left))
      throw err
    }
    let status: ReplyStatus
    let value: unknown
    try {
      [status, value] = decodeReply(reply.data)
    } catch (cause) {
      throw new BridgeBadMessage(s.subject, 'the reply is not a bridge reply', { cause })
    }
    switch (status) {
      case REPLY_OK: return value
      case REPLY_NO_SERVER: throw new NoServer(s.service)
      case REPLY_TIMEOUT: throw new RequestTimeout(s.service, Math.ceil(left))
      default: throw remoteError(value)
    }
  }

  // ------------------------------------------------ local mode: answering NATS

  private async answer(s: ServiceState, msg: Msg): Promise<void> {
    if (this.closed) return
    this.ctx.counts.requestsIn++
    let status: ReplyStatus
    let value: unknown
    try {
      if (s.relay !== null) throw new NoServer(s.service) // switched to remote mode since: do not loop back out
      const header = msg.headers?.get(TIMEOUT_HEADER)
      const timeout = header === undefined || header === '' ? Infinity : Math.min(Number(header), MAX_TIMER_MS)
      if (!(timeout > 0)) throw new RequestTimeout(s.service, 0)
      const payload = decode(msg.data)
      value = await this.ctx.inner.request(s.service, payload, { timeout })
      status = REPLY_OK
    } catch (err) {
      [status, value] = replyFor(err)
    }
    let data = encodeReply(status, value)
    if (data.length > this.ctx.maxPayload()) {
      this.ctx.counts.tooLarge++
      data = encodeReply(REPLY_ERROR, info(new BridgeMessageTooLarge(`${msg.reply ?? s.subject} (reply)`, data.length, this.ctx.maxPayload())))
    }
    try {
      msg.respond(data)
    } catch (err) {
      this.ctx.debug('could not answer a request for %s: %s', s.service, (err as Error).message) // disconnected: the caller times out
    }
  }

  modes(): Record<string, 'local' | 'remote'> {
    return Object.fromEntries(this.states.map((s) => [s.service, s.natsSub !== null ? 'local' : 'remote']))
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    const closing: Array<Promise<void>> = []
    for (const s of this.states) {
      s.natsSub?.unsubscribe()
      s.natsSub = null
      if (s.relay !== null) closing.push(s.relay.close())
      s.relay = null
    }
    await Promise.all(closing)
  }
}

/** What a failed local request becomes on the wire. */
function replyFor(err: unknown): [ReplyStatus, unknown] {
  if (err instanceof NoServer) return [REPLY_NO_SERVER, null]
  if (err instanceof RequestTimeout) return [REPLY_TIMEOUT, null]
  if (err instanceof RemoteError) return [REPLY_ERROR, err.remote] // the handler's own error, not the wrapper
  return [REPLY_ERROR, info(err)]
}

function info(err: unknown): { name: string; message: string; code: string | undefined; stack: string | undefined } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { name: err.name, message: err.message, code: code === undefined ? undefined : String(code), stack: err.stack }
  }
  return { name: 'Error', message: String(err), code: undefined, stack: undefined }
}

/** The far handler's error, rebuilt so that the caller's RemoteError names it (name, message, code, stack). */
function remoteError(value: unknown): Error {
  const v = (value ?? {}) as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown }
  const err = new Error(typeof v.message === 'string' ? v.message : String(v.message)) as Error & { code?: string }
  err.name = typeof v.name === 'string' ? v.name : 'Error'
  if (typeof v.code === 'string') err.code = v.code
  if (typeof v.stack === 'string') err.stack = v.stack
  return err
}

function isNoResponders(err: unknown): boolean {
  const e = err as { isNoResponders?: () => boolean; name?: string; cause?: { name?: string } }
  return (typeof e.isNoResponders === 'function' && e.isNoResponders()) || e.name === 'NoRespondersError' || e.cause?.name === 'NoRespondersError'
}

function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; cause?: { name?: string } }
  return e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError'
}
