/**
 * Signal ping-pong between two processes in one process group, with kill(0, sig).
 *
 *   node examples/dist/signal-pingpong.js [--rounds 10000 | --seconds 2]
 *
 * kill(0, sig) sends sig to every process in the caller's process group, so
 * two processes in one group can signal each other without knowing each
 * other's pid. The parent sends PING (SIGRTMIN+1) with kill(0, ...); the
 * child answers each with PONG (SIGRTMIN+2), also with kill(0, ...); the
 * parent counts round trips and reports the rate.
 *
 * What can go wrong:
 *  - kill(0, sig) reaches EVERY process in the group, the sender included.
 *    So each process handles both signals and ignores the ones it sent; an
 *    unhandled real-time signal's default action terminates the process.
 *  - The group might hold others: started from a script, a test runner or
 *    pnpm, we share their group, and kill(0, ...) would hit them too (the
 *    course version has the shell `trap "" USR1 USR2 QUIT` for this
 *    reason). So the parent first moves into a new group of its own with
 *    setpgid(0, 0), and the child inherits that group. A process that
 *    already leads a session (setsid, spawn's detached: true) gets EPERM
 *    from setpgid but already leads its own group; we check getpgid(0).
 *  - A new group is not the terminal's foreground group: Ctrl-C typed while
 *    this runs under another program reaches that program, not us. Each run
 *    is short, and the child exits when its stdin (a pipe from the parent)
 *    closes, so it never outlives the parent.
 *  - The child must have its handlers installed before the first PING, or
 *    the default action kills it: it says "ready" on stdout first.
 *  - SIGUSR1 belongs to Node (it starts the inspector). Standard signals
 *    (1..31) coalesce while pending; real-time ones queue, so none are lost
 *    even when two are in flight. Here only one PING is ever in flight.
 *
 * Each round trip is two kill() calls and four deliveries (each process
 * also gets its own signal), each going signal handler -> self-pipe ->
 * event loop -> JS handler.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { getpgid, kill, onSignal, setpgid, type SignalName } from '@ipc/native'

const PING: SignalName = 'SIGRTMIN+1'
const PONG: SignalName = 'SIGRTMIN+2'

/** Makes this process the leader of its own process group; returns the group id. */
function leadOwnGroup(): number {
  try {
    setpgid(0, 0)
  } catch (err) {
    // EPERM: a session leader cannot move, but it already leads its own group.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err
  }
  const pgid = getpgid(0)
  if (pgid !== process.pid) throw new Error(`could not get a process group of our own (pgid ${pgid}, pid ${process.pid}); refusing to kill(0, ...)`)
  return pgid
}

interface Goal { rounds: number; seconds: number }

async function parent(goal: Goal): Promise<number> {
  const pgid = leadOwnGroup()
  let child: ReturnType<typeof spawn> | undefined
  let rounds = 0
  let started = 0
  let finished!: () => void
  const done = new Promise<void>((resolve) => { finished = resolve })
  let stray = 0

  const handlers = [
    onSignal(PING, () => { /* our own PING, sent to the whole group: ignore */ }),
    onSignal(PONG, (info) => {
      if (child === undefined || info.pid !== child.pid) { stray++; return }
      rounds++
      const elapsed = (performance.now() - started) / 1000
      if (goal.seconds > 0 ? elapsed >= goal.seconds : rounds >= goal.rounds) finished()
      else kill(0, PING)
    }),
  ]
  try {
    child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines = createInterface({ input: child.stdout! })
    const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit')])) as [string]
    if (first !== 'ready') throw new Error(`child did not start (${String(first)})`)
    if (getpgid(child.pid!) !== pgid) throw new Error('child is not in our process group')
    console.log(`ping-pong: process group ${pgid} (parent ${process.pid}, child ${child.pid}), ping ${PING}, pong ${PONG}`)
    lines.on('line', (line) => console.log(line)) // the child's report at the end

    started = performance.now()
    kill(0, PING)
    await done
    const seconds = (performance.now() - started) / 1000

    child.stdin!.end() // EOF: the child reports and exits
    const [code] = (await once(child, 'close')) as [number | null] // 'close': its stdout is drained too
    console.log(`ping-pong: ${rounds} round trips in ${seconds.toFixed(3)} s`)
    console.log(`ping-pong: ${Math.round(rounds / seconds)} round trips/s (${((seconds / rounds) * 1e6).toFixed(1)} µs per round trip)`)
    if (stray > 0) console.log(`ping-pong: ignored ${stray} PONGs from other processes`)
    return code ?? 1
  } finally {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const stop of handlers) stop()
  }
}

function child(): void {
  const parentPid = process.ppid
  let answered = 0
  onSignal(PING, (info) => {
    if (info.pid !== parentPid) return
    answered++
    kill(0, PONG)
  })
  onSignal(PONG, () => { /* our own PONG comes back to us too: ignore */ })
  console.log('ready')
  process.stdin.resume()
  process.stdin.on('end', () => {
    console.log(`child ${process.pid}: answered ${answered} pings`)
    process.exit(0)
  })
}

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10000' },
    seconds: { type: 'string' },
  },
  allowPositionals: true,
})
if (positionals[0] === 'child') {
  child()
} else {
  const rounds = Number(values.rounds)
  const seconds = values.seconds === undefined ? 0 : Number(values.seconds)
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer, got ${values.rounds}`)
  if (!(seconds >= 0)) throw new RangeError(`--seconds must be a positive number, got ${values.seconds}`)
  process.exitCode = await parent({ rounds, seconds })
}
