/**
 * Reading segments without touching them: every look attaches SHM_RDONLY
 * (a mapping the process cannot write through: @ipc/native hands out copies,
 * never an ArrayBuffer over it), copies what it needs (@ipc/core
 * copyDirectory / copyChannel / copyTopic), detaches at once, and wraps the
 * copy in the ordinary core class, which validates it as it would live
 * memory. A copy the validation rejects may be torn (a writer moved while
 * it was copied): it is copied again, a few times, before the segment is
 * called corrupt. Failures become a SegmentProblem the commands report:
 * never an exception that ends the program.
 */
import {
  ChannelSegment, CorruptSegment, Directory, IpcError, TopicSegment, copyChannel, copyDirectory, copyTopic, segmentKind,
  type ChannelEntry, type MemberEntry, type ReadAt, type SegmentKind,
} from '@ipc/core'
import { shmat } from '@ipc/native'

/** Why a segment could not be looked at. */
export type Problem = 'unreadable' | 'gone' | 'corrupt' | 'error'

export class SegmentProblem extends Error {
  constructor(readonly problem: Problem, message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** Copies of a segment that fail validation are taken again this many times in all. */
const ATTEMPTS = 5

/** What an error while looking at segment `id` means (its message names the segment only where the error does not say more). */
export function problemOf(err: unknown, id: number): SegmentProblem {
  if (err instanceof SegmentProblem) return err
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code === 'EACCES' || code === 'EPERM') return new SegmentProblem('unreadable', `permission denied (segment ${id})`, { cause: err })
  if (code === 'EINVAL' || code === 'EIDRM' || code === 'ENOENT') return new SegmentProblem('gone', `segment ${id} no longer exists`, { cause: err })
  if (err instanceof IpcError) return new SegmentProblem('corrupt', err.message, { cause: err })
  return new SegmentProblem('error', (err as Error)?.message ?? String(err), { cause: err })
}

/** Attaches segment `id` read-only for the length of `use`. */
function withReadOnly<T>(id: number, use: (read: ReadAt, size: number) => T): T {
  const mapping = shmat(id, { readOnly: true })
  try {
    return use((offset, length) => mapping.read(offset, length), mapping.byteLength)
  } finally {
    mapping.detach()
  }
}

/** A short synchronous pause between copies (the observer has nothing else to do meanwhile). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Copies segment `id` and wraps the copy, copying again while the wrapper
 * finds it inconsistent (CorruptSegment); SegmentProblem on failure.
 */
function stable<T>(id: number, take: (read: ReadAt, size: number) => T): T {
  for (let attempt = 1; ; attempt++) {
    try {
      return withReadOnly(id, take)
    } catch (err) {
      if (!(err instanceof CorruptSegment) || attempt >= ATTEMPTS) throw problemOf(err, id)
      pause(attempt)
    }
  }
}

/** The kind of segment `id` by its magic (null: none of ours, or too small). Throws SegmentProblem. */
export function peekKind(id: number): SegmentKind | null {
  try {
    return withReadOnly(id, (read, size) => (size < 4 ? null : segmentKind(read(0, 4))))
  } catch (err) {
    throw problemOf(err, id)
  }
}

/** What a directory copy holds (null while it is not initialised: being built, or abandoned half-built). */
export interface DirectoryCopy {
  name: string
  channelSlots: number
  memberSlots: number
  entries: ChannelEntry[]
  members: MemberEntry[]
}

/** Copies directory segment `id` and reads its tables (a torn copy is taken again). */
export function readDirectory(id: number): DirectoryCopy | null {
  return stable(id, (read, size) => {
    const copy = copyDirectory(read, size)
    if (!Directory.isInitialised(copy, 0)) return null
    const directory = new Directory(copy, 0)
    return {
      name: directory.name, channelSlots: directory.channelSlots, memberSlots: directory.memberSlots,
      entries: directory.channels(), members: directory.members(),
    }
  })
}

/**
 * Copies channel segment `id` and hands the copy, as a ChannelSegment, to
 * `view` (which reads stats, the receiver, lane owners; never drains): what
 * `view` returns is the result, and a CorruptSegment it throws counts as a
 * torn copy.
 */
export function readChannel<T>(id: number, view: (segment: ChannelSegment) => T): T {
  return stable(id, (read, size) => view(new ChannelSegment(copyChannel(read, size), 0)))
}

/** Copies topic segment `id` and hands the copy, as a TopicSegment, to `view` (as readChannel). */
export function readTopic<T>(id: number, view: (segment: TopicSegment) => T): T {
  return stable(id, (read, size) => view(new TopicSegment(copyTopic(read, size), 0)))
}
