/**
 * What both CLI test files use: run the built `ipc-bus` (dist/cli/main.js)
 * as a subprocess, its --json output parsed, and start bus members
 * (fixtures/cli-peer.ts) for it to look at. Children are tracked, so each
 * test's are killed after it (test/support/children.ts).
 */
import { spawn, type SpawnOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { finish, startFixture, track, waitForLine, type Finished } from '../../../test/support/children.js'

export const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

/** Runs `ipc-bus ...args` to completion (`main`: another copy of the CLI, e.g. one another user can read). */
export function cli(args: readonly string[], options: SpawnOptions = {}, main = MAIN): Promise<Finished> {
  return finish(track(spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options })), 30_000)
}

/** cli() with --json, parsed; fails the test on a non-zero exit. */
export async function json(args: readonly string[]): Promise<any> {
  const r = await cli([...args, '--json'])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout)
}

/** Starts a bus member (see fixtures/cli-peer.ts) and waits until it is set up; `name` '-' makes a private bus. */
export async function peer(name: string, config: Record<string, unknown> = {}): Promise<{ pid: number; child: ReturnType<typeof startFixture> }> {
  const child = startFixture('bus', 'cli-peer', [name, JSON.stringify(config)])
  const line = await waitForLine(child, /"ready"/, 15_000)
  return { pid: (JSON.parse(line.input) as { pid: number }).pid, child }
}
