/**
 * The Bus: a directory segment (channels and members, see @ipc/core
 * directory/layout.ts) plus one segment per channel.
 *
 * Kinds of bus:
 * - named (Bus.create(name) / Bus.open(name)): the directory lives at a key
 *   derived from the name, so unrelated processes find it. When the last
 *   member closes, it is removed; if every member died (SIGKILL), the next
 *   Bus.create or Bus.open of that name finds only dead members and
 *   reclaims it.
 * - private (Bus.create() with no name): for a process and the children it
 *   starts with bus.fork(), which find the directory by id through their
 *   environment. Every segment is marked IPC_RMID at once (Linux lets
 *   processes attach removed segments by id while any is attached), so when
 *   every process is gone, SIGKILL included, nothing is left.
 * Channel segments are always marked IPC_RMID at once: they are found by id
 * through the directory.
 */
import { fork as forkChild, type ChildProcess, type ForkOptions } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  ChannelSegment, Codec, Directory, DIRECTORY_MAGIC, DOORBELL_PIPE, DOORBELL_SIGNAL, SLOT_FREE, SLOT_READY, channelBytes, directorySize,
  identityWord, initializeChannel, initializeDirectory, type ChannelEntry,
} from '@ipc/core'
import { IPC_PRIVATE, shmctl } from '@ipc/native'
import { Channel, type ChannelStats } from './channel/channel.js'
import type { ChannelContext } from './channel/context.js'
import { BusExists, BusFull, Closed, CorruptSegment, NoSuchBus, NotABus, NotForked, PermissionDenied, TooManyChannels } from './errors.js'
import { cancelRelease, forgetOnExit, leaveOnExit, releaseOnTerminate } from './exit.js'
import { isAlive, processStartTime, selfIdentity } from './liveness.js'
import { busKey, checkName } from './naming.js'
import {
  abortSignalOf, parseAttachAddress, resolveChannelOptions, resolveOptions, type AttachInfo, type BusOptions, type ChannelOptions, type DoorbellKind,
  type ResolvedBusOptions, type ResolvedChannelOptions,
} from './options.js'
import { reclaimChannelSlot, removeChannelSegments } from './reclaim.js'
import { attachSegment, createSegment, detachSegment, isRemoved, lookupKey, removeSegment, type Segment } from './segments.js'
import type { DropEvent } from './patterns/host.js'
import { PubSub, type PubSubStats, type SubscribeOptions, type Subscription } from './patterns/pubsub.js'
import { Rpc, type Handler, type RequestOptions, type RpcStats, type ServeOptions, type Server } from './patterns/rpc/index.js'

/** Is the process that created segment id still running? (cpid only: a directory being built is seconds old at most.) */
function creatorAlive(id: number): boolean {
  try {
    return processStartTime(shmctl(id, 'IPC_STAT').cpid) >= 0
  } catch {
    return false
  }
}

/**
 * A directory that is not (yet) initialised: ours while being built, since
 * our creator zero-fills, then writes the magic and INITIALISED last; a
 * nonzero first word that is not our magic means a foreign segment.
 */
function isForeign(dir: Segment): boolean {
  const magic = new Uint32Array(dir.buffer, 0, 1)[0]!
  return magic !== 0 && magic !== DIRECTORY_MAGIC
}

/** Does any member of the bus still run? */
function hasLiveMember(directory: Directory): boolean {
  return directory.members().some((m) => isAlive(m.pid, m.startTime))
}

/** Environment variable through which bus.fork() tells a child where the bus is. */
export const ATTACH_ENV = 'IPC_BUS_ATTACH'

export type { ChannelOptions } from './options.js'

export interface PeerExit {
  pid: number
  /** True when it was killed by a signal or exited non-zero. */
  died: boolean
  code: number | null
  signal: NodeJS.Signals | null
}

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
  /** A publish skipped a full 'drop' subscriber (see pubsub.ts). */
  drop: [info: DropEvent]
}

const STRUCTURE_BYTES = 16 * 1024
/** How often 'peer-exit' listeners of a named bus get the member table compared (ms). */
const PEER_SWEEP_MS = 250
let privateCounter = 0

