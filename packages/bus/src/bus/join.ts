/**
 * Joining a bus: creating, opening or attaching its directory segment
 * (channels and members, see @ipc/core directory/layout.ts), reclaiming a
 * named bus whose members all died, and taking / giving back a member slot.
 * What it hands the Bus is a Joined: name, directory segment, Directory and
 * resolved options.
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
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Directory, DIRECTORY_MAGIC, DOORBELL_PIPE, DOORBELL_SIGNAL, SLOT_FREE, SLOT_READY, directorySize, identityWord, initializeDirectory } from '@ipc/core'
import { IPC_PRIVATE, shmctl } from '@ipc/native'
import { BusExists, BusFull, NoSuchBus, NotABus, NotForked, PermissionDenied } from '../errors.js'
import { cancelRelease, releaseOnTerminate } from '../exit.js'
import { hasLiveMember, isAlive, processStartTime, selfIdentity } from '../liveness.js'
import { busKey, checkName } from '../naming.js'
import { abortSignalOf, parseAttachAddress, resolveOptions, type AttachInfo, type BusOptions, type ResolvedBusOptions } from '../options.js'
import { removeChannelSegments } from '../reclaim.js'
import { channels as diagnostics, observed, report } from '../diagnostics.js'
import { attachSegment, createSegment, detachSegment, isRemoved, lookupKey, removeSegment, type Segment } from '../sysv.js'

/** Environment variable through which bus.fork() tells a child where the bus is. */
export const ATTACH_ENV = 'IPC_BUS_ATTACH'

/** What a Bus is built from. */
export interface Joined {
  /** The bus's name, or null for a private bus. */
  readonly name: string | null
  /** The directory segment, attached. */
  readonly dir: Segment
  readonly directory: Directory
  /** Its options.userOptions are what bus.address hands on. */
  readonly options: ResolvedBusOptions
}

/** Builds the bus from what was joined (the Bus's private constructor). */
type Make<B> = (joined: Joined) => B

const STRUCTURE_BYTES = 16 * 1024
let privateCounter = 0

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


function sizes(opts: ResolvedBusOptions): { channels: number; members: number; structureBytes: number } {
  return { channels: opts.maxChannels, members: opts.maxMembers, structureBytes: STRUCTURE_BYTES }
}

/**
 * Bus.create: a named bus at its name's key (reclaiming a dead or
 * half-built one found there), or, without a name, a private one.
 */
export async function createBus<B>(name: string | undefined, options: BusOptions | undefined, make: Make<B>): Promise<B> {
  const opts = resolveOptions(options)
  const abort = abortSignalOf(options)
  abort?.throwIfAborted()
  if (name === undefined) return createPrivate(opts, make)
  checkName('bus name', name)
  const key = busKey(name)
  for (let attempt = 0; attempt < 200; attempt++) {
    const existing = lookupKey(key, `looking up bus '${name}'`)
    if (existing >= 0) {
      const verdict = inspect(existing, name)
      if (verdict === 'live') throw new BusExists(name)
      if (verdict === 'building') {
        await sleep(10, undefined, { signal: abort })
        continue
      }
      if (verdict === 'dead') removeChannelSegments(existing)
      if (observed(diagnostics.reclaim)) report(diagnostics.reclaim, { bus: name ?? null, what: 'bus', detail: `${verdict} bus at the name's key (segment ${existing}) removed` })
      removeSegment(existing) // dead or half-built: reclaim
      continue
    }
    let dir: Segment
    try {
      dir = createSegment(directorySize(sizes(opts)), opts.mode, key, false)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue // someone created it meanwhile
      throw err
    }
    initializeDirectory(dir.buffer, 0, { name, ...sizes(opts) })
    return make({ name, dir, directory: new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() }), options: opts })
  }
  throw new BusExists(name)
}

function createPrivate<B>(opts: ResolvedBusOptions, make: Make<B>): B {
  const name = `private:${process.pid}:${++privateCounter}`
  const dir = createSegment(directorySize(sizes(opts)), opts.mode, IPC_PRIVATE, true)
  initializeDirectory(dir.buffer, 0, { name, ...sizes(opts) })
  return make({ name: null, dir, directory: new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() }), options: opts })
}

