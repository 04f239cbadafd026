// The packages as a user gets them: `pnpm pack` of @ipc/native, @ipc/core and
// @ipc/bus, installed with npm into a project outside the workspace, run with
// no C/C++ compiler, cmake or make on PATH (so only a shipped prebuild can
// load). Consumers: the README's quick start as-is (ESM, forks a worker,
// messages both ways, nothing left in shared memory), a CommonJS require(),
// and TypeScript strict under moduleResolution node16 and bundler. Then
// publint and arethetypeswrong on the tarballs, the loader's error where no
// addon exists, the documented source build (`npx ipc-native-build`), and
// the `ipc-bus` bin (--help; ls and inspect of a live bus of another process).
// Needs the npm registry (msgpackr, typescript, @types/node), as any install.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { listSegments, type SegmentInfo } from '../support/leaks.js'
import { consumerFiles, quickStart } from './consumers.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const PACKAGES = ['native', 'core', 'bus'] as const
let dir = ''
let project = ''
let packs = ''
let bareBin = ''
const tarballs: Record<string, string> = {}

/** A PATH of symlinks to everything on the real PATH but compilers and build tools. */
function pathWithoutCompilers(into: string): string {
  const banned = /^(cc|c\+\+|c89|c99|gcc|g\+\+|cpp|clang|clang\+\+|cmake|ctest|make|gmake|ninja|ld|as|node-gyp)([-.]?[0-9.]*)?$|gcc|g\+\+|clang|cmake|-ld$|-as$/
  mkdirSync(into, { recursive: true })
  for (const source of (process.env['PATH'] ?? '').split(delimiter)) {
    let names: string[]
    try { names = readdirSync(source) } catch { continue }
    for (const name of names) {
      if (banned.test(name) || existsSync(join(into, name))) continue
      symlinkSync(join(source, name), join(into, name))
    }
  }
  return into
}

function run(command: string, args: string[], options: { cwd?: string; bare?: boolean; env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  const env = { ...process.env, ...options.env }
  // Nothing of this workspace may leak in: no IPC_NATIVE_PATH, no vitest env.
  delete env['IPC_NATIVE_PATH']
  delete env['NODE_OPTIONS']
  if (options.bare) env['PATH'] = bareBin
  return spawnSync(command, args, { cwd: options.cwd ?? project, env, encoding: 'utf8', timeout: options.timeout ?? 120_000 })
}

function ok(result: SpawnSyncReturns<string>): string {
  if (result.status !== 0) {
    throw new Error(`exit ${result.status} (${result.signal ?? 'no signal'})\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`)
  }
  return result.stdout
}

/** shm segments created by any of `pids`. */
function segmentsCreatedBy(pids: readonly number[]): SegmentInfo[] {
  return listSegments().filter((segment) => pids.includes(segment.cpid))
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ipc-bus-consumer-'))
  packs = join(dir, 'packs')
  project = join(dir, 'project')
  mkdirSync(packs)
  mkdirSync(project)
  bareBin = pathWithoutCompilers(join(dir, 'bin'))
  for (const pkg of PACKAGES) {
    ok(run('npx', ['-y', 'pnpm@10.34.9', 'pack', '--pack-destination', packs], { cwd: join(repo, 'packages', pkg) }))
    tarballs[pkg] = join(packs, `ipc-${pkg}-0.1.0.tgz`)
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }))
  for (const [name, text] of Object.entries(consumerFiles)) writeFileSync(join(project, name), text)
  writeFileSync(join(project, 'quickstart.mjs'), quickStart(readFileSync(join(repo, 'README.md'), 'utf8')))
  ok(run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error',
    tarballs['native']!, tarballs['core']!, tarballs['bus']!, 'typescript@5.9', '@types/node@20'], { bare: true, timeout: 300_000 }))
}, 400_000)

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

