/**
 * Finds and loads the compiled addon, in a fixed order:
 *   1. the path in IPC_NATIVE_PATH (an override for custom builds),
 *   2. the prebuild for this platform, arch and libc, in prebuildify's layout:
 *      prebuilds/<platform>-<arch>/ipc_native.<libc>.node (libc detected at
 *      run time: glibc when process.report says which glibc runs, else musl).
 *      The package ships prebuilds/linux-x64/ and prebuilds/linux-arm64/
 *      ipc_native.glibc.node (static libstdc++/libgcc, no symbol newer than
 *      GLIBC_2.28; see CMakeLists.txt). musl has none and falls to 3.,
 *   3. build/Release/ipc_native.node, 4. build/Debug/ipc_native.node, the
 *      local cmake-js build (all relative to this package).
 * Anything but "not found" is re-thrown as is; "not found" everywhere throws
 * an Error with code ERR_IPC_NATIVE_MISSING naming platform/arch/libc and
 * how to build from source.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { NativeBinding } from './native-types.js'

const require = createRequire(import.meta.url)
const packageRoot = fileURLToPath(new URL('..', import.meta.url))

/** 'glibc' or 'musl', as the running process reports it (not as it was built). */
export function detectLibc(): 'glibc' | 'musl' {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return typeof report?.header?.glibcVersionRuntime === 'string' ? 'glibc' : 'musl'
}

/** Where the prebuild for this process would be (whether or not it exists). */
export function prebuildPath(platform: string = process.platform, arch: string = process.arch, libc: string = detectLibc()): string {
  return `${packageRoot}prebuilds/${platform}-${arch}/ipc_native.${libc}.node`
}

function load(): NativeBinding {
  if (process.platform !== 'linux') {
    throw new Error(`@ipc/native supports Linux only (this is ${process.platform}): it needs System V shm, rt_tgsigqueueinfo and FIFOs`)
  }
  const libc = detectLibc()
  const candidates = [
    process.env['IPC_NATIVE_PATH'],
    prebuildPath(process.platform, process.arch, libc),
    `${packageRoot}build/Release/ipc_native.node`,
    `${packageRoot}build/Debug/ipc_native.node`,
  ].filter((p): p is string => typeof p === 'string' && p.length > 0)
  const prebuild = candidates.find((p) => p.includes('/prebuilds/'))
  let prebuildError: unknown
  for (const path of candidates) {
    try {
      return require(path) as NativeBinding
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // dlopen reports a missing file as a plain Error whose message says so.
      const missing = code === 'MODULE_NOT_FOUND' || /cannot open shared object file: No such file/.test(String((err as Error).message))
      // A prebuild that exists but does not load here (e.g. a glibc older
      // than 2.28) gives way to a local build; its error is kept as the cause.
      if (path === prebuild && !missing) {
        prebuildError = err
        continue
      }
      if (!missing) throw err
    }
  }
  if (prebuildError !== undefined) throw prebuildError
  const error = new Error(
    `@ipc/native: no compiled addon for ${process.platform}-${process.arch} (${libc}): ` +
      `no prebuild at prebuilds/${process.platform}-${process.arch}/ipc_native.${libc}.node and no local build ` +
      `(looked in: ${candidates.join(', ')}). Build it from source (needs g++, cmake and make${libc === 'musl' ? '; on Alpine: apk add g++ cmake make' : ''}) ` +
      'by running `npx ipc-native-build` in your project, or point IPC_NATIVE_PATH at an ipc_native.node.',
  ) as NodeJS.ErrnoException
  error.code = 'ERR_IPC_NATIVE_MISSING'
  throw error
}

export const native: NativeBinding = load()
