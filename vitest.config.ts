import { defineConfig } from 'vitest/config'
import SummaryReporter from './test/support/summary-reporter.js'

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Signals never reach worker_threads the way they reach a process's main
    // thread, and our handlers are process-wide: every test file gets its own
    // process.
    pool: 'forks',
    // The parked receiver's backstop timer would hide a lost wakeup as a
    // 250 ms delay: off for every test and the processes they start (a
    // lost wakeup then stalls, and the test says where). The one test of
    // the backstop itself turns it back on.
    env: { IPC_BUS_BACKSTOP: 'off' },
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    reporters: ['default', new SummaryReporter()],
  },
})
