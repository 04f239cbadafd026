/**
 * What the topic and service halves of a bridge share (bridge.ts makes one
 * and hands it to both): the NATS connection, the two bus members, the
 * subject mapping, reporting and the counters. A private object, never the
 * NatsBridge itself.
 */
import type { Bus } from '@ipc/bus'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Subjects } from './subjects.js'

/** What bridge.stats() returns. */
export interface BridgeStats {
  /** Whether the NATS connection is up now. */
  connected: boolean
  /** Local values sent to NATS. */
  exported: number
  /** Values from NATS published on the local bus. */
  imported: number
  /** Local values that could not be handed to the NATS client (it refused them while disconnected) or encoded: lost. */
  lost: number
  /** Values from NATS dropped because local subscribers had no room and the topic's import queue (262,144 values) was full. */
  overflow: number
  /** Values and requests refused for exceeding the server's max_payload. */
  tooLarge: number
  /** Requests from this host sent to NATS, and from NATS run on this host. */
  requestsOut: number
  requestsIn: number
  /** Local topics exported now. */
  topics: string[]
  /** Per bridged service: 'local' (live servers here: this host answers NATS) or 'remote' (none here: the bridge serves a relay). */
  services: Record<string, 'local' | 'remote'>
  /** Disconnections from NATS since the bridge started. */
  disconnects: number
}

export type Counters = Omit<BridgeStats, 'connected' | 'topics' | 'services'>

export interface BridgeContext {
  readonly nc: NatsConnection
  /** The application's bus: listed (topicNames, servers), never published on by the bridge. */
  readonly bus: Bus
  /** The bridge's own member of the same bus: its lane carries what it imports, its relays serve remote services. */
  readonly inner: Bus
  readonly subjects: Subjects
  /** This bridge's origin tag (random): a NATS message carrying it is our own. */
  readonly id: string
  /** How often local topics and servers are looked at again (ms). */
  readonly pollMs: number
  readonly exportPolicy: 'block' | 'drop'
  readonly counts: Counters
  connected(): boolean
  /** The connection's max_payload (announced by the server; changes with the server after a reconnect). */
  maxPayload(): number
  /** An error that stops nothing: the bridge's 'error' event when listened to, else NODE_DEBUG=ipc-bus-bridge. */
  report(err: unknown): void
  debug(message: string, ...args: unknown[]): void
}
