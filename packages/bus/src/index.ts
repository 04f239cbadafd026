/**
 * @ipc/bus: a message bus for Node.js processes on one Linux host, over
 * System V shared memory, with race-free signal- or pipe-notified delivery.
 */
export { Bus, ATTACH_ENV, type ChannelOptions, type PeerExit, type BusStats, type BusEvents } from './bus/bus.js'
export { Channel, type ChannelStats } from './channel/channel.js'
export type { SendOptions } from './options.js'
export { DEFAULTS, parseBytes, type BusOptions, type DoorbellKind } from './options.js'
export * from './errors.js'
export { busKey } from './naming.js'
export { Subscription, type SubscribeOptions, type TopicOptions, type SlowPolicy, type PubSubStats } from './patterns/pubsub.js'
export { Server, type Handler, type RequestContext, type ServeOptions, type RequestOptions, type RpcStats, type ServerStats } from './patterns/rpc/index.js'
export { type DropEvent } from './patterns/host.js'
export { MAX_PATTERN_NAME_BYTES } from './patterns/names.js'
export { defineSchema, type SchemaDeclaration, type SchemaValue, type SchemaView } from '@ipc/core'
