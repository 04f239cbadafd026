/**
 * Finding buses without knowing their names: every segment /proc lists that
 * is large enough for a directory is attached read-only for a look at its
 * first word, and those that carry the directory magic are read (copied)
 * and summarised. Segments this user may not read are listed as not
 * readable (whether they are buses cannot be told); anything else that is
 * not ours is skipped.
 */
import { directorySize, type MemberEntry } from '@ipc/core'
import { processStartTime } from '../liveness.js'
import { busKey } from '../naming.js'
import { Liveness, entryRole, type BusState, type BusSummary } from './model.js'
import { peekKind, problemOf, readDirectory, type DirectoryCopy } from './segments.js'
import { listShm, userName, type ShmRow } from './sysvipc.js'

/** A bus as found: its segment, its directory copy (null when unreadable, corrupt or not initialised) and its summary. */
export interface FoundBus {
  row: ShmRow
  directory: DirectoryCopy | null
  summary: BusSummary
}

/** The smallest segment that can hold a directory (one slot each, 64-byte structure copies). */
const MIN_DIRECTORY = directorySize({ channels: 1, members: 1, structureBytes: 64 })

/** Every bus (and every segment this user may not read) on the host, by segment id. */
export function findBuses(rows: ShmRow[] = listShm()): FoundBus[] {
  const found: FoundBus[] = []
  for (const row of rows) {
    if (row.size < MIN_DIRECTORY) continue
    let kind
    try {
      kind = peekKind(row.id)
    } catch (err) {
      const problem = problemOf(err, row.id)
      if (problem.problem === 'gone') continue
      found.push({ row, directory: null, summary: summary(row, null, problem.problem, problem.message) })
      continue
    }
    if (kind === 'directory') found.push(readBus(row))
  }
  return found.sort((a, b) => a.row.id - b.row.id)
}

/** Reads the directory in segment `row` (known or believed to be one) and summarises it. */
export function readBus(row: ShmRow, liveness = new Liveness()): FoundBus {
  let directory: DirectoryCopy | null
  try {
    directory = readDirectory(row.id)
  } catch (err) {
    const problem = problemOf(err, row.id)
    return { row, directory: null, summary: summary(row, null, problem.problem, problem.message) }
  }
  if (directory === null) {
    const state: BusState = processStartTime(row.cpid) >= 0 ? 'building' : 'half-built'
    return { row, directory: null, summary: summary(row, null, state, null) }
  }
  return { row, directory, summary: summary(row, directory, null, null, liveness) }
}

function summary(row: ShmRow, directory: DirectoryCopy | null, problem: BusState | null, error: string | null, liveness = new Liveness()): BusSummary {
  const base: BusSummary = {
    id: row.id, key: `0x${(row.key >>> 0).toString(16)}`, name: null, private: null,
    mode: `0${row.mode.toString(8).padStart(3, '0')}`, uid: row.uid, user: userName(row.uid), creatorPid: row.cpid,
    created: new Date(row.ctime * 1000).toISOString(), state: problem ?? 'live', readable: problem !== 'unreadable',
    dead: problem === 'half-built', removed: false, members: { alive: 0, dead: 0 }, channels: 0, topics: 0, services: 0, error,
  }
  if (directory === null) return base
  const alive = directory.members.filter((m) => liveness.alive(m.pid, m.startTime)).length
  const services = new Set<string>()
  let channels = 0
  let topics = 0
  for (const entry of directory.entries) {
    const role = entryRole(entry)
    if (role.role === 'topic') topics++
    else if (role.role === 'server') services.add(role.service)
    else if (role.role === 'channel') channels++
  }
  const isPrivate = row.key === 0 && /^private:\d+:\d+$/.test(directory.name)
  const state = busState(directory.members, alive, row.cpid)
  return {
    ...base, name: directory.name, private: isPrivate, state, dead: state === 'dead',
    // A named bus's key stays until it is removed; then /proc shows key 0.
    removed: row.dest && !isPrivate,
    members: { alive, dead: directory.members.length - alive }, channels, topics, services: services.size,
    error: !isPrivate && row.key !== 0 && busKey(directory.name) !== row.key ? `its key is not the key of the name '${directory.name}'` : null,
  }
}

function busState(members: MemberEntry[], alive: number, creatorPid: number): BusState {
  if (alive > 0) return 'live'
  if (members.length > 0) return 'dead'
  return processStartTime(creatorPid) >= 0 ? 'empty' : 'dead'
}

/** What a command was asked to look at: a bus name, or a directory segment id. */
export interface Target {
  name?: string
  id?: number
}

/** A bus the command line was pointed at that is not there. */
export class NoSuchTarget extends Error {}

/**
 * Finds the bus named `target.name` (at its key, else, for a private bus's
 * 'private:<pid>:<n>', among all directories) or in segment `target.id`.
 * NoSuchTarget when there is none.
 */
export function findTarget(target: Target, liveness = new Liveness()): FoundBus {
  const rows = listShm()
  if (target.id !== undefined) {
    const row = rows.find((r) => r.id === target.id)
    if (row === undefined) throw new NoSuchTarget(`no segment has id ${target.id}`)
    try {
      const kind = peekKind(row.id)
      if (kind !== 'directory') throw new NoSuchTarget(`segment ${row.id} is not a bus directory${kind === null ? '' : ` (it is a ${kind})`}`)
    } catch (err) {
      if (err instanceof NoSuchTarget) throw err
      const problem = problemOf(err, row.id)
      if (problem.problem === 'gone') throw new NoSuchTarget(`segment ${row.id} was removed`)
      return { row, directory: null, summary: summary(row, null, problem.problem, problem.message) }
    }
    return readBus(row, liveness)
  }
  const name = target.name!
  const atKey = rows.find((r) => r.key === busKey(name))
  if (atKey !== undefined) {
    const bus = readBus(atKey, liveness)
    if (bus.directory === null || bus.directory.name === name) return bus
  }
  const byName = findBuses(rows).find((b) => b.directory?.name === name)
  if (byName !== undefined) return byName
  throw new NoSuchTarget(`no bus named '${name}' (ipc-bus ls lists them)`)
}
