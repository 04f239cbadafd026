/**
 * Doorbells: how a sender wakes a receiver that parked (DESIGN section 5).
 * Both kinds are process-wide: one signal handler, or one FIFO, per process,
 * shared by every channel this process receives on.
 *
 * - 'signal': the sender calls tgsigqueue(pid, pid, signal, token), a
 *   real-time signal aimed at the receiver's MAIN thread (a process-directed
 *   signal could be taken by any of Node's threads) carrying the channel's
 *   token, its segment id (unique on the host while the channel exists);
 *   @ipc/native's handler turns it into an event-loop callback. Real-time
 *   signals queue, and the parking protocol bounds them to one per park, so
 *   the queue cannot overflow.
 * - 'pipe': the sender writes one byte into the receiver's FIFO,
 *   <runtimeDir>/ipc-bus-<pid>-<starttime>.bell. A byte carries no token,
 *   so the receiver re-checks every channel parked on the pipe.
 *
 * A sender only rings after winning the parked word's CAS, i.e. at most once
 * per park, and never while the receiver is awake.
 */
import { chmodSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DOORBELL_PIPE, DOORBELL_SIGNAL, type Identity } from '@ipc/core'
import { Doorbell, DoorbellRinger, kill, onSignal, tgsigqueue, type Disposer } from '@ipc/native'
import { PermissionDenied } from './errors.js'
import { isAlive, processStartTime, selfIdentity } from './liveness.js'
import type { DoorbellKind } from './options.js'

/** A parked receiver that a doorbell can wake. */
export interface Sleeper {
  wake(): void
}

/**
 * How to wake a receiver about one channel: its doorbell kind and signal
 * (from its member entry in the directory) and the channel's token.
 */
export interface DoorbellAddress {
  kind: number
  signal: number
  token: number
}

export function fifoPath(runtimeDir: string, who: Identity): string {
  return join(runtimeDir, `ipc-bus-${who.pid}-${who.startTime}.bell`)
}

// ------------------------------------------------------------- receiving side

const sleepers = new Map<number, Sleeper>()
const pipeSleepers = new Set<Sleeper>()
const signalHandlers = new Map<number, Disposer>()
const fifos = new Map<string, Doorbell>()

/** Registers a receiver under `token` (its channel's segment id), or a sender waiting for room (roomToken). */
export function registerSleeper(sleeper: Sleeper, token: number, kind: DoorbellKind, signal: number, runtimeDir: string): void {
  if (sleepers.has(token)) throw new Error(`a receiver for token ${token} is already registered in this process`)
  if (kind === 'signal') {
    if (!signalHandlers.has(signal)) {
      signalHandlers.set(signal, onSignal(signal, (info) => sleepers.get(info.value)?.wake()))
    }
    sleepers.set(token, sleeper)
    return
  }
  ensureFifo(runtimeDir)
  sleepers.set(token, sleeper)
  pipeSleepers.add(sleeper)
}

/** Wakes a sleeper of this very process directly (no signal or pipe needed); false if none has the token. */
export function wakeLocal(token: number): boolean {
  const sleeper = sleepers.get(token)
  if (sleeper === undefined) return false
  sleeper.wake()
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

export function unregisterSleeper(token: number): void {
  const sleeper = sleepers.get(token)
  if (sleeper === undefined) return
  sleepers.delete(token)
  pipeSleepers.delete(sleeper)
}

function ensureFifo(runtimeDir: string): void {
  if (fifos.has(runtimeDir)) return
  removeStaleFifos(runtimeDir)
  const path = fifoPath(runtimeDir, selfIdentity())
  const bell = Doorbell.create({ path })
  // Anyone may ring (write), only we read: a stray ring costs one empty
  // drain. Set after creation because mkfifo's mode is filtered by the umask.
  chmodSync(path, 0o622)
  bell.onRing(() => {
    for (const sleeper of [...pipeSleepers]) sleeper.wake()
  })
  fifos.set(runtimeDir, bell)
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
    const m = /^ipc-bus-(\d+)-(\d+)\.bell$/.exec(name)
    if (m && !isAlive(Number(m[1]), Number(m[2]))) {
      try { unlinkSync(join(runtimeDir, name)) } catch { /* raced with another cleaner */ }
    }
  }
}

// --------------------------------------------------------------- sending side

/** The receiver's identity and doorbell, as read from its channel header. */
export interface Receiver extends Identity {
  doorbell: DoorbellAddress
}

const ringers = new Map<string, DoorbellRinger>()
/** pid -> start time and when it was last confirmed alive (ms). */
const confirmed = new Map<number, { startTime: number; at: number }>()
/**
 * How long a liveness check is trusted. A pid is only reused after the
 * kernel has cycled through pid_max (4 M here) others, so a stale positive
 * for 100 ms cannot aim a signal at an unrelated process in practice.
 */
const TRUST_MS = 100

/** Is the receiver still running? Cached for TRUST_MS. */
export function receiverAlive(who: Identity, now: number): boolean {
  const c = confirmed.get(who.pid)
  if (c !== undefined && c.startTime === who.startTime && now - c.at < TRUST_MS) return true
  const start = processStartTime(who.pid)
  if (start !== who.startTime) {
    confirmed.delete(who.pid)
    return false
  }
  confirmed.set(who.pid, { startTime: start, at: now })
  return true
}

/**
 * Checks, before anything is written, that this process may ring the
 * receiver: a signal doorbell needs permission to signal it (same uid, or
 * CAP_KILL). Throws PermissionDenied otherwise.
 */
export function checkCanRing(receiver: Receiver, runtimeDir: string): void {
  if (receiver.doorbell.kind === DOORBELL_SIGNAL) {
    try {
      kill(receiver.pid, 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') {
        throw new PermissionDenied(
          `signalling the receiver (pid ${receiver.pid}): it runs as another user; use doorbell: 'pipe' for buses shared across users`,
          { cause: err },
        )
      }
    }
  } else if (receiver.doorbell.kind === DOORBELL_PIPE) {
    ringerFor(receiver, runtimeDir)
  }
}

function ringerFor(receiver: Receiver, runtimeDir: string): DoorbellRinger | null {
  const path = fifoPath(runtimeDir, receiver)
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
  return ringer
}

/**
 * Rings the receiver's doorbell. Returns false when the receiver is gone
 * (dead, or its doorbell closed): the caller reports PeerGone.
 */
export function ring(receiver: Receiver, runtimeDir: string, now: number): boolean {
  if (!receiverAlive(receiver, now)) return false
  const bell = receiver.doorbell
  if (bell.kind === DOORBELL_SIGNAL) {
    try {
      tgsigqueue(receiver.pid, receiver.pid, bell.signal, bell.token)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
      throw err
    }
  }
  if (bell.kind === DOORBELL_PIPE) {
    const ringer = ringerFor(receiver, runtimeDir)
    if (ringer === null) return false
    try {
      ringer.ring()
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err
      ringer.close()
      ringers.delete(fifoPath(runtimeDir, receiver))
      return false
    }
  }
  return true // no doorbell: the receiver polls (spins) and never parks
}
