/**
 * Publishing what arrives from NATS on the local bus, per topic, in arrival
 * order. NATS cannot be told to wait (core NATS has no backpressure), so
 * when a local 'block' subscriber is a ring behind, values wait here, in a
 * bounded queue per topic, and go out with one `await publish()` at a time
 * (the bus's own queue of waiting publishes is not meant to hold a flood).
 * Beyond IMPORT_QUEUE values a topic's newest values are dropped and
 * counted (`overflow`): at-most-once, as NATS core itself is to a slow
 * consumer.
 */
import type { Bus } from '@ipc/bus'

/** Values from NATS a topic may hold while its local subscribers have no room. */
export const IMPORT_QUEUE = 262_144

interface Backlog {
  values: unknown[]
  head: number
  pumping: boolean
}

export class Importer {
  private readonly backlogs = new Map<string, Backlog>()
  private closed = false

  constructor(private readonly inner: Bus, private readonly report: (err: unknown) => void, private readonly overflow: () => void) {}

  /** Publishes value on topic now, or queues it behind the values of that topic already waiting. */
  publish(topic: string, value: unknown): void {
    const backlog = this.backlogs.get(topic)
    if (backlog === undefined) {
      try {
        if (this.inner.tryPublish(topic, value)) return
      } catch (err) {
        return this.report(err) // a value the bus refuses (too large for it, a bad topic name): this one only
      }
      const fresh: Backlog = { values: [value], head: 0, pumping: false }
      this.backlogs.set(topic, fresh)
      void this.pump(topic, fresh)
      return
    }
    if (backlog.values.length - backlog.head >= IMPORT_QUEUE) return this.overflow()
    backlog.values.push(value)
  }

  /** Publishes a topic's backlog in order: what has room at once, then one waiting publish at a time. */
  private async pump(topic: string, b: Backlog): Promise<void> {
    b.pumping = true
    while (!this.closed && b.head < b.values.length) {
      const value = b.values[b.head]
      try {
        if (!this.inner.tryPublish(topic, value)) await this.inner.publish(topic, value)
      } catch (err) {
        if (this.closed) break
        this.report(err)
      }
      b.values[b.head++] = undefined
      if (b.head >= 1024 && b.head * 2 >= b.values.length) { // compact now and then: no shift() per value
        b.values = b.values.slice(b.head)
        b.head = 0
      }
    }
    this.backlogs.delete(topic)
  }

  close(): void {
    this.closed = true
    this.backlogs.clear()
  }
}
