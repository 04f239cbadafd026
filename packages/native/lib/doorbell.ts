/**
 * Doorbell: a wakeup another process rings with one byte, awaited in the
 * event loop without blocking it (epoll via libuv; no thread, no timer, no
 * CPU while idle).
 *
 * The owner reads a pipe: either a FIFO at a path (for unrelated processes)
 * or an anonymous pipe whose write end a child inherits. Many rings before a
 * wait coalesce into one wakeup: the owner learns "rung since you last
 * looked", never how many times.
 *
 *   owner:  const bell = Doorbell.create({ path }); await bell.wait()
 *   ringer: const r = DoorbellRinger.open(path); r.ring()
 */
import { closeSync, constants as fsConstants, lstatSync, openSync, unlinkSync } from 'node:fs'
import { native } from './binding.js'
import { DoorbellClosed } from './errors.js'
import { mkfifo, pipe } from './pipes.js'
import { checkInt } from './validate.js'
import { watchFd, type FdWatch } from './watch.js'

export interface DoorbellOptions {
  /** Create a FIFO at this path (it must not exist). Default: an anonymous pipe (see writeFd). */
  path?: string
  /** FIFO permission bits. Default 0o600. */
  mode?: number
}

export interface WaitOptions {
  /** Give up after this many milliseconds: wait() resolves false. */
  timeout?: number
  /** Abort the wait: wait() rejects with signal.reason. */
  signal?: AbortSignal
}

export class Doorbell implements Disposable {
  /** The FIFO's path, or null for an anonymous-pipe doorbell. */
  readonly path: string | null
  /**
   * The write end of an anonymous-pipe doorbell, for a child to inherit
   * (as stdio, or with DoorbellRinger.open(fd) in this process); null for a FIFO.
   */
  readonly writeFd: number | null
  private readonly readFd: number
  private readonly watch: FdWatch
  private rung = false
  private closed = false
  private wakeupCount = 0
  private readonly waiters = new Set<() => void>()
  private readonly listeners = new Set<() => void>()

  private constructor(path: string | null, readFd: number, writeFd: number | null) {
    this.path = path
    this.writeFd = writeFd
    this.readFd = readFd
    // Drained in C++ (./watch.ts): a ring costs one call, no stream. Only
    // a pending wait() keeps the process alive (the watch starts unref'd).
    this.watch = watchFd(readFd, 64, (n) => { if (n > 0) this.wake() })
  }

  /** Creates a doorbell: a FIFO at options.path, or an anonymous pipe. */
  static create(options: DoorbellOptions = {}): Doorbell {
    const mode = checkInt('options.mode', options.mode ?? 0o600, 0, 0o777)
    if (options.path === undefined) {
      const [readFd, writeFd] = pipe({ nonBlocking: true })
      return new Doorbell(null, readFd, writeFd)
    }
    mkfifo(options.path, mode)
    try {
      // O_RDWR on a FIFO (Linux): open never blocks and read never sees EOF
      // when ringers come and go.
      const fd = openSync(options.path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK)
      return new Doorbell(options.path, fd, null)
    } catch (err) {
      unlinkSync(options.path)
      throw err
    }
  }

  /** Times the doorbell woke its owner (coalesced rings count once). */
  get wakeups(): number {
    return this.wakeupCount
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Resolves true once the doorbell has been rung since the last wait()
   * (at once if it already was), false when options.timeout passes first.
   */
  wait(options: WaitOptions = {}): Promise<boolean> {
    if (this.closed) return Promise.reject(new DoorbellClosed())
    if (this.rung) {
      this.rung = false
      return Promise.resolve(true)
    }
    const { timeout, signal } = options
    if (timeout !== undefined) checkInt('options.timeout', timeout, 0, 2 ** 31 - 1)
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<boolean>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => {
        this.waiters.delete(wake)
        if (this.waiters.size === 0) this.watch.unref()
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const wake = (): void => {
        done()
        if (this.closed) reject(new DoorbellClosed())
        else resolve(true)
      }
      const onAbort = (): void => {
        done()
        reject(signal?.reason)
      }
      this.waiters.add(wake)
      this.watch.ref()
      if (timeout !== undefined) timer = setTimeout(() => { done(); resolve(false) }, timeout)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Calls listener on every wakeup until the returned function is called. */
  onRing(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private wake(): void {
    this.wakeupCount++
    for (const listener of [...this.listeners]) listener()
    if (this.waiters.size > 0) {
      this.rung = false
      for (const wake of [...this.waiters]) wake()
    } else {
      this.rung = true
    }
  }

  /** Closes the pipe, removes the FIFO, and rejects pending waits with DoorbellClosed. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.watch.close() // stops polling first: then the fd may go
    closeSync(this.readFd)
    if (this.writeFd !== null) closeSync(this.writeFd)
    if (this.path !== null) {
      try {
        if (lstatSync(this.path).isFIFO()) unlinkSync(this.path)
      } catch {
        // already removed
      }
    }
    for (const wake of [...this.waiters]) wake()
    this.listeners.clear()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** The ringing end of a doorbell: a FIFO path or an inherited write fd. */
export class DoorbellRinger implements Disposable {
  private fd: number
  private readonly owned: boolean

  private constructor(fd: number, owned: boolean) {
    this.fd = fd
    this.owned = owned
  }

  /**
   * Opens a FIFO doorbell by path (throws ENXIO when no owner has it open,
   * ENOENT when it does not exist), or wraps an inherited write fd (not
   * closed by close()).
   */
  static open(target: string | number): DoorbellRinger {
    if (typeof target === 'number') return new DoorbellRinger(checkInt('fd', target, 0, 2 ** 31 - 1), false)
    if (!lstatSync(target).isFIFO()) {
      throw Object.assign(new Error(`${target} is not a FIFO`), { code: 'ENOTFIFO' })
    }
    return new DoorbellRinger(openSync(target, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK), true)
  }

  /**
   * Rings: one byte into the pipe, never blocking. Returns false when the pipe
   * is full, which means a wakeup is already pending (this ring coalesces with
   * it). Throws EPIPE when the owner has closed the doorbell.
   */
  ring(): boolean {
    if (this.fd < 0) throw new DoorbellClosed()
    return native.ringFd(this.fd)
  }

  close(): void {
    if (this.fd < 0) return
    if (this.owned) closeSync(this.fd)
    this.fd = -1
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
