/**
 * Doorbells: how a sender wakes a receiver that parked, and how a receiver
 * wakes a sender waiting for room (docs/design.md, "Doorbells"). Each
 * sleeping bus instance publishes its doorbell address (@ipc/core
 * doorbell.ts: kind, signal, thread) next to its claim, so a process with
 * several instances is rung on the one that sleeps.
 *
 * - 'signal': the sender calls tgsigqueue(pid, pid, signal, token), a
 *   real-time signal aimed at the receiver's MAIN thread carrying the
 *   channel's token (its segment id, unique on the host while the channel
 *   exists); @ipc/native's handler turns it into an event-loop callback.
 *   Real-time signals queue, and the parking protocol bounds them to one per
 *   park. A process installs its handler before it publishes a signal
 *   address and never removes it: a late or stray ring is ignored, never
 *   fatal (a real-time signal's default action would kill the process).
 * - 'pipe': one byte into <runtimeDir>/ipc-bus-<pid>-<starttime>[-t<thread>].bell,
 *   the FIFO of one thread. A byte carries no token, so the thread re-checks
 *   every sleeper it has.
 */
import { chmodSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { isMainThread, threadId } from 'node:worker_threads'
import { DOORBELL_PIPE, DOORBELL_SIGNAL, type BellAddress, type Identity } from '@ipc/core'
import { Doorbell, DoorbellRinger, addExitUnlink, kill, onSignal, tgsigqueue } from '@ipc/native'
import { NotMainThread, PermissionDenied } from './errors.js'
import { processRuns } from './alive-cache.js'
import { SELF_PID, isAlive, selfIdentity } from './liveness.js'
import type { DoorbellKind } from './options.js'

/** A parked receiver (or a sender waiting for room) that a doorbell can wake. */
export interface Sleeper {
  wake(): void
}

/** This thread's number in doorbell addresses: 0 on the main thread. */
export const SELF_THREAD = isMainThread ? 0 : threadId

/**
 * The si_uid of a signal ring, read once: tgsigqueue() otherwise calls
 * getuid() on every ring. The receiving doorbell never reads it (the token
 * says who rang), and the kernel does not check it, so a process.setuid()
 * after this costs nothing but a stale, unread field.
 */
const RING_UID = process.getuid?.() ?? 0

export function fifoPath(runtimeDir: string, who: Identity, thread: number): string {
  return join(runtimeDir, thread === 0 ? `ipc-bus-${who.pid}-${who.startTime}.bell` : `ipc-bus-${who.pid}-${who.startTime}-t${thread}.bell`)
}

/**
 * The address at which this thread is woken with doorbell `kind`. A signal
 * reaches only the main thread: in a worker, `room` waits (a sender's
 * wait for room) use the thread's FIFO instead, and receiving throws
 * NotMainThread.
 */
export function ownBell(kind: DoorbellKind, signal: number, use: 'receive' | 'room'): BellAddress {
  if (kind === 'signal' && !isMainThread) {
    if (use === 'receive') throw new NotMainThread("receiving with the 'signal' doorbell")
    return { kind: DOORBELL_PIPE, signal: 0, thread: SELF_THREAD }
  }
  return kind === 'signal' ? { kind: DOORBELL_SIGNAL, signal, thread: 0 } : { kind: DOORBELL_PIPE, signal: 0, thread: SELF_THREAD }
}

// ------------------------------------------------------------- receiving side

/** token -> sleepers of this thread (one receiver per channel; any number of senders waiting for room). */
const sleepers = new Map<number, Set<Sleeper>>()
const signalHandlers = new Set<number>()
const fifos = new Map<string, Doorbell>()

/**
 * Registers a receiver under `token` (its channel's segment id), or a sender
 * waiting for room (roomToken), making sure `bell` can reach this thread:
 * the signal handler installed, or the FIFO created. Throws (nothing
 * registered) when that fails.
 */
export function registerSleeper(sleeper: Sleeper, token: number, bell: BellAddress, runtimeDir: string): void {
  if (bell.kind === DOORBELL_SIGNAL) ensureSignalHandler(bell.signal)
  else ensureFifo(runtimeDir)
  let set = sleepers.get(token)
  if (set === undefined) sleepers.set(token, (set = new Set()))
  set.add(sleeper)
}

function ensureSignalHandler(signal: number): void {
  if (signalHandlers.has(signal)) return
  if (!isMainThread) throw new NotMainThread("receiving with the 'signal' doorbell")
  // Never disposed: see the header.
  onSignal(signal, (info) => { wakeLocal(info.value) })
  signalHandlers.add(signal)
}

/** Wakes a sleeper of this very thread directly (no signal or pipe needed); false if none has the token. */
export function wakeLocal(token: number): boolean {
  const set = sleepers.get(token)
  if (set === undefined) return false
  for (const sleeper of [...set]) sleeper.wake()
  return true
}

/**
 * The token under which a sender waits for room in a channel (see
 * Channel.flush): the channel's token (its segment id, >= 0) turned
 * negative, so that one signal number serves both directions.
 */
export function roomToken(channelToken: number): number {
  return -channelToken - 1
}

export function unregisterSleeper(token: number, sleeper: Sleeper): void {
  const set = sleepers.get(token)
  if (set === undefined) return
  set.delete(sleeper)
  if (set.size === 0) sleepers.delete(token)
}

function ensureFifo(runtimeDir: string): void {
  if (fifos.has(runtimeDir)) return
  removeStaleFifos(runtimeDir)
  const path = fifoPath(runtimeDir, selfIdentity(), SELF_THREAD)
  const bell = Doorbell.create({ path })
  try {
    // Anyone may ring (write), only we read: a stray ring costs one empty
    // drain. Set after creation because mkfifo's mode is filtered by the umask.
    chmodSync(path, 0o622)
  } catch (err) {
    bell.close()
    throw err
  }
  // A byte carries no token: every sleeper of this thread looks (a sleeper
  // that is not parked, or finds nothing, does nothing).
  bell.onRing(() => {
    for (const set of [...sleepers.values()]) for (const sleeper of [...set]) sleeper.wake()
  })
  fifos.set(runtimeDir, bell)
  // A worker stopped by terminate() runs no 'exit' listener: its FIFO is
  // removed natively when the thread is torn down.
  if (!isMainThread) addExitUnlink(path)
  if (fifos.size === 1) process.once('exit', closeFifos)
}

function closeFifos(): void {
  for (const bell of fifos.values()) bell.close()
  fifos.clear()
}

/** FIFOs of processes that died without removing theirs (SIGKILL). */
function removeStaleFifos(runtimeDir: string): void {
  let names: string[]
  try {
    names = readdirSync(runtimeDir)
  } catch {
    return
  }
  for (const name of names) {
    const m = /^ipc-bus-(\d+)-(\d+)(?:-t\d+)?\.bell$/.exec(name)
    if (m && !isAlive(Number(m[1]), Number(m[2]))) {
      try { unlinkSync(join(runtimeDir, name)) } catch { /* raced with another cleaner */ }
    }
  }
}

// --------------------------------------------------------------- sending side

/** Someone to wake: a process identity and the doorbell address its sleeping instance published. */
export interface Target extends Identity {
  bell: BellAddress
}

const ringers = new Map<string, DoorbellRinger>()

/**
 * Checks, before anything is written, that this process may ring `target`:
 * a signal doorbell needs permission to signal it (same uid, or CAP_KILL),
 * a pipe doorbell write access to its FIFO. Throws PermissionDenied otherwise.
 */
export function checkCanRing(target: Target, runtimeDir: string): void {
  if (target.bell.kind === DOORBELL_SIGNAL) {
    try {
      kill(target.pid, 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') {
        throw new PermissionDenied(
          `signalling the receiver (pid ${target.pid}): it runs as another user; use doorbell: 'pipe' for buses shared across users`,
          { cause: err },
        )
      }
    }
  } else if (target.bell.kind === DOORBELL_PIPE) {
    ringerFor(target, runtimeDir)
  }
}

/**
 * The ringer used last, by its target's address: a sender rings the same
 * receiver over and over, and building the FIFO's path (path.join) and
 * hashing it on every ring was on the wake path of each idle round trip.
 */
let last: { pid: number; startTime: number; thread: number; runtimeDir: string; ringer: DoorbellRinger } | null = null

function ringerFor(target: Target, runtimeDir: string): DoorbellRinger | null {
  const l = last
  if (l !== null && l.pid === target.pid && l.startTime === target.startTime && l.thread === target.bell.thread && l.runtimeDir === runtimeDir) return l.ringer
  const path = fifoPath(runtimeDir, target, target.bell.thread)
  let ringer = ringers.get(path)
  if (ringer === undefined) {
    try {
      ringer = DoorbellRinger.open(path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENXIO' || code === 'ENOENT') return null // its owner is gone
      if (code === 'EACCES') throw new PermissionDenied(`opening the receiver's doorbell ${path}`, { cause: err })
      throw err
    }
    ringers.set(path, ringer)
  }
  last = { pid: target.pid, startTime: target.startTime, thread: target.bell.thread, runtimeDir, ringer }
  return ringer
}

/**
 * Rings `target` about `token`. A sleeper of this very thread is woken
 * directly, on a microtask. Returns false when the target is gone (dead, or
 * its doorbell closed).
 */
export function ring(target: Target, token: number, runtimeDir: string, now: number): boolean {
  const bell = target.bell
  if (target.pid === SELF_PID && bell.thread === SELF_THREAD && (bell.kind === DOORBELL_PIPE || isMainThread)) {
    queueMicrotask(() => wakeLocal(token))
    return true
  }
  if (!processRuns(target, now)) return false
  if (bell.kind === DOORBELL_SIGNAL) {
    try {
      tgsigqueue(target.pid, target.pid, bell.signal, token, RING_UID)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
      throw err
    }
  }
  const ringer = ringerFor(target, runtimeDir)
  if (ringer === null) return false
  try {
    ringer.ring()
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err
    ringer.close()
    ringers.delete(fifoPath(runtimeDir, target, bell.thread))
    if (last?.ringer === ringer) last = null
    return false
  }
}
