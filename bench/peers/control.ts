/**
 * The control protocol between a host and its workers: control messages
 * ({op: ...}), the endpoints they travel on (a child process's IPC channel
 * or a worker thread's port), the host's Workers (which routes control
 * messages to waiters and data to the sink) and the worker's own side.
 * Re-exported by common.ts, which peers import.
 */
import type { ChildProcess } from 'node:child_process'
import { parentPort, type Worker } from 'node:worker_threads'

// ================================================================ control

export interface Control { op: string; [key: string]: unknown }

export function isControl(m: unknown): m is Control {
  return m !== null && typeof m === 'object' && typeof (m as { op?: unknown }).op === 'string'
}

/** A host's handle on one worker (a child process or a worker thread). */
export interface Endpoint {
  send(msg: unknown): boolean
  onMessage(fn: (m: unknown) => void): void
  /** fn(description) when the worker exits. */
  onExit(fn: (how: string) => void): void
  kill(): void
}

export function childEndpoint(cp: ChildProcess): Endpoint {
  return {
    send: (m) => cp.connected && cp.send(m as object),
    onMessage: (fn) => void cp.on('message', fn),
    onExit: (fn) => void cp.on('exit', (code, signal) => fn(`exited with ${signal ?? code}`)),
    kill: () => { if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL') },
  }
}

export function threadEndpoint(w: Worker): Endpoint {
  return {
    send: (m) => { w.postMessage(m); return true },
    onMessage: (fn) => void w.on('message', fn),
    onExit: (fn) => {
      w.on('error', (err) => fn(`failed: ${err.stack ?? err.message}`))
      w.on('exit', (code) => fn(`exited with ${code}`))
    },
    kill: () => void w.terminate(),
  }
}

/** The worker's side: its parent process or, in a worker thread, the parent port. */
export function parentEndpoint(): Endpoint {
  if (parentPort !== null) {
    const port = parentPort
    return { send: (m) => { port.postMessage(m); return true }, onMessage: (fn) => void port.on('message', fn), onExit: () => {}, kill: () => process.exit(0) }
  }
  return { send: (m) => process.send!(m as object), onMessage: (fn) => void process.on('message', fn), onExit: () => {}, kill: () => process.exit(0) }
}

/**
 * Where data arriving on a control channel goes (child_process IPC and
 * MessagePort carry data on it): set by the peer, called with the index of
 * the worker it came from (host side; -1 on the worker side).
 */
export const sink: { fn: (value: unknown, from: number) => void } = { fn: () => {} }

/** A host's workers: routes their control messages to waiters, data to the sink. */
export class Workers {
  private readonly inbox: Control[][]
  private readonly waiting: Array<Array<{ op: string; resolve: (m: Control) => void }>>
  /** Set once a worker failed or exited on its own: every wait rejects with it. */
  private broken: Error | null = null
  private readonly rejecters = new Set<(err: Error) => void>()
  private killing = false

  constructor(readonly endpoints: Endpoint[]) {
    this.inbox = endpoints.map(() => [])
    this.waiting = endpoints.map(() => [])
    endpoints.forEach((ep, i) => {
      ep.onMessage((m) => {
        if (isControl(m)) this.control(i, m)
        else sink.fn(m, i)
      })
      ep.onExit((how) => { if (!this.killing) this.fail(new Error(`worker ${i} ${how}`)) })
    })
  }

  private fail(err: Error): void {
    this.broken ??= err
    for (const reject of this.rejecters) reject(err)
    this.rejecters.clear()
  }

  /** p, or a rejection as soon as a worker fails. */
  private guard<T>(p: Promise<T>): Promise<T> {
    if (this.broken !== null) return Promise.reject(this.broken)
    return new Promise<T>((resolve, reject) => {
      this.rejecters.add(reject)
      p.then(resolve, reject).finally(() => this.rejecters.delete(reject))
    })
  }

  get size(): number {
    return this.endpoints.length
  }

  private control(i: number, m: Control): void {
    if (m.op === 'error') {
      this.fail(new Error(`worker ${i}: ${String(m.message)}`))
      return
    }
    const w = this.waiting[i]!.findIndex((x) => x.op === m.op)
    if (w >= 0) this.waiting[i]!.splice(w, 1)[0]!.resolve(m)
    else this.inbox[i]!.push(m)
  }

  private take(i: number, op: string): Promise<Control> {
    const k = this.inbox[i]!.findIndex((m) => m.op === op)
    if (k >= 0) return Promise.resolve(this.inbox[i]!.splice(k, 1)[0]!)
    return new Promise((resolve) => this.waiting[i]!.push({ op, resolve }))
  }

  /** The next control message `op` from worker i; rejects when a worker fails. */
  next(i: number, op: string): Promise<Control> {
    return this.guard(this.take(i, op))
  }

  /** The next `op` from every worker; rejects when a worker fails. */
  all(op: string): Promise<Control[]> {
    return this.guard(Promise.all(this.endpoints.map((_, i) => this.take(i, op))))
  }

  /** Rejects when a worker fails (to race against waits that are not control messages). */
  failed(): Promise<never> {
    return this.guard(new Promise<never>(() => {}))
  }

  send(i: number, m: Control): void {
    this.endpoints[i]!.send(m)
  }

  broadcast(m: Control): void {
    for (const ep of this.endpoints) ep.send(m)
  }

  /** Asks every worker to exit (so that e.g. --cpu-prof profiles get written), then kills the rest after 1 s. */
  async stop(): Promise<void> {
    this.killing = true
    const exits = this.endpoints.map((ep) => new Promise<void>((resolve) => ep.onExit(() => resolve())))
    this.broadcast({ op: 'exit' })
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 1000))])
    this.kill()
  }

  kill(): void {
    this.killing = true
    for (const ep of this.endpoints) {
      try { ep.kill() } catch { /* already gone */ }
    }
  }
}
