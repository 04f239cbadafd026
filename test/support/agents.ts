/**
 * Long-lived forked agents for property tests: started once per test file,
 * reused across hundreds of fast-check runs (a Node start costs ~50 ms), and
 * always killed at the end. Each command is answered over the fork channel.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fixturePath, track } from './children.js'

export class Agent {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  readonly child: ChildProcess

  /** `fixture`: the agent program (packages/bus/test/fixtures/<fixture>.ts), default the channel agent. */
  constructor(fixture = 'agent') {
    this.child = track(fork(fixturePath('bus', fixture), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    this.child.on('message', (msg: { id: number; ok?: unknown; error?: { code: string; message: string } }) => {
      const p = this.pending.get(msg.id)
      if (p === undefined) return
      this.pending.delete(msg.id)
      if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }))
      else p.resolve(msg.ok)
    })
    this.child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`agent exited (${code ?? signal})`))
      this.pending.clear()
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`agent ${this.pid}: '${op}' did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T) },
        reject: (e) => { clearTimeout(timer); reject(e) },
      })
      this.child.send({ id, op, ...args })
    })
  }
}
