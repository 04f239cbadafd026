import { defineConfig } from 'vitest/config'
import SummaryReporter from './test/support/summary-reporter.js'

export default defineConfig({
  test: {
    // Each package's tests live in packages/<pkg>/test (fixtures in its
    // fixtures/, built by the package's `build`); test/ keeps what spans
    // packages (examples, bench report, the leak guard's own test).
    projects: [
      // Pure TypeScript over SharedArrayBuffers; the races run in their own
      // worker_threads. No signals, no child processes: threads fit.
      { extends: true, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'], pool: 'threads' } },
      // Signals never reach worker_threads the way they reach a process's
      // main thread, and our handlers are process-wide: every test file that
      // forks or signals gets its own process.
      { extends: true, test: { name: 'native', include: ['packages/native/test/**/*.test.ts'], pool: 'forks' } },
      { extends: true, test: { name: 'bus', include: ['packages/bus/test/**/*.test.ts'], pool: 'forks' } },
      // Against a real nats-server (Debian's package, installed by the
      // globalSetup when missing and we are root), one per test file.
      { extends: true, test: { name: 'bridge', include: ['packages/bridge-nats/test/**/*.test.ts'], pool: 'forks', globalSetup: ['packages/bridge-nats/test/global-setup.ts'] } },
      { extends: true, test: { name: 'repo', include: ['test/**/*.test.ts'], pool: 'forks' } },
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
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
