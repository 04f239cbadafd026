/**
 * How a server process sends replies: to the client's reply channel
 * `r:<pid>.<n>` named in the request. One sender per bus serves all of its
 * servers; it keeps the last REPLY_CHANNELS reply channels open (least
 * recently used ones are closed) and lets go of those whose client left.
 *
 * A reply that cannot travel (Unserializable, MessageTooLarge) is replaced
 * by an error saying why. A full client ring is waited on until the
 * request's deadline; a client that died or left is forgotten; anything
 * else is reported (see ../report.ts), never thrown at a handler.
 */
import type { Channel } from '../../channel/channel.js'
import { ChannelFull, Closed, MessageTooLarge, PeerGone, Unserializable } from '../../errors.js'
import type { PatternHost } from '../host.js'
import { REPLY_PREFIX } from '../names.js'
import { reportError } from '../../report.js'
import { errorInfo, type Reply } from './wire.js'

/** Reply channels a process keeps open to send replies on. */
const REPLY_CHANNELS = 64

export class Replies {
  /** Channels to clients we reply to, least recently used first. */
  private readonly open = new Map<string, Channel<Reply>>()
  private generation = -1

  constructor(private readonly host: PatternHost) {}

  /** Sends a reply to a client's reply channel; a gone client is forgotten. */
  send(replyTo: string, reply: Reply, deadline: number): void {
    let channel: Channel<Reply> | null
    try {
      channel = this.channelTo(replyTo)
    } catch (err) {
      reportError(this.host, `replying on '${replyTo}' threw`, err)
      return
    }
    if (channel === null) return // the client left (its reply channel is gone)
    let bytesOk = true
    try {
      if (channel.trySend(reply)) return
    } catch (err) {
      if (err instanceof PeerGone || err instanceof Closed) { this.drop(replyTo, channel); return }
      if (!(err instanceof Unserializable || err instanceof MessageTooLarge) || reply[1] === 0) { reportError(this.host, `replying on '${replyTo}' threw`, err); return }
      // The handler's value cannot travel: tell the caller why instead.
      reply[1] = 0
      reply[2] = errorInfo(err)
      bytesOk = false
    }
    if (!bytesOk) return this.send(replyTo, reply, deadline)
    // The client's ring is full: wait, but not past its deadline.
    const timeout = typeof deadline === 'number' && Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : undefined
    channel.send(reply, { timeout }).catch((err: unknown) => {
      if (err instanceof PeerGone || err instanceof Closed) this.drop(replyTo, channel)
      else if (!(err instanceof ChannelFull)) reportError(this.host, `replying on '${replyTo}' threw`, err)
    })
  }

  /** An open channel to the reply channel `name`; null when its client left. */
  private channelTo(name: string): Channel<Reply> | null {
    const generation = this.host.channelGeneration
    if (generation !== this.generation) {
      // Clients that closed their bus removed their reply channels: let go of ours.
      this.generation = generation
      const listed = new Set(this.host.channelNames(REPLY_PREFIX))
      for (const [n, ch] of this.open) {
        if (listed.has(n)) continue
        this.open.delete(n)
        if (!ch.isReceiving) ch.close()
      }
    }
    const known = this.open.get(name)
    if (known !== undefined) {
      this.open.delete(name)
      this.open.set(name, known)
      return known
    }
    const channel = this.host.existingChannel<Reply>(name)
    if (channel === null) return null
    this.open.set(name, channel)
    if (this.open.size > REPLY_CHANNELS) {
      const [oldest, ch] = this.open.entries().next().value!
      this.open.delete(oldest)
      if (!ch.isReceiving) ch.close() // (our own reply channel stays)
    }
    return channel
  }

  private drop(name: string, channel: Channel<Reply>): void {
    this.open.delete(name)
    try {
      this.host.dropChannel(name)
    } catch {
      // bus closed
    }
    if (!channel.isReceiving) channel.close()
  }

  /** Closes the reply channels (not our own client's, which is receiving). Called by bus.close(). */
  close(): void {
    for (const ch of this.open.values()) if (!ch.isReceiving) ch.close()
    this.open.clear()
  }
}