export class Bus extends EventEmitter<BusEvents> implements AsyncDisposable {
  /** The bus's name, or null for a private bus. */
  readonly name: string | null
  readonly doorbell: DoorbellKind
  /** The real-time signal of the 'signal' doorbell. */
  readonly doorbellSignal: number
  readonly spinMicros: number
  readonly runtimeDir: string
  private readonly options: ResolvedBusOptions
  private readonly userOptions: BusOptions
  private readonly dir: Segment
  private readonly directory: Directory
  private readonly codec: Codec
  private readonly member: number
  /** In a worker thread: the native exit actions that free the member slot if the thread is terminated. */
  private readonly memberRelease: Array<number | null>
  /** What every channel of this bus gets from it (see channel/context.ts): a private object, not the bus. */
  private readonly channelContext: ChannelContext
  private readonly channels = new Map<string, { channel: Channel<any>; segment: Segment }>()
  private readonly children = new Set<ChildProcess>()
  private closing: Promise<void> | null = null
  /** Set when leaving at thread exit (see leaveNow()). */
  private leaving = false
  private receivers = 0
  private sweeper: NodeJS.Timeout | null = null
  private namesCache: { generation: number; names: string[] } | null = null
  private keepAlive: NodeJS.Timeout | null = null
  private pubsubState: PubSub | null = null
  private rpcState: Rpc | null = null

