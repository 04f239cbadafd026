/**
 * Model-based test of the public API (issue 10), across real processes.
 *
 * fast-check generates command sequences over up to three agent processes
 * (fixtures/model-agent.ts), each holding up to two Bus instances on
 * one named bus, with either doorbell ('signal', 'pipe'; both in one process
 * too): open / close buses, send / trySend / sendMany, on / once / events.once
 * / for await with break, off, pause / resume, channel close, process.exit
 * with and without close, SIGKILL of any member, and joining again after a
 * crash. The model (test/support/model-world.ts) says which channels exist,
 * who receives, what the API accepted and what was delivered. After each
 * sequence a live instance receives on every channel (model-check.ts) and:
 *   - every accepted message (send resolved, trySend true, sendMany
 *     resolved) is delivered exactly once, in per-sender order, while the bus
 *     lives — unless a receiver that died took it with it;
 *   - nothing the API refused is delivered;
 *   - no process dies but those the test kills, and process.exit(0) exits 0;
 *   - no lost wakeup: agents run with the backstop timer off
 *     (IPC_BUS_BACKSTOP=off), so one shows as a stall, and every channel's
 *     backstopRescues is 0;
 *   - once every member closed: no segment, no FIFO left.
 *
 * Replay a failure with the FC_SEED and FC_PATH printed (and FC_REPLAY_PATH
 * when printed); FC_RUNS for more runs (default 100), FC_COMMANDS for longer
 * sequences (default 40), FC_TIME_LIMIT_MS bounds the whole run, shrinking
 * included (default 240 s).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { drainPool } from '../../../test/support/model-agents.js'
import { dispose, finish, shutdown } from '../../../test/support/model-check.js'
import { CHANNELS, SLOTS, World, type How, type Instance, type Kind } from '../../../test/support/model-world.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 100)
const MAX_COMMANDS = Number(process.env['FC_COMMANDS'] ?? 40)
const TIME_LIMIT_MS = Number(process.env['FC_TIME_LIMIT_MS'] ?? 240_000)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']
const replayPath = process.env['FC_REPLAY_PATH']

type Cmd = fc.AsyncCommand<World, World, false>
const counts = { sequences: 0, commands: 0, skipped: 0 }
/** Where the time goes (ms): running commands, the final phase, shutdown and clean-up. */
const times = { commands: 0, finish: 0, shutdown: 0 }

/**
 * Commands name their target by index into what exists when they run (the
 * k-th open instance, channel, live agent, modulo their number), so that few
 * are skipped; the log in a failure message says what each one hit.
 */
abstract class Base implements Cmd {
  check(w: World): boolean {
    return this.target(w) !== undefined
  }
  async run(w: World): Promise<void> {
    w.step++
    w.assertHealthy()
    if ((await this.act(w)) === false) counts.skipped++
    else counts.commands++
    w.assertHealthy()
  }
  protected abstract target(w: World): unknown
  protected abstract act(w: World): Promise<boolean | void>
  abstract toString(): string
}

const nth = <T>(list: T[], k: number): T | undefined => (list.length === 0 ? undefined : list[k % list.length])
const channelsOf = (w: World, ok: (inst: Instance, c: string) => boolean): Array<[Instance, string]> =>
  w.liveInstances().flatMap((inst) => CHANNELS.filter((c) => ok(inst, c)).map((c): [Instance, string] => [inst, c]))

class Open extends Base {
  constructor(readonly a: number, readonly b: number, readonly doorbell: 'signal' | 'pipe') { super() }
  protected target(w: World): unknown { return w.inst[this.a]![this.b] === null ? true : undefined }
  protected async act(w: World): Promise<void> { await w.open(this.a, this.b, this.doorbell) }
  toString(): string { return `Open(A${this.a}/b${this.b}, ${this.doorbell})` }
}

