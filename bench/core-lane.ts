/**
 * Single-process lane throughput (issue 3): one thread fills a lane and
 * drains it, so this measures the JS work per message of @ipc/core, not
 * cross-process effects. Side by side: bare msgpackr pack+unpack of the same
 * object with a shared structure (the ceiling for the object path).
 */
import { Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE } from 'msgpackr'
import {
  Codec, Directory, LaneConsumer, LaneProducer, directorySize, initializeDirectory, initializeLane, laneBytes,
} from '@ipc/core'

export interface Row { name: string; messages: number; seconds: number; rate: number; note: string }

const TICK = { id: 1, ts: 1_700_000_000_123, kind: 'trade', px: 101.25, qty: 300 }
const CAPACITY = 1 << 20
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2_000_000)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const BATCH = 64

function sharedCodec(): Codec {
  const buffer = new SharedArrayBuffer(directorySize())
  initializeDirectory(buffer, 0, { name: 'bench' })
  return new Codec({ structures: new Directory(buffer).structures })
}

function lane(codec: Codec): { producer: LaneProducer; consumer: LaneConsumer } {
  const buffer = new SharedArrayBuffer(laneBytes(CAPACITY))
  initializeLane(buffer, 0, { capacity: CAPACITY })
  return { producer: new LaneProducer(buffer, 0, codec), consumer: new LaneConsumer(buffer, 0, codec) }
}

/** Median of REPEATS timings of `body(MESSAGES)`, which must move MESSAGES messages. */
function measure(name: string, note: string, body: (n: number) => number): Row {
  body(Math.min(MESSAGES, 200_000)) // warm up
  const times: number[] = []
  for (let r = 0; r < REPEATS; r++) {
    const start = process.hrtime.bigint()
    const moved = body(MESSAGES)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    if (moved !== MESSAGES) throw new Error(`${name}: moved ${moved} of ${MESSAGES}`)
    times.push(seconds)
  }
  times.sort((a, b) => a - b)
  const seconds = times[Math.floor(times.length / 2)]!
  return { name, messages: MESSAGES, seconds, rate: MESSAGES / seconds, note }
}

let sink = 0
const onValue = (value: unknown): void => { sink += (value as typeof TICK).qty }
const onRecord = (data: Buffer, start: number): void => { sink += data[start]! }

function objectsOneByOne(codec: Codec) {
  const { producer, consumer } = lane(codec)
  return (n: number): number => {
    let received = 0
    for (let sent = 0; sent < n;) {
      for (let i = 0; i < BATCH && sent < n; i++, sent++) {
        TICK.id = sent
        if (!producer.trySend(TICK)) break
      }
      received += consumer.receive(onValue, 4096)
    }
    return received + consumer.receive(onValue, 4096)
  }
}

function objectsBatched(codec: Codec) {
  const { producer, consumer } = lane(codec)
  const batch = Array.from({ length: BATCH }, (_, i) => ({ ...TICK, id: i }))
  return (n: number): number => {
    let received = 0
    for (let sent = 0; sent < n;) {
      const values = n - sent >= BATCH ? batch : batch.slice(0, n - sent)
      sent += producer.trySendMany(values)
      received += consumer.receive(onValue, 4096)
    }
    return received + consumer.receive(onValue, 4096)
  }
}

function raw(batched: boolean) {
  const { producer, consumer } = lane(new Codec())
  const payload = new Uint8Array(64).fill(7)
  const batch = Array.from({ length: BATCH }, () => payload)
  return (n: number): number => {
    let received = 0
    for (let sent = 0; sent < n;) {
      if (batched) {
        sent += producer.tryWriteMany(n - sent >= BATCH ? batch : batch.slice(0, n - sent))
      } else {
        for (let i = 0; i < BATCH && sent < n; i++, sent++) if (!producer.tryWrite(payload)) break
      }
      received += consumer.drain(onRecord, 4096)
    }
    return received + consumer.drain(onRecord, 4096)
  }
}

/** The same msgpackr work as the ring's object path (reused buffer, shared structure, ranged unpack), minus the ring. */
function msgpackrCeiling() {
  const packr = new Packr({ structures: [], moreTypes: true, copyBuffers: true })
  const range = { start: 0, end: 0 }
  return (n: number): number => {
    for (let i = 0; i < n; i++) {
      TICK.id = i
      const out = packr.pack(TICK, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) as Buffer & { start: number; end: number }
      range.start = out.start
      range.end = out.end
      onValue(packr.unpack(out, range))
    }
    return n
  }
}

export function run(): { rows: Row[]; ceiling: number; sink: number } {
  const rows = [
    measure('msgpackr pack+unpack (ceiling)', 'bare Packr, shared structure, no ring', msgpackrCeiling()),
    measure('objects trySend + receive', 'shared structures via directory', objectsOneByOne(sharedCodec())),
    measure('objects trySendMany(64) + receive', 'shared structures, one publish per 64', objectsBatched(sharedCodec())),
    measure('objects trySend, no structures', 'plain msgpack maps (default codec)', objectsOneByOne(new Codec())),
    measure('raw 64 B tryWrite + drain', 'one publish per record', raw(false)),
    measure('raw 64 B tryWriteMany(64) + drain', 'one publish per 64', raw(true)),
  ]
  return { rows, ceiling: rows[0]!.rate, sink }
}
