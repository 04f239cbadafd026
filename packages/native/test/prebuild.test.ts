// The linux-x64 glibc prebuild (built by the package's build, see
// CMakeLists.txt) loads on glibc 2.28 and needs no libstdc++/libgcc: objdump -T
// shows no GLIBC_ symbol version newer than 2.28 and no GLIBCXX_/CXXABI_ one,
// and `file` says x86-64. The loader picks it first on linux-x64 glibc.
// linux-arm64 and musl prebuilds are remaining work (issue 12).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { detectLibc, prebuildPath } from '../lib/binding.js'

const prebuild = fileURLToPath(new URL('../prebuilds/linux-x64/ipc_native.glibc.node', import.meta.url))
const onLinuxX64Glibc = process.platform === 'linux' && process.arch === 'x64' && detectLibc() === 'glibc'

function versions(prefix: string): string[] {
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

describe.runIf(onLinuxX64Glibc)('the linux-x64 glibc prebuild', () => {
  test('is built where the loader looks first', () => {
    expect(existsSync(prebuild)).toBe(true)
    expect(prebuildPath('linux', 'x64', 'glibc')).toBe(prebuild)
  })

  test('needs no GLIBC_ symbol newer than 2.28', () => {
    const glibc = versions('GLIBC')
    expect(glibc.length).toBeGreaterThan(0)
    expect(glibc.filter((v) => newerThan(v, [2, 28]))).toEqual([])
  })

  test('links libstdc++ and libgcc statically: no GLIBCXX_, CXXABI_ or GCC_ symbol, no libstdc++/libgcc_s needed', () => {
    expect(versions('GLIBCXX')).toEqual([])
    expect(versions('CXXABI')).toEqual([])
    expect(versions('GCC')).toEqual([])
    const needed = execFileSync('objdump', ['-p', prebuild], { encoding: 'utf8' })
    expect(needed).not.toMatch(/NEEDED\s+libstdc\+\+/)
    expect(needed).not.toMatch(/NEEDED\s+libgcc_s/)
  })

  test('is an x86-64 shared object', () => {
    const out = execFileSync('file', ['-L', prebuild], { encoding: 'utf8' })
    expect(out).toMatch(/ELF 64-bit LSB shared object, x86-64/)
  })

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
