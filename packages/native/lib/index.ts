/**
 * @ipc/native: the POSIX primitives under @ipc/bus, typed and checked.
 * Linux only. Every failed system call throws an Error with code (errno
 * name), errno (negated, as in Node), syscall and a message naming the call.
 */
export { native as binding } from './binding.js'
export * from './constants.js'
export * from './shm.js'
export * from './signals.js'
export * from './pipes.js'
export * from './doorbell.js'
export * from './errors.js'
export * from './at-exit.js'
export * from './watch.js'
export * from './pool.js'
