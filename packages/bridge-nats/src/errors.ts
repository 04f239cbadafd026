/**
 * The errors @ipc/bridge-nats adds to @ipc/bus's. Each extends the bus's
 * IpcError with a stable `code`. Bad options are the bus's argument errors
 * (InvalidArgType / InvalidArgValue / OutOfRange: Node's codes), thrown
 * before anything connects; a subject that NATS would refuse (a wildcard in
 * a service name, an empty token in the prefix) is an InvalidArgValue too.
 */
import { IpcError } from '@ipc/bus'

/** No NATS server of `servers` answered within the connect timeout (the first connection only: later outages are reconnected). */
export class BridgeConnectFailed extends IpcError {
  override readonly name = 'BridgeConnectFailed'
  constructor(readonly servers: readonly string[], readonly timeoutMs: number, options?: { cause?: unknown }) {
    const why = (options?.cause as { message?: string } | undefined)?.message
    super('ERR_BRIDGE_CONNECT', `cannot reach a NATS server at ${servers.join(', ')} within ${timeoutMs} ms${why === undefined ? '' : ` (${why})`}`, options)
  }
}

/**
 * A value (with its NATS headers) is larger than the connection's
 * max_payload, which the server announces: nothing was sent. For a topic it
 * is reported as the bridge's 'error' (the local publish already happened);
 * for a request, the caller gets it as a RemoteError whose remoteCode is
 * this code.
 */
export class BridgeMessageTooLarge extends IpcError {
  override readonly name = 'BridgeMessageTooLarge'
  constructor(readonly subject: string, readonly bytes: number, readonly maxPayload: number) {
    super('ERR_BRIDGE_MESSAGE_TOO_LARGE', `message of ${bytes} bytes for NATS subject '${subject}' exceeds the server's max_payload=${maxPayload}`)
  }
}

/** A message from NATS could not be decoded, or named no valid local topic: dropped, reported as 'error'. */
export class BridgeBadMessage extends IpcError {
  override readonly name = 'BridgeBadMessage'
  constructor(readonly subject: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_BRIDGE_BAD_MESSAGE', `dropped a message on NATS subject '${subject}': ${detail}`, options)
  }
}
