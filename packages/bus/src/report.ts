/**
 * The one way an error that must not stop delivery (a throwing handler or
 * listener, a reply that could not be sent, a receive loop that failed) is
 * reported: an 'error' event on its owner when anyone listens, else a
 * process warning. Used by the patterns and by channels.
 */

import { channels as diagnostics, observed, report } from './diagnostics.js'

/** Anything with 'error' events: a Bus, a Channel. */
export interface ErrorEmitter {
  listenerCount(event: 'error'): number
  emit(event: 'error', error: unknown): boolean
}

/** Emits err as 'error' on emitter if it has a listener, else warns `@ipc/bus: <what>: <stack>`. */
export function reportError(emitter: ErrorEmitter, what: string, err: unknown): void {
  if (observed(diagnostics.error)) report(diagnostics.error, { what, error: err })
  if (emitter.listenerCount('error') > 0) emitter.emit('error', err)
  else process.emitWarning(`@ipc/bus: ${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
}