  private constructor(name: string | null, dir: Segment, directory: Directory, options: ResolvedBusOptions, userOptions: BusOptions) {
    super()
    this.name = name
    this.dir = dir
    this.directory = directory
    this.options = options
    this.userOptions = userOptions
    this.doorbell = options.doorbell
    this.doorbellSignal = options.doorbellSignal
    this.spinMicros = options.spinMicros
    this.runtimeDir = options.runtimeDir
    this.codec = new Codec({ structures: directory.structures })
    this.channelContext = {
      doorbell: options.doorbell,
      doorbellSignal: options.doorbellSignal,
      spinMicros: options.spinMicros,
      runtimeDir: options.runtimeDir,
      retain: () => this.retain(),
      release: () => this.release(),
      forget: (channel) => this.forget(channel),
    }
    this.member = Bus.join(name, directory, options)
    const words = directory.memberWords(this.member)
    const me = identityWord(selfIdentity())
    this.memberRelease = [
      releaseOnTerminate(dir.id, words.state, 4, SLOT_READY, SLOT_FREE),
      releaseOnTerminate(dir.id, words.identity, 8, me, 0n),
    ]
    leaveOnExit(this)
    ;(this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'peer-exit' && this.sweeper === null) this.startSweeper()
    })
  }

  /** @deprecated The doorbell's signal number: use doorbellSignal (`signal` means an AbortSignal elsewhere). */
  get signal(): number {
    return this.doorbellSignal
  }

  /**
   * Takes a member slot, reclaiming the slots of dead members first when
   * the table is full (members that crashed or were killed never free
   * theirs). BusFull when every slot holds a live member.
   */
  private static join(name: string | null, directory: Directory, options: ResolvedBusOptions): number {
    const entry = {
      ...selfIdentity(),
      doorbellKind: options.doorbell === 'signal' ? DOORBELL_SIGNAL : DOORBELL_PIPE,
      signal: options.doorbell === 'signal' ? options.doorbellSignal : 0,
      heartbeat: Date.now(),
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return directory.addMember(entry)
      } catch (err) {
        if (!(err instanceof RangeError) || attempt > 0) throw err instanceof RangeError ? new BusFull(name ?? 'private', directory.memberSlots) : err
        directory.gc(isAlive)
      }
    }
  }

  /**
   * 'peer-exit' for members that are not our forked children (those are
   * reported from child_process's 'exit'): while someone listens, an
   * unref'd timer compares the member table every PEER_SWEEP_MS. A member
   * that left the table exited cleanly; one still listed but dead died. (A
   * member that joins and leaves cleanly between two sweeps goes unseen.)
   */
  private startSweeper(): void {
    /** Members seen alive at the last sweep, and dead ones already reported (pid:startTime). */
    let known = new Set<string>()
    const reported = new Set<string>()
    const me = selfIdentity()
    const sweep = (): void => {
      if (this.closing !== null) return
      const children = new Set([...this.children].map((c) => c.pid))
      const listed = new Set<string>()
      const alive = new Set<string>()
      for (const m of this.directory.members()) {
        if (m.pid === me.pid || children.has(m.pid)) continue
        const key = `${m.pid}:${m.startTime}`
        listed.add(key)
        if (isAlive(m.pid, m.startTime)) alive.add(key)
        else if (!reported.has(key)) {
          reported.add(key) // dead but still listed: it died (seen alive before or not)
          this.emit('peer-exit', { pid: m.pid, died: true, code: null, signal: null })
        }
      }
      for (const key of known) {
        if (!listed.has(key)) this.emit('peer-exit', { pid: Number(key.split(':')[0]), died: false, code: null, signal: null })
      }
      for (const key of reported) if (!listed.has(key)) reported.delete(key)
      known = alive
    }
    sweep()
    this.sweeper = setInterval(sweep, PEER_SWEEP_MS).unref()
  }

  // ================================================================ opening

  /**
   * Creates a bus. With a name, unrelated processes can join it with
   * Bus.open(name); without one it is private to this process and the
   * children it forks. Rejects with BusExists if a live bus has that name
   * (a dead one is reclaimed), PermissionDenied, NotABus (another program's
   * segment sits at the name's key).
   */
  static async create(name?: string | BusOptions, options?: BusOptions): Promise<Bus> {
    if (typeof name === 'object' && name !== null) return Bus.create(undefined, name)
    const opts = resolveOptions(options)
    const abort = abortSignalOf(options)
    abort?.throwIfAborted()
    if (name === undefined) return Bus.createPrivate(opts, opts.userOptions)
    checkName('bus name', name)
    const key = busKey(name)
    for (let attempt = 0; attempt < 200; attempt++) {
      const existing = lookupKey(key, `looking up bus '${name}'`)
      if (existing >= 0) {
        const verdict = Bus.inspect(existing, name)
        if (verdict === 'live') throw new BusExists(name)
        if (verdict === 'building') {
          await sleep(10, undefined, { signal: abort })
          continue
        }
        if (verdict === 'dead') removeChannelSegments(existing)
        removeSegment(existing) // dead or half-built: reclaim
        continue
      }
      let dir: Segment
      try {
        dir = createSegment(directorySize({ channels: opts.maxChannels, members: opts.maxMembers, structureBytes: STRUCTURE_BYTES }), opts.mode, key, false)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue // someone created it meanwhile
        throw err
      }
      initializeDirectory(dir.buffer, 0, { name, channels: opts.maxChannels, members: opts.maxMembers, structureBytes: STRUCTURE_BYTES })
      return new Bus(name, dir, new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() }), opts, opts.userOptions)
    }
    throw new BusExists(name)
  }

  private static createPrivate(opts: ResolvedBusOptions, userOptions: BusOptions): Bus {
    const name = `private:${process.pid}:${++privateCounter}`
    const dir = createSegment(directorySize({ channels: opts.maxChannels, members: opts.maxMembers, structureBytes: STRUCTURE_BYTES }), opts.mode, IPC_PRIVATE, true)
    initializeDirectory(dir.buffer, 0, { name, channels: opts.maxChannels, members: opts.maxMembers, structureBytes: STRUCTURE_BYTES })
    const bus = new Bus(null, dir, new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() }), opts, userOptions)
    return bus
  }

  /**
   * Joins an existing named bus. Rejects with NoSuchBus (none, or only a
   * dead one, which is reclaimed), PermissionDenied (its mode does not let
   * this user in), NotABus (a foreign segment at the name's key).
   */
  static async open(name: string, options?: BusOptions): Promise<Bus> {
    checkName('bus name', name)
    const opts = resolveOptions(options)
    abortSignalOf(options)?.throwIfAborted()
    const key = busKey(name)
    const id = lookupKey(key, `opening bus '${name}'`)
    if (id < 0) throw new NoSuchBus(name)
    const dir = attachSegment(id, `opening bus '${name}'`, (cause) => new NoSuchBus(name, 'it was removed as we opened it', { cause }))
    try {
      const directory = await Bus.waitForDirectory(dir, name, abortSignalOf(options))
      if (directory.name !== name) throw new NotABus(`the segment at bus '${name}''s key holds bus '${directory.name}' (a hash collision)`)
      if (!hasLiveMember(directory)) {
        removeChannelSegments(id, directory)
        removeSegment(id)
        throw new NoSuchBus(name, 'its processes have all exited (it was reclaimed)')
      }
      const bus = new Bus(name, dir, directory, opts, opts.userOptions)
      // The last member may have removed the bus between our lookup and our
      // joining: then we joined a corpse. (Registering first, then checking,
      // means a closing member either sees us and keeps the bus, or has
      // already marked it removed, which we see here.)
      if (isRemoved(id)) {
        await bus.close()
        throw new NoSuchBus(name, 'it was being removed by its last member as we joined')
      }
      return bus
    } catch (err) {
      if (!(err instanceof NoSuchBus) || !isRemoved(id)) detachSegment(dir)
      throw err
    }
  }

  /**
   * Joins the bus at `address` (see bus.address), or, with no address, the
   * bus of the parent that started this process with bus.fork() (rejects
   * with NotForked when there is none). Works for private buses too.
   */
  static async attach(address?: string, options?: BusOptions): Promise<Bus> {
    const raw = address ?? process.env[ATTACH_ENV]
    if (raw === undefined) throw new NotForked()
    const info: AttachInfo = parseAttachAddress(raw, address !== undefined ? 'the address' : ATTACH_ENV)
    const resolved = resolveOptions(options, info.options)
    abortSignalOf(options)?.throwIfAborted()
    const busName = info.name ?? 'private bus'
    const dir = attachSegment(info.directory, 'attaching to the parent bus', (cause) => new NoSuchBus(busName, 'its directory no longer exists', { cause }))
    try {
      const directory = await Bus.waitForDirectory(dir, busName, abortSignalOf(options))
      if (info.name !== null && directory.name !== info.name) throw new NoSuchBus(busName, `segment ${info.directory} now holds bus '${directory.name}'`)
      return new Bus(info.name, dir, directory, resolved, resolved.userOptions)
    } catch (err) {
      detachSegment(dir)
      throw err
    }
  }

  /**
   * What sits at a named bus's key: 'live', 'dead' (no live member),
   * 'building' (its creator is still initialising it), 'half-built' (its
   * creator died mid-init); NotABus for anything that is not ours.
   */
  private static inspect(id: number, name: string): 'live' | 'dead' | 'building' | 'half-built' {
    let dir: Segment
    try {
      dir = attachSegment(id, `inspecting bus '${name}'`)
    } catch (err) {
      if (err instanceof PermissionDenied) throw err
      return 'dead' // vanished meanwhile
    }
    try {
      if (!Directory.isInitialised(dir.buffer, 0)) {
        if (isForeign(dir)) throw new NotABus(`the segment at bus '${name}''s key (id ${id}) is not a bus directory`)
        return creatorAlive(id) ? 'building' : 'half-built'
      }
      const directory = new Directory(dir.buffer, 0)
      if (directory.name !== name) throw new NotABus(`the segment at bus '${name}''s key holds bus '${directory.name}'`)
      return hasLiveMember(directory) ? 'live' : 'dead'
    } finally {
      detachSegment(dir)
    }
  }

  /** Waits (up to 2 s) while the creator is still initialising the directory. */
  private static async waitForDirectory(dir: Segment, name: string, abort: AbortSignal | undefined): Promise<Directory> {
    for (let i = 0; i < 200; i++) {
      if (Directory.isInitialised(dir.buffer, 0)) return new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() })
      if (isForeign(dir) || !creatorAlive(dir.id)) break // foreign, or abandoned half-built
      await sleep(10, undefined, { signal: abort })
    }
    return new Directory(dir.buffer, 0) // throws NotABus, saying why
  }

  // ================================================================ using

  /**
   * The channel `name`, created on first use by either side. Messages sent
   * before anyone receives wait in the ring. Values are msgpack-encoded;
   * T is the type both sides agree on.
   */
  channel<T = unknown>(name: string, options?: ChannelOptions): Channel<T> {
    this.checkOpen()
    checkName('channel name', name)
    const co = resolveChannelOptions(this.userOptions, options) // every call, whether the channel exists or not
    const known = this.channels.get(name)
    if (known !== undefined) return known.channel as Channel<T>
    const { segment, core } = this.openChannel(name, co)
    const channel = new Channel<T>(name, core, segment.id, this.codec, this.channelContext, co.highWaterMark, co.zeroCopy)
    this.channels.set(name, { channel, segment })
    return channel
  }

  private openChannel(name: string, co: ResolvedChannelOptions): { segment: Segment; core: ChannelSegment } {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = this.directory.findChannel(name)
      if (entry !== undefined) {
        const opened = this.attachChannel(entry)
        if (opened !== null) return opened
        continue // stale entry replaced: look again
      }
      // A named bus's channels outlive their writers (see reclaim.ts); a
      // private bus's are removed by the kernel with their last process.
      const segment = createSegment(channelBytes(co.maxSenders, co.ringBytes), this.options.mode, IPC_PRIVATE, this.name === null)
      let added: { entry: ChannelEntry; created: boolean }
      try {
        initializeChannel(segment.buffer, 0, { lanes: co.maxSenders, laneCapacity: co.ringBytes, maxMessageBytes: co.maxMessageBytes })
        added = this.addChannelEntry({ name, segmentId: segment.id, kind: 0, capacity: co.ringBytes, lanes: co.maxSenders, owner: selfIdentity() })
        if (added.created) return { segment, core: new ChannelSegment(segment.buffer, 0, this.codec) }
      } catch (err) {
        discard(segment) // nothing stays created or attached
        throw err
      }
      discard(segment) // lost the race: use the winner's
      const opened = this.attachChannel(added.entry)
      if (opened !== null) return opened
    }
    throw new CorruptSegment(`bus '${this.name}' channel '${name}'`, name, 'could not be opened after 5 attempts')
  }

  /** Adds a channel entry, reclaiming the slot of an unused channel when the table is full; TooManyChannels when none is. */
  private addChannelEntry(entry: Omit<ChannelEntry, 'index'>): { entry: ChannelEntry; created: boolean } {
    for (;;) {
      try {
        return this.directory.addChannel(entry)
      } catch (err) {
        if (!(err instanceof RangeError) || !err.message.includes('channel slots')) throw err
        if (!reclaimChannelSlot(this.directory, this.codec)) throw new TooManyChannels(this.name ?? 'private', this.directory.channelSlots)
      }
    }
  }

  /** Attaches a channel's segment; null (after removing a stale entry) when the segment is gone or no longer the entry's. */
  private attachChannel(entry: ChannelEntry): { segment: Segment; core: ChannelSegment } | null {
    let segment: Segment
    try {
      segment = attachSegment(entry.segmentId, `opening channel '${entry.name}'`)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EINVAL' && code !== 'EIDRM') throw err
      // Every process that had it attached is gone, and so is the segment.
      this.directory.removeChannel(entry.index, entry.segmentId)
      return null
    }
    try {
      // Reclaimed meanwhile (reclaim.ts): the entry no longer names it.
      if (this.directory.findChannel(entry.name)?.segmentId !== entry.segmentId || (this.name !== null && isRemoved(entry.segmentId))) {
        detachSegment(segment)
        return null
      }
      return { segment, core: new ChannelSegment(segment.buffer, 0, this.codec) }
    } catch (err) {
      detachSegment(segment)
      throw err
    }
  }

  /** A string another process passes to Bus.attach() to join this bus (what bus.fork() puts in the environment). */
  get address(): string {
    this.checkOpen()
    const info: AttachInfo = { directory: this.dir.id, name: this.name, options: this.userOptions }
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
    this.children.add(child)
    child.once('exit', (code, signal) => {
      this.children.delete(child)
      if (child.pid !== undefined) this.emit('peer-exit', { pid: child.pid, died: signal !== null || code !== 0, code, signal })
    })
    return child
  }

  /**
   * Names of the channels that exist on this bus (optionally only those
   * starting with `prefix`). Cheap when nothing changed: the list is cached
   * against the directory's channel generation.
   */
  channelNames(prefix = ''): string[] {
    this.checkOpen()
    const generation = this.directory.channelGeneration
    if (this.namesCache === null || this.namesCache.generation !== generation) {
      this.namesCache = { generation, names: this.directory.channels().map((c) => c.name) }
    }
    return prefix === '' ? [...this.namesCache.names] : this.namesCache.names.filter((n) => n.startsWith(prefix))
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
    const entry = this.directory.findChannel(name)
    if (entry === undefined) return false
    let segment: Segment
    try {
      segment = attachSegment(entry.segmentId, `inspecting channel '${name}'`)
    } catch {
      return this.directory.removeChannel(entry.index, entry.segmentId)
    }
    try {
      const receiver = new ChannelSegment(segment.buffer, 0, this.codec).receiverIdentity()
      const abandoned = receiver === null ? options.force === true : !isAlive(receiver.pid, receiver.startTime)
      if (!abandoned) return false
      const known = this.channels.get(name)
      if (known !== undefined) known.channel.close()
      return this.directory.removeChannel(entry.index, entry.segmentId)
    } finally {
      detachSegment(segment)
    }
  }

  /** Members and per-channel, per-lane counters. */
  stats(): BusStats {
    this.checkOpen()
    return {
      name: this.name,
      pid: process.pid,
      members: this.directory.members().map((m) => ({ pid: m.pid, alive: isAlive(m.pid, m.startTime) })),
      channels: [...this.channels.values()].map(({ channel }) => channel.stats()),
      ...(this.pubsubState === null ? {} : { pubsub: this.pubsubState.stats() }),
      ...(this.rpcState === null ? {} : { rpc: this.rpcState.stats() }),
    }
  }

  /**
   * @internal (PatternHost) While a channel receives, a never-firing timer
   * keeps the event loop alive, as a listening server would: the doorbells
   * themselves (signal pipe, FIFO) are unref'd. It costs no CPU.
   */
  retain(): void {
    if (this.receivers++ === 0) this.keepAlive = setInterval(() => {}, 0x7fffffff)
  }

  /** @internal (PatternHost) */
  release(): void {
    if (--this.receivers === 0 && this.keepAlive !== null) {
      clearInterval(this.keepAlive)
      this.keepAlive = null
    }
  }

  /** @internal (PatternHost) encodes with the bus's codec; valid until the next encode. */
  encodeValue(value: unknown): Uint8Array {
    const scratch = this.codec.encode(value)
    return scratch.subarray(this.codec.encodedStart, this.codec.encodedEnd)
  }

  /** A channel closed itself. */
  private forget(name: string): void {
    const known = this.channels.get(name)
    if (known === undefined) return
    this.channels.delete(name)
    // A private bus's channel vanishes with its last attachment: while it
    // holds unread messages, we are the only process attached and another
    // member lives (who may receive them), keep it mapped (see keep()).
    if (this.name === null && !this.leaving && this.otherMemberLives() && keepsUnread(known)) {
      keep(known.segment, known.channel)
      return
    }
    // Not now: close() may have been called from a 'message' listener, in
    // the middle of a drain over this very mapping. Detach once it returns.
    setImmediate(() => detachSegment(known.segment))
  }

  // ================================================================ patterns (pubsub.ts, rpc.ts)

  /** Sends value to every current subscriber of topic; resolves with how many got it. See pubsub.ts. */
  publish<T = unknown>(topic: string, value: T): Promise<number> {
    if (this.closing !== null) return Promise.reject(new Closed(`bus '${this.name ?? 'private'}'`))
    return (this.pubsubState ??= new PubSub(this)).publish(topic, value)
  }

  /** Calls handler with each value published on topic from now on; without a handler, iterate the subscription. See pubsub.ts. */
  subscribe<T = unknown>(topic: string, handler: (value: T) => unknown, options?: SubscribeOptions): Subscription<T>
  subscribe<T = unknown>(topic: string, options?: SubscribeOptions): Subscription<T>
  subscribe<T = unknown>(topic: string, handler?: ((value: T) => unknown) | SubscribeOptions, options?: SubscribeOptions): Subscription<T> {
    this.checkOpen()
    if (typeof handler === 'function') return (this.pubsubState ??= new PubSub(this)).subscribe(topic, handler, options)
    return (this.pubsubState ??= new PubSub(this)).subscribe<T>(topic, undefined, handler ?? options)
  }

  /** Answers requests to `name` with handler until the returned server is closed. See rpc.ts. */
  serve<Req = any, Res = any>(name: string, handler: Handler<Req, Res>, options?: ServeOptions): Server {
    this.checkOpen()
    return (this.rpcState ??= new Rpc(this)).serve(name, handler, options)
  }

  /** Sends payload to a server of `name` and resolves with its reply. See rpc.ts. */
  request<Res = unknown>(name: string, payload: unknown, options?: RequestOptions): Promise<Res> {
    if (this.closing !== null) return Promise.reject(new Closed(`bus '${this.name ?? 'private'}'`))
    return (this.rpcState ??= new Rpc(this)).request<Res>(name, payload, options)
  }

  /** @internal Changes whenever a channel is added or removed (the patterns re-list only then). */
  get channelGeneration(): number {
    return this.directory.channelGeneration
  }

  /** @internal The channel `name` if it exists (null otherwise): the patterns never create another process's channel. */
  existingChannel<T = unknown>(name: string): Channel<T> | null {
    this.checkOpen()
    if (!this.channels.has(name) && this.directory.findChannel(name) === undefined) return null
    return this.channel<T>(name)
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
    detachSegment(this.dir)
  }

  /**
   * Leaves the bus: closes every channel, frees the member slot, and, as the
   * last member of a named bus, removes its channel segments and directory.
   * Synchronous: also what happens when the thread exits without close().
   */
  private leave(): void {
    forgetOnExit(this)
    if (this.sweeper !== null) clearInterval(this.sweeper)
    for (const { channel } of [...this.channels.values()]) channel.close()
    this.directory.removeMember(this.member)
    for (const h of this.memberRelease) cancelRelease(h)
    const last = !hasLiveMember(this.directory)
    if (last && this.name !== null && !isRemoved(this.dir.id)) {
      removeChannelSegments(this.dir.id, this.directory)
      removeSegment(this.dir.id)
    }
  }

  /** @internal The thread is exiting with this bus open (exit.ts). */
  leaveNow(): void {
    if (this.closing !== null) return
    this.closing = Promise.resolve()
    this.leaving = true // the process is exiting: nothing to keep mapped
    try {
      this.pubsubState?.close()
      this.rpcState?.close()
    } finally {
      this.leave()
    }
  }

  /** Does a member other than this process still run? */
  private otherMemberLives(): boolean {
    const me = selfIdentity()
    return this.directory.members().some((m) => (m.pid !== me.pid || m.startTime !== me.startTime) && isAlive(m.pid, m.startTime))
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new Closed(`bus '${this.name ?? 'private'}'`)
  }
}