class CloseBus extends Base {
  constructor(readonly k: number) { super() }
  protected target(w: World): Instance | undefined { return nth(w.liveInstances(), this.k) }
  protected act(w: World): Promise<void> { return w.closeBus(this.target(w)!) }
  toString(): string { return `CloseBus(#${this.k})` }
}

class Send extends Base {
  constructor(readonly k: number, readonly c: string, readonly how: How, readonly n: number) { super() }
  protected target(w: World): Instance | undefined { return nth(w.liveInstances(), this.k) }
  protected act(w: World): Promise<void> { return w.send(this.target(w)!, this.c, this.how, this.n) }
  toString(): string { return `Send(#${this.k}, ${this.c}, ${this.how} x${this.n})` }
}

class Listen extends Base {
  constructor(readonly k: number, readonly c: string, readonly kind: Kind, readonly limit: number) { super() }
  // An instance with a 'message' listener on c already is not a target; a finite
  // consumer may have finished: listen() waits for it, or skips.
  protected target(w: World): Instance | undefined {
    return nth(w.liveInstances().filter((i) => i.chans.get(this.c)?.consumer?.kind !== 'on'), this.k)
  }
  protected act(w: World): Promise<boolean> { return w.listen(this.target(w)!, this.c, this.kind, this.limit) }
  toString(): string { return `Listen(#${this.k}, ${this.c}, ${this.kind}${this.kind === 'iter' ? ` break after ${this.limit}` : ''})` }
}

class Unlisten extends Base {
  constructor(readonly k: number) { super() }
  protected target(w: World): [Instance, string] | undefined {
    return nth(channelsOf(w, (i, c) => { const k = i.chans.get(c)?.consumer; return k != null && k.kind !== 'iter' }), this.k)
  }
  protected act(w: World): Promise<void> { const [i, c] = this.target(w)!; return w.unlisten(i.chans.get(c)!.consumer!) }
  toString(): string { return `Unlisten(#${this.k})` }
}

class Pause extends Base {
  constructor(readonly k: number, readonly paused: boolean) { super() }
  protected target(w: World): [Instance, string] | undefined {
    return nth(channelsOf(w, (i, c) => { const st = i.chans.get(c); return st !== undefined && st.open && st.paused !== this.paused }), this.k)
  }
  protected act(w: World): Promise<void> { const [i, c] = this.target(w)!; return w.pause(i, c, this.paused) }
  toString(): string { return `${this.paused ? 'Pause' : 'Resume'}(#${this.k})` }
}

class CloseChannel extends Base {
  constructor(readonly k: number) { super() }
  protected target(w: World): [Instance, string] | undefined { return nth(channelsOf(w, (i, c) => i.chans.get(c)?.open === true), this.k) }
  protected act(w: World): Promise<void> { const [i, c] = this.target(w)!; return w.closeChannel(i, c) }
  toString(): string { return `CloseChannel(#${this.k})` }
}

const liveAgents = (w: World): number[] => w.agents.flatMap((agent, a) => (agent?.alive ? [a] : []))

class Exit extends Base {
  constructor(readonly k: number, readonly close: boolean) { super() }
  protected target(w: World): number | undefined { return nth(liveAgents(w), this.k) }
  protected act(w: World): Promise<void> { return w.exit(this.target(w)!, this.close) }
  toString(): string { return `Exit(#${this.k}, ${this.close ? 'after bus.close()' : 'without close'})` }
}

class Kill extends Base {
  constructor(readonly k: number) { super() }
  protected target(w: World): number | undefined { return nth(liveAgents(w), this.k) }
  protected act(w: World): Promise<void> { return w.kill(this.target(w)!) }
  toString(): string { return `Kill(#${this.k})` }
}

