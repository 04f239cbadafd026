/**
 * The Bus: the public API over a directory segment (channels and members)
 * plus one segment per channel. It owns the lifecycle (joining through
 * join.ts, leaving, closing), keeps the event loop alive while anything
 * receives, and hands out channels (channels.ts), 'peer-exit' (peers.ts)
 * and the patterns (../patterns/). Channels and patterns get private
 * context objects (ChannelContext, PatternHost), never the Bus itself.
 */
import { fork as forkChild, type ChildProcess, type ForkOptions } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Codec } from '@ipc/core'
import type { Channel, ChannelStats } from '../channel/channel.js'
import { Closed, InvalidArgType } from '../errors.js'
import { forgetOnExit, leaveOnExit } from '../exit.js'
import { isAlive } from '../liveness.js'
import type { AttachInfo, BusOptions, ChannelOptions, DoorbellKind, SendOptions } from '../options.js'
import type { DropEvent, PatternHost } from '../patterns/host.js'
import { PubSub, type PubSubStats, type SubscribeOptions, type Subscription, type TopicOptions } from '../patterns/pubsub.js'
import { Rpc, type Handler, type RequestOptions, type RpcStats, type ServeOptions, type Server } from '../patterns/rpc/index.js'
import { TopicTable } from '../patterns/topics.js'
import { checkPatternName, parseServer, topicEntryName } from '../patterns/names.js'
import { KIND_CHANNEL, KIND_TOPIC } from '../naming.js'
import { channels as diagnostics, observed, report } from '../diagnostics.js'
import { detachSegment } from '../sysv.js'
import { ChannelTable } from './channels.js'
import { ATTACH_ENV, attachBus, createBus, joinMembers, leaveMembers, openBus, type Joined, type Membership } from './join.js'
import { Peers, type PeerExit } from './peers.js'

export { ATTACH_ENV } from './join.js'
export type { PeerExit } from './peers.js'
export type { ChannelOptions } from '../options.js'

export interface BusStats {
  name: string | null
  pid: number
  members: Array<{ pid: number; alive: boolean }>
  channels: ChannelStats[]
  /** Pub/sub counters of this process (drops included), once it used publish/subscribe. */
  pubsub?: PubSubStats
  /** Request/reply counters of this process, once it used request/serve. */
  rpc?: RpcStats
}

export interface BusEvents {
  'peer-exit': [exit: PeerExit]
  error: [error: unknown]
  /** A 'drop' subscription of this process was lapped and lost values (see pubsub.ts). */
  drop: [info: DropEvent]
}

/**
 * While a channel receives, a never-firing timer keeps the event loop
 * alive, as a listening server would: the doorbells themselves (signal
 * pipe, FIFO) are unref'd. It costs no CPU.
 */
class KeepAlive {
  private receivers = 0
  private timer: NodeJS.Timeout | null = null

  retain(): void {
    if (this.receivers++ === 0) this.timer = setInterval(() => {}, 0x7fffffff)
  }

  release(): void {
    if (--this.receivers === 0 && this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
    }
  }
}

export class Bus extends EventEmitter<BusEvents> implements AsyncDisposable {
  /** The bus's name, or null for a private bus. */
  readonly name: string | null
  readonly doorbell: DoorbellKind
  /** The real-time signal of the 'signal' doorbell. */
  readonly doorbellSignal: number
  readonly spinMicros: number | 'adaptive'
  readonly runtimeDir: string
  private readonly joined: Joined
  private readonly membership: Membership
  private readonly channels: ChannelTable
  private readonly topics: TopicTable
  private readonly peers: Peers
  /** What pub/sub and rpc get of this bus (see patterns/host.ts): a private object, not the bus. */
  private readonly host: PatternHost
  /** Registered with exit.ts: leaves synchronously if the thread exits with this bus open. */
  private readonly atExit = (): void => this.leaveAtExit()
  private closing: Promise<void> | null = null
  private exiting = false
  private pubsubState: PubSub | null = null
  private rpcState: Rpc | null = null

