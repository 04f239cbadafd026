/**
 * Errors of @ipc/native that are not errno failures. (A failed system call
 * throws a plain Error shaped like Node's SystemError: {code: 'EACCES',
 * errno: -13, syscall: 'shmget', message}.)
 */

/** onSignal() refused a signal that cannot or must not be caught here. */
export class SignalNotAllowed extends Error {
  override readonly name = 'SignalNotAllowed'
  readonly code = 'ERR_SIGNAL_NOT_ALLOWED'
  constructor(readonly signal: string, reason: string) {
    super(`cannot handle ${signal}: ${reason}`)
  }
}

/** A process-wide facility (signal handlers) was used from a worker thread. */
export class NotMainThread extends Error {
  override readonly name = 'NotMainThread'
  readonly code = 'ERR_NOT_MAIN_THREAD'
  constructor(what: string) {
    super(`${what} is only available on the main thread: signal dispositions are process-wide and are dispatched through the main thread's event loop`)
  }
}

/** A Doorbell or ringer was used after close(). */
export class DoorbellClosed extends Error {
  override readonly name = 'DoorbellClosed'
  readonly code = 'ERR_DOORBELL_CLOSED'
  constructor() {
    super('the doorbell is closed')
  }
}
