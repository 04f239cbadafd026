/**
 * bridgeNats() options: the shape, the defaults, and their validation, all
 * before anything connects. Wrong types and values throw the bus's argument
 * errors (InvalidArgType, InvalidArgValue, OutOfRange: Node's codes).
 */
import { InvalidArgType, InvalidArgValue, OutOfRange } from '@ipc/bus'
import type { NodeConnectionOptions } from '@nats-io/transport-node'
import { checkPrefix, checkServiceName, checkTopicPattern } from './subjects.js'

export interface BridgeOptions {
  /** NATS server URL(s), e.g. 'nats://10.0.0.5:4222'. Required. */
  servers: string | readonly string[]
  /** Subjects are `<subjectPrefix>.t.<topic>` and `<subjectPrefix>.s.<service>`; bridges that share a prefix see each other. Default 'ipc'. */
  subjectPrefix?: string
  /** Topics to bridge, both ways: names, or patterns with NATS wildcards ('prices.*', 'orders.>'). Default none. */
  topics?: readonly string[]
  /** Services to bridge (requests to servers on other hosts, and to ours from them). Default none. */
  services?: readonly string[]
  /** How long the first connection may take before bridgeNats() rejects with BridgeConnectFailed (ms). Default 2000. */
  connectTimeout?: number
  /** Wait between reconnect attempts after the server went away (ms). The bridge retries forever. Default 1000. */
  reconnectWait?: number
  /** How often local topics (for wildcard patterns) and local servers are looked at again (ms). Default 250. */
  pollInterval?: number
  /** The slow-subscriber policy of the bridge's own subscriptions to local topics. Default 'block' (see README). */
  exportPolicy?: 'block' | 'drop'
  /** Requests a relay forwards at once, per service. Default 64. */
  concurrency?: number
  /** How much longer than a caller's deadline a relay waits for the far reply, kept for the caller's retries of the same id (ms, 0 for none). Default 5000. */
  replyLinger?: number
  /** Anything else for the NATS client (auth, tls, name, ...); servers, noEcho and reconnection are the bridge's. */
  nats?: Partial<NodeConnectionOptions>
}

export interface ResolvedOptions {
  servers: string[]
  subjectPrefix: string
  topics: string[]
  services: string[]
  connectTimeout: number
  reconnectWait: number
  pollInterval: number
  exportPolicy: 'block' | 'drop'
  concurrency: number
  replyLinger: number
  nats: Partial<NodeConnectionOptions>
}

export const DEFAULTS = {
  subjectPrefix: 'ipc',
  connectTimeout: 2000,
  reconnectWait: 1000,
  pollInterval: 250,
  exportPolicy: 'block',
  concurrency: 64,
  replyLinger: 5000,
} as const

const KEYS = ['servers', 'subjectPrefix', 'topics', 'services', 'connectTimeout', 'reconnectWait', 'pollInterval', 'exportPolicy', 'concurrency', 'replyLinger', 'nats']

function strings(what: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidArgType(what, 'an instance of Array', value)
  value.forEach((v, i) => {
    if (typeof v !== 'string') throw new InvalidArgType(`${what}[${i}]`, 'of type string', v)
  })
  return [...value] as string[]
}

function integer(what: string, value: unknown, fallback: number, min: number, max = 0x7fffffff): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new InvalidArgType(what, 'of type number', value)
  if (!Number.isInteger(value) || value < min || value > max) throw new OutOfRange(what, `an integer from ${min} to ${max}`, value)
  return value
}

export function checkOptions(options: unknown): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgType('options', 'of type object', options)
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!KEYS.includes(key)) throw new InvalidArgValue(`options.${key}`, o[key], 'is not a bridgeNats option')
  }
  if (o.servers === undefined) throw new InvalidArgType('options.servers', 'of type string or an instance of Array', undefined)
  const servers = typeof o.servers === 'string' ? [o.servers] : strings('options.servers', o.servers)
  if (servers.length === 0 || servers.some((s) => s === '')) throw new InvalidArgValue('options.servers', o.servers, 'must name at least one server')
  const prefix = o.subjectPrefix ?? DEFAULTS.subjectPrefix
  if (typeof prefix !== 'string') throw new InvalidArgType('options.subjectPrefix', 'of type string', prefix)
  checkPrefix(prefix)
  const topics = o.topics === undefined ? [] : strings('options.topics', o.topics)
  topics.forEach(checkTopicPattern)
  const services = o.services === undefined ? [] : strings('options.services', o.services)
  services.forEach(checkServiceName)
  const policy = o.exportPolicy ?? DEFAULTS.exportPolicy
  if (policy !== 'block' && policy !== 'drop') throw new InvalidArgValue('options.exportPolicy', policy, "must be 'block' or 'drop'")
  if (o.nats !== undefined && (typeof o.nats !== 'object' || o.nats === null)) throw new InvalidArgType('options.nats', 'of type object', o.nats)
  return {
    servers,
    subjectPrefix: prefix,
    topics,
    services,
    connectTimeout: integer('options.connectTimeout', o.connectTimeout, DEFAULTS.connectTimeout, 1),
    reconnectWait: integer('options.reconnectWait', o.reconnectWait, DEFAULTS.reconnectWait, 1),
    pollInterval: integer('options.pollInterval', o.pollInterval, DEFAULTS.pollInterval, 1),
    exportPolicy: policy,
    concurrency: integer('options.concurrency', o.concurrency, DEFAULTS.concurrency, 1, Number.MAX_SAFE_INTEGER),
    replyLinger: integer('options.replyLinger', o.replyLinger, DEFAULTS.replyLinger, 0),
    nats: (o.nats ?? {}) as Partial<NodeConnectionOptions>,
  }
}
