/**
 * The two-hosts example (examples/two-hosts/, @ipc/bridge-nats) run as a
 * real process against a real nats-server: once with one this test starts
 * and stops (--servers), once starting its own. The children are tracked
 * and killed after each test; a nats-server the example started is killed
 * here by the pid it prints, should the example fail to stop it.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { finish, track } from '../support/children.js'
import { ensureNatsServer, startNats, stopAllNats } from '../support/nats.js'

const main = fileURLToPath(new URL('../../examples/dist/two-hosts/main.js', import.meta.url))

beforeAll(() => { ensureNatsServer() })
afterAll(stopAllNats)

function expectTheStory(stdout: string): void {
  expect(stdout).toMatch(/\[east\] bus and bridge up \(pid \d+; topics prices\.\*; service addressbook served here\)/)
  expect(stdout).toMatch(/\[west\] bus and bridge up \(pid \d+; topics prices\.\*; service addressbook served elsewhere\)/)
  for (const sym of ['ACME', 'INIT']) for (let i = 0; i < 3; i++) expect(stdout).toContain(`[west] prices.${sym} #${i} `)
  expect(stdout).toMatch(/\[west\] addressbook Ada -> 12 Analytical Row, London \(answered by pid \d+\)/)
  expect(stdout).toContain('[west] addressbook Nobody -> RemoteError E_NOT_FOUND: no entry for Nobody')
  expect(stdout).toContain('done: west received 6/6 prices from east, in order; 2/2 lookups answered across the bridge')
}

test('two hosts exchange prices and requests through a given nats-server', async () => {
  const nats = await startNats()
  const out = await finish(track(spawn(process.execPath, [main, '--servers', nats.url, '--count', '3'], { stdio: ['ignore', 'pipe', 'pipe'] })), 30_000)
  expect(out.stderr).toBe('')
  expect(out.code).toBe(0)
  expectTheStory(out.stdout)
  expect(out.stdout).not.toContain('nats-server started')
})

test('without --servers it starts a nats-server of its own, and stops it', async () => {
  const out = await finish(track(spawn(process.execPath, [main, '--count', '3'], { stdio: ['ignore', 'pipe', 'pipe'] })), 30_000)
  const started = /nats-server started on nats:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/.exec(out.stdout)
  const pid = Number(started?.[1])
  const alive = (): boolean => { try { process.kill(pid, 0); return true } catch { return false } }
  try {
    expect(out.stderr).toBe('')
    expect(out.code).toBe(0)
    expectTheStory(out.stdout)
    expect(started).not.toBeNull()
    expect(alive()).toBe(false)
  } finally {
    if (pid > 0 && alive()) process.kill(pid, 'SIGKILL')
  }
})