const a = fc.integer({ min: 0, max: SLOTS - 1 })
const b = fc.integer({ min: 0, max: 1 })
const k = fc.nat({ max: 5 })
const c = fc.constantFrom(...CHANNELS)
const command: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(a, b, fc.constantFrom<'signal' | 'pipe'>('signal', 'pipe')).map(([x, y, d]) => new Open(x, y, d)) },
  { weight: 1, arbitrary: k.map((x) => new CloseBus(x)) },
  {
    weight: 7,
    arbitrary: fc.tuple(k, c, fc.constantFrom<How>('trySend', 'send', 'sendMany'), fc.integer({ min: 1, max: 60 }))
      .map(([x, ch, how, n]) => new Send(x, ch, how, n)),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(k, c, fc.constantFrom<Kind>('on', 'once', 'eventsOnce', 'iter'), fc.integer({ min: 1, max: 40 }))
      .map(([x, ch, kind, limit]) => new Listen(x, ch, kind, limit)),
  },
  { weight: 2, arbitrary: k.map((x) => new Unlisten(x)) },
  { weight: 2, arbitrary: fc.tuple(k, fc.boolean()).map(([x, p]) => new Pause(x, p)) },
  { weight: 1, arbitrary: k.map((x) => new CloseChannel(x)) },
  { weight: 1, arbitrary: fc.tuple(k, fc.boolean()).map(([x, close]) => new Exit(x, close)) },
  { weight: 1, arbitrary: k.map((x) => new Kill(x)) },
)

let sequenceNumber = 0

describe('model-based test of the public API across processes', () => {
  test(`random command sequences keep every promise (${RUNS} runs of up to ${MAX_COMMANDS} commands)`, async () => {
    const started = Date.now()
    let stopped = false
    let inFlight: Promise<void> = Promise.resolve()
    const property = fc.asyncProperty(
      fc.commands([command], { maxCommands: MAX_COMMANDS, size: 'max', ...(replayPath === undefined ? {} : { replayPath }) }),
      (cmds) => (inFlight = runSequence(cmds)),
    )
    /** One command sequence on a fresh World; always cleaned up. */
    async function runSequence(cmds: Iterable<Cmd>): Promise<void> {
      if (stopped) return // fast-check gave up waiting for this run (time limit)
      const world = new World(`model-${process.pid}-${++sequenceNumber}`, mkdtempSync(join(tmpdir(), 'ipc-model-')))
      counts.sequences++
      let t = performance.now()
      const lap = (phase: keyof typeof times): void => { const now = performance.now(); times[phase] += now - t; t = now }
      try {
        await fc.asyncModelRun(() => ({ model: world, real: world }), cmds)
        lap('commands')
        await finish(world)
        lap('finish')
        await shutdown(world)
      } finally {
        if (process.env['MODEL_DEBUG']) console.log(`${cmds}\n${world.log.join('\n')}`)
        await dispose(world)
        lap('shutdown')
      }
    }
    try {
      await fc.assert(property, {
        numRuns: RUNS, seed, path, verbose: 1,
        plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
      })
    } catch (err) {
      const m = /seed: (-?\d+), path: "([^"]*)"/.exec(String((err as Error).message))
      const hint = /replayPath: "([^"]*)"/.exec(String((err as Error).message))
      if (m) {
        console.error(`model test failed; replay with: FC_SEED=${m[1]} FC_PATH=${m[2]}${hint ? ` FC_REPLAY_PATH='${hint[1]}'` : ''} npx vitest run packages/bus/test/model.test.ts`)
      }
      throw err
    } finally {
      // A run interrupted by the time limit goes on in the background: let it
      // clean up before the pool is drained, so that no agent outlives the test.
      stopped = true
      await inFlight.catch(() => {})
      await drainPool()
      const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
      console.log(`model test: ${counts.sequences} sequences, ${counts.commands} commands run (${counts.skipped} skipped at run time), ${s(Date.now() - started)}` +
        ` (commands ${s(times.commands)}, final phase ${s(times.finish)}, shutdown and leak checks ${s(times.shutdown)})`)
    }
    expect(counts.sequences).toBeGreaterThan(0)
  }, TIME_LIMIT_MS + 120_000)
})
