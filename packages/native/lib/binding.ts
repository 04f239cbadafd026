/**
 * Finds and loads the compiled addon, in a fixed order:
 *   1. the path in IPC_NATIVE_PATH (an override for custom builds),
 *   2. build/Release/ipc_native.node, 3. build/Debug/ipc_native.node
 * (both relative to this package). Anything but "not found" is re-thrown as
 * is; "not found" everywhere ends with a message saying what to run.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { NativeBinding } from './native-types.js'

const require = createRequire(import.meta.url)
const packageRoot = fileURLToPath(new URL('..', import.meta.url))

function load(): NativeBinding {
  if (process.platform !== 'linux') {
    throw new Error(`@ipc/native supports Linux only (this is ${process.platform}): it needs System V shm, rt_tgsigqueueinfo and FIFOs`)
  }
  const candidates = [
    process.env['IPC_NATIVE_PATH'],
    `${packageRoot}build/Release/ipc_native.node`,
    `${packageRoot}build/Debug/ipc_native.node`,
  ].filter((p): p is string => typeof p === 'string' && p.length > 0)
  for (const path of candidates) {
    try {
      return require(path) as NativeBinding
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // dlopen reports a missing file as a plain Error whose message says so.
      const missing = code === 'MODULE_NOT_FOUND' || /cannot open shared object file: No such file/.test(String((err as Error).message))
      if (!missing) throw err
    }
  }
  throw new Error(
    `@ipc/native: the compiled addon was not found (looked in: ${candidates.join(', ')}). ` +
      'Build it with `npx -y pnpm@10.34.9 --filter @ipc/native run build` (needs g++, cmake and make), ' +
      'or point IPC_NATIVE_PATH at an ipc_native.node.',
  )
}

export const native: NativeBinding = load()
