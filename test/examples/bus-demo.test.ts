import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'
import { finish, track } from '../support/children.js'

const demo = fileURLToPath(new URL('../../examples/dist/bus-demo/main.js', import.meta.url))

test('the bus demo streams both ways, measures every mode and exits cleanly', async () => {
  const child = track(spawn(process.execPath, [demo, '--orders', '20000', '--pings', '50'], { stdio: ['ignore', 'pipe', 'pipe'] }))
  const out = await finish(child, 60_000)
  expect(out.stderr).toBe('')
  expect(out.code).toBe(0)
  for (const line of [
    /one way to 1 worker, @ipc\/bus\s+[\d.]+ [Mk]\/s/,
    /one way to 1 worker, child_process IPC \(json\)\s+[\d.]+ [Mk]\/s/,
    /orders out to 2 workers \+ fills back, @ipc\/bus\s+[\d.]+ [Mk]\/s/,
    /round trip, spinning receivers .*p50 [\d.]+ µs\s+p99 [\d.]+ µs/,
    /round trip, signal doorbell, woken from idle\s+p50 [\d.]+ µs/,
    /round trip, pipe doorbell, woken from idle\s+p50 [\d.]+ µs/,
    /round trip, child_process IPC from idle\s+p50 [\d.]+ µs/,
  ]) expect(out.stdout).toMatch(line)
}, 90_000)
