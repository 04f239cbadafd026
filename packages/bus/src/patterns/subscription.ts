/**
 * A subscription, as the subscriber holds it: bus.subscribe() returns one.
 * It holds a slot of the topic's subscriber table (taken before subscribe()
 * returns, so every later publish reaches it), ends on unsubscribe(), abort
 * or dispose, and without a handler is consumed with `for await` by one
 * consumer.
 */
import type { SlowPolicy } from '../options.js'
import type { TopicReader } from './topic-reader.js'

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
  readonly policy: SlowPolicy
  /** This subscription's slot in the topic's subscriber table (DropEvent.slot). */
  readonly slot: number
  /** Made without a handler (so `for await` is how it is consumed). */
  private readonly iterable: boolean
  private iterated = false
  private closed = false
  private readonly onAbort: () => void

  /** @internal Made by bus.subscribe(); onEnd runs once, after the reader closed. */
  constructor(private readonly reader: TopicReader<T>, topic: string, policy: SlowPolicy, slot: number, iterate: boolean, private readonly signal: AbortSignal | undefined, private readonly onEnd: () => void) {
    this.topic = topic
    this.policy = policy
    this.slot = slot
    this.iterable = iterate
    this.onAbort = () => this.unsubscribe()
    signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  get active(): boolean {
    return !this.closed
  }

  /**
   * Records this subscription lost to lapping ('drop' policy; always 0 for
   * 'block'): values, and fragments of values larger than a record (see
   * `abandoned`).
   */
  get dropped(): number {
    return this.reader.dropped
  }

  /**
   * Values larger than a record that this subscription dropped unfinished,
   * never delivering part of one: a lap cut them ('drop'), or their
   * publisher died or gave up mid-message.
   */
  get abandoned(): number {
    return this.reader.abandoned
  }

  /** Stops receiving and frees the slot (values not yet delivered are discarded). Idempotent. */
  unsubscribe(): void {
    if (this.closed) return
    this.closed = true
    this.signal?.removeEventListener('abort', this.onAbort)
    this.reader.close() // ends a for-await loop
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
    if (!this.iterable || this.iterated) {
      throw new InvalidState(this.iterable
        ? `subscription to '${this.topic}' has been iterated already (one consumer per subscription)`
        : `subscription to '${this.topic}' has a handler; subscribe without one to iterate`)
    }
    this.iterated = true // one consumer
    return {
      next: () => this.reader.next(),
      return: async () => {
        this.unsubscribe()
        return { value: undefined, done: true }
      },
      throw: async () => {
        this.unsubscribe()
        return { value: undefined, done: true }
      },
    }
  }
}
