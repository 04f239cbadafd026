/**
 * The only place that maps bus names to NATS subjects and back:
 *
 *     topic   prices.ACME    <->  <prefix>.t.prices.ACME
 *     service addressbook    <->  <prefix>.s.addressbook  (queue group <prefix>.s.addressbook)
 *
 * A topic's dots are NATS token separators, so a bridged topic pattern uses
 * NATS's wildcards with NATS's meaning: `*` is one whole token, `>` one or
 * more trailing tokens. The same pattern matches local topic names (matches()),
 * so what is exported and what is imported agree. A name NATS cannot carry
 * (an empty token, white space, a wildcard inside a token) cannot be bridged.
 */
import { InvalidArgValue } from '@ipc/bus'

/** Characters NATS forbids in a subject token (white space); `*` and `>` only as whole tokens. */
const BAD_CHARS = /[\s]/

/** Why `tokens` are not a valid subject, or null. `wildcards`: whether `*` and a final `>` are allowed. */
function subjectProblem(tokens: readonly string[], wildcards: boolean): string | null {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t === '') return 'has an empty token (a leading, trailing or double dot)'
    if (BAD_CHARS.test(t)) return 'contains white space'
    if (t === '*' || t === '>') {
      if (!wildcards) return `contains the wildcard '${t}'`
      if (t === '>' && i !== tokens.length - 1) return "has '>' before its last token"
      continue
    }
    if (t.includes('*') || t.includes('>')) return "has '*' or '>' inside a token"
  }
  return null
}

/** Checks options.subjectPrefix: dot-separated tokens, no wildcard. */
export function checkPrefix(prefix: string): string {
  const problem = subjectProblem(prefix.split('.'), false)
  if (problem !== null) throw new InvalidArgValue('options.subjectPrefix', prefix, `is not a NATS subject prefix: it ${problem}`)
  return prefix
}

/** Checks one entry of options.topics: a topic name or a pattern with NATS wildcards. */
export function checkTopicPattern(pattern: string, index: number): string {
  const problem = subjectProblem(pattern.split('.'), true)
  if (problem !== null) throw new InvalidArgValue(`options.topics[${index}]`, pattern, `cannot be bridged: as a NATS subject it ${problem}`)
  return pattern
}

/** Checks one entry of options.services: a service name that is a valid subject without wildcards. */
export function checkServiceName(service: string, index: number): string {
  const problem = subjectProblem(service.split('.'), false)
  if (problem !== null) throw new InvalidArgValue(`options.services[${index}]`, service, `cannot be bridged: as a NATS subject it ${problem}`)
  return service
}

/** Whether a local topic can travel as a subject (a wildcard pattern may match names that cannot). */
export function bridgeableTopic(topic: string): boolean {
  return subjectProblem(topic.split('.'), false) === null
}

export function hasWildcard(pattern: string): boolean {
  return pattern.split('.').some((t) => t === '*' || t === '>')
}

/** Whether topic name `topic` matches `pattern` with NATS's wildcard rules. */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.')
  const t = topic.split('.')
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!
    if (token === '>') return t.length > i
    if (i >= t.length) return false
    if (token !== '*' && token !== t[i]) return false
  }
  return p.length === t.length
}

/** The longest literal prefix of a pattern, for bus.topicNames(prefix). */
export function literalPrefix(pattern: string): string {
  const tokens = pattern.split('.')
  const i = tokens.findIndex((t) => t === '*' || t === '>')
  return i < 0 ? pattern : tokens.slice(0, i).map((t) => `${t}.`).join('')
}

export class Subjects {
  private readonly topicRoot: string
  private readonly serviceRoot: string

  constructor(readonly prefix: string) {
    this.topicRoot = `${prefix}.t.`
    this.serviceRoot = `${prefix}.s.`
  }

  topic(topicOrPattern: string): string {
    return this.topicRoot + topicOrPattern
  }

  /** The topic a topic subject names; null when it is not under this prefix. */
  topicOf(subject: string): string | null {
    return subject.startsWith(this.topicRoot) ? subject.slice(this.topicRoot.length) : null
  }

  service(service: string): string {
    return this.serviceRoot + service
  }
}
