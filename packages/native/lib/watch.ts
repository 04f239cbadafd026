/**
 * Reading a pipe in the event loop without a stream: the addon's FdWatcher
 * (src/Watch.cc, a libuv poll handle) drains the fd in C++ into one
 * ArrayBuffer given once, and calls one function with the byte count. No
 * net.Socket, no Readable machinery, nothing allocated per wakeup: this is
 * the wake path of every sleeping receiver (signal self-pipe, FIFO doorbell).
 */
import { native } from './binding.js'
import type { NativeFdWatcher } from './native-types.js'

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
