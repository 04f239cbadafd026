/**
 * Leaving without close(). A bus instance whose thread ends while it is
 * open still gives back what it holds in shared memory, so that its member
 * slot, receiver claims and lanes never stay taken by an identity that
 * looks alive:
 *
 * - when the event loop exits (the end of the program, process.exit(), an
 *   uncaught exception), the 'exit' event makes every open instance of the
 *   thread leave synchronously, as close() would (so a member that calls
 *   process.exit(0) is reported as having left, not died);
 * - a worker thread stopped by worker.terminate() runs no JavaScript, and
 *   its process lives on, so its words would look alive forever: in a
 *   worker, every claim is also registered with @ipc/native's exit actions,
 *   compare-and-swaps that run natively when the thread is torn down.
 *
 * A process killed by a signal (SIGKILL) runs neither: its identity is dead,
 * and whatever it held is reclaimed by the next process that needs it.
 */
import { isMainThread } from 'node:worker_threads'
import { addExitStore, cancelExit } from '@ipc/native'

/** Leaves one bus instance synchronously (each bus registers a private closure). */
type Leave = () => void

const open = new Set<Leave>()
let hooked = false

/** Calls `leave` at the thread's exit unless forgotten first. */
export function leaveOnExit(leave: Leave): void {
  open.add(leave)
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const l of [...open]) {
      try {
        l()
      } catch {
        // Exiting: nothing to report to, and the rest must still leave.
      }
    }
    open.clear()
  })
}

export function forgetOnExit(leave: Leave): void {
  open.delete(leave)
}

/**
 * In a worker thread: registers a compare-and-swap of the word at
 * `byteOffset` of segment `shmid` from `expected` to `desired`, run natively
 * if the thread is torn down before cancelRelease(). Null on the main
 * thread, where the process's death releases everything.
 */
export function releaseOnTerminate(shmid: number, byteOffset: number, width: 4 | 8, expected: number | bigint, desired: number | bigint): number | null {
  if (isMainThread) return null
  try {
    return addExitStore(shmid, byteOffset, width, expected, desired)
  } catch {
    return null // the segment is gone: nothing to release
  }
}

export function cancelRelease(handle: number | null): void {
  if (handle !== null) cancelExit(handle)
}
