/**
 * @ipc/bridge-nats: chosen topics and services of an @ipc/bus span hosts
 * through a NATS server. `const bridge = await bridgeNats(bus, { servers,
 * topics, services })`; `await bridge.close()` or `await using`.
 */
export { bridgeNats, NatsBridge, type BridgeEvents, type BridgeStatus } from './bridge.js'
export type { BridgeStats } from './context.js'
export { DEFAULTS, type BridgeOptions } from './options.js'
export { BridgeBadMessage, BridgeConnectFailed, BridgeMessageTooLarge } from './errors.js'
