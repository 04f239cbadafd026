/**
 * The topic half of a bridge.
 *
 * Out: every local topic a pattern matches is subscribed on the bridge's own
 * bus member with `noEcho` (so what the bridge itself published, the
 * imports, is never sent back out) and each value goes to NATS subject
 * `<prefix>.t.<topic>` with this bridge's origin header. Topics with a
 * wildcard are found by looking at bus.topicNames() every pollMs; a topic
 * that appears later is subscribed with `history`, so the values published
 * on it before the bridge looked still go out (as far as still in the ring).
 *
 * In: one NATS subscription per pattern; a message goes to the first
 * pattern that matches its topic (overlapping patterns would otherwise
 * deliver it twice), our own origin is dropped (the connection has noEcho
 * too), and the value is published on the local bus from the bridge's lane
 * (imports.ts: in order, queued while local subscribers have no room).
 *
 * Order: one local subscription per topic hands values over in publish
 * order per publisher; one NATS connection keeps them in order; the far
 * bridge publishes them in arrival order (bus.publish queues behind earlier
 * waiting publishes). So per-publisher order holds end to end.
 */
import type { Subscription } from '@ipc/bus'
import { headers, type Msg, type MsgHdrs, type Subscription as NatsSubscription } from '@nats-io/transport-node'
import type { BridgeContext } from './context.js'
import { BridgeBadMessage, BridgeMessageTooLarge } from './errors.js'
import { Importer } from './imports.js'
import { bridgeableTopic, hasWildcard, literalPrefix, matches } from './subjects.js'
import { ORIGIN_HEADER, decode, encode } from './wire.js'

/** `history` for a topic that appeared after the bridge started: everything still in its ring. */
const ALL_STILL_IN_RING = 1 << 30

export class TopicBridge {
  private readonly exported = new Map<string, Subscription>()
  private readonly natsSubs: NatsSubscription[] = []
  private readonly wildcards: string[]
  private readonly origin: MsgHdrs
  /** The origin header as the client sends it, and its size (counted against max_payload). */
  private readonly originEncoded: Uint8Array
  private readonly originBytes: number
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private readonly importer: Importer

  constructor(private readonly ctx: BridgeContext, private readonly patterns: readonly string[]) {
    this.wildcards = patterns.filter(hasWildcard)
    const origin = headers()
    origin.set(ORIGIN_HEADER, ctx.id)
    this.originEncoded = (origin as unknown as { encode(): Uint8Array }).encode()
    this.originBytes = this.originEncoded.length
    // The client encodes a message's headers on every publish; ours never
    // change, so they are encoded once (a fifth of a bridged stream's CPU
    // went there): the same headers, with encode() returning the bytes.
    const encoded = this.originEncoded
    this.origin = Object.assign(Object.create(origin) as MsgHdrs, { encode: () => encoded })
    this.importer = new Importer(ctx.inner, (err) => ctx.report(err), () => { ctx.counts.overflow++ })
  }

  /** Subscribes NATS (in) and the local topics there are now (out, from now on); then looks for new ones every pollMs. */
  start(): void {
    this.patterns.forEach((pattern, index) => {
      this.natsSubs.push(this.ctx.nc.subscribe(this.ctx.subjects.topic(pattern), { callback: (err, msg) => this.in(index, err, msg) }))
    })
    for (const p of this.patterns) if (!hasWildcard(p)) this.export(p, 0)
    this.scan(0)
    if (this.wildcards.length > 0) {
      this.timer = setInterval(() => this.scan(ALL_STILL_IN_RING), this.ctx.pollMs)
      this.timer.unref()
    }
  }

  /** Exports the local topics the wildcard patterns match that are not exported yet. */
  private scan(history: number): void {
    if (this.closed) return
    try {
      for (const pattern of this.wildcards) {
        for (const topic of this.ctx.bus.topicNames(literalPrefix(pattern))) {
          if (!this.exported.has(topic) && matches(pattern, topic) && bridgeableTopic(topic)) this.export(topic, history)
        }
      }
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_CLOSED') { // the bus closed before the bridge: nothing left to find
        if (this.timer !== null) clearInterval(this.timer)
        this.timer = null
        return
      }
      this.ctx.report(err) // a topic could not be subscribed (TooManySubscribers...): the next scan tries again
    }
  }

  private export(topic: string, history: number): void {
    if (this.exported.has(topic)) return
    const subject = this.ctx.subjects.topic(topic)
    const sub = this.ctx.inner.subscribe(topic, (value) => this.out(subject, value), { noEcho: true, history, policy: this.ctx.exportPolicy })
    this.exported.set(topic, sub)
    this.ctx.debug('exporting topic %s as %s', topic, subject)
  }

  private out(subject: string, value: unknown): void {
    const counts = this.ctx.counts
    let data: Uint8Array
    try {
      data = encode(value)
    } catch (err) {
      counts.lost++
      this.ctx.report(err)
      return
    }
    const max = this.ctx.maxPayload()
    if (data.length + this.originBytes > max) {
      counts.tooLarge++
      this.ctx.report(new BridgeMessageTooLarge(subject, data.length + this.originBytes, max))
      return
    }
    try {
      this.ctx.nc.publish(subject, data, { headers: this.origin })
      counts.exported++
    } catch (err) {
      counts.lost++ // the client refused it (closed, or its reconnect buffer is full)
      this.ctx.debug('lost a value for %s: %s', subject, (err as Error).message)
    }
  }

  private in(index: number, err: Error | null, msg: Msg): void {
    if (err !== null) return this.ctx.report(err)
    if (this.closed) return
    if (this.fromUs(msg)) return // our own (the connection's noEcho makes this rare)
    const topic = this.ctx.subjects.topicOf(msg.subject)
    if (topic === null) return
    for (let i = 0; i < index; i++) if (matches(this.patterns[i]!, topic)) return // an earlier pattern's subscription has it
    let value: unknown
    try {
      value = decode(msg.data)
    } catch (cause) {
      return this.ctx.report(new BridgeBadMessage(msg.subject, 'not msgpack', { cause }))
    }
    this.ctx.counts.imported++
    this.importer.publish(topic, value)
  }

  /**
   * Whether msg carries our origin header. Decoding every message's headers
   * costs a tenth of a bridged stream's CPU, so the raw header block is
   * compared with ours when the client's message exposes it (its fields
   * `_rdata` and `_msg.hdr`, @nats-io/nats-core 3.x), else decoded.
   */
  private fromUs(msg: Msg): boolean {
    const raw = msg as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } }
    const hdr = raw._msg?.hdr
    if (raw._rdata instanceof Uint8Array && typeof hdr === 'number') {
      if (hdr !== this.originBytes) return false // none (-1), or not a header block like ours
      return Buffer.compare(raw._rdata.subarray(0, hdr), this.originEncoded) === 0
    }
    return msg.headers?.get(ORIGIN_HEADER) === this.ctx.id
  }

  topics(): string[] {
    return [...this.exported.keys()]
  }

  close(): void {
    this.closed = true
    this.importer.close()
    if (this.timer !== null) clearInterval(this.timer)
    for (const sub of this.natsSubs) sub.unsubscribe()
    for (const sub of this.exported.values()) sub.unsubscribe()
    this.exported.clear()
  }
}