describe('the packed tarballs, installed by npm in a project with no compiler', () => {
  test('the PATH used has no compiler, cmake or make', () => {
    const found = run('sh', ['-c', 'command -v cc gcc g++ c++ clang cmake make; true'], { bare: true }).stdout.trim()
    expect(found).toBe('')
  })

  test('@ipc/native ships the linux-x64 and linux-arm64 glibc prebuilds, and the install compiled nothing', () => {
    const files = execFileSync('tar', ['tzf', tarballs['native']!], { encoding: 'utf8' }).split('\n')
    expect(files).toContain('package/prebuilds/linux-x64/ipc_native.glibc.node')
    expect(files).toContain('package/prebuilds/linux-arm64/ipc_native.glibc.node')
    expect(existsSync(join(project, 'node_modules/@ipc/native/build'))).toBe(false)
  })

  test('workspace:* became real versions, and every tarball has README, LICENSE, CHANGELOG.md and dist', () => {
    for (const pkg of PACKAGES) {
      const files = execFileSync('tar', ['tzf', tarballs[pkg]!], { encoding: 'utf8' }).split('\n')
      for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) {
        expect(files, `${pkg}: ${f}`).toContain(`package/${f}`)
      }
      const manifest = JSON.parse(execFileSync('tar', ['xzf', tarballs[pkg]!, '-O', 'package/package.json'], { encoding: 'utf8' })) as {
        dependencies?: Record<string, string>
      }
      expect(JSON.stringify(manifest.dependencies ?? {})).not.toContain('workspace:')
    }
  })

  test("the README's quick start runs as-is (ESM, a forked worker, both ways) and leaves no segment behind", () => {
    const out = ok(run(process.execPath, ['quickstart.mjs'], { bare: true, env: { IPC_CONSUMER_REPORT_PIDS: '1' } }))
    expect(out).toMatch(/parent got \{ id: 1, worker: \d+ \}/)
    expect(out).toMatch(/parent got \{ id: 2, worker: \d+ \}/)
    const pids = [...out.matchAll(/worker: (\d+)/g)].map((m) => Number(m[1]))
    const parent = Number(/^pid (\d+)$/m.exec(out)?.[1])
    expect(parent).toBeGreaterThan(0)
    expect(segmentsCreatedBy([parent, ...pids])).toEqual([])
  })

  test('an ESM consumer sends both ways between a parent and a forked child and closes cleanly', () => {
    const out = ok(run(process.execPath, ['esm.mjs'], { bare: true }))
    const report = JSON.parse(out.trim().split('\n').pop()!) as { toChild: number; fromChild: number; pids: number[] }
    expect(report.toChild).toBe(100)
    expect(report.fromChild).toBe(100)
    expect(segmentsCreatedBy(report.pids)).toEqual([])
  })

  test('a CommonJS consumer can require(@ipc/bus) (Node >= 20.19)', () => {
    const out = ok(run(process.execPath, ['cjs.cjs'], { bare: true }))
    expect(JSON.parse(out)).toEqual({ bus: 'function', got: { hello: 'cjs' } })
  })

  test.each(['node16', 'bundler'])('a TypeScript consumer typechecks strictly with moduleResolution %s (internal members are not in the types)', (resolution) => {
    ok(run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `tsconfig.${resolution}.json`], { bare: true }))
  })

  test('publint (strict) and arethetypeswrong (ESM-only profile) pass on each tarball', () => {
    for (const pkg of PACKAGES) {
      ok(run(join(repo, 'node_modules/.bin/publint'), ['run', tarballs[pkg]!, '--strict'], { cwd: repo }))
      ok(run(join(repo, 'node_modules/.bin/attw'), [tarballs[pkg]!, '--profile', 'esm-only', '--format', 'ascii'], { cwd: repo }))
    }
  }, 120_000)

  test('`npx ipc-bus` is installed as a bin: --help, and ls/inspect see a live named bus of another process without joining it', async () => {
    const help = run('npx', ['ipc-bus', '--help'], { bare: true })
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/^Usage: ipc-bus <command>/m)
    for (const command of ['ls', 'inspect', 'top', 'gc', 'rm']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
    const name = `tarball-cli-${process.pid}`
    const peer = spawn(process.execPath, ['cli-peer.mjs', name], { cwd: project, stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      const [line] = await once(createInterface({ input: peer.stdout }), 'line') as [string]
      expect(line).toBe('ready')
      const ls = JSON.parse(ok(run('npx', ['ipc-bus', 'ls', '--json'], { bare: true }))) as Array<{ name: string | null; members: { alive: number } }>
      expect(ls.find((bus) => bus.name === name)?.members.alive).toBe(1)
      const inspect = JSON.parse(ok(run('npx', ['ipc-bus', 'inspect', name, '--json'], { bare: true }))) as {
        members: Array<{ pid: number; alive: boolean }>
        channels: Array<{ name: string; backlogMessages: number }>
      }
      expect(inspect.members).toEqual([expect.objectContaining({ pid: peer.pid, alive: true })])
      expect(inspect.channels.find((channel) => channel.name === 'orders')?.backlogMessages).toBe(5)
      const exited = once(peer, 'exit')
      peer.stdin.end()
      expect(await exited).toEqual([0, null])
    } finally {
      peer.kill('SIGKILL')
    }
    expect(segmentsCreatedBy([peer.pid!])).toEqual([])
  }, 60_000)

  test('without a prebuild or a build, importing throws ERR_IPC_NATIVE_MISSING naming platform/arch/libc and the command', () => {
    const copy = join(dir, 'no-addon', 'node_modules', '@ipc', 'native')
    cpSync(join(project, 'node_modules/@ipc/native'), copy, { recursive: true, dereference: true })
    rmSync(join(copy, 'prebuilds'), { recursive: true, force: true })
    const script = `import(${JSON.stringify(join(copy, 'dist/index.js'))}).then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))`
    const out = JSON.parse(ok(run(process.execPath, ['-e', script], { bare: true })).trim()) as { code: string; message: string }
    expect(out.code).toBe('ERR_IPC_NATIVE_MISSING')
    expect(out.message).toContain(`${process.platform}-${process.arch} (glibc)`)
    expect(out.message).toContain('npx ipc-native-build')
  })

  test('`npx ipc-native-build` builds from source in the user project (compilers back on PATH), and the build loads', () => {
    const copyRoot = join(dir, 'source-build')
    cpSync(project, copyRoot, { recursive: true, dereference: false, verbatimSymlinks: true })
    const native = join(copyRoot, 'node_modules/@ipc/native')
    rmSync(join(native, 'prebuilds'), { recursive: true, force: true })
    ok(run('npx', ['ipc-native-build'], { cwd: copyRoot, timeout: 300_000 }))
    expect(existsSync(join(native, 'build/Release/ipc_native.node'))).toBe(true)
    const script = `import('@ipc/native').then((m) => console.log(typeof m.shmget))`
    expect(ok(run(process.execPath, ['--input-type=module', '-e', script], { cwd: copyRoot, bare: true })).trim()).toBe('function')
  }, 320_000)
})
