/**
 * A short tour of the classic examples (`pnpm tour`; `pnpm demo` is the bus demo).
 *
 *   node examples/dist/tour.js
 *
 * Runs each example in this directory as a child process, one after the
 * other, and prints its output indented under a heading. The tour plays the
 * user where one is needed: it sends the sleeper its three SIGINTs, and it
 * starts both ends of the FIFO as separate processes. Every step has a time
 * limit; every child is killed if the tour fails or is interrupted, and the
 * examples themselves remove their segments and FIFOs. Exit code 0 when
 * every example exited 0.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const STEP_LIMIT_MS = 15_000
const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()

/** A running example: its output is printed as it comes, and can be waited on line by line. */
class Example {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  private readonly seen: string[] = []
  private readonly watchers = new Set<() => void>()

  constructor(name: string, args: readonly string[], label = '') {
    const prefix = label === '' ? '    ' : `    ${label} | `
    this.child = spawn(process.execPath, [join(here, `${name}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(this.child)
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        console.log(prefix + line)
        this.seen.push(line)
        for (const watcher of [...this.watchers]) watcher()
      })
    }
    // 'close': the process has exited and its output has been read to the end.
    this.exited = once(this.child, 'close').then(([code, signal]) => {
      live.delete(this.child)
      if (signal !== null) console.log(`${prefix}(killed by ${String(signal)})`)
      return code as number | null
    })
  }

  /** Resolves once a line matching pattern has been printed (also one printed earlier). */
  waitFor(pattern: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!this.seen.some((line) => pattern.test(line))) return
        this.watchers.delete(check)
        resolve()
      }
      this.watchers.add(check)
      check()
      void this.exited.then(() => {
        this.watchers.delete(check)
        reject(new Error(`exited before printing ${pattern}`))
      })
    })
  }
}

async function expectSuccess(...examples: Example[]): Promise<void> {
  const codes = await Promise.all(examples.map((e) => e.exited))
  if (codes.some((code) => code !== 0)) throw new Error(`exit codes ${codes.join(', ')}`)
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const steps: Array<[heading: string, run: () => Promise<void>]> = [
  ['sleeper.js --interval 0.2: the tour sends SIGINT three times', async () => {
    const sleeper = new Example('sleeper', ['--interval', '0.2'])
    await sleeper.waitFor(/^I'm sleeping/) // the handler is installed before the first line
    for (let i = 1; i <= 3; i++) {
      await delay(250)
      sleeper.child.kill('SIGINT')
      await sleeper.waitFor(new RegExp(`^SIGINT ${i} of 3`)) // one at a time: standard signals coalesce
    }
    await expectSuccess(sleeper)
  }],
  ['pipe-to-child.js: a message from parent to child through a pipe', async () => {
    await expectSuccess(new Example('pipe-to-child', []))
  }],
  ['two-pipes.js: parent and child talk over pipes A and B', async () => {
    await expectSuccess(new Example('two-pipes', ['--rounds', '3']))
  }],
  ['fifo.js: a reader and a writer, started separately, meet at a FIFO', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipc-tour-'))
    tempDirs.add(dir)
    try {
      const path = join(dir, 'fifo')
      const reader = new Example('fifo', ['reader', path], 'reader')
      await reader.waitFor(/waiting for a writer/)
      const writer = new Example('fifo', ['writer', path, 'first line', 'second line', 'third line'], 'writer')
      await expectSuccess(reader, writer)
    } finally {
      rmSync(dir, { recursive: true, force: true })
      tempDirs.delete(dir)
    }
  }],
  ['ni-server.js: a child server wraps each line in "Ni!" (length-prefixed frames)', async () => {
    await expectSuccess(new Example('ni-server', []))
  }],
  ['signal-pingpong.js --rounds 2000: kill(0, sig) inside a process group', async () => {
    await expectSuccess(new Example('signal-pingpong', ['--rounds', '2000']))
  }],
  ['shm-segment.js: create, attach, IPC_STAT, IPC_RMID, detach', async () => {
    await expectSuccess(new Example('shm-segment', []))
  }],
]

function killAll(): void {
  for (const child of live) child.kill('SIGTERM')
}

// Interrupted (Ctrl-C, or a test runner's SIGTERM): stop the examples first.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log(`\ntour: ${sig}, stopping the examples`)
    killAll()
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
    process.exit(sig === 'SIGINT' ? 130 : 143)
  })
}

const began = performance.now()
let failed = 0
for (const [index, [heading, run]] of steps.entries()) {
  console.log(`\n== ${index + 1}. ${heading}`)
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`took longer than ${STEP_LIMIT_MS / 1000} s`)), STEP_LIMIT_MS)
      }),
    ])
  } catch (err) {
    failed++
    console.log(`   FAILED: ${err instanceof Error ? err.message : String(err)}`)
    killAll()
  } finally {
    clearTimeout(timer)
  }
}
console.log(`\ntour: ${steps.length - failed} of ${steps.length} examples ran cleanly in ${((performance.now() - began) / 1000).toFixed(1)} s`)
process.exitCode = failed === 0 ? 0 : 1
