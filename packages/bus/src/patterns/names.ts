/**
 * The names the patterns list in the directory: the only place that builds
 * or parses them.
 *
 * Request/reply is built from plain channels: every server and every
 * client's replies receive on a channel of their own, named
 *
 *     s:<service>:<pid>.<n>     e.g.  s:addressbook:4711.3
 *     r:<pid>.<n>               a client's reply channel
 *
 * where <pid> is the receiving process and <n> counts per process. A topic
 * is a segment of its own, listed as `T:<topic>` (kind KIND_TOPIC). Names
 * are at most 64 UTF-8 bytes, so topics and service names are at most 40.
 */
import type { PatternHost } from './host.js'
import { checkName } from '../naming.js'

/** Longest topic or service name in UTF-8 bytes (the rest of the 64-byte channel name is the prefix and `<pid>.<n><flag>`). */
export const MAX_PATTERN_NAME_BYTES = 40

/** Where every client's reply channel is listed. */
export const REPLY_PREFIX = 'r:'

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

/** `<pid>.<n>` at the end of a pattern channel name. */
const SUFFIX = /^(\d+)\.(\d+)$/

/** The receiving pid of a channel listed under prefix; null when it is not one of ours. */
function parse(name: string, prefix: string): { pid: number } | null {
  if (!name.startsWith(prefix)) return null
  const m = SUFFIX.exec(name.slice(prefix.length))
  return m === null ? null : { pid: Number(m[1]) }
}

/** A server channel of service: its process; null for any other name. */
export function parseServer(name: string, service: string): { pid: number } | null {
  return parse(name, serverPrefix(service))
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
 * slots and names are reused), and returns a name `<prefix><pid>.<n>`
 * that no entry holds.
 */
function freshName(host: NameHost, prefix: string): string {
  for (const name of host.channelNames(prefix)) {
    if (parse(name, prefix) !== null) host.dropChannel(name)
  }
  const taken = new Set(host.channelNames(prefix))
  for (;;) {
    const name = `${prefix}${process.pid}.${++counter}`
    if (!taken.has(name)) return name
  }
}
