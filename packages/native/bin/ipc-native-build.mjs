#!/usr/bin/env node
// ipc-native-build: builds @ipc/native's addon from source inside the
// installed package (node_modules/@ipc/native/build/Release/ipc_native.node),
// for platforms without a prebuild (musl/Alpine, or a glibc older than 2.28).
// Needs a C++17 compiler, cmake >= 3.15 and make (Alpine: apk add g++ cmake
// make). Run it from the project that depends on @ipc/native:
//   npx ipc-native-build
// cmake-js does the build: the one the project has, else `npx -y cmake-js@8`.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
if (process.platform !== 'linux') {
  console.error(`ipc-native-build: @ipc/native supports Linux only (this is ${process.platform})`)
  process.exit(1)
}
let command
let args
try {
  command = process.execPath
  args = [require.resolve('cmake-js/bin/cmake-js')]
} catch {
  command = process.platform === 'win32' ? 'npx.cmd' : 'npx'
  args = ['-y', 'cmake-js@8']
}
args.push('compile', '--directory', root, '--log-level', 'warn')
console.log(`ipc-native-build: building @ipc/native in ${root}`)
const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' })
if (result.error) {
  console.error(`ipc-native-build: could not run cmake-js: ${result.error.message}`)
  process.exit(1)
}
if (result.status !== 0) {
  console.error('ipc-native-build: the build failed (it needs g++, cmake and make on PATH)')
  process.exit(result.status ?? 1)
}
console.log(`ipc-native-build: built ${root}build/Release/ipc_native.node`)
