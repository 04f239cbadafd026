/**
 * Child processes for tests. Every child started here is tracked and killed
 * (SIGKILL, then reaped) after each test, pass or fail, so a failing test
 * never leaves a process behind. Fixtures are the built JS of each
 * package's packages/<pkg>/test/fixtures/*.ts (packages/<pkg>/test/dist/fixtures,
 * built by the package's `build`), run by the same Node.
 *
 * A fixture started as another user (options.uid / options.gid, e.g. 65534
 * to see what root's privileges hide) runs from a world-readable copy made
 * for it (readableCopy): in a clone under a directory other users cannot
 * enter (a 0700 home) it could not read its own script or the packages it
 * imports.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'

const live = new Set<ChildProcess>()

/** The packages whose tests have fixtures (packages/<pkg>/test/fixtures). */
export type FixturePackage = 'native' | 'core' | 'bus' | 'bridge-nats'
// bridge-nats's fixtures never run as another user: not copied.
const FIXTURE_PACKAGES: readonly FixturePackage[] = ['native', 'core', 'bus']

const repoDir = fileURLToPath(new URL('../..', import.meta.url))

/** Where fixture `name` of package `pkg` is built: packages/<pkg>/test/dist/fixtures/<name>.js. */
export function fixturePath(pkg: FixturePackage, name: string): string {
  return join(builtFixtures(pkg), `${name}.js`)
}

function builtFixtures(pkg: FixturePackage): string {
  return join(repoDir, 'packages', pkg, 'test', 'dist', 'fixtures')
}

export interface FixtureExtras {
  /** Flags for node itself, before the script (e.g. --expose-gc). */
  nodeArgs?: readonly string[]
  /** Kill the child if it has not finished by then. Default 20 s. */
  timeoutMs?: number
}

/**
 * Starts `node packages/<pkg>/test/dist/fixtures/<name>.js ...args`, tracked
 * for cleanup. As another user (options.uid/gid), from readableCopy() instead.
 */
export function startFixture(pkg: FixturePackage, name: string, args: readonly string[] = [], options: SpawnOptions = {}, extras: FixtureExtras = {}): ChildProcess {
  const asOtherUser = (options.uid !== undefined && options.uid !== process.getuid?.()) ||
    (options.gid !== undefined && options.gid !== process.getgid?.())
  const root = asOtherUser ? readableCopy() : undefined
  const script = root === undefined ? fixturePath(pkg, name) : join(root, 'fixtures', pkg, `${name}.js`)
  return track(spawn(process.execPath, [...(extras.nodeArgs ?? []), script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(root === undefined ? {} : { cwd: root }),
    ...options,
  }))
}

// ------------------------------------------------ fixtures for another user

const testDir = fileURLToPath(new URL('..', import.meta.url))
let copy: string | undefined

/** The real directory of package `name` as Node would resolve it from `fromDir` (pnpm symlinks followed). */
function packageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate)
    if (dirname(dir) === dir) throw new Error(`readableCopy: cannot find package ${name} from ${fromDir}`)
  }
}

/** Copies `from` to `to`, following symlinks, keeping only what `keep` accepts (by path relative to `from`). */
function copyTree(from: string, to: string, keep: (rel: string) => boolean): void {
  cpSync(from, to, { recursive: true, dereference: true, filter: (src) => src === from || keep(relative(from, src)) })
}

/** Everything under `dir` readable by all: directories 0755, files 0644 (0755 if executable). */
function openUp(dir: string): void {
  chmodSync(dir, 0o755)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) openUp(path)
    else chmodSync(path, (statSync(path).mode & 0o100) !== 0 ? 0o755 : 0o644)
  }
}

