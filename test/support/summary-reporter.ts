/**
 * The suite's own reporter, listed after vitest's default one. It does two
 * things:
 *
 * - Leak guard. At start it tags the environment with a run id that every
 *   process the tests start inherits, and a LeakGuard (leaks.ts) watches, while
 *   the run goes on, which System V segments and doorbell FIFOs appear and
 *   whether a process of this run made them. At the end, a segment of this
 *   run still there, or a process that still carries the run id, is a leak:
 *   it is reported, cleaned up (so one bad run does not poison the machine)
 *   and counted as a failed test. Nothing made by anyone else is touched.
 *   (A vitest globalSetup teardown cannot do this: an error thrown there is
 *   printed but does not change the exit code.)
 * - Summary. It ends the output with one plain line,
 *   "vitest: N passed, N failed, N skipped", so that tools reading only the
 *   last line of a run (CI) see the counts.
 */
import { randomUUID } from 'node:crypto'
import type { Reporter, TestModule } from 'vitest/node'
import { LeakGuard, RUN_VAR } from './leaks.js'

export { RUN_VAR }

export default class SummaryReporter implements Reporter {
  private runId = randomUUID()
  private guard = new LeakGuard({ runId: this.runId, runnerPid: process.pid })

  onInit(): void {
    process.env[RUN_VAR] = this.runId
    this.guard.start()
  }

  onTestRunStart(): void {
    this.guard.start() // again after a watch-mode re-run ended the watch
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

    const { leaks, notes } = this.guard.finish()
    if (notes.length > 0) process.stdout.write(`\nLeak guard: ${notes.join('\nLeak guard: ')}\n`)
    if (leaks.length > 0) {
      failed += leaks.length
      process.exitCode = 1
      process.stdout.write(`\nThe suite leaked resources (now cleaned up):\n  ${leaks.join('\n  ')}\n`)
    }
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