/** Bus.open: joins the live named bus `name`; a dead one is reclaimed (NoSuchBus). */
export async function openBus<B extends { close(): Promise<void> }>(name: string, options: BusOptions | undefined, make: Make<B>): Promise<B> {
  checkName('bus name', name)
  const opts = resolveOptions(options)
  abortSignalOf(options)?.throwIfAborted()
  const key = busKey(name)
  const id = lookupKey(key, `opening bus '${name}'`)
  if (id < 0) throw new NoSuchBus(name)
  const dir = attachSegment(id, `opening bus '${name}'`, (cause) => new NoSuchBus(name, 'it was removed as we opened it', { cause }))
  try {
    const directory = await waitForDirectory(dir, name, abortSignalOf(options))
    if (directory.name !== name) throw new NotABus(`the segment at bus '${name}''s key holds bus '${directory.name}' (a hash collision)`)
    if (!hasLiveMember(directory)) {
      removeChannelSegments(id, directory)
      if (observed(diagnostics.reclaim)) report(diagnostics.reclaim, { bus: name, what: 'bus', detail: `every member had exited: segment ${id} removed` })
      removeSegment(id)
      throw new NoSuchBus(name, 'its processes have all exited (it was reclaimed)')
    }
    const bus = make({ name, dir, directory, options: opts })
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

/** Bus.attach: joins the bus at `address`, or the forking parent's (ATTACH_ENV); NotForked when there is neither. */
export async function attachBus<B>(address: string | undefined, options: BusOptions | undefined, make: Make<B>): Promise<B> {
  const raw = address ?? process.env[ATTACH_ENV]
  if (raw === undefined) throw new NotForked()
  const info: AttachInfo = parseAttachAddress(raw, address !== undefined ? 'the address' : ATTACH_ENV)
  const resolved = resolveOptions(options, info.options)
  abortSignalOf(options)?.throwIfAborted()
  const busName = info.name ?? 'private bus'
  const dir = attachSegment(info.directory, 'attaching to the parent bus', (cause) => new NoSuchBus(busName, 'its directory no longer exists', { cause }))
  try {
    const directory = await waitForDirectory(dir, busName, abortSignalOf(options))
    if (info.name !== null && directory.name !== info.name) throw new NoSuchBus(busName, `segment ${info.directory} now holds bus '${directory.name}'`)
    return make({ name: info.name, dir, directory, options: resolved })
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
function inspect(id: number, name: string): 'live' | 'dead' | 'building' | 'half-built' {
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
async function waitForDirectory(dir: Segment, name: string, abort: AbortSignal | undefined): Promise<Directory> {
  for (let i = 0; i < 200; i++) {
    if (Directory.isInitialised(dir.buffer, 0)) return new Directory(dir.buffer, 0, { isAlive, self: selfIdentity() })
    if (isForeign(dir) || !creatorAlive(dir.id)) break // foreign, or abandoned half-built
    await sleep(10, undefined, { signal: abort })
  }
  return new Directory(dir.buffer, 0) // throws NotABus, saying why
}

/** A member slot held by this bus instance. */
export interface Membership {
  readonly slot: number
  /** In a worker thread: the native exit actions that free the slot if the thread is terminated. */
  readonly releases: ReadonlyArray<number | null>
}

/**
 * Takes a member slot, reclaiming the slots of dead members first when
 * the table is full (members that crashed or were killed never free
 * theirs). BusFull when every slot holds a live member.
 */
export function joinMembers({ name, dir, directory, options }: Joined): Membership {
  const entry = {
    ...selfIdentity(),
    doorbellKind: options.doorbell === 'signal' ? DOORBELL_SIGNAL : DOORBELL_PIPE,
    signal: options.doorbell === 'signal' ? options.doorbellSignal : 0,
    heartbeat: Date.now(),
  }
  let slot: number
  for (let attempt = 0; ; attempt++) {
    try {
      slot = directory.addMember(entry)
      break
    } catch (err) {
      if (!(err instanceof RangeError) || attempt > 0) throw err instanceof RangeError ? new BusFull(name ?? 'private', directory.memberSlots) : err
      directory.gc(isAlive)
      if (observed(diagnostics.reclaim)) report(diagnostics.reclaim, { bus: name, what: 'member-slots', detail: 'the member table was full: slots of dead members freed' })
    }
  }
  const words = directory.memberWords(slot)
  const me = identityWord(selfIdentity())
  return {
    slot,
    releases: [
      releaseOnTerminate(dir.id, words.state, 4, SLOT_READY, SLOT_FREE),
      releaseOnTerminate(dir.id, words.identity, 8, me, 0n),
    ],
  }
}

/** Frees the member slot; the last member of a named bus removes its channel segments and directory (returns whether it did). */
export function leaveMembers({ name, dir, directory }: Joined, membership: Membership): boolean {
  directory.removeMember(membership.slot)
  for (const h of membership.releases) cancelRelease(h)
  const last = !hasLiveMember(directory)
  if (last && name !== null && !isRemoved(dir.id)) {
    removeChannelSegments(dir.id, directory)
    removeSegment(dir.id)
    return true
  }
  return false
}
