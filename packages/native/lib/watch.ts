/**
 * Reading a pipe in the event loop without a stream: the addon's FdWatcher
 * (src/Watch.cc, a libuv poll handle) drains the fd in C++ into one
 * ArrayBuffer given once, and calls one function with the byte count. No
 * net.Socket, no Readable machinery, nothing allocated per wakeup: this is
 * the wake path of every sleeping receiver (signal self-pipe, FIFO doorbell).
 */
import { closeSync } from 'node:fs'
import { native } from './binding.js'
import type { NativeFdWatcher } from './native-types.js'
import { checkInt } from './validate.js'

export interface FdWatch {
  /** The bytes of the last read: valid during the onData call only. */
  readonly bytes: Uint8Array
  /** Keeps the event loop alive while watching (default: it does not). */
  ref(): void
  unref(): void
  /** Stops watching (the fd stays open: it is the caller's). */
  close(): void
}

/**
 * Watches non-blocking `fd`: `onData(n)` gets each read's byte count (the
 * bytes in `watch.bytes[0, n)`), or -errno once if a read fails (watching
 * then stops). The watch starts unref'd.
 */
export function watchFd(fd: number, bufferBytes: number, onData: (n: number) => void): FdWatch {
  const buffer = new ArrayBuffer(bufferBytes)
  const watcher: NativeFdWatcher = new native.FdWatcher(fd, buffer, onData)
  watcher.unref()
  return {
    bytes: new Uint8Array(buffer),
    ref: () => watcher.ref(),
    unref: () => watcher.unref(),
    close: () => watcher.close(),
  }
}

export interface ExitWatch {
  /** Keeps the event loop alive until the process exits (default: it does not). */
  ref(): void
  unref(): void
  /** Stops watching and closes the pidfd (onExit is then never called). */
  close(): void
}

/**
 * Calls `onExit()` once, on this thread's event loop, when process `pid`
 * exits (a pidfd, pidfd_open(2), watched by the addon; Linux >= 5.3). The
 * watch holds one file descriptor until then, or until close(). It starts
 * unref'd. The pidfd names the process, not the number: a pid reused later
 * is another process, whose exit is not reported. To watch a process you
 * know by (pid, start time), open the watch first, then check the start
 * time: if it matches, the watch is on that process.
 *
 * Throws a SystemError: ESRCH when no process has that pid (it exited),
 * ENOSYS on a kernel without pidfds, EMFILE when out of descriptors.
 */
export function watchExit(pid: number, onExit: () => void): ExitWatch {
  checkInt('pid', pid, 1, 0x7fffffff)
  if (typeof onExit !== 'function') throw new TypeError('watchExit: onExit must be a function')
  const fd = native.pidfdOpen(pid)
  let watcher: NativeFdWatcher
  try {
    watcher = new native.FdWatcher(fd, null, () => onExit()) // owns and closes fd from here
  } catch (err) {
    closeSync(fd)
    throw err
  }
  watcher.unref()
  return {
    ref: () => watcher.ref(),
    unref: () => watcher.unref(),
    close: () => watcher.close(),
  }
}
