/**
 * Signals: sending (kill, killpg, sigqueue, tgkill, tgsigqueue), process
 * groups, catching (onSignal) and per-thread masks (sigprocmask, sigpending).
 *
 * Threads. Node runs several threads (V8 platform workers, the libuv pool).
 * A process-directed signal (kill, sigqueue) is taken by ANY thread that
 * does not block it, so:
 *   - a mask set with sigprocmask() on the main thread only holds back
 *     signals aimed at the main thread (tgkill/tgsigqueue with tid = pid);
 *     a process-directed signal slips through to another thread;
 *   - two process-directed real-time signals sent back to back may run their
 *     handlers on two threads at once, so their records may reach JS out of
 *     send order. Aim at the main thread (tgsigqueue(pid, pid, ...)) when
 *     order matters: one thread takes them one by one, in queue order.
 * That is why the bus's doorbells are thread-directed.
 *
 * Catching. The native handler writes a 32-byte record to a self-pipe; this
 * module reads the pipe in the event loop and calls your handlers, so they
 * run as ordinary JS, never inside the signal handler. Standard signals
 * (1..31) coalesce in the kernel: several sent while one is pending arrive
 * once. Real-time signals queue (up to RLIMIT_SIGPENDING) and each arrives.
 *
 * Real-time signals (the bus's doorbells) caught on the main thread are
 * also blocked there and read from a signalfd: one aimed at the main
 * thread (tgsigqueue(pid, pid, ...)) waits in the fd and wakes the event
 * loop with no signal frame, handler or self-pipe write. The main thread's
 * mask (sigprocmask(), /proc/<pid>/task/<pid>/status SigBlk) shows them
 * blocked while caught; disposing the last handler unblocks them first.
 * Children started by Node begin with an empty mask (libuv resets it).
 *
 * onSignal() on a standard signal takes it over from Node: if the program
 * also has process.on(sig) listeners, whichever was installed last wins.
 * Removing our last handler restores whatever was installed before us.
 */
import { isMainThread } from 'node:worker_threads'
import { native } from './binding.js'
import { SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, signalCodeName, signalName, signalNumber, type Signal } from './constants.js'
import { NotMainThread, SignalNotAllowed } from './errors.js'
import { checkInt, checkPid, INT32_MAX, INT32_MIN } from './validate.js'
import { watchFd, type FdWatch } from './watch.js'

export type { Signal, SignalName } from './constants.js'

// ---------------------------------------------------------------- sending

/** kill(2): send sig to pid (> 0: that process; 0: the caller's process group; -N: group N). sig 0 probes existence. */
export function kill(pid: number, sig: Signal): void {
  native.kill(checkPid('pid', pid), signalNumber(sig))
}

/** killpg(3): send sig to every process in group pgrp (0: the caller's). */
export function killpg(pgrp: number, sig: Signal): void {
  native.killpg(checkInt('pgrp', pgrp, 0, INT32_MAX), signalNumber(sig))
}

/** sigqueue(3): send sig with an integer value (process-directed). */
export function sigqueue(pid: number, sig: Signal, value = 0): void {
  native.sigqueue(checkPid('pid', pid), signalNumber(sig), checkInt('value', value, INT32_MIN, INT32_MAX))
}

/** tgkill(2): send sig to thread tid of process pid. The main thread's tid is the pid. */
export function tgkill(pid: number, tid: number, sig: Signal): void {
  native.tgkill(checkInt('pid', pid, 1, INT32_MAX), checkInt('tid', tid, 1, INT32_MAX), signalNumber(sig))
}

/**
 * rt_tgsigqueueinfo(2): sigqueue aimed at one thread (tid = pid for the main
 * thread), with an integer value. `uid` is what the receiver reads as the
 * sender's uid (SignalInfo.uid); by default getuid() at the call. The
 * kernel passes it on unchecked, so it is the sender's claim, never a
 * credential: a caller that already knows its uid passes it and saves a
 * system call (the bus's doorbell does, once per ring).
 */
export function tgsigqueue(pid: number, tid: number, sig: Signal, value = 0, uid?: number): void {
  native.tgsigqueue(
    checkInt('pid', pid, 1, INT32_MAX),
    checkInt('tid', tid, 1, INT32_MAX),
    signalNumber(sig),
    checkInt('value', value, INT32_MIN, INT32_MAX),
    uid === undefined ? undefined : checkInt('uid', uid, 0, 0xffff_fffe),
  )
}

/** getpgid(2): the process group of pid (0: the caller). */
export function getpgid(pid = 0): number {
  return native.getpgid(checkInt('pid', pid, 0, INT32_MAX))
}

/** setpgid(2): move pid (0: the caller) into group pgid (0: a new group led by pid). */
export function setpgid(pid = 0, pgid = 0): void {
  native.setpgid(checkInt('pid', pid, 0, INT32_MAX), checkInt('pgid', pgid, 0, INT32_MAX))
}

/** gettid(2): the calling thread's id (equal to process.pid on the main thread). */
export function gettid(): number {
  return native.gettid()
}

