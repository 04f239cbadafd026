#!/usr/bin/env node
// Builds the prebuilds shipped in the @ipc/native tarball (this repository's
// build only; a user's source build is `ipc-native-build`):
//   prebuilds/linux-x64/ipc_native.glibc.node    native cmake-js build
//   prebuilds/linux-arm64/ipc_native.glibc.node  cross build with Debian's
//     g++-aarch64-linux-gnu and cmake/aarch64-linux-gnu.cmake
// Run on an x86-64 Debian host. When the cross compiler is missing it is
// installed with apt-get when we are root, otherwise the build stops with a
// message naming the package. IPC_NATIVE_PREBUILDS=x64 builds only the host's
// (said out loud, never a silent skip).
import { execFileSync, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const cmakeJs = require.resolve('cmake-js/bin/cmake-js')

function run(args) {
  execFileSync(process.execPath, [cmakeJs, ...args], { cwd: root, stdio: 'inherit' })
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

function ensureCrossCompiler() {
  if (has('aarch64-linux-gnu-g++')) return
  const pkg = 'g++-aarch64-linux-gnu'
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (isRoot && has('apt-get')) {
    console.log(`@ipc/native: installing ${pkg} (Debian's arm64 cross compiler) for the linux-arm64 prebuild`)
    const apt = (args) => spawnSync('apt-get', args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0
    // A fresh machine may have no package lists yet: update, then retry.
    if (!apt(['install', '-y', '--no-install-recommends', pkg])) {
      apt(['update', '-q'])
      apt(['install', '-y', '--no-install-recommends', pkg])
    }
    if (has('aarch64-linux-gnu-g++')) return
  }
  console.error(
    `@ipc/native: the linux-arm64 prebuild needs Debian's package ${pkg} (apt-get install ${pkg}). ` +
      'Set IPC_NATIVE_PREBUILDS=x64 to build only the linux-x64 prebuild.',
  )
  process.exit(1)
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`@ipc/native: prebuilds are made on linux-x64 hosts (this is ${process.platform}-${process.arch})`)
  process.exit(1)
}
const wanted = (process.env.IPC_NATIVE_PREBUILDS ?? 'x64,arm64').split(',').map((s) => s.trim())
// The host build makes build/Release/ipc_native.node and the x64 prebuild.
run(['compile', '--log-level', 'warn', ...(wanted.includes('x64') ? ['--CDIPC_NATIVE_PREBUILD=ON'] : [])])
if (wanted.includes('arm64')) {
  ensureCrossCompiler()
  run([
    'compile', '--log-level', 'warn', '--out', 'build-arm64', '--arch', 'arm64',
    `--CDCMAKE_TOOLCHAIN_FILE=${root}cmake/aarch64-linux-gnu.cmake`, '--CDIPC_NATIVE_PREBUILD_ONLY=ON',
  ])
} else {
  console.log('@ipc/native: IPC_NATIVE_PREBUILDS excludes arm64: no linux-arm64 prebuild in this build')
}
