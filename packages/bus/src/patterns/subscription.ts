/**
 * A subscription, as the subscriber holds it: bus.subscribe() returns one.
 * It owns its receiving channel (claimed in the constructor, so publishers
 * see it at once), ends on unsubscribe(), abort or dispose, and without a
 * handler is consumed with `for await` by one consumer.
 */
import type { Channel } from '../channel/channel.js'
import type { SlowPolicy } from '../options.js'

/**
 * Using an object in a way its state does not allow: a TypeError with
 * Node's code ERR_INVALID_STATE (what a locked ReadableStream's getReader()
 * throws), printed like Node's errors and ../errors.ts's argument errors.
 * Not exported: test `err.code`.
 */
class InvalidState extends TypeError {
  readonly code = 'ERR_INVALID_STATE'
  constructor(detail: string) {
    super(`Invalid state: ${detail}`)
    this.name = `TypeError [${this.code}]`
    void this.stack // V8 formats the stack's first line on first access
    delete (this as { name?: string }).name // back to the prototype's 'TypeError'
  }
  override toString(): string { return `${this.name} [${this.code}]: ${this.message}` }
}

export class Subscription<T = unknown> implements AsyncIterable<T>, Disposable, AsyncDisposable {
  readonly topic: string
  /** The channel this subscription receives on. */
  readonly channelName: string
  readonly policy: SlowPolicy
  private iterator: AsyncIterator<T> | null
  /** Made without a handler (so `for await` is how it is consumed). */
  private readonly iterable: boolean
  private closed = false
  private readonly onAbort: () => void

  /** @internal Made by bus.subscribe(); onEnd runs once, after the channel closed. */
  constructor(private readonly channel: Channel<T>, topic: string, policy: SlowPolicy, iterate: boolean, private readonly signal: AbortSignal | undefined, private readonly onEnd: () => void) {
    this.topic = topic
    this.channelName = channel.name
    this.policy = policy
    this.iterable = iterate
    // Claim the receiver now: from here on, publishers see a live subscriber.
    this.iterator = iterate ? channel[Symbol.asyncIterator]() : null
    this.onAbort = () => this.unsubscribe()
    signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  get active(): boolean {
    return !this.closed
  }

  /** Stops receiving and removes the subscriber channel (values still in its ring are discarded). Idempotent. */
  unsubscribe(): void {
    if (this.closed) return
    this.closed = true
    this.signal?.removeEventListener('abort', this.onAbort)
    this.channel.close() // ends a for-await loop; releases the receiver
    this.onEnd()
  }

  [Symbol.dispose](): void {
    this.unsubscribe()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.unsubscribe()
  }

  /** Values in publish order (per publisher); ends on unsubscribe or abort. Breaking out of the loop unsubscribes. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    const it = this.iterator
    if (it === null) {
      throw new InvalidState(this.iterable
        ? `subscription to '${this.topic}' has been iterated already (one consumer per subscription)`
        : `subscription to '${this.topic}' has a handler; subscribe without one to iterate`)
    }
    this.iterator = null // one consumer
    return {
      next: () => it.next(),
      return: async () => {
        this.unsubscribe()
        return { value: undefined, done: true }
      },
    }
  }
}
