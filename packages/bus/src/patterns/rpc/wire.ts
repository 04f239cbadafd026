/**
 * What request/reply sends over its channels: the shapes of a request and a
 * reply, and how a thrown error travels as plain data.
 *
 * A request, sent by a client to a server channel `s:<service>:<pid>.<n>`:
 *
 *     [client token, id, reply channel, deadline, payload]
 *
 * A reply, sent by the server to the client's reply channel `r:<pid>.<n>`:
 *
 *     [id, ok, value or error]
 *
 * The client token is random per Bus and the id counts per client, so
 * (token, id) names one request, also across a reused pid. The deadline is
 * in Date.now() ms, Infinity for none. ok is 1 for a value and 0 for an
 * error, sent as RemoteErrorInfo; 2 (NO_SERVER) is a relay server's (serve
 * option `relay`) "no server anywhere": the caller gets NoServer.
 */
import type { RemoteErrorInfo } from '../../errors.js'

export type Request = [client: string, id: number, replyTo: string, deadline: number, payload: unknown]
export type Reply = [id: number, ok: 0 | 1 | 2, value: unknown]

/** A reply's `ok` from a relay that found no server (see ServeOptions.relay). */
export const NO_SERVER = 2

/** Whether a received message has a request's shape (anything else is ignored). */
export function isRequest(message: unknown): message is Request {
  return Array.isArray(message) && message.length === 5 && typeof message[0] === 'string' && typeof message[1] === 'number' && typeof message[2] === 'string'
}

/** Whether a received message has a reply's shape (anything else is ignored). */
export function isReply(message: unknown): message is Reply {
  return Array.isArray(message)
}

/** A thrown value as plain data for the wire. */
export function errorInfo(err: unknown): RemoteErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { name: err.name, message: err.message, code: code === undefined ? undefined : String(code), stack: err.stack }
  }
  return { name: 'Error', message: String(err), code: undefined, stack: undefined }
}

/** The error of a received reply, whatever the sender put there. */
export function remoteInfo(value: unknown): RemoteErrorInfo {
  const v = (value ?? {}) as Partial<RemoteErrorInfo>
  return {
    name: typeof v.name === 'string' ? v.name : 'Error',
    message: typeof v.message === 'string' ? v.message : String(v.message),
    code: typeof v.code === 'string' ? v.code : undefined,
    stack: typeof v.stack === 'string' ? v.stack : undefined,
  }
}
