/**
 * The sending side of messages larger than a record: their bytes go into
 * the sender's lane as fragments (@ipc/core channel/fragments.ts has the
 * layout; docs/design.md, "Large messages"). The writer (writer.ts)
 * publishes and rings after each call that staged something. And a batch
 * of schema values, written only if none is larger than a record.
 */
import { FRAGMENT_HEADER, MessageTooLarge, TYPE_FRAGMENT, TYPE_SCHEMA, copyBytes, fragmentBytes, recordBytes, writeFragmentHeader, type ChannelSender, type Schema, type TopicPublisher } from '@ipc/core'

/** A message on its way out as fragments: `sent` bytes of it are written. */
export interface Outgoing {
  bytes: Uint8Array
  type: number
  sent: number
}

/** Stages the next fragments of `m` that fit in the lane (advancing m.sent); true when it staged any. */
export function stageFragments(sender: ChannelSender, maxRecordBytes: number, m: Outgoing): boolean {
  // tryWritePrefixed's three words are the fragment header's (core fragments.ts): total, offset, type.
  return stage(m, maxRecordBytes, (start, end) => sender.tryWritePrefixed(m.bytes, start, end, m.bytes.length, start, m.type, TYPE_FRAGMENT, false))
}

/**
 * The same for a topic's lane (../patterns/topic-writer.ts), through the
 * publisher's claim/commit: every subscriber reassembles the fragments
 * (../patterns/topic-reader.ts). Staged, not published.
 */
export function stageTopicFragments(p: TopicPublisher, maxRecordBytes: number, m: Outgoing): boolean {
  return stage(m, maxRecordBytes, (start, end) => {
    const at = p.claim(FRAGMENT_HEADER + end - start)
    if (at < 0) return false
    writeFragmentHeader(p.data, at, m.bytes.length, start, m.type)
    copyBytes(m.bytes, start, end, p.data, at + FRAGMENT_HEADER)
    p.commit(FRAGMENT_HEADER + end - start, TYPE_FRAGMENT, false)
    return true
  })
}

/** Writes m's fragments from m.sent on with `write(start, end)` until it says no room; true when it wrote any. */
function stage(m: Outgoing, maxRecordBytes: number, write: (start: number, end: number) => boolean): boolean {
  const total = m.bytes.length
  const chunk = fragmentBytes(maxRecordBytes)
  const before = m.sent
  let sent = before
  while (sent < total) {
    const end = Math.min(total, sent + chunk)
    if (!write(sent, end)) break
    sent = end
  }
  m.sent = sent
  return sent !== before
}

/** Whether every fragment of a `length`-byte message fits in the lane now (a lower bound of the room). */
export function fragmentsFit(sender: ChannelSender, maxRecordBytes: number, length: number): boolean {
  const chunk = fragmentBytes(maxRecordBytes)
  const record = recordBytes(FRAGMENT_HEADER + chunk)
  // Every record whole, plus the padding a wrap may cost before one.
  return sender.freeBytes() >= Math.ceil(length / chunk) * record + record
}

/** Payload bytes of the next record of a queued send: the whole message, or its next fragment. */
export function nextRecordBytes(m: Pick<Outgoing, 'bytes' | 'sent'>, maxRecordBytes: number): number {
  const total = m.bytes.length
  if (total <= maxRecordBytes) return total
  return FRAGMENT_HEADER + Math.min(fragmentBytes(maxRecordBytes), total - m.sent)
}

/**
 * A batch of schema values for a channel's or a topic's lane: every value
 * checked first (Unserializable, or MessageTooLarge when one's bound is over
 * a record: the caller queues the whole batch, where exact sizes decide),
 * then as many as have room written, published once. Returns how many.
 */
export function trySendManySchema(lane: ChannelSender | TopicPublisher, maxRecordBytes: number, schema: Schema, values: readonly unknown[]): number {
  for (const v of values) {
    const bound = schema.bound(v)
    if (bound > maxRecordBytes) throw new MessageTooLarge(bound, maxRecordBytes)
  }
  let n = 0
  while (n < values.length && lane.trySendSchema(schema, values[n], TYPE_SCHEMA, false)) n++
  lane.publish()
  return n
}
