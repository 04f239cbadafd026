/**
 * The leak guard itself (leaks.ts, run by summary-reporter.ts at the end of
 * every run): it must count and remove only what its own run made, and never
 * touch a segment of an unrelated program, even one made during the run.
 *
 * The "unrelated program" is a node process started through
 * `setsid sh -c 'node ... &'` with IPC_TEST_RUN taken out of its environment:
 * once sh has exited it is an orphan in a session of its own, neither
 * carrying the run id nor descending from the runner.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test, vi } from 'vitest'
import { shmctl } from '@ipc/native'
import { track } from './children.js'
import { classifyProcess, classifySegment, LeakGuard, listSegments, RUN_VAR, startTicksOf, type SegmentInfo } from './leaks.js'
import { makeSegment } from './segments.js'

const nativeUrl = new URL('../../packages/native/dist/index.js', import.meta.url).href

/**
 * Makes an IPC_PRIVATE segment and prints "<pid> <shmid>". With argv 'stay'
 * it then lives on (until killed; after 30 s it removes its segment and exits
 * by itself, should the test never get to it); otherwise it exits at once.
 */
const CREATOR = `import(${JSON.stringify(nativeUrl)}).then((n) => {
  const id = n.shmget(n.IPC_PRIVATE, 4096, n.IPC_CREAT | 0o600)
  console.log(process.pid + ' ' + id)
  if (process.argv[1] !== 'stay') process.exit(0)
  setTimeout(() => { n.shmctl(id, 'IPC_RMID'); process.exit(0) }, 30_000)
})`

interface Made { pid?: number; shmid?: number }

/** Starts CREATOR as an orphan in its own session, with `env`; resolves once its parent sh has exited. */
async function orphanCreator(env: NodeJS.ProcessEnv, made: Made[]): Promise<Required<Made>> {
  const entry: Made = {}
  made.push(entry)
  const sh = track(spawn('setsid', ['sh', '-c', '"$0" -e "$1" stay &', process.execPath, CREATOR], { env, stdio: ['ignore', 'pipe', 'inherit'] }))
  let out = ''
  sh.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  await once(sh, 'exit') // sh is gone: its background child is no longer ours
  await vi.waitUntil(() => out.includes('\n'), { timeout: 10_000 })
  sh.stdout!.destroy()
  const [pid, shmid] = out.trim().split(' ').map(Number) as [number, number]
  Object.assign(entry, { pid, shmid })
  return { pid, shmid }
}

/** Runs CREATOR as a child of this process that exits at once. */
function shortLivedCreator(made: Made[]): Required<Made> {
  const r = spawnSync(process.execPath, ['-e', CREATOR], { encoding: 'utf8', timeout: 10_000 })
  const [pid, shmid] = r.stdout.trim().split(' ').map(Number) as [number, number]
  made.push({ pid, shmid })
  expect(r.status, r.stderr).toBe(0)
  return { pid, shmid }
}

function cleanUp(made: Made[]): void {
  for (const { pid, shmid } of made) {
    if (pid !== undefined) try { process.kill(pid, 'SIGKILL') } catch { /* exited */ }
    if (shmid !== undefined) try { shmctl(shmid, 'IPC_RMID') } catch { /* removed */ }
  }
}

