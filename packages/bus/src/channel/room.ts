/**
 * A sender's side of waiting for room, shared by channel senders
 * (writer.ts) and topic publishers (../patterns/topic-writer.ts): the queue
 * of sends waiting in order, with their deadlines and abort signals, and
 * the sleep on the room doorbell (docs/design.md, "Room doorbell").
 */
import { performance } from 'node:perf_hooks'
import type { BellAddress, Identity } from '@ipc/core'
import { ownBell, registerSleeper, ring, roomToken, unregisterSleeper, type Sleeper, type Target } from '../doorbell.js'
import type { DoorbellKind, SendOptions } from '../options.js'

/** A send waiting for room: its encoded bytes and how it ends. */
export interface Waiter<R> {
  bytes: Buffer
  type: number
  /** Bytes of `bytes` written so far, for a message written as fragments (channel writer.ts). */
  sent: number
  resolve: (result: R) => void
  reject: (err: unknown) => void
  deadline: number
  timeout: number
  signal: AbortSignal | undefined
}

/**
 * The queue of sends waiting for room, in send order. A head index instead
 * of Array.shift(): shift() moves every element, and a flood of waiting
 * sends made that quadratic.
 */
export class WaitQueue<R> {
  private items: Array<Waiter<R> | undefined> = []
  private first = 0

  get length(): number {
    return this.items.length - this.first
  }

  /** Queues bytes; `kick` starts the flush loop if it is not running. Rejects at once if already aborted. */
  add(bytes: Buffer, type: number, options: SendOptions, kick: () => void): Promise<R> {
    const { timeout, signal } = options
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<R>((resolve, reject) => {
      this.items.push({ bytes, type, sent: 0, resolve, reject, deadline: timeout === undefined ? Infinity : performance.now() + timeout, timeout: timeout ?? Infinity, signal })
      kick()
    })
  }

  /** The first waiter still wanted: aborted ones reject with their reason, expired ones with `full(timeout)`. */
  head(now: number, full: (timeout: number) => Error): Waiter<R> | undefined {
    for (;;) {
      const head = this.items[this.first]
      if (head === undefined) return undefined
      if (head.signal?.aborted) { this.shift(); head.reject(head.signal.reason); continue }
      if (now >= head.deadline) { this.shift(); head.reject(full(head.timeout)); continue }
      return head
    }
  }

  /** The head was written: resolve it. */
  done(result: R): void {
    this.shift().resolve(result)
  }

  failAll(err: unknown): void {
    const all = this.items.slice(this.first) as Array<Waiter<R>>
    this.items = []
    this.first = 0
    for (const w of all) w.reject(err)
  }

  private shift(): Waiter<R> {
    const w = this.items[this.first]!
    this.items[this.first++] = undefined
    if (this.first === this.items.length) {
      this.items = []
      this.first = 0
    } else if (this.first >= 1024 && this.first * 2 >= this.items.length) {
      this.items = this.items.slice(this.first)
      this.first = 0
    }
    return w
  }
}

/** The room doorbell of one sender: registered once, then slept on. */
export class RoomWait {
  private registered = false
  private wake: (() => void) | null = null
  private readonly sleeper: Sleeper = { wake: () => this.wake?.() }

  constructor(private readonly token: number, private readonly doorbell: DoorbellKind, private readonly signal: number, private readonly runtimeDir: string) {}

  /**
   * Makes this sender wakeable: registers the sleeper (installing the
   * signal handler or FIFO), then hands `publish` the address to store in
   * the lane, in that order, so nobody rings before we can take it. In a
   * worker thread a 'signal' bus uses the thread's FIFO.
   */
  ensure(publish: (bell: BellAddress) => void): void {
    if (this.registered) return
    const bell = ownBell(this.doorbell, this.signal, 'room')
    registerSleeper(this.sleeper, roomToken(this.token), bell, this.runtimeDir)
    this.registered = true
    publish(bell)
  }

  /** Resolves when the room doorbell rings, after `ms`, or on abort. */
  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.wake = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      this.wake = done
    })
  }

  /** Unregisters and ends a sleep in progress. */
  close(): void {
    if (!this.registered) return
    unregisterSleeper(roomToken(this.token), this.sleeper)
    this.registered = false
    this.wake?.()
  }
}

/**
 * The receiving side's half of a room wait: wakes the owners of `lanes`
 * (a channel's or a topic's, whose waiting writers the last drain freed
 * room for, each reported once) on their room doorbells, then empties the
 * list. An owner gone or not wakeable is skipped: it polls.
 */
export function ringForRoom(lanes: number[], ownerBell: (lane: number) => (Identity & { bell: BellAddress | null }) | null, token: number, runtimeDir: string): void {
  const now = performance.now()
  const room = roomToken(token)
  for (const lane of lanes) {
    const owner = ownerBell(lane)
    if (owner === null || owner.bell === null) continue
    try {
      ring(owner as Target, room, runtimeDir, now)
    } catch {
      // It looks again every few hundred ms anyway; a failed ring only delays it.
    }
  }
  lanes.length = 0
}
