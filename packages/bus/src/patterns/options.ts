/**
 * The options of bus.subscribe, bus.serve and bus.request. Only their
 * shapes: ../options.ts validates them, pubsub.ts and rpc/ use them. This
 * file imports nothing, so ../options.ts can name these types without an
 * import circle.
 */

/** What a publisher does when a subscriber's ring is full. */
export type SlowPolicy = 'block' | 'drop'

export interface SubscribeOptions {
  /** What a publisher does when this subscriber's ring is full: 'block' (wait, default) or 'drop' (skip and count). */
  policy?: SlowPolicy
  /** Unsubscribes when aborted (an iterator then ends). */
  signal?: AbortSignal
  /** Ring of each publisher's lane into this subscriber. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Most publishing processes at once. Default: the bus's maxSenders. */
  maxSenders?: number
  /** For `for await`: values buffered before the ring is left to fill (then 'block' publishers wait). Default 1024. */
  highWaterMark?: number
}

export interface ServeOptions {
  /** Handlers running at once in this server; more requests wait in the ring. Default 64. */
  concurrency?: number
  /** Stops serving when aborted (like server.close()). */
  signal?: AbortSignal
  /** Ring of each client's lane into this server. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Most client processes sending to this server at once. Default: the bus's maxSenders. */
  maxSenders?: number
  /** Finished ids remembered per client for at-most-once retries. Default 256. */
  rememberIds?: number
  /** Clients whose ids are remembered. Default 256. */
  rememberClients?: number
  /** How long a finished id is remembered, ms. Default 60 000. */
  rememberMs?: number
}

export interface RequestOptions {
  /** Per attempt, in ms; Infinity for none. Default 30 000. */
  timeout?: number
  /** Aborting rejects the request with signal.reason (a reply that comes later is discarded). */
  signal?: AbortSignal
  /** Attempts after a timeout, with the same id, to the same server. Default 0. */
  retries?: number
}