/**
 * A world-readable copy of what a fixture runs — every package's built
 * fixtures (packages/<pkg>/test/dist/fixtures) and the built packages they
 * may import (@ipc/native with its compiled addon, @ipc/core, @ipc/bus,
 * msgpackr) laid out as Node resolves them:
 *
 *   <tmp>/ipc-test-fixtures-XXXXXX/         0755
 *     package.json                          {"type": "module"}
 *     fixtures/<pkg>/<name>.js
 *     node_modules/@ipc/{native,core,bus}/  package.json, dist/ (native: build/<config>/ipc_native.node)
 *     node_modules/msgpackr/
 *
 * Made once per test, on first use, and removed after it (pass or fail),
 * once its children are dead. A few tens of ms.
 */
export function readableCopy(): string {
  if (copy !== undefined) return copy
  // A TMPDIR other users cannot enter would defeat the point: /tmp then.
  const base = (statSync(tmpdir()).mode & 0o001) !== 0 ? tmpdir() : '/tmp'
  const root = mkdtempSync(join(base, 'ipc-test-fixtures-'))
  copy = root
  const noMaps = (rel: string): boolean => !/\.(map|d\.ts|d\.cts|md)$/.test(rel)
  const built = (rel: string): boolean => /^(package\.json|dist(\/.*)?)$/.test(rel)
  writeFileSync(join(root, 'package.json'), '{ "type": "module", "private": true }\n')
  for (const pkg of FIXTURE_PACKAGES) copyTree(builtFixtures(pkg), join(root, 'fixtures', pkg), noMaps)
  const core = packageDir('@ipc/core', testDir)
  const packages: Array<[string, string, (rel: string) => boolean]> = [
    ['@ipc/native', packageDir('@ipc/native', testDir), (rel) => noMaps(rel) && (built(rel) || /^build(\/(Release|Debug)(\/ipc_native\.node)?)?$/.test(rel))],
    ['@ipc/core', core, (rel) => noMaps(rel) && built(rel)],
    ['@ipc/bus', packageDir('@ipc/bus', testDir), (rel) => noMaps(rel) && built(rel)],
    // Its ESM entry and what that imports; not its CJS bundles (dist) nor its own node_modules.
    ['msgpackr', packageDir('msgpackr', core), (rel) => noMaps(rel) && !/^(dist|node_modules)(\/|$)/.test(rel)],
  ]
  for (const [name, dir, keep] of packages) copyTree(dir, join(root, 'node_modules', name), keep)
  openUp(root)
  return root
}

function removeCopy(): void {
  if (copy !== undefined) rmSync(copy, { recursive: true, force: true })
  copy = undefined
}

process.once('exit', removeCopy) // should a test process end without its afterEach

/** Tracks a child started some other way. */
export function track<T extends ChildProcess>(child: T): T {
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Collects a child's output until it exits; rejects after timeoutMs (the child is killed). */
export async function finish(child: ChildProcess, timeoutMs = 20_000): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
  try {
    const [code, signal] = (child.exitCode !== null || child.signalCode !== null)
      ? [child.exitCode, child.signalCode]
      : ((await once(child, 'close')) as [number | null, NodeJS.Signals | null])
    if (timedOut) throw new Error(`child timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)
    return { code, signal, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a fixture to completion. */
export function runFixture(pkg: FixturePackage, name: string, args: readonly string[] = [], options: SpawnOptions = {}, extras: FixtureExtras = {}): Promise<Finished> {
  return finish(startFixture(pkg, name, args, options, extras), extras.timeoutMs)
}

/** Resolves with the first line of stdout that matches, or rejects when the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (d: Buffer | string): void => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        const m = pattern.exec(line)
        if (m) { cleanup(); resolve(m); return }
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup()
      reject(new Error(`child exited (code ${code}, signal ${signal}) before printing ${pattern}`))
    }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)) }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Kills and reaps every tracked child. */
export async function killAll(): Promise<void> {
  const waits = [...live].map(async (child) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  await Promise.all(waits)
  live.clear()
}

afterEach(async () => {
  try {
    await killAll()
  } finally {
    removeCopy()
  }
})