// ---------------------------------------------------------------- catching

/** What a handler receives for each delivered signal. */
export interface SignalInfo {
  /** Signal number. */
  signo: number
  /** Signal name: 'SIGUSR2', 'SIGRTMIN+1'. */
  signal: string
  /** Sender's pid (0 for some kernel-generated signals). */
  pid: number
  /** Sender's real uid. */
  uid: number
  /** The integer sent with sigqueue/tgsigqueue (0 otherwise). */
  value: number
  /** si_code: how it was sent (SI_USER from kill, SI_QUEUE from sigqueue, SI_TKILL from tgkill, ...). */
  code: number
  /** si_code's name. */
  codeName: string
  /** The thread that ran the native handler. */
  tid: number
}

export type SignalHandler = (info: SignalInfo) => void

export interface OnSignalOptions {
  /** Allow SIGUSR1, which Node uses to start its inspector. Default false. */
  force?: boolean
  /**
   * Called with whatever a handler throws. Default: process.emitWarning.
   * Either way the process lives on and later signals are still delivered.
   */
  onError?: (error: unknown, info: SignalInfo) => void
}

/** A function that removes the handler; also usable with `using`. */
export type Disposer = (() => void) & Disposable

const NEVER: Record<string, string> = {
  SIGKILL: 'it cannot be caught',
  SIGSTOP: 'it cannot be caught',
  SIGSEGV: 'it reports a synchronous fault; catching it and returning re-runs the faulting instruction',
  SIGBUS: 'it reports a synchronous fault; catching it and returning re-runs the faulting instruction',
  SIGFPE: 'it reports a synchronous fault; catching it and returning re-runs the faulting instruction',
  SIGILL: 'it reports a synchronous fault; catching it and returning re-runs the faulting instruction',
}

interface Registration {
  handler: SignalHandler
  onError: ((error: unknown, info: SignalInfo) => void) | undefined
}

const handlers = new Map<number, Set<Registration>>()
let reader: FdWatch | undefined
let words: Int32Array | undefined
/** The signalfd of the real-time signals we catch on the main thread, and its watch. */
let fdReader: FdWatch | undefined
let fdWords: Int32Array | undefined
/** Records read per wakeup at most (the watcher reads again while the buffer comes back full). */
const RECORDS_PER_READ = 128

/**
 * Reads the self-pipe with the addon's fd watcher (./watch.ts). A pipe
 * write of a whole record is atomic and the buffer holds whole records, so
 * a read never splits one.
 */
function ensureReader(): void {
  if (reader !== undefined) return
  const fd = native.signalPipe()
  const size = native.SIGNAL_RECORD_BYTES
  // Like process.on('SIGINT'), a signal handler does not keep the process alive (watchFd starts unref'd).
  reader = watchFd(fd, size * RECORDS_PER_READ, onRecords)
  words = new Int32Array(reader.bytes.buffer)
}

function onRecords(n: number): void {
  if (n < 0) {
    process.emitWarning(`@ipc/native: reading the signal pipe failed (errno ${-n}); signals are no longer delivered`)
    return
  }
  dispatchRecords(words!, n, PIPE_RECORD)
}

/** Where a record's fields are, in 32-bit words (tid -1: the main thread, whose tid is the pid). */
interface RecordLayout { stride: number; code: number; pid: number; uid: number; value: number; tid: number }

/** The self-pipe's SignalRecord (src/Signals.cc): signo, code, pid, uid, value, tid. */
const PIPE_RECORD: RecordLayout = { stride: native.SIGNAL_RECORD_BYTES >> 2, code: 1, pid: 2, uid: 3, value: 4, tid: 5 }
/** struct signalfd_siginfo: ssi_signo @0, ssi_code @8, ssi_pid @12, ssi_uid @16, ssi_int @44; read on the main thread. */
const SIGNALFD_RECORD: RecordLayout = { stride: native.SIGNALFD_RECORD_BYTES >> 2, code: 2, pid: 3, uid: 4, value: 11, tid: -1 }

/** Dispatches the n bytes of whole records in `w` (signo is every record's first word). */
function dispatchRecords(w: Int32Array, n: number, l: RecordLayout): void {
  for (let at = 0; at + l.stride <= n >> 2; at += l.stride) {
    const signo = w[at]!
    const code = w[at + l.code]!
    dispatch({
      signo,
      signal: signalName(signo),
      pid: w[at + l.pid]!,
      uid: w[at + l.uid]! >>> 0,
      value: w[at + l.value]!,
      code,
      codeName: signalCodeName(code),
      tid: l.tid < 0 ? process.pid : w[at + l.tid]!,
    })
  }
}

/**
 * Real-time signals aimed at the main thread (the bus's doorbells) are read
 * from a signalfd: the signal is blocked on the main thread, so the kernel
 * queues it for the fd and wakes the event loop, with no signal frame,
 * handler or self-pipe write. Process-directed ones still reach a thread
 * that does not block them, through the handler and the self-pipe.
 */
