/**
 * The suite's own reporter, listed after vitest's default one. It does two
 * things at the very end of a run:
 *
 * - Leak guard. At start it records the System V segments that already exist
 *   and tags the environment with a run id that every process the tests start
 *   inherits. At the end, a segment that was not there before, or a process
 *   that still carries the run id, is a leak: it is reported, cleaned up (so
 *   one bad run does not poison the machine) and counted as a failed test.
 *   (A vitest globalSetup teardown cannot do this: an error thrown there is
 *   printed but does not change the exit code.)
 * - Summary. It ends the output with one plain line,
 *   "vitest: N passed, N failed, N skipped", so that tools reading only the
 *   last line of a run (CI) see the counts.
 */
import { randomUUID } from 'node:crypto'
import type { Reporter, TestModule } from 'vitest/node'
import { envOf, listProcessesWithEnv, listSegments, removeSegment } from './leaks.js'

export const RUN_VAR = 'IPC_TEST_RUN'

export default class SummaryReporter implements Reporter {
  private runId = randomUUID()
  private segmentsBefore = new Set<number>()

  onInit(): void {
    process.env[RUN_VAR] = this.runId
    this.segmentsBefore = new Set(listSegments().map((s) => s.shmid))
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const mod of testModules) {
      const tests = [...mod.children.allTests()]
      if (mod.state() === 'failed' && tests.length === 0) failed++ // a file that failed to load
      for (const test of tests) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
    }
    failed += unhandledErrors.length

    const leaks = this.collectLeaks()
    if (leaks.length > 0) {
      failed += leaks.length
      process.exitCode = 1
      process.stdout.write(`\nThe suite leaked resources (now cleaned up):\n  ${leaks.join('\n  ')}\n`)
    }
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }

  private collectLeaks(): string[] {
    const problems: string[] = []
    const stray = listProcessesWithEnv(RUN_VAR, this.runId).filter((p) => p.pid !== process.pid && p.ppid !== process.pid)
    for (const p of stray) {
      problems.push(`process ${p.pid} (${p.cmdline}) outlived the suite`)
      try { process.kill(p.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    for (const s of listSegments()) {
      if (this.segmentsBefore.has(s.shmid)) continue
      // Made by a live process of another test run on this machine: theirs.
      const owner = envOf(s.cpid, RUN_VAR)
      if (owner !== undefined && owner !== this.runId) continue
      problems.push(`shm segment ${s.shmid} (key 0x${(s.key >>> 0).toString(16)}, ${s.bytes} bytes, nattch ${s.nattch}, cpid ${s.cpid}) outlived the suite`)
      removeSegment(s.shmid)
    }
    return problems
  }
}