/** Detaches a segment we created and marks it for removal. */
function discard(segment: Segment): void {
  detachSegment(segment)
  removeSegment(segment.id)
}

/** Mappings of private-bus channels kept for their unread messages (see forget()). */
const kept = new Map<Segment, Channel<any>>()
let keeper: NodeJS.Timeout | null = null

/**
 * Keeps a closed private-bus channel's segment mapped until another
 * process has attached it (a receiver, which then holds it) or nothing is
 * unread any more, looked at every second on an unref'd timer; at the
 * latest it goes when this process exits.
 */
function keep(segment: Segment, channel: Channel<any>): void {
  kept.set(segment, channel)
  keeper ??= setInterval(() => {
    for (const [s, c] of [...kept]) {
      let drop = true
      try {
        drop = shmctl(s.id, 'IPC_STAT').nattch > 1 || !c.hasUnread
      } catch { /* gone */ }
      if (!drop) continue
      kept.delete(s)
      detachSegment(s)
    }
    if (kept.size === 0 && keeper !== null) {
      clearInterval(keeper)
      keeper = null
    }
  }, 1000).unref()
}

function keepsUnread(known: { channel: Channel<any>; segment: Segment }): boolean {
  try {
    if (shmctl(known.segment.id, 'IPC_STAT').nattch > 1) return false
    return known.channel.hasUnread
  } catch {
    return false
  }
}
