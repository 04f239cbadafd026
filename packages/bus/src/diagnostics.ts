/**
 * What the bus tells observers: `NODE_DEBUG=ipc-bus` lines (util.debuglog)
 * and diagnostics_channel events that APM tools subscribe to, as undici
 * does. Both are free when nobody listens: every call site checks
 * `observed(channel)` (a boolean and a `hasSubscribers` load) before it
 * builds a payload or a line.
 *
 * Channels and payloads (also in README, "Diagnostics"):
 *
 *   ipc-bus:join         { bus, pid, slot }              this process joined a bus
 *   ipc-bus:leave        { bus, pid, last }              it left (last: it removed the bus)
 *   ipc-bus:peer-exit    { bus, pid, code, signal, crashed }
 *   ipc-bus:reclaim      { bus, what, detail }           what: 'bus' (a dead bus's segments),
 *                                                        'member-slots', 'channel-slot', 'subscriber'
 *   ipc-bus:claim        { bus, channel, pid, role, lane? } role: 'receiver' | 'sender' (with its lane)
 *   ipc-bus:channel:full { bus, channel, lane, bytes }   a send started waiting for room
 *   ipc-bus:drop         { bus, topic, dropped, slot }   a 'drop' subscription was lapped
 *   ipc-bus:error        { what, error }                 an error reported ('error' event or warning)
 *
 * `bus` is the bus name, or null for a private bus. NODE_DEBUG also traces
 * every park and wake of a channel receiver.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { debuglog } from 'node:util'

const debugLine = debuglog('ipc-bus')
/** True when NODE_DEBUG names ipc-bus (read once, at load, as util.debuglog does). */
const debugOn = debugLine.enabled

export const channels = {
  join: diagnostics_channel.channel('ipc-bus:join'),
  leave: diagnostics_channel.channel('ipc-bus:leave'),
  peerExit: diagnostics_channel.channel('ipc-bus:peer-exit'),
  reclaim: diagnostics_channel.channel('ipc-bus:reclaim'),
  claim: diagnostics_channel.channel('ipc-bus:claim'),
  full: diagnostics_channel.channel('ipc-bus:channel:full'),
  drop: diagnostics_channel.channel('ipc-bus:drop'),
  error: diagnostics_channel.channel('ipc-bus:error'),
} as const

export type DiagnosticsChannel = (typeof channels)[keyof typeof channels]

/** Whether anyone would see an event on `channel` (call before building the payload). */
export function observed(channel: DiagnosticsChannel): boolean {
  return debugOn || channel.hasSubscribers
}

/** Publishes `payload` on `channel` and writes one NODE_DEBUG line. Call only when observed(). */
export function report(channel: DiagnosticsChannel, payload: Record<string, unknown>): void {
  if (channel.hasSubscribers) channel.publish(payload)
  if (debugOn) debugLine('%s %s', String(channel.name).slice('ipc-bus:'.length), describe(payload))
}

/** A debug line for the hot paths (park, wake): nothing is built unless NODE_DEBUG has ipc-bus. */
export function trace(format: string, ...args: unknown[]): void {
  if (debugOn) debugLine(format, ...args)
}

/** Whether trace() prints (check before computing its arguments). */
export const tracing = debugOn

function describe(payload: Record<string, unknown>): string {
  return Object.entries(payload).map(([k, v]) => `${k}=${v instanceof Error ? `${v.name}: ${v.message}` : typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
}