function addToSignalFd(signo: number): void {
  const fd = native.signalFdAdd(signo)
  if (fdReader !== undefined) return // the same fd, its mask updated
  fdReader = watchFd(fd, native.SIGNALFD_RECORD_BYTES * RECORDS_PER_READ, onSignalFd)
  fdWords = new Int32Array(fdReader.bytes.buffer)
}

function onSignalFd(n: number): void {
  if (n < 0) {
    process.emitWarning(`@ipc/native: reading the signalfd failed (errno ${-n}); real-time signals to the main thread are no longer delivered`)
    return
  }
  dispatchRecords(fdWords!, n, SIGNALFD_RECORD)
}

function dispatch(info: SignalInfo): void {
  const set = handlers.get(info.signo)
  if (set === undefined) return // removed while the record was in the pipe
  for (const reg of [...set]) {
    try {
      reg.handler(info)
    } catch (error) {
      try {
        if (reg.onError) reg.onError(error, info)
        else process.emitWarning(`@ipc/native: a ${info.signal} handler threw: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
      } catch {
        // an onError that throws must not stop the other handlers either
      }
    }
  }
}

/**
 * Calls handler for every delivery of sig until the returned disposer runs.
 * Main thread only. Refuses SIGKILL, SIGSTOP, the synchronous faults
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL), and SIGUSR1 (Node's inspector) unless
 * {force: true}. On a standard signal it takes the signal over from Node's
 * process.on() listeners until the last handler is removed.
 */
export function onSignal(sig: Signal, handler: SignalHandler, options: OnSignalOptions = {}): Disposer {
  if (!isMainThread) throw new NotMainThread('onSignal()')
  if (typeof handler !== 'function') throw new TypeError('handler must be a function')
  const signo = signalNumber(sig)
  const name = signalName(signo)
  if (signo === 0) throw new RangeError('signal 0 is not a signal that can be delivered')
  const reason = NEVER[name]
  if (reason !== undefined) throw new SignalNotAllowed(name, reason)
  if (name === 'SIGUSR1' && options.force !== true) {
    throw new SignalNotAllowed(name, "Node uses it to start the inspector; pass {force: true} to take it over")
  }
  ensureReader()
  let set = handlers.get(signo)
  if (set === undefined) {
    native.installHandler(signo)
    if (signo >= native.SIGRTMIN) addToSignalFd(signo)
    set = new Set()
    handlers.set(signo, set)
  }
  const reg: Registration = { handler, onError: options.onError }
  set.add(reg)
  let disposed = false
  const dispose = (): void => {
    if (disposed) return
    disposed = true
    const current = handlers.get(signo)
    if (current === undefined) return
    current.delete(reg)
    if (current.size === 0) {
      handlers.delete(signo)
      if (signo >= native.SIGRTMIN) native.signalFdRemove(signo) // unblocked while our handler still takes what is pending
      native.restoreHandler(signo)
    }
  }
  return Object.assign(dispose, { [Symbol.dispose]: dispose })
}

/** Records the native handler could not write because the self-pipe was full (a signal storm outran the event loop). */
export function signalOverflowCount(): number {
  return native.signalOverflowCount()
}

// ---------------------------------------------------------------- masks

export type MaskHow = 'SIG_BLOCK' | 'SIG_UNBLOCK' | 'SIG_SETMASK'

function howNumber(how: MaskHow | number): number {
  switch (how) {
    case 'SIG_BLOCK': return SIG_BLOCK
    case 'SIG_UNBLOCK': return SIG_UNBLOCK
    case 'SIG_SETMASK': return SIG_SETMASK
    default:
      if (how === SIG_BLOCK || how === SIG_UNBLOCK || how === SIG_SETMASK) return how
      throw new RangeError(`how must be SIG_BLOCK, SIG_UNBLOCK or SIG_SETMASK, got ${String(how)}`)
  }
}

function toNumbers(signals: readonly Signal[]): number[] {
  if (!Array.isArray(signals)) throw new TypeError('signals must be an array of signal names or numbers')
  return signals.map((s) => {
    const n = signalNumber(s)
    if (n === 0) throw new RangeError('signal 0 cannot be in a mask')
    return n
  })
}

/**
 * pthread_sigmask(3) on the CALLING THREAD (the main thread, from JS):
 * returns the previous mask as names. Other threads keep their own masks,
 * so this holds back only signals aimed at this thread (see the module doc).
 */
export function sigprocmask(how: MaskHow | number, signals: readonly Signal[]): string[] {
  return native.sigprocmask(howNumber(how), toNumbers(signals)).map(signalName)
}

/** Blocks signals on the calling thread; returns the previous mask. */
export function block(signals: readonly Signal[]): string[] {
  return sigprocmask('SIG_BLOCK', signals)
}

/** Unblocks signals on the calling thread (pending ones are delivered now); returns the previous mask. */
export function unblock(signals: readonly Signal[]): string[] {
  return sigprocmask('SIG_UNBLOCK', signals)
}

/** sigpending(2): signals pending for the calling thread or the whole process, as names. */
export function sigpending(): string[] {
  return native.sigpending().map(signalName)
}
