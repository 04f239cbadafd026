/**
 * The names of the patterns' channels: the only place that builds or parses
 * them.
 *
 * Pub/sub and request/reply are built only from plain channels: every
 * subscriber and every server receives on a channel of its own, and the
 * directory's channel table is the registry. A channel name is
 *
 *     <kind>:<topic or service>:<pid>.<n><flag>     e.g.  t:prices:4711.3b
 *
 * with kind 't' (a subscription; flag 'b' = block, 'd' = drop) or 's' (a
 * server; no flag), and `r:<pid>.<n>` for a client's reply channel. <pid> is
 * the receiving process, <n> counts per process. Channel names are at most
 * 64 UTF-8 bytes, so topics and service names are at most 40.
 */
import type { SlowPolicy } from '../options.js'
import type { PatternHost } from './host.js'
import { checkName } from '../naming.js'

/** Longest topic or service name in UTF-8 bytes (the rest of the 64-byte channel name is the prefix and `<pid>.<n><flag>`). */
export const MAX_PATTERN_NAME_BYTES = 40

/** Where every client's reply channel is listed. */
export const REPLY_PREFIX = 'r:'

/** Where the subscribers of topic are listed: `t:<topic>:`. */
export function subscriberPrefix(topic: string): string {
  return `t:${topic}:`
}

/** The directory entry of a topic's segment (kind KIND_TOPIC): `T:<topic>`. */
export function topicEntryName(topic: string): string {
  return `T:${topic}`
}

/** Where the servers of service are listed: `s:<service>:`. */
export function serverPrefix(service: string): string {
  return `s:${service}:`
}

/**
 * Validates a topic or service name: InvalidArgType (not a string),
 * InvalidArgValue (empty, NUL) or OutOfRange (over MAX_PATTERN_NAME_BYTES).
 */
export function checkPatternName(what: string, name: unknown): string {
  return checkName(what, name, MAX_PATTERN_NAME_BYTES)
}

/** `<pid>.<n><flag>` at the end of a pattern channel name. */
const SUFFIX = /^(\d+)\.(\d+)([bd]?)$/

/** The receiving pid and the flag of a channel listed under prefix; null when it is not one of ours. */
function parse(name: string, prefix: string): { pid: number; flag: string } | null {
  if (!name.startsWith(prefix)) return null
  const m = SUFFIX.exec(name.slice(prefix.length))
  return m === null ? null : { pid: Number(m[1]), flag: m[3]! }
}

/** A subscriber channel of topic: its process and policy; null for any other name. */
export function parseSubscriber(name: string, topic: string): { pid: number; drop: boolean } | null {
  const s = parse(name, subscriberPrefix(topic))
  return s === null || s.flag === '' ? null : { pid: s.pid, drop: s.flag === 'd' }
}

/** A server channel of service: its process; null for any other name. */
export function parseServer(name: string, service: string): { pid: number } | null {
  const s = parse(name, serverPrefix(service))
  return s === null || s.flag !== '' ? null : { pid: s.pid }
}

/** A fresh subscriber channel name for topic (see freshName). */
export function newSubscriberName(host: NameHost, topic: string, policy: SlowPolicy): string {
  return freshName(host, subscriberPrefix(topic), policy === 'drop' ? 'd' : 'b')
}

/** A fresh server channel name for service (see freshName). */
export function newServerName(host: NameHost, service: string): string {
  return freshName(host, serverPrefix(service))
}

/** A fresh reply channel name for this process's client (see freshName). */
export function newReplyName(host: NameHost): string {
  return freshName(host, REPLY_PREFIX)
}

/** What naming a new channel looks at in the directory. */
type NameHost = Pick<PatternHost, 'channelNames' | 'dropChannel'>

let counter = 0

/**
 * Removes the directory entries under `prefix` whose receiver died (so their
 * slots and names are reused), and returns a name `<prefix><pid>.<n><flag>`
 * that no entry holds.
 */
function freshName(host: NameHost, prefix: string, flag = ''): string {
  for (const name of host.channelNames(prefix)) {
    if (parse(name, prefix) !== null) host.dropChannel(name)
  }
  const taken = new Set(host.channelNames(prefix))
  for (;;) {
    const name = `${prefix}${process.pid}.${++counter}${flag}`
    if (!taken.has(name)) return name
  }
}
