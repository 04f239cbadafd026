/**
 * @ipc/core: layouts and algorithms over bytes for @ipc/bus. Pure TypeScript,
 * no system calls: everything runs over any ArrayBuffer or SharedArrayBuffer.
 */
export * from './errors.js'
export { Codec, defaultCodec, type CodecOptions, type StructureStore } from './codec.js'
export { identityWord, readIdentity, type Identity, type IsAlive } from './identity.js'
export { initializeLane, laneBytes, type LaneOptions, type LaneStats, type RecordHandler, type ValueHandler } from './ring/lane.js'
export { LaneProducer } from './ring/producer.js'
export { LaneConsumer } from './ring/consumer.js'
export { FLAG_PADDING, MAX_CAPACITY, MIN_CAPACITY, RECORD_HEADER, maxMessageLimit, recordBytes } from './ring/layout.js'
export { AWAKE, PARKED, park, shouldRing, type DataSource } from './ring/park.js'
export { ChannelSegment, ChannelSender, channelBytes, initializeChannel, type ChannelLayoutOptions } from './channel/segment.js'
export { MAX_LANES, MAX_MESSAGE_LIMIT, MAX_SCHEMA_BYTES, OWNERS as CHANNEL_OWNERS, RECEIVER as CHANNEL_RECEIVER, TYPE_BYTES, TYPE_FRAGMENT, TYPE_SCHEMA, TYPE_VALUE } from './channel/layout.js'
export { FRAGMENT_HEADER, Reassembler, fragmentBytes, writeFragmentHeader } from './channel/fragments.js'
export { DOORBELL_NONE, DOORBELL_PIPE, DOORBELL_SIGNAL, MAX_BELL_THREAD, bellWord, readBell, type BellAddress } from './doorbell.js'
export {
  DIRECTORY_DEFAULTS, Directory, directorySize, initializeDirectory,
  type ChannelEntry, type DirectoryOptions, type MemberEntry,
} from './directory/directory.js'
export { StructureRegion } from './directory/structures.js'
export { DIRECTORY_MAGIC, MAX_NAME_BYTES, MAX_SLOTS, SLOT_FREE, SLOT_READY } from './directory/layout.js'
export {
  TopicSegment, initializeTopic, topicBytes, type SubscriberInfo, type TopicLaneStats, type TopicLayoutOptions,
} from './topic/segment.js'
export { TopicPublisher, type TopicWake } from './topic/publisher.js'
export {
  TopicSubscriber, type ReleaseStep, type SubscribeOptions, type TopicRecordHandler, type TopicValueHandler,
} from './topic/subscriber.js'
export {
  MAX_TOPIC_CAPACITY, MAX_TOPIC_LANES, MAX_TOPIC_SLOTS, MIN_TOPIC_CAPACITY, TOPIC_FLAG_PADDING, TOPIC_MAGIC, TOPIC_RECORD_HEADER,
  topicMaxMessageLimit, topicRecordBytes,
} from './topic/layout.js'
export { copyChannel, copyDirectory, copyTopic, segmentKind, type ReadAt, type SegmentKind } from './observe/snapshot.js'
export { defineSchema, schemaFromText, Schema, FIELD_BYTES, MAX_STRING_BYTES, MAX_FIELDS, type FieldType, type SchemaFields, type SchemaDeclaration, type SchemaValue, type SchemaView, type Field } from './schema/schema.js'
export { Views, copyBytes, copyOut } from './bytes.js'