  private constructor(joined: Joined) {
    super()
    const { name, directory, options } = joined
    this.name = name
    this.joined = joined
    this.doorbell = options.doorbell
    this.doorbellSignal = options.doorbellSignal
    this.spinMicros = options.spinMicros
    this.runtimeDir = options.runtimeDir
    const codec = new Codec({ structures: directory.structures })
    const keepAlive = new KeepAlive()
    this.channels = new ChannelTable(name, directory, codec, options, keepAlive)
    const topics = this.topics = new TopicTable({ directory, busName: name, mode: options.mode, codec })
    this.host = {
      pattern: {
        busName: name,
        doorbell: options.doorbell,
        doorbellSignal: options.doorbellSignal,
        spinMicros: options.spinMicros,
        runtimeDir: options.runtimeDir,
        busOptions: options.userOptions,
        topic: (topic, sizes) => {
          this.checkOpen()
          return topics.topic(topic, sizes)
        },
      },
      channel: <T>(channel: string, o?: ChannelOptions) => this.channel<T>(channel, o),
      existingChannel: <T>(channel: string) => {
        this.checkOpen()
        return this.channels.existing<T>(channel)
      },
      channelNames: (prefix) => this.channelNames(prefix),
      dropChannel: (channel, o) => this.dropChannel(channel, o),
      get channelGeneration() {
        return directory.channelGeneration
      },
      retain: () => keepAlive.retain(),
      release: () => keepAlive.release(),
      emit: (event: 'drop' | 'error', arg: unknown) => this.emit(event, arg as never),
      listenerCount: (event) => this.listenerCount(event),
    }
    this.membership = joinMembers(joined)
    if (observed(diagnostics.join)) report(diagnostics.join, { bus: name, pid: process.pid, slot: this.membership.slot })
    leaveOnExit(this.atExit)
    this.peers = new Peers(directory, (exit) => {
      if (observed(diagnostics.peerExit)) report(diagnostics.peerExit, { bus: name, pid: exit.pid, code: exit.code, signal: exit.signal, crashed: exit.died })
      this.emit('peer-exit', exit)
    })
    ;(this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'peer-exit') this.peers.start()
    })
  }

  /** @deprecated The doorbell's signal number: use doorbellSignal (`signal` means an AbortSignal elsewhere). */
  get signal(): number {
    return this.doorbellSignal
  }

  // ================================================================ opening (join.ts)

  /**
   * Creates a bus. With a name, unrelated processes can join it with
   * Bus.open(name); without one it is private to this process and the
   * children it forks. Rejects with BusExists if a live bus has that name
   * (a dead one is reclaimed), PermissionDenied, NotABus (another program's
   * segment sits at the name's key).
   */
  static async create(name?: string | BusOptions, options?: BusOptions): Promise<Bus> {
    if (typeof name === 'object' && name !== null) return Bus.create(undefined, name)
    return createBus(name, options, (joined) => new Bus(joined))
  }

  /**
   * Joins an existing named bus. Rejects with NoSuchBus (none, or only a
   * dead one, which is reclaimed), PermissionDenied (its mode does not let
   * this user in), NotABus (a foreign segment at the name's key).
   */
  static async open(name: string, options?: BusOptions): Promise<Bus> {
    return openBus(name, options, (joined) => new Bus(joined))
  }

  /**
   * Joins the bus at `address` (see bus.address), or, with no address, the
   * bus of the parent that started this process with bus.fork() (rejects
   * with NotForked when there is none). Works for private buses too.
   */
  static async attach(address?: string, options?: BusOptions): Promise<Bus> {
    return attachBus(address, options, (joined) => new Bus(joined))
  }

  // ================================================================ using

  /**
   * The channel `name`, created on first use by either side. Messages sent
   * before anyone receives wait in the ring. Values are msgpack-encoded;
   * T is the type both sides agree on.
   */
  channel<T = unknown>(name: string, options?: ChannelOptions): Channel<T> {
    this.checkOpen()
    return this.channels.channel<T>(name, options)
  }

  /** A string another process passes to Bus.attach() to join this bus (what bus.fork() puts in the environment). */
  get address(): string {
    this.checkOpen()
    const info: AttachInfo = { directory: this.joined.dir.id, name: this.name, options: this.joined.options.userOptions }
    return JSON.stringify(info)
  }

  /**
   * Starts modulePath with child_process.fork; the child joins this bus
   * with `await Bus.attach()`. The child's exit is reported as 'peer-exit'.
   */
  fork(modulePath: string | URL, args: readonly string[] = [], options: ForkOptions = {}): ChildProcess {
    this.checkOpen()
    const path = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath
    const child = forkChild(path, [...args], { ...options, env: { ...(options.env ?? process.env), [ATTACH_ENV]: this.address } })
    this.peers.track(child)
    return child
  }

  /**
   * Names of the channels that exist on this bus (optionally only those
   * starting with `prefix`). Cheap when nothing changed: the list is cached
   * against the directory's channel generation.
   */
  channelNames(prefix = ''): string[] {
    this.checkOpen()
    return this.channels.names(prefix)
  }

  /**
   * Names of the topics that exist on this bus (optionally only those
   * starting with `prefix`): every topic anyone published or subscribed to
   * since the bus was created. Reads the directory on every call.
   */
  topicNames(prefix = ''): string[] {
    this.checkOpen()
    if (typeof prefix !== 'string') throw new InvalidArgType('prefix', 'of type string', prefix)
    const entry = topicEntryName(prefix)
    return this.joined.directory.channels()
      .filter((c) => c.kind === KIND_TOPIC && c.name.startsWith(entry))
      .map((c) => c.name.slice(entry.length - prefix.length))
  }

  /**
   * The live servers of `service` on this bus, any process (bus.serve() in
   * this one included): each one's request channel and pid. A server whose
   * process died is not listed, even before its channel is cleaned up.
   */
  servers(service: string): Array<{ channel: string; pid: number }> {
    this.checkOpen()
    checkPatternName('service name', service)
    const out: Array<{ channel: string; pid: number }> = []
    for (const c of this.joined.directory.channels()) {
      if (c.kind !== KIND_CHANNEL) continue
      const server = parseServer(c.name, service)
      // The server made its channel: the entry's owner is the serving process.
      if (server !== null && isAlive(c.owner.pid, c.owner.startTime)) out.push({ channel: c.name, pid: server.pid })
    }
    return out
  }

  /**
   * Removes a channel's directory entry when nobody receives on it any more
   * (its receiver is dead, or there never was one and `force` is set), so
   * that the name can be reused: processes still attached keep their
   * mapping; the kernel frees the segment when the last one detaches.
   * Returns whether it removed the entry. Used to clean up after dead
   * subscribers and servers.
   */
  dropChannel(name: string, options: { force?: boolean } = {}): boolean {
    this.checkOpen()
    return this.channels.drop(name, options)
  }

  /** Members and per-channel, per-lane counters. */
  stats(): BusStats {
    this.checkOpen()
    return {
      name: this.name,
      pid: process.pid,
      members: this.joined.directory.members().map((m) => ({ pid: m.pid, alive: isAlive(m.pid, m.startTime) })),
      channels: this.channels.stats(),
      ...(this.pubsubState === null ? {} : { pubsub: this.pubsubState.stats() }),
      ...(this.rpcState === null ? {} : { rpc: this.rpcState.stats() }),
    }
  }

  // ================================================================ patterns (../patterns/)

  /**
   * Publishes value on topic: written once, read by every subscriber.
   * Resolves with the number of subscriptions it was published to, once it
   * is in the ring (a 'block' subscriber a ring behind makes it wait). See
   * pubsub.ts.
   */
  publish<T = unknown>(topic: string, value: T, options?: SendOptions): Promise<number> {
    if (this.closing !== null) return Promise.reject(new Closed(`bus '${this.name ?? 'private'}'`))
    return (this.pubsubState ??= new PubSub(this.host)).publish(topic, value, options)
  }

  /** Publishes value now, or returns false (nothing written) when a 'block' subscriber has no room. Throws what publish() rejects with. */
  tryPublish<T = unknown>(topic: string, value: T): boolean {
    this.checkOpen()
    return (this.pubsubState ??= new PubSub(this.host)).tryPublish(topic, value)
  }

  /** Publishes values in order, in as few bursts as room allows; resolves with the subscriber count when the last is written. */
  publishMany<T = unknown>(topic: string, values: readonly T[], options?: SendOptions): Promise<number> {
    if (this.closing !== null) return Promise.reject(new Closed(`bus '${this.name ?? 'private'}'`))
    return (this.pubsubState ??= new PubSub(this.host)).publishMany(topic, values, options)
  }

  /** Calls handler with each value published on topic from now on; without a handler, iterate the subscription. See pubsub.ts. */
  subscribe<T = unknown>(topic: string, handler: (value: T) => unknown, options?: SubscribeOptions): Subscription<T>
  subscribe<T = unknown>(topic: string, options?: SubscribeOptions): Subscription<T>
  subscribe<T = unknown>(topic: string, handler?: ((value: T) => unknown) | SubscribeOptions, options?: SubscribeOptions): Subscription<T> {
    this.checkOpen()
    if (typeof handler === 'function') return (this.pubsubState ??= new PubSub(this.host)).subscribe(topic, handler, options)
    return (this.pubsubState ??= new PubSub(this.host)).subscribe<T>(topic, undefined, handler ?? options)
  }

  /**
   * Declares topic: creates it with options' sizes and schema if nobody has
   * (a publisher's way to fix the schema before it publishes), else checks
   * the schema (SchemaMismatch). Publishing and subscribing without a schema
   * use the stored one. See pubsub.ts.
   */
  topic(topic: string, options?: TopicOptions): void {
    this.checkOpen()
    const pubsub = this.pubsubState ??= new PubSub(this.host)
    pubsub.declare(topic, options)
  }

  /** Answers requests to `name` with handler until the returned server is closed. See rpc/. */
  serve<Req = any, Res = any>(name: string, handler: Handler<Req, Res>, options?: ServeOptions): Server {
    this.checkOpen()
    return (this.rpcState ??= new Rpc(this.host)).serve(name, handler, options)
  }

  /** Sends payload to a server of `name` and resolves with its reply. See rpc/. */
  request<Res = unknown>(name: string, payload: unknown, options?: RequestOptions): Promise<Res> {
    if (this.closing !== null) return Promise.reject(new Closed(`bus '${this.name ?? 'private'}'`))
    return (this.rpcState ??= new Rpc(this.host)).request<Res>(name, payload, options)
  }

  // ================================================================ closing

  /**
   * Closes every channel, leaves the bus and detaches. The last member of a
   * named bus removes it. Children started with fork() are not killed.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      try {
        this.pubsubState?.close() // unsubscribes, stops serving: removes their channels while the bus is open
        this.rpcState?.close()
      } finally {
        this.closing = this.doClose()
      }
    }
    return this.closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private async doClose(): Promise<void> {
    this.leave()
    await new Promise((resolve) => setImmediate(resolve)) // after the channels' deferred detaches
    detachSegment(this.joined.dir)
  }

  /**
   * Leaves the bus: closes every channel, frees the member slot, and, as the
   * last member of a named bus, removes its channel segments and directory.
   * Synchronous: also what happens when the thread exits without close().
   */
  private leave(): void {
    forgetOnExit(this.atExit)
    this.peers.stop()
    this.channels.closeAll()
    this.topics.closeAll(this.exiting)
    const last = leaveMembers(this.joined, this.membership)
    if (observed(diagnostics.leave)) report(diagnostics.leave, { bus: this.name, pid: process.pid, last })
  }

  /** The thread is exiting with this bus open (exit.ts). */
  private leaveAtExit(): void {
    if (this.closing !== null) return
    this.closing = Promise.resolve()
    this.exiting = true
    this.channels.processExiting() // the process is exiting: nothing to keep mapped
    try {
      this.pubsubState?.close()
      this.rpcState?.close()
    } finally {
      this.leave()
    }
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new Closed(`bus '${this.name ?? 'private'}'`)
  }
}
