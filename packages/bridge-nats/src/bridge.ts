/**
 * bridgeNats(bus, options): connects to NATS, joins the bus a second time
 * (the bridge's own member, whose topic lanes carry only what it imports
 * and whose servers are its relays), and starts the topic and service
 * halves (topics.ts, services.ts). The NatsBridge it resolves with reports
 * the connection ('status' events, NODE_DEBUG=ipc-bus-bridge) and stops
 * everything on close() or `await using`.
 *
 * Failure: the NATS client reconnects forever (maxReconnectAttempts -1,
 * every reconnectWait ms). Meanwhile local traffic is untouched (nothing
 * local waits for NATS); what local publishers publish is buffered by the
 * client (its reconnect buffer) and sent on reconnect, beyond that counted
 * as `lost`; what other hosts publish meanwhile never reaches us (NATS core
 * is at-most-once); requests to remote services fail with NoServer.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { debuglog } from 'node:util'
import { Bus } from '@ipc/bus'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { BridgeContext, BridgeStats, Counters } from './context.js'
import { BridgeConnectFailed } from './errors.js'
import { checkOptions, type BridgeOptions, type ResolvedOptions } from './options.js'
import { ServiceBridge } from './services.js'
import { Subjects } from './subjects.js'
import { TopicBridge } from './topics.js'

const debug = debuglog('ipc-bus-bridge')

/** How long close() lets the NATS client flush what it holds before it closes the connection anyway (ms). */
const CLOSE_FLUSH_MS = 1000

/** A change of the NATS connection. */
export interface BridgeStatus {
  state: 'disconnected' | 'reconnecting' | 'reconnected' | 'closed'
  /** The server concerned, when the client says. */
  server?: string
}

export interface BridgeEvents {
  status: [status: BridgeStatus]
  /** Something that stopped nothing: a value too large for NATS, a bad message from NATS, a failed local publish. */
  error: [error: unknown]
}

export class NatsBridge extends EventEmitter<BridgeEvents> implements AsyncDisposable {
  /** This bridge's origin tag on NATS. */
  readonly id: string
  readonly subjectPrefix: string
  private readonly counts: Counters = { exported: 0, imported: 0, lost: 0, overflow: 0, tooLarge: 0, requestsOut: 0, requestsIn: 0, disconnects: 0 }
  private isConnected = true
  private closing: Promise<void> | null = null
  private readonly topicBridge: TopicBridge
  private readonly serviceBridge: ServiceBridge

  /** @internal Made by bridgeNats(). */
  constructor(private readonly nc: NatsConnection, bus: Bus, private readonly inner: Bus, o: ResolvedOptions, id: string) {
    super()
    this.id = id
    this.subjectPrefix = o.subjectPrefix
    const ctx: BridgeContext = {
      nc,
      bus,
      inner,
      subjects: new Subjects(o.subjectPrefix),
      id,
      pollMs: o.pollInterval,
      exportPolicy: o.exportPolicy,
      counts: this.counts,
      connected: () => this.isConnected,
      maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
      report: (err) => this.report(err),
      debug: (message, ...args) => debug(message, ...args),
    }
    this.topicBridge = new TopicBridge(ctx, o.topics)
    this.serviceBridge = new ServiceBridge(ctx, o.services, o.concurrency, o.replyLinger)
    void this.watch()
  }

  /** @internal */
  async start(): Promise<void> {
    this.topicBridge.start()
    this.serviceBridge.start()
    await this.nc.flush() // our subscriptions are in place on the server before bridgeNats() resolves
  }

  /** Whether the NATS connection is up now. */
  get connected(): boolean {
    return this.isConnected
  }

  stats(): BridgeStats {
    return { connected: this.isConnected, ...this.counts, topics: this.topicBridge.topics(), services: this.serviceBridge.modes() }
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      let status: BridgeStatus | null = null
      if (s.type === 'disconnect') {
        this.isConnected = false
        this.counts.disconnects++
        status = { state: 'disconnected', server: s.server }
      } else if (s.type === 'reconnecting') {
        status = { state: 'reconnecting' }
      } else if (s.type === 'reconnect') {
        this.isConnected = true
        status = { state: 'reconnected', server: s.server }
      } else if (s.type === 'error') {
        this.report(s.error)
      }
      if (status === null) continue
      debug('NATS %s%s', status.state, status.server === undefined ? '' : ` (${status.server})`)
      this.emit('status', status)
    }
  }

  private report(err: unknown): void {
    debug('error: %s', err instanceof Error ? err.message : String(err))
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  /**
   * Stops bridging: the local subscriptions end, the relays stop serving,
   * the NATS client sends what it holds (up to a second) and closes
   * (requests still waiting for another host then fail), and the bridge's
   * bus member leaves. The bus itself stays open. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    this.topicBridge.close()
    // The relays stop taking requests now; the ones running end once the connection closes (their NATS requests reject).
    const relays = this.serviceBridge.close()
    if (!this.nc.isClosed()) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_FLUSH_MS) })
      await Promise.race([this.nc.flush().catch(() => {}), timeout])
      clearTimeout(timer)
      await this.nc.close().catch(() => {})
    }
    this.isConnected = false
    await relays
    this.emit('status', { state: 'closed' })
    await this.inner.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Bridges `bus` to NATS: the topics and services of `options` reach every
 * other bus bridged to the same NATS system under the same subjectPrefix.
 * Rejects with the bus's argument errors for bad options (nothing
 * connected), BridgeConnectFailed when no server answers within
 * connectTimeout.
 */
export async function bridgeNats(bus: Bus, options: BridgeOptions): Promise<NatsBridge> {
  if (!(bus instanceof Bus)) throw new TypeError('bridgeNats: the first argument must be a Bus')
  const o = checkOptions(options)
  const id = randomBytes(8).toString('base64url')
  let nc: NatsConnection
  try {
    nc = await connect({
      name: `ipc-bus-bridge ${bus.name ?? 'private'} ${process.pid}`,
      ...o.nats,
      servers: o.servers,
      timeout: o.connectTimeout,
      noEcho: true, // our own publishes never come back: the first guard against loops
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectWait,
      waitOnFirstConnect: false,
    })
  } catch (cause) {
    throw new BridgeConnectFailed(o.servers, o.connectTimeout, { cause })
  }
  let inner: Bus | null = null
  let bridge: NatsBridge | null = null
  try {
    inner = await Bus.attach(bus.address)
    bridge = new NatsBridge(nc, bus, inner, o, id)
    await bridge.start()
    debug('bridge %s: bus %s <-> %s (prefix %s)', id, bus.name ?? 'private', o.servers.join(','), o.subjectPrefix)
    return bridge
  } catch (err) {
    if (bridge !== null) await bridge.close() // its timers, relays, connection and member
    else {
      await nc.close().catch(() => {})
      await inner?.close()
    }
    throw err
  }
}