function segment(shmid: number): SegmentInfo | undefined {
  return listSegments().find((s) => s.shmid === shmid)
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

const parentOf = (pid: number): number => Number(statFields(pid)?.[1])
/** Alive and not a zombie (a killed orphan waits for its new parent to reap it). */
const running = (pid: number): boolean => { const state = statFields(pid)?.[0]; return state !== undefined && state !== 'Z' }

/** The segment ids a finish() note lists as unclassified. */
function unclassifiedSegments(notes: string[]): number[] {
  const m = notes.map((n) => /^unclassified, left alone: shm segments? ([\d, ]+) \(/.exec(n)).find((x) => x !== null)
  return m ? m[1]!.split(', ').map(Number) : []
}

function withoutRunId(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env[RUN_VAR]
  return env
}

describe('leak guard', () => {
  test('this run: a segment made by the test process is ours; one made meanwhile by an unrelated process is foreign, left alone', async () => {
    const runId = process.env[RUN_VAR]
    expect(runId, `${RUN_VAR} is set by summary-reporter.ts for every process of the run`).toBeDefined()
    // Test files run in processes forked by the runner (vitest.config.ts: pool 'forks').
    const run = { runId: runId!, runnerPid: process.ppid }
    const made: Made[] = []
    try {
      const own = makeSegment(4096)
      const foreign = await orphanCreator(withoutRunId(), made)
      expect(parentOf(foreign.pid)).not.toBe(process.pid)

      expect(classifyProcess(process.pid, run)).toBe('ours')
      expect(classifySegment(segment(own)!, run)).toBe('ours')
      expect(classifyProcess(foreign.pid, run)).toBe('foreign')
      expect(classifySegment(segment(foreign.shmid)!, run)).toBe('foreign')
    } finally {
      cleanUp(made)
    }
  })

  test('a guard removes and counts only what its run made: ours (by descent or by run id) removed as leaks, foreign kept, unclassified kept with a note', async () => {
    // A run of its own, whose runner is this test process, so that finish()
    // cannot touch what the real run's other test files are doing meanwhile.
    const run = { runId: randomUUID(), runnerPid: process.pid }
    const fifoDir = mkdtempSync(join(tmpdir(), 'ipc-leak-guard-'))
    const guard = new LeakGuard(run, fifoDir)
    const made: Made[] = []
    try {
      guard.start(null) // sampled by hand below, so that what is alive when is certain
      const own = { pid: process.pid, shmid: makeSegment(4096) }
      const foreign = await orphanCreator(withoutRunId(), made)
      const carrier = await orphanCreator({ ...withoutRunId(), [RUN_VAR]: run.runId }, made) // an orphan too, but it carries the run id
      const quick = shortLivedCreator(made) // ours, but it exited before any sample

      // Doorbell FIFOs (only the name matters): of a child of ours that dies
      // before the end, of this live process, of the unrelated process, and
      // of a process that exited before the sample.
      const dying = track(spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' }))
      await vi.waitUntil(() => startTicksOf(dying.pid!) !== undefined)
      const bell = (pid: number, ticks = startTicksOf(pid)!): string => `ipc-bus-${pid}-${ticks}.bell`
      const fifos = {
        dying: bell(dying.pid!), dyingThread: bell(dying.pid!).replace('.bell', '-t2.bell'), // a worker thread's: <pid>-<ticks>-t<thread>
        self: bell(process.pid), foreign: bell(foreign.pid), gone: bell(quick.pid, 1),
      }
      for (const name of Object.values(fifos)) writeFileSync(join(fifoDir, name), '')

      guard.sample()
      expect(guard.ownerOf(segment(own.shmid)!)).toBe('ours')
      expect(guard.ownerOf(segment(carrier.shmid)!)).toBe('ours')
      expect(guard.ownerOf(segment(foreign.shmid)!)).toBe('foreign')
      expect(guard.ownerOf(segment(quick.shmid)!)).toBe('gone')
      expect(guard.ownerOfFifo(fifos.dying)).toBe('ours')
      expect(guard.ownerOfFifo(fifos.dyingThread)).toBe('ours')
      expect(guard.ownerOfFifo(fifos.self)).toBe('ours')
      expect(guard.ownerOfFifo(fifos.foreign)).toBe('foreign')
      expect(guard.ownerOfFifo(fifos.gone)).toBe('gone')

      dying.kill('SIGKILL')
      await once(dying, 'exit')
      const { leaks, notes } = guard.finish()

      // Ours: reported and removed; the carrier, still running, is a stray process too.
      expect(segment(own.shmid)).toBeUndefined()
      expect(segment(carrier.shmid)).toBeUndefined()
      expect(leaks).toEqual(expect.arrayContaining([
        expect.stringMatching(new RegExp(`^shm segment ${own.shmid} .*outlived the suite$`)),
        expect.stringMatching(new RegExp(`^shm segment ${carrier.shmid} .*outlived the suite$`)),
        expect.stringMatching(new RegExp(`^process ${carrier.pid} .*outlived the suite$`)),
      ]))
      expect(leaks).toHaveLength(3)
      await vi.waitUntil(() => !running(carrier.pid), { timeout: 5_000 })
      // Foreign: untouched and unmentioned. Unclassified: untouched, one note.
      expect(segment(foreign.shmid)).toBeDefined()
      expect(running(foreign.pid)).toBe(true)
      expect(unclassifiedSegments(notes)).not.toContain(foreign.shmid)
      expect(segment(quick.shmid)).toBeDefined()
      expect(unclassifiedSegments(notes)).toContain(quick.shmid)
      // FIFOs: ours of a dead process removed; of a live one, foreign, unclassified: kept.
      expect(existsSync(join(fifoDir, fifos.dying))).toBe(false)
      expect(existsSync(join(fifoDir, fifos.dyingThread))).toBe(false)
      for (const name of [fifos.self, fifos.foreign, fifos.gone]) expect(existsSync(join(fifoDir, name))).toBe(true)
      expect(notes).toContainEqual(expect.stringMatching(new RegExp(`^removed 2 doorbell FIFOs of this run's dead processes from ${fifoDir}: `)))
      expect(notes).toContainEqual(`unclassified, left alone: ${fifos.gone} in ${fifoDir}`)
    } finally {
      cleanUp(made)
      rmSync(fifoDir, { recursive: true, force: true })
    }
  })
})
