/**
 * The topics this bus instance has open: one segment per topic (@ipc/core
 * topic/: P broadcast lanes and S subscriber slots), listed in the
 * directory as `T:<topic>` with kind KIND_TOPIC and opened by name through
 * ../bus/entries.ts, as channels are. Whoever opens a topic first creates
 * it with its sizes and schema; later openers use it as it is (a schema
 * asked for is checked against the stored one by ./pubsub.ts). An open topic stays
 * mapped until the bus closes (its lane and slots are given back earlier,
 * by the writer and the subscriptions).
 */
import { TopicSegment, initializeTopic, topicBytes } from '@ipc/core'
import { openEntry, type EntryHost } from '../bus/entries.js'
import { KIND_TOPIC } from '../naming.js'
import type { TopicSizes } from '../topic-options.js'
import { detachSegment, type Segment } from '../sysv.js'
import { topicEntryName } from './names.js'

export interface OpenTopic {
  readonly name: string
  readonly segment: Segment
  readonly core: TopicSegment
  /** The topic's doorbell token: its segment id, unique on the host while the topic exists. */
  readonly token: number
}

export class TopicTable {
  private readonly open = new Map<string, OpenTopic>()

  constructor(private readonly host: EntryHost) {}

  /** The topic `name` (checked by the caller), opened on first use, created with `sizes()` if nobody has. */
  topic(name: string, sizes: () => TopicSizes): OpenTopic {
    const known = this.open.get(name)
    if (known !== undefined) return known
    const s = sizes()
    const { segment, core } = openEntry(this.host, topicEntryName(name), {
      kind: KIND_TOPIC,
      what: `topic '${name}'`,
      bytes: topicBytes(s.maxSenders, s.maxSubscribers, s.ringBytes, s.schema === null ? 0 : Buffer.byteLength(s.schema)),
      capacity: s.ringBytes,
      lanes: s.maxSenders,
      initialize: (buffer) => initializeTopic(buffer, 0, { lanes: s.maxSenders, slots: s.maxSubscribers, laneCapacity: s.ringBytes, maxMessageBytes: s.maxRecordBytes, schema: s.schema ?? undefined }),
      wrap: (buffer) => new TopicSegment(buffer, 0, this.host.codec),
    })
    const topic: OpenTopic = { name, segment, core, token: segment.id }
    this.open.set(name, topic)
    return topic
  }

  /** Detaches every topic (after the writers and subscriptions let go): on the next turn, as a drain may be on the stack. */
  closeAll(exiting: boolean): void {
    const segments = [...this.open.values()].map((t) => t.segment)
    this.open.clear()
    if (exiting) return // the process is going: the kernel detaches
    setImmediate(() => { for (const s of segments) detachSegment(s) })
  }
}
