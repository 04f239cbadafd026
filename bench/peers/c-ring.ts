/**
 * The C shared-memory ring (bench/c/ring.c), the machine's physical
 * reference: compiled at bench time with the machine's cc, then run by the
 * runner as its own process pair (it forks itself). Anonymous shared
 * mappings only: nothing to clean up in `ipcs -m`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Cell, RunResult } from '../suite/cell.js'

const SOURCE = fileURLToPath(new URL('../../c/ring.c', import.meta.url))
const BINARY = fileURLToPath(new URL('../c/ring', import.meta.url))

/** Compiles ring.c (once per process); returns the compiler's complaint instead of throwing. */
let built: { ok: true; compiler: string } | { ok: false; error: string } | null = null
export function buildRing(): typeof built & object {
  if (built !== null) return built
  mkdirSync(fileURLToPath(new URL('../c/', import.meta.url)), { recursive: true })
  for (const cc of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(cc, ['-O2', '-std=c11', '-o', BINARY, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] })
      const version = execFileSync(cc, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? cc
      built = { ok: true, compiler: `${cc}: ${version}` }
      return built
    } catch (err) {
      built = { ok: false, error: `${cc}: ${err instanceof Error ? err.message : String(err)}` }
    }
  }
  return built!
}

/** Runs one cell (stream of raw64 records, or rtt) on the C ring. `onChild` gets the pid so the runner can kill it. */
export function runRing(cell: Cell, onChild: (pid: number) => void, timeoutMs: number): Promise<RunResult[]> {
  const b = buildRing()
  if (!b.ok) return Promise.reject(new Error(`cannot build bench/c/ring.c: ${b.error}`))
  const mode = cell.kind === 'rtt' ? 'rtt' : 'tput'
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, [mode, String(cell.messages), String(cell.runs), String(cell.warmup)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_PIN: cell.pin ? '1' : '0' },
      detached: true, // its own process group: the runner kills the pair together
    })
    if (child.pid !== undefined) onChild(child.pid)
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
    const timer = setTimeout(() => reject(new Error(`c-ring timed out after ${timeoutMs} ms`)), timeoutMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`c-ring exited with ${signal ?? code}`))
      resolve(out.trim().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as RunResult))
    })
  })
}
