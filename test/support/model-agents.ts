/**
 * Processes of the model-based test (packages/bus/test/model.test.ts): each runs
 * packages/bus/test/fixtures/model-agent.ts, answers JSON-line commands and streams
 * what it delivered. Started with the parked receiver's backstop timer off
 * (IPC_BUS_BACKSTOP=off), so that a lost wakeup shows as a stall.
 */
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import { startFixture } from './children.js'

export type Reply = { ok: any; err?: undefined } | { ok?: undefined; err: { code: string; message: string } }

/** An unsolicited line: a delivery {d, f, s} or an event {ev, ...}. */
export interface AgentLine {
  d?: number
  f?: string
  s?: number
  ev?: string
  id?: number
  [key: string]: unknown
}

export class ModelAgent {
  readonly child: ChildProcess
  readonly pid: number
  label = 'warm'
  /** Where its unsolicited lines go (set when the pool hands it out). */
  onLine: (agent: ModelAgent, line: AgentLine) => void = () => {}
  /** Set before the test ends the process on purpose (kill, exit): any other death is a failure. */
  expectExit = false
  /** How it ended, once it did (after its output was read to the end). */
  ended: { code: number | null; signal: NodeJS.Signals | null } | null = null
  readonly closed: Promise<void>
  stderr = ''
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()

  constructor() {
    this.child = startFixture('bus', 'model-agent', [], { env: { ...process.env, IPC_BUS_BACKSTOP: 'off' } })
    this.pid = this.child.pid!
    this.child.stdin!.on('error', () => {}) // EPIPE once it died: reported through `closed`
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-4000) })
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      let line: AgentLine & { r?: number; ok?: unknown; err?: { code: string; message: string } }
      try {
        line = JSON.parse(text)
      } catch {
        this.onLine(this, { ev: 'garbage', text })
        return
      }
      if (line.r !== undefined) {
        const p = this.pending.get(line.r)
        this.pending.delete(line.r)
        p?.resolve(line.err !== undefined ? { err: line.err } : { ok: line.ok })
      } else {
        this.onLine(this, line)
      }
    })
    this.closed = once(this.child, 'close').then(([code, signal]) => {
      this.ended = { code: code as number | null, signal: signal as NodeJS.Signals | null }
      for (const p of this.pending.values()) p.reject(new Error(`${this.describe()} ended while a command was pending`))
      this.pending.clear()
    })
  }
  get alive(): boolean {
    return this.ended === null && this.child.exitCode === null && this.child.signalCode === null
  }

  describe(): string {
    const how = this.ended === null ? 'running'
      : this.ended.signal !== null ? `killed by ${this.ended.signal}`
      // Node names no real-time signal: a death by one (the bus's doorbell) reads as code 0, signal null.
      : this.ended.code === 0 && !this.expectExit ? 'exit code 0 (or killed by a real-time signal: Node reports that as code 0)'
      : `exit code ${this.ended.code}`
    const err = this.stderr.trim()
    return `agent ${this.label} (pid ${this.pid}, ${how})${err === '' ? '' : `, stderr:\n${err}`}`
  }

  /** Sends a command; resolves with its reply, rejects if the agent dies or does not answer in time. */
  call(op: string, args: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<Reply> {
    if (!this.alive) return Promise.reject(new Error(`${op}: ${this.describe()} is gone`))
    const id = this.nextId++
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.describe()}: '${op}' got no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r) },
        reject: (e) => { clearTimeout(timer); reject(e) },
      })
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`)
    })
  }

  /** SIGKILL, then wait until its last output has been read. */
  async kill(): Promise<void> {
    this.expectExit = true
    if (this.alive) this.child.kill('SIGKILL')
    await this.closed
  }
}

/**
 * Node takes a few hundred ms to start on a loaded machine: agents are started
 * ahead of need, while the previous sequence runs, and handed out here.
 */
const warm: ModelAgent[] = []
const WARM = 4

export function takeAgent(label: string, onLine: (agent: ModelAgent, line: AgentLine) => void): ModelAgent {
  const agent = warm.shift() ?? new ModelAgent()
  while (warm.length < WARM) warm.push(new ModelAgent())
  agent.label = label
  agent.onLine = onLine
  return agent
}

/** Kills the agents still waiting in the pool. */
export async function drainPool(): Promise<void> {
  await Promise.all(warm.splice(0).map((a) => a.kill()))
}
