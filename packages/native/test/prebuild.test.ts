// The glibc prebuilds (linux-x64 native, linux-arm64 cross-compiled; built by
// the package's build through scripts/prebuild.mjs, see CMakeLists.txt) load
// on glibc 2.28 and need no libstdc++/libgcc: objdump -T shows no GLIBC_
// symbol version newer than 2.28 and no GLIBCXX_/CXXABI_/GCC_ one, the
// dynamic table exports only the Node-API entry points, and `file` names the
// right architecture. The loader picks the host's first on linux glibc.
// musl has no prebuild (see CMakeLists.txt).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { detectLibc, prebuildPath } from '../lib/binding.js'

const onLinuxX64Glibc = process.platform === 'linux' && process.arch === 'x64' && detectLibc() === 'glibc'
const PREBUILDS = [
  { arch: 'x64', file: /ELF 64-bit LSB shared object, x86-64/ },
  { arch: 'arm64', file: /ELF 64-bit LSB shared object, ARM aarch64/ },
] as const

function versions(prebuild: string, prefix: string): string[] {
  const out = execFileSync('objdump', ['-T', prebuild], { encoding: 'utf8' })
  const found = new Set<string>()
  for (const m of out.matchAll(new RegExp(`\\b${prefix}_([0-9][0-9.]*)\\b`, 'g'))) found.add(m[1]!)
  return [...found]
}

function newerThan(version: string, max: readonly number[]): boolean {
  const parts = version.split('.').map(Number)
  for (let i = 0; i < Math.max(parts.length, max.length); i++) {
    const a = parts[i] ?? 0
    const b = max[i] ?? 0
    if (a !== b) return a > b
  }
  return false
}

// The prebuilds are made on linux-x64 hosts (scripts/prebuild.mjs); elsewhere
// this file has nothing to check.
describe.runIf(onLinuxX64Glibc).each(PREBUILDS)('the linux-$arch glibc prebuild', ({ arch, file }) => {
  const prebuild = fileURLToPath(new URL(`../prebuilds/linux-${arch}/ipc_native.glibc.node`, import.meta.url))
  const versions_ = (prefix: string) => versions(prebuild, prefix)

  test('is built where the loader looks first', () => {
    expect(existsSync(prebuild)).toBe(true)
    expect(prebuildPath('linux', arch, 'glibc')).toBe(prebuild)
  })

  test('needs no GLIBC_ symbol newer than 2.28', () => {
    const glibc = versions_('GLIBC')
    expect(glibc.length).toBeGreaterThan(0)
    expect(glibc.filter((v) => newerThan(v, [2, 28]))).toEqual([])
  })

  test('links libstdc++ and libgcc statically: no GLIBCXX_, CXXABI_ or GCC_ symbol, no libstdc++/libgcc_s needed', () => {
    expect(versions_('GLIBCXX')).toEqual([])
    expect(versions_('CXXABI')).toEqual([])
    expect(versions_('GCC')).toEqual([])
    const needed = execFileSync('objdump', ['-p', prebuild], { encoding: 'utf8' })
    expect(needed).not.toMatch(/NEEDED\s+libstdc\+\+/)
    expect(needed).not.toMatch(/NEEDED\s+libgcc_s/)
  })

  test('exports only the Node-API entry points', () => {
    const defined = execFileSync('objdump', ['-T', prebuild], { encoding: 'utf8' })
      .split('\n').filter((line) => /\sDF?O?\s/.test(line) && !/\*UND\*/.test(line))
      .map((line) => line.trim().split(/\s+/).pop())
    expect(defined.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1'])
  })

  test(`is an ${arch} shared object`, () => {
    const out = execFileSync('file', ['-L', prebuild], { encoding: 'utf8' })
    expect(out).toMatch(file)
  })
})

// The host's prebuild is loaded for real. (The arm64 one is not run here: Node
// under qemu-user takes minutes to start; its symbols and ELF header are
// checked above.)
describe.runIf(onLinuxX64Glibc)('the host prebuild', () => {
  const prebuild = prebuildPath('linux', 'x64', 'glibc')
  test('loads in a child and works (errno names from the table, sigprocmask)', () => {
    const script = `
      const m = require(${JSON.stringify(prebuild)});
      let code = 'none';
      try { m.shmat(-1) } catch (e) { code = e.code }
      const old = m.sigprocmask(0 /* SIG_BLOCK */, [10 /* SIGUSR1 */]);
      const now = m.sigprocmask(1 /* SIG_UNBLOCK */, [10]);
      console.log(JSON.stringify({ code, before: old.includes(10), blocked: now.includes(10) }));
    `
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual({ code: 'EINVAL', before: false, blocked: true })
  })
})
