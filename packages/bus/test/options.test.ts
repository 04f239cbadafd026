/**
 * Options and arguments (issue 10, defect 12): every bad option or argument
 * is refused with Node's kind of error and a stable code
 * (ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE) before
 * anything is created; an unknown key names the nearest valid one; the
 * deprecated Bus option `signal` (now `doorbellSignal`) warns once per
 * process; a stale address or segment id is a typed error, never a raw errno.
 *
 * The validators are called directly (from the built package, the same
 * module instances '@ipc/bus' uses) and, where bus.ts already routes through
 * them, through the public API too.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Bus, busKey, InvalidArgType, InvalidArgValue, IpcError, NoSuchBus, OutOfRange } from '@ipc/bus'
import { IPC_PRIVATE, shmctl, shmdt, shmget, SIGRTMIN } from '@ipc/native'
import {
  checkRequestOptions, checkSendOptions, checkServeOptions, nearestKey, parseAttachAddress, resolveChannelOptions, resolveOptions,
} from '../dist/options.js'
import { checkSubscribeOptions } from '../dist/topic-options.js'
import { checkName } from '../dist/naming.js'
import { attachSegment } from '../dist/sysv.js'
import { listSegments } from '../../../test/support/leaks.js'
import { uniqueName } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'

type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE'
const CLASS: Record<Code, new (...args: never[]) => Error> = {
  ERR_INVALID_ARG_TYPE: InvalidArgType,
  ERR_INVALID_ARG_VALUE: InvalidArgValue,
  ERR_OUT_OF_RANGE: OutOfRange,
}

/** What `f` throws, checked to be the class of `code`, with `fragment` in its message. */
function refused(f: () => unknown, code: Code, fragment: string | RegExp): Error {
  let thrown: unknown
  try {
    f()
  } catch (err) {
    thrown = err
  }
  expect(thrown, `expected ${code} (${String(fragment)})`).toBeInstanceOf(CLASS[code])
  const err = thrown as Error & { code: string }
  expect(err.code).toBe(code)
  expect(err.message).toMatch(fragment)
  return err
}

/** Segments this process created (by creator pid), to show that a refused call made none. */
function ownSegments(): number[] {
  return listSegments().filter((s) => s.cpid === process.pid).map((s) => s.shmid).sort()
}

// [options, code, what the message must say]
const BAD_BUS_OPTIONS: Array<[Record<string, unknown>, Code, string | RegExp]> = [
  // misspelt: the nearest valid key is named
  [{ ringbytes: 4096 }, 'ERR_INVALID_ARG_VALUE', "'options.ringbytes' is not a Bus option (did you mean 'ringBytes'?)"],
  [{ maxSender: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxSenders'?"],
  [{ maxmessagebytes: 100 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxMessageBytes'?"],
  [{ maxChanels: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxChannels'?"],
  [{ maxMember: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxMembers'?"],
  [{ Mode: 0o600 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'mode'?"],
  [{ doorBell: 'pipe' }, 'ERR_INVALID_ARG_VALUE', "did you mean 'doorbell'?"],
  [{ doorbellSignl: 'SIGRTMIN+5' }, 'ERR_INVALID_ARG_VALUE', "did you mean 'doorbellSignal'?"],
  [{ signl: 'SIGRTMIN+5' }, 'ERR_INVALID_ARG_VALUE', "did you mean 'doorbellSignal'?"], // never the deprecated name
  [{ spinMicro: 5 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'spinMicros'?"],
  [{ runtimedir: '/tmp' }, 'ERR_INVALID_ARG_VALUE', "did you mean 'runtimeDir'?"],
  [{ highWaterMark: 5 }, 'ERR_INVALID_ARG_VALUE', "'options.highWaterMark' is not a Bus option (one of ringBytes,"],
  // wrong type
  [{ ringBytes: true }, 'ERR_INVALID_ARG_TYPE', 'The "options.ringBytes" property must be of type number or string. Received type boolean (true)'],
  [{ maxMessageBytes: {} }, 'ERR_INVALID_ARG_TYPE', '"options.maxMessageBytes" property must be of type number or string'],
  [{ maxSenders: '4' }, 'ERR_INVALID_ARG_TYPE', `The "options.maxSenders" property must be of type number. Received type string ('4')`],
  [{ maxChannels: null }, 'ERR_INVALID_ARG_TYPE', '"options.maxChannels" property must be of type number. Received null'],
  [{ maxMembers: 4n }, 'ERR_INVALID_ARG_TYPE', '"options.maxMembers"'],
  [{ mode: '0600' }, 'ERR_INVALID_ARG_TYPE', '"options.mode"'],
  [{ doorbellSignal: true }, 'ERR_INVALID_ARG_TYPE', '"options.doorbellSignal" property must be of type string or number'],
  [{ spinMicros: '5' }, 'ERR_INVALID_ARG_TYPE', '"options.spinMicros"'],
  [{ runtimeDir: 5 }, 'ERR_INVALID_ARG_TYPE', '"options.runtimeDir" property must be of type string'],
  // wrong value
  [{ ringBytes: 'lots' }, 'ERR_INVALID_ARG_VALUE', "'options.ringBytes' must be a number of bytes or a string like '64 KiB'"],
  [{ maxMessageBytes: '5 parsecs' }, 'ERR_INVALID_ARG_VALUE', "'options.maxMessageBytes'"],
  [{ doorbell: 'smoke' }, 'ERR_INVALID_ARG_VALUE', "The property 'options.doorbell' must be one of: 'signal', 'pipe'. Received 'smoke'"],
  [{ doorbellSignal: 'SIGFOO' }, 'ERR_INVALID_ARG_VALUE', "'options.doorbellSignal' must be a signal name"],
  [{ runtimeDir: '' }, 'ERR_INVALID_ARG_VALUE', "'options.runtimeDir' must be a directory path"],
  // out of range
  [{ ringBytes: 1000 }, 'ERR_OUT_OF_RANGE', 'The value of "options.ringBytes" is out of range. It must be a power of two from 64 to'],
  [{ ringBytes: '3 GiB' }, 'ERR_OUT_OF_RANGE', '"options.ringBytes" is out of range'],
  [{ ringBytes: -4096 }, 'ERR_OUT_OF_RANGE', '"options.ringBytes" is out of range'],
  [{ ringBytes: 4096.5 }, 'ERR_OUT_OF_RANGE', '"options.ringBytes" is out of range'],
  [{ ringBytes: 4096, maxMessageBytes: '2 GiB' }, 'ERR_OUT_OF_RANGE', 'It must be from 1 to 2147483647'],
  [{ ringBytes: 128, maxMessageBytes: 100 }, 'ERR_OUT_OF_RANGE', 'It must be from 1 to 56 (a 128-byte ring is too small for fragments'],
  [{ maxMessageBytes: 0 }, 'ERR_OUT_OF_RANGE', '"options.maxMessageBytes"'],
  [{ maxSenders: 0 }, 'ERR_OUT_OF_RANGE', 'The value of "options.maxSenders" is out of range. It must be >= 1 && <= 1024. Received 0'],
  [{ maxSenders: 2.5 }, 'ERR_OUT_OF_RANGE', 'It must be an integer. Received 2.5'],
  [{ maxSenders: NaN }, 'ERR_OUT_OF_RANGE', 'It must be an integer. Received NaN'],
  [{ maxChannels: 5000 }, 'ERR_OUT_OF_RANGE', '"options.maxChannels"'],
  [{ maxMembers: 1 }, 'ERR_OUT_OF_RANGE', '"options.maxMembers"'],
  [{ mode: 0o1777 }, 'ERR_OUT_OF_RANGE', '"options.mode"'],
  [{ doorbellSignal: 'SIGUSR2' }, 'ERR_OUT_OF_RANGE', '"options.doorbellSignal" is out of range. It must be a real-time signal'],
  [{ doorbellSignal: 10 }, 'ERR_OUT_OF_RANGE', '"options.doorbellSignal"'],
  [{ doorbellSignal: 'SIGRTMIN+99' }, 'ERR_OUT_OF_RANGE', '"options.doorbellSignal"'],
  [{ spinMicros: -1 }, 'ERR_OUT_OF_RANGE', '"options.spinMicros"'],
  [{ spinMicros: 'fast' }, 'ERR_INVALID_ARG_TYPE', '"options.spinMicros"'],
]

describe('Bus options', () => {
  test.each(BAD_BUS_OPTIONS)('resolveOptions(%o) is refused: %s', (options, code, fragment) => {
    refused(() => resolveOptions(options as never), code, fragment)
  })

  test('options that are not an object are refused', () => {
    refused(() => resolveOptions(null as never), 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received null')
    refused(() => resolveOptions([] as never), 'ERR_INVALID_ARG_TYPE', 'Received an instance of Array')
    refused(() => resolveOptions('big' as never), 'ERR_INVALID_ARG_TYPE', "Received type string ('big')")
  })

  test('undefined values mean the default; the resolved options list what was given, under the new names', () => {
    const r = resolveOptions({ ringBytes: undefined, maxSenders: 4, doorbellSignal: 'SIGRTMIN+5' })
    expect(r).toMatchObject({ ringBytes: 1 << 20, maxMessageBytes: 256 << 20, maxSenders: 4, doorbellSignal: SIGRTMIN + 5, signal: SIGRTMIN + 5 })
    expect(r.userOptions).toEqual({ maxSenders: 4, doorbellSignal: 'SIGRTMIN+5' })
  })

  test('inherited options (an address\'s) are validated and overridden key by key', () => {
    const r = resolveOptions({ maxSenders: 2 }, { maxSenders: 4, ringBytes: '64 KiB' })
    expect(r).toMatchObject({ maxSenders: 2, ringBytes: 65536 })
    expect(r.userOptions).toEqual({ maxSenders: 2, ringBytes: '64 KiB' })
    refused(() => resolveOptions({}, { ringbytes: 1 } as never), 'ERR_INVALID_ARG_VALUE', "did you mean 'ringBytes'?")
  })

  test.each(BAD_BUS_OPTIONS)('Bus.create(%o) rejects (%s) and creates no segment', async (options, code) => {
    const before = ownSegments()
    const name = uniqueName('opts')
    await expect(Bus.create(options as never)).rejects.toMatchObject({ code })
    await expect(Bus.create(name, options as never)).rejects.toMatchObject({ code })
    expect(ownSegments()).toEqual(before)
    expect(() => shmget(busKey(name), 0, 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })

  test('Bus.open and Bus.attach refuse bad options before looking for the bus', async () => {
    await expect(Bus.open(uniqueName('opts'), { ringbytes: 4096 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("did you mean 'ringBytes'?") })
    await expect(Bus.open(uniqueName('opts'), { maxSenders: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
  })

  test('the deprecated `signal` still works, as doorbellSignal, with one DeprecationWarning per process', () => {
    const options = fileURLToPath(new URL('../dist/options.js', import.meta.url))
    const script = `
      import { resolveOptions } from ${JSON.stringify(options)}
      const warnings = []
      process.on('warning', (w) => warnings.push({ name: w.name, code: w.code }))
      const a = resolveOptions({ signal: 'SIGRTMIN+5' })
      const b = resolveOptions({ signal: 'SIGRTMIN+6' })
      let both
      try { resolveOptions({ signal: 'SIGRTMIN+5', doorbellSignal: 'SIGRTMIN+5' }) } catch (err) { both = err.code }
      let named
      try { resolveOptions({ signal: 'SIGUSR2' }) } catch (err) { named = err.message }
      setImmediate(() => console.log(JSON.stringify({ a: a.doorbellSignal, aOld: a.signal, given: a.userOptions, b: b.doorbellSignal, both, named, warnings })))
    `
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
    expect(out).toMatchObject({
      a: SIGRTMIN + 5, aOld: SIGRTMIN + 5, given: { doorbellSignal: 'SIGRTMIN+5' }, b: SIGRTMIN + 6,
      both: 'ERR_INVALID_ARG_VALUE',
      named: expect.stringContaining('"options.signal"'), // named as the caller wrote it
      warnings: [{ name: 'DeprecationWarning', code: 'IPC_BUS_DEP_SIGNAL' }],
    })
    expect(out.given).not.toHaveProperty('signal')
  })
})

describe('channel options', () => {
  const BAD: Array<[Record<string, unknown>, Code, string]> = [
    [{ ringbytes: 4096 }, 'ERR_INVALID_ARG_VALUE', "'options.ringbytes' is not a channel option (did you mean 'ringBytes'?)"],
    [{ maxSender: 2 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxSenders'?"],
    [{ highwatermark: 2 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'highWaterMark'?"],
    [{ zerocopy: true }, 'ERR_INVALID_ARG_VALUE', "did you mean 'zeroCopy'?"],
    [{ maxChannels: 2 }, 'ERR_INVALID_ARG_VALUE', 'is not a channel option (one of'],
    [{ maxMembers: 2 }, 'ERR_INVALID_ARG_VALUE', 'is not a channel option (one of'], // not 'maxSenders': 3 edits is no typo
    [{ ringBytes: false }, 'ERR_INVALID_ARG_TYPE', '"options.ringBytes"'],
    [{ maxSenders: '2' }, 'ERR_INVALID_ARG_TYPE', '"options.maxSenders"'],
    [{ highWaterMark: '100' }, 'ERR_INVALID_ARG_TYPE', '"options.highWaterMark" property must be of type number'],
    [{ zeroCopy: 1 }, 'ERR_INVALID_ARG_TYPE', '"options.zeroCopy" property must be of type boolean'],
    [{ ringBytes: 3000 }, 'ERR_OUT_OF_RANGE', '"options.ringBytes" is out of range. It must be a power of two'],
    [{ ringBytes: 4096, maxMessageBytes: 2 ** 31 }, 'ERR_OUT_OF_RANGE', '"options.maxMessageBytes"'],
    [{ ringBytes: 64, maxMessageBytes: 64 }, 'ERR_OUT_OF_RANGE', '"options.maxMessageBytes"'],
    [{ maxSenders: 0 }, 'ERR_OUT_OF_RANGE', '"options.maxSenders"'],
    [{ highWaterMark: 0 }, 'ERR_OUT_OF_RANGE', 'The value of "options.highWaterMark" is out of range. It must be >= 1. Received 0'],
    [{ highWaterMark: 1.5 }, 'ERR_OUT_OF_RANGE', '"options.highWaterMark"'],
    [{ highWaterMark: Infinity }, 'ERR_OUT_OF_RANGE', '"options.highWaterMark"'],
  ]
  test.each(BAD)('resolveChannelOptions({}, %o) is refused: %s', (options, code, fragment) => {
    refused(() => resolveChannelOptions({}, options as never), code, fragment)
  })

  test('sizes: the channel\'s own, else the bus\'s, else the defaults; maxMessageBytes is independent of the ring', () => {
    expect(resolveChannelOptions({})).toEqual({ ringBytes: 1 << 20, maxMessageBytes: 256 << 20, maxRecordBytes: 1 << 17, maxSenders: 8, highWaterMark: 1024, zeroCopy: false, schema: null })
    expect(resolveChannelOptions({ ringBytes: '64 KiB', maxSenders: 3 }, { highWaterMark: 100, zeroCopy: true }))
      .toEqual({ ringBytes: 65536, maxMessageBytes: 256 << 20, maxRecordBytes: 8192, maxSenders: 3, highWaterMark: 100, zeroCopy: true, schema: null })
    expect(resolveChannelOptions({ ringBytes: '64 KiB', maxMessageBytes: 1000 }, { ringBytes: 4096 }))
      .toMatchObject({ ringBytes: 4096, maxMessageBytes: 1000, maxRecordBytes: 512 })
    expect(resolveChannelOptions({ maxMessageBytes: 1000 }, { ringBytes: 4096, maxMessageBytes: 100, maxSenders: 1 }))
      .toMatchObject({ ringBytes: 4096, maxMessageBytes: 100, maxRecordBytes: 100, maxSenders: 1 })
    // Larger than a record (an eighth of the ring) travels as fragments: up to 2 GiB - 1, whatever the ring.
    expect(resolveChannelOptions({}, { ringBytes: 4096, maxMessageBytes: '1 GiB' })).toMatchObject({ maxMessageBytes: 1 << 30, maxRecordBytes: 512 })
    // A ring too small to carry fragments (a record under 32 bytes) keeps the old limit: what one record holds.
    expect(resolveChannelOptions({}, { ringBytes: 128 })).toMatchObject({ maxMessageBytes: 56, maxRecordBytes: 56 })
    refused(() => resolveChannelOptions({ maxMessageBytes: '100 KiB' }, { ringBytes: 128 }), 'ERR_OUT_OF_RANGE', "this is the bus's maxMessageBytes")
  })
})

describe('send, subscribe, serve and request options', () => {
  const signal = new AbortController().signal
  test('send: timeout >= 0 (Infinity too), an AbortSignal, nothing else', () => {
    expect(checkSendOptions()).toEqual({})
    expect(checkSendOptions({ timeout: 0, signal })).toEqual({ timeout: 0, signal })
    expect(checkSendOptions({ timeout: Infinity })).toEqual({ timeout: Infinity })
    expect(checkSendOptions({ timeout: undefined, signal: undefined })).toEqual({ timeout: undefined, signal: undefined })
    refused(() => checkSendOptions({ timeout: -1 }), 'ERR_OUT_OF_RANGE', 'The value of "options.timeout" is out of range. It must be >= 0 (ms), or Infinity. Received -1')
    refused(() => checkSendOptions({ timeout: NaN }), 'ERR_OUT_OF_RANGE', '"options.timeout"')
    refused(() => checkSendOptions({ timeout: '5' } as never), 'ERR_INVALID_ARG_TYPE', '"options.timeout" property must be of type number')
    refused(() => checkSendOptions({ signal: {} } as never), 'ERR_INVALID_ARG_TYPE', 'The "options.signal" property must be an instance of AbortSignal')
    refused(() => checkSendOptions({ timout: 5 } as never), 'ERR_INVALID_ARG_VALUE', "'options.timout' is not a send option (did you mean 'timeout'?)")
    refused(() => checkSendOptions({ retries: 5 } as never), 'ERR_INVALID_ARG_VALUE', 'is not a send option (one of timeout, signal)')
    refused(() => checkSendOptions(null as never), 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object')
  })

  test('subscribe', () => {
    expect(checkSubscribeOptions({ policy: 'drop', signal, ringBytes: '64 KiB', maxSenders: 2, highWaterMark: 10 })).toMatchObject({ policy: 'drop' })
    refused(() => checkSubscribeOptions({ policy: 'later' } as never), 'ERR_INVALID_ARG_VALUE', "'options.policy' must be one of: 'block', 'drop'")
    refused(() => checkSubscribeOptions({ polcy: 'drop' } as never), 'ERR_INVALID_ARG_VALUE', "did you mean 'policy'?")
    refused(() => checkSubscribeOptions({ highWaterMark: 0 }), 'ERR_OUT_OF_RANGE', '"options.highWaterMark"')
    refused(() => checkSubscribeOptions({ ringBytes: 100 }), 'ERR_OUT_OF_RANGE', '"options.ringBytes"')
    refused(() => checkSubscribeOptions({ signal: 'stop' } as never), 'ERR_INVALID_ARG_TYPE', '"options.signal"')
  })

  test('serve', () => {
    expect(checkServeOptions({ concurrency: 4, signal, rememberIds: 1, rememberClients: 1, rememberMs: 0, ringBytes: 4096, maxSenders: 2 })).toMatchObject({ concurrency: 4 })
    refused(() => checkServeOptions({ concurrency: 0 }), 'ERR_OUT_OF_RANGE', '"options.concurrency"')
    refused(() => checkServeOptions({ rememberMs: -1 }), 'ERR_OUT_OF_RANGE', '"options.rememberMs"')
    refused(() => checkServeOptions({ rememberIDs: 5 } as never), 'ERR_INVALID_ARG_VALUE', "did you mean 'rememberIds'?")
    refused(() => checkServeOptions({ concurency: 5 } as never), 'ERR_INVALID_ARG_VALUE', "did you mean 'concurrency'?")
  })

  test('request: a timeout Node\'s timers can keep (or Infinity), retries >= 0', () => {
    expect(checkRequestOptions({ timeout: Infinity, retries: 0, signal })).toMatchObject({ timeout: Infinity })
    refused(() => checkRequestOptions({ timeout: -1 }), 'ERR_OUT_OF_RANGE', '"options.timeout"')
    refused(() => checkRequestOptions({ timeout: 2 ** 31 }), 'ERR_OUT_OF_RANGE', '<= 2147483647 (ms), or Infinity')
    refused(() => checkRequestOptions({ retries: -1 }), 'ERR_OUT_OF_RANGE', '"options.retries"')
    refused(() => checkRequestOptions({ retries: 2, retry: 2 } as never), 'ERR_INVALID_ARG_VALUE', "'options.retry' is not a request option (one of timeout, signal, retries)")
    refused(() => checkRequestOptions({ retires: 2 } as never), 'ERR_INVALID_ARG_VALUE', "'options.retires' is not a request option (did you mean 'retries'?)")
  })
})

describe('the nearest-name suggestion', () => {
  const keys = ['ringBytes', 'maxMessageBytes', 'maxSenders', 'highWaterMark', 'timeout']
  test.each([
    ['ringbytes', 'ringBytes'], ['RINGBYTES', 'ringBytes'], ['ringByte', 'ringBytes'], ['maxSender', 'maxSenders'],
    ['maxMesageBytes', 'maxMessageBytes'], ['highwatermark', 'highWaterMark'], ['timout', 'timeout'], ['timeOut', 'timeout'],
  ])('%s -> %s', (typo, expected) => {
    expect(nearestKey(typo, keys)).toBe(expected)
  })
  test('nothing near: no suggestion', () => {
    expect(nearestKey('xyz', keys)).toBeUndefined()
    expect(nearestKey('maxMembers', keys)).toBeUndefined()
    expect(nearestKey('tmo', ['timeout', 'mode'])).toBeUndefined()
    expect(nearestKey('concurrency', keys)).toBeUndefined()
  })
})

describe('argument errors are Node\'s kind, with stable codes', () => {
  test('classes, codes, names and printing', () => {
    const type = refused(() => resolveOptions({ maxSenders: '4' } as never), 'ERR_INVALID_ARG_TYPE', '"options.maxSenders"')
    const value = refused(() => resolveOptions({ doorbell: 'x' } as never), 'ERR_INVALID_ARG_VALUE', "'options.doorbell'")
    const range = refused(() => resolveOptions({ maxSenders: 0 }), 'ERR_OUT_OF_RANGE', '"options.maxSenders"')
    for (const [err, base, code] of [[type, TypeError, 'ERR_INVALID_ARG_TYPE'], [value, TypeError, 'ERR_INVALID_ARG_VALUE'], [range, RangeError, 'ERR_OUT_OF_RANGE']] as const) {
      expect(err).toBeInstanceOf(base)
      expect(err).not.toBeInstanceOf(IpcError) // documented in errors.ts: test err.code
      expect(err.name).toBe(base.name)
      expect(String(err)).toBe(`${base.name} [${code}]: ${err.message}`)
      expect(err.stack!.split('\n')[0]).toBe(`${base.name} [${code}]: ${err.message}`)
      expect(Object.keys(err)).toContain('code')
    }
  })

  test('names: checkName', () => {
    refused(() => checkName('bus name', 5), 'ERR_INVALID_ARG_TYPE', 'The "bus name" argument must be of type string. Received type number (5)')
    refused(() => checkName('channel name', ''), 'ERR_INVALID_ARG_VALUE', "The argument 'channel name' must be a non-empty string")
    refused(() => checkName('channel name', 'a\0b'), 'ERR_INVALID_ARG_VALUE', 'must not contain NUL')
    refused(() => checkName('bus name', 'x'.repeat(65)), 'ERR_OUT_OF_RANGE', 'It must be at most 64 UTF-8 bytes long (this one is 65)')
    refused(() => checkName('topic', 'ü'.repeat(21), 40), 'ERR_OUT_OF_RANGE', 'at most 40 UTF-8 bytes long (this one is 42)')
    expect(checkName('bus name', 'x'.repeat(64))).toBe('x'.repeat(64))
  })

  test('bad names through the public API, before anything is created', async () => {
    const before = ownSegments()
    await expect(Bus.create('x'.repeat(65))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(Bus.create('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(Bus.open(42 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    expect(ownSegments()).toEqual(before)
  })
})

describe('addresses and segment ids', () => {
  test('parseAttachAddress: anything but an address is NotABus (or a wrong type), never a raw TypeError', () => {
    expect(parseAttachAddress('{"directory":5,"name":"a","options":{"maxSenders":2}}')).toEqual({ directory: 5, name: 'a', options: { maxSenders: 2 } })
    expect(parseAttachAddress('{"directory":0,"name":null}')).toEqual({ directory: 0, name: null, options: {} })
    for (const bad of ['null', '5', '"x"', '[]', '{}', '{"directory":-1}', '{"directory":1.5}', '{"directory":"5"}', '{"directory":5,"name":7}', '{"directory":5,"options":null}', 'not json']) {
      expect(() => parseAttachAddress(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_NOT_A_BUS', name: 'NotABus' }))
    }
    refused(() => parseAttachAddress({ spinMicros: 5 }), 'ERR_INVALID_ARG_TYPE', 'The "address" argument must be of type string')
  })

  test('attachSegment of an id with no segment: the caller\'s typed error, with the errno as its cause', () => {
    const id = makeSegment(4096)
    shmctl(id, 'IPC_RMID') // nobody attached: gone at once
    const gone = (cause: Error) => new NoSuchBus('b', `its directory (segment ${id}) no longer exists`, { cause })
    let err: unknown
    try { attachSegment(id, 'attaching', gone) } catch (e) { err = e }
    expect(err).toBeInstanceOf(NoSuchBus)
    expect(err).toMatchObject({ code: 'ERR_NO_SUCH_BUS', cause: { code: expect.stringMatching(/^(EINVAL|EIDRM)$/) } })
    expect(() => attachSegment(-1, 'attaching', gone)).toThrow(NoSuchBus)
    expect(() => attachSegment(2 ** 31, 'attaching', gone)).toThrow(NoSuchBus)
    // Without `gone`, callers that handle the errno themselves still get it.
    expect(() => attachSegment(id, 'attaching')).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(EINVAL|EIDRM)$/) }))
    expect(() => attachSegment(-1, 'attaching')).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    const live = attachSegment(makeSegment(4096, 0o600, IPC_PRIVATE), 'attaching', gone)
    expect(live.buffer.byteLength).toBe(4096)
    shmdt(live.buffer)
  })
})

// ============================================================ through the public API

/** What `p` rejects with, checked like refused(). */
async function rejected(p: Promise<unknown>, code: Code, fragment: string | RegExp): Promise<Error> {
  let thrown: unknown = 'resolved'
  try {
    await p
  } catch (err) {
    thrown = err
  }
  expect(thrown, `expected ${code} (${String(fragment)})`).toBeInstanceOf(CLASS[code])
  const err = thrown as Error & { code: string }
  expect(err.code).toBe(code)
  expect(err.message).toMatch(fragment)
  return err
}

const BAD_SUBSCRIBE_OPTIONS: Array<[Record<string, unknown>, Code, string | RegExp]> = [
  [{ polcy: 'drop' }, 'ERR_INVALID_ARG_VALUE', "'options.polcy' is not a subscribe option (did you mean 'policy'?)"],
  [{ ringbytes: 4096 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'ringBytes'?"],
  [{ maxSender: 2 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'maxSenders'?"],
  [{ highwatermark: 10 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'highWaterMark'?"],
  [{ singal: new AbortController().signal }, 'ERR_INVALID_ARG_VALUE', "did you mean 'signal'?"],
  [{ timeout: 5 }, 'ERR_INVALID_ARG_VALUE', "'options.timeout' is not a subscribe option (one of policy, signal,"],
  [{ zeroCopy: 1 }, 'ERR_INVALID_ARG_TYPE', '"options.zeroCopy" property must be of type boolean'],
  [{ schema: 'u32' }, 'ERR_INVALID_ARG_TYPE', '"options.schema" property must be of type object'],
  [{ policy: 'later' }, 'ERR_INVALID_ARG_VALUE', "The property 'options.policy' must be one of: 'block', 'drop'. Received 'later'"],
  [{ policy: 1 }, 'ERR_INVALID_ARG_VALUE', "'options.policy' must be one of"],
  [{ history: -1 }, 'ERR_OUT_OF_RANGE', 'The value of "options.history" is out of range'],
  [{ history: 1.5 }, 'ERR_OUT_OF_RANGE', '"options.history"'],
  [{ maxSubscribers: 0 }, 'ERR_OUT_OF_RANGE', 'The value of "options.maxSubscribers" is out of range'],
  [{ maxSubscribers: 5000 }, 'ERR_OUT_OF_RANGE', '"options.maxSubscribers"'],
  [{ signal: 'stop' }, 'ERR_INVALID_ARG_TYPE', 'The "options.signal" property must be an instance of AbortSignal'],
  [{ ringBytes: true }, 'ERR_INVALID_ARG_TYPE', '"options.ringBytes" property must be of type number or string'],
  [{ maxSenders: '2' }, 'ERR_INVALID_ARG_TYPE', '"options.maxSenders" property must be of type number'],
  [{ highWaterMark: null }, 'ERR_INVALID_ARG_TYPE', '"options.highWaterMark" property must be of type number. Received null'],
  [{ ringBytes: 100 }, 'ERR_OUT_OF_RANGE', '"options.ringBytes" is out of range. It must be a power of two'],
  [{ ringBytes: 'lots' }, 'ERR_INVALID_ARG_VALUE', "'options.ringBytes' must be a number of bytes"],
  [{ maxSenders: 0 }, 'ERR_OUT_OF_RANGE', '"options.maxSenders" is out of range. It must be >= 1 && <= 1024'],
  [{ maxSenders: 1025 }, 'ERR_OUT_OF_RANGE', '"options.maxSenders"'],
  [{ highWaterMark: 0 }, 'ERR_OUT_OF_RANGE', '"options.highWaterMark" is out of range'],
  [{ highWaterMark: 2.5 }, 'ERR_OUT_OF_RANGE', 'It must be an integer. Received 2.5'],
]

const BAD_SERVE_OPTIONS: Array<[Record<string, unknown>, Code, string | RegExp]> = [
  [{ concurency: 4 }, 'ERR_INVALID_ARG_VALUE', "'options.concurency' is not a serve option (did you mean 'concurrency'?)"],
  [{ rememberIDs: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'rememberIds'?"],
  [{ rememberClient: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'rememberClients'?"],
  [{ remembreMs: 4 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'rememberMs'?"],
  [{ ringbytes: 4096 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'ringBytes'?"],
  [{ timeout: 100 }, 'ERR_INVALID_ARG_VALUE', "'options.timeout' is not a serve option (one of concurrency,"],
  [{ concurrency: '4' }, 'ERR_INVALID_ARG_TYPE', 'The "options.concurrency" property must be of type number'],
  [{ rememberMs: '1s' }, 'ERR_INVALID_ARG_TYPE', '"options.rememberMs" property must be of type number'],
  [{ signal: {} }, 'ERR_INVALID_ARG_TYPE', '"options.signal" property must be an instance of AbortSignal'],
  [{ maxSenders: false }, 'ERR_INVALID_ARG_TYPE', '"options.maxSenders"'],
  [{ concurrency: 0 }, 'ERR_OUT_OF_RANGE', 'The value of "options.concurrency" is out of range. It must be >= 1. Received 0'],
  [{ rememberIds: 1.5 }, 'ERR_OUT_OF_RANGE', '"options.rememberIds"'],
  [{ rememberClients: 0 }, 'ERR_OUT_OF_RANGE', '"options.rememberClients"'],
  [{ rememberMs: -1 }, 'ERR_OUT_OF_RANGE', '"options.rememberMs" is out of range. It must be >= 0 (ms), or Infinity'],
  [{ rememberMs: NaN }, 'ERR_OUT_OF_RANGE', '"options.rememberMs"'],
  [{ ringBytes: 1000 }, 'ERR_OUT_OF_RANGE', '"options.ringBytes"'],
  [{ maxSenders: 2000 }, 'ERR_OUT_OF_RANGE', '"options.maxSenders"'],
]

const BAD_REQUEST_OPTIONS: Array<[Record<string, unknown>, Code, string | RegExp]> = [
  [{ timout: 100 }, 'ERR_INVALID_ARG_VALUE', "'options.timout' is not a request option (did you mean 'timeout'?)"],
  [{ retires: 1 }, 'ERR_INVALID_ARG_VALUE', "did you mean 'retries'?"],
  [{ Signal: new AbortController().signal }, 'ERR_INVALID_ARG_VALUE', "did you mean 'signal'?"],
  [{ concurrency: 2 }, 'ERR_INVALID_ARG_VALUE', "'options.concurrency' is not a request option (one of timeout, signal, retries)"],
  [{ timeout: '100' }, 'ERR_INVALID_ARG_TYPE', `The "options.timeout" property must be of type number. Received type string ('100')`],
  [{ retries: '1' }, 'ERR_INVALID_ARG_TYPE', '"options.retries" property must be of type number'],
  [{ signal: { aborted: false } }, 'ERR_INVALID_ARG_TYPE', '"options.signal" property must be an instance of AbortSignal'],
  [{ timeout: -1 }, 'ERR_OUT_OF_RANGE', 'The value of "options.timeout" is out of range'],
  [{ timeout: NaN }, 'ERR_OUT_OF_RANGE', '"options.timeout"'],
  [{ timeout: 2 ** 31 }, 'ERR_OUT_OF_RANGE', '<= 2147483647 (ms), or Infinity'],
  [{ retries: -1 }, 'ERR_OUT_OF_RANGE', '"options.retries" is out of range. It must be >= 0'],
  [{ retries: 0.5 }, 'ERR_OUT_OF_RANGE', '"options.retries"'],
]

describe('bus.subscribe, bus.serve and bus.request refuse bad options and arguments before creating anything', () => {
  let bus: Bus
  beforeEach(async () => {
    bus = await Bus.create()
  })
  afterEach(async () => {
    await bus.close()
  })

  test.each(BAD_SUBSCRIBE_OPTIONS)('bus.subscribe(topic, options: %o) throws %s and creates no channel', (options, code, fragment) => {
    const before = bus.channelNames()
    refused(() => bus.subscribe('prices', options as never), code, fragment)
    refused(() => bus.subscribe('prices', () => {}, options as never), code, fragment)
    expect(bus.channelNames()).toEqual(before)
    expect(bus.stats().pubsub?.subscriptions ?? []).toEqual([])
  })

  test.each(BAD_SERVE_OPTIONS)('bus.serve(name, handler, %o) throws %s and creates no channel', (options, code, fragment) => {
    const before = bus.channelNames()
    refused(() => bus.serve('calc', () => 1, options as never), code, fragment)
    expect(bus.channelNames()).toEqual(before)
    expect(bus.stats().rpc?.servers ?? []).toEqual([])
  })

  test.each(BAD_REQUEST_OPTIONS)('bus.request(name, payload, %o) rejects (never throws) with %s and creates no channel', async (options, code, fragment) => {
    const before = bus.channelNames()
    let request: Promise<unknown> | undefined
    expect(() => { request = bus.request('calc', 1, options as never) }).not.toThrow()
    await rejected(request!, code, fragment)
    expect(bus.channelNames()).toEqual(before) // not even the reply channel
    expect(bus.stats().rpc?.requests ?? 0).toBe(0)
  })

  test('options that are not an object, and handlers that are not functions', async () => {
    refused(() => bus.subscribe('prices', () => {}, null as never), 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received null')
    refused(() => bus.subscribe('prices', () => {}, 'drop' as never), 'ERR_INVALID_ARG_TYPE', `Received type string ('drop')`)
    refused(() => bus.subscribe('prices', 42 as never), 'ERR_INVALID_ARG_TYPE', '"options"') // (bus.subscribe takes a non-function second argument for options)
    refused(() => bus.serve('calc', () => 1, [] as never), 'ERR_INVALID_ARG_TYPE', 'Received an instance of Array')
    refused(() => bus.serve('calc', 42 as never), 'ERR_INVALID_ARG_TYPE', 'The "handler" argument must be of type function. Received type number (42)')
    refused(() => bus.serve('calc', undefined as never), 'ERR_INVALID_ARG_TYPE', '"handler" argument must be of type function. Received undefined')
    refused(() => bus.serve('calc', { handle: () => 1 } as never, {}), 'ERR_INVALID_ARG_TYPE', 'Received an instance of Object')
    await rejected(bus.request('calc', 1, null as never), 'ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object. Received null')
    await rejected(bus.request('calc', 1, 5000 as never), 'ERR_INVALID_ARG_TYPE', 'Received type number (5000)')
    expect(bus.channelNames()).toEqual([])
  })

  test('topic and service names: typed errors (at most MAX_PATTERN_NAME_BYTES = 40 UTF-8 bytes)', async () => {
    const long = 'x'.repeat(41)
    refused(() => bus.subscribe(long, () => {}), 'ERR_OUT_OF_RANGE', 'The value of "topic" is out of range. It must be at most 40 UTF-8 bytes long (this one is 41)')
    refused(() => bus.subscribe('ü'.repeat(21)), 'ERR_OUT_OF_RANGE', '(this one is 42)')
    refused(() => bus.subscribe('', () => {}), 'ERR_INVALID_ARG_VALUE', "The argument 'topic' must be a non-empty string")
    refused(() => bus.subscribe(5 as never, () => {}), 'ERR_INVALID_ARG_TYPE', 'The "topic" argument must be of type string')
    refused(() => bus.serve(long, () => 1), 'ERR_OUT_OF_RANGE', '"service name" is out of range')
    refused(() => bus.serve('a\0b', () => 1), 'ERR_INVALID_ARG_VALUE', "'service name' must not contain NUL")
    await rejected(bus.request(long, 1), 'ERR_OUT_OF_RANGE', '"service name" is out of range')
    await rejected(bus.request(undefined as never, 1), 'ERR_INVALID_ARG_TYPE', '"service name" argument must be of type string. Received undefined')
    await rejected(bus.publish(long, 1), 'ERR_OUT_OF_RANGE', '"topic" is out of range')
    expect(bus.channelNames()).toEqual([])
    const ok = 'y'.repeat(40)
    const sub = bus.subscribe(ok, () => {})
    const server = bus.serve(ok, (n: number) => n + 1)
    await expect(bus.request(ok, 1)).resolves.toBe(2)
    sub.unsubscribe()
    await server.close()
  })

  test('sizes are checked against the bus\'s before the channel is made', async () => {
    const big = await Bus.create({ maxMessageBytes: '100 KiB' })
    try {
      // 128 is a valid ring, but too small for fragments: the bus's maxMessageBytes does not fit it (and subscribe/serve take no maxMessageBytes).
      refused(() => big.subscribe('prices', { ringBytes: 128 }), 'ERR_OUT_OF_RANGE', "this is the bus's maxMessageBytes")
      refused(() => big.serve('calc', () => 1, { ringBytes: 128 }), 'ERR_OUT_OF_RANGE', "this is the bus's maxMessageBytes")
      expect(big.channelNames()).toEqual([])
    } finally {
      await big.close()
    }
  })

  test('every call is checked, also once the topic, the service and the reply channel exist', async () => {
    const sub = bus.subscribe('prices', () => {})
    const server = bus.serve('calc', (n: number) => n * 2, { concurrency: 2 })
    await expect(bus.request('calc', 21, { timeout: 5000 })).resolves.toBe(42)
    const before = bus.channelNames()
    expect(before).toHaveLength(2) // server, reply channel (a topic is a segment of its own, not a channel)
    for (const [options, code, fragment] of BAD_SUBSCRIBE_OPTIONS) refused(() => bus.subscribe('prices', () => {}, options as never), code, fragment)
    for (const [options, code, fragment] of BAD_SERVE_OPTIONS) refused(() => bus.serve('calc', (n: number) => n, options as never), code, fragment)
    for (const [options, code, fragment] of BAD_REQUEST_OPTIONS) await rejected(bus.request('calc', 1, options as never), code, fragment)
    expect(bus.channelNames()).toEqual(before)
    expect(bus.stats().rpc).toMatchObject({ requests: 1, replies: 1, pending: 0 })
    expect(bus.stats().pubsub?.subscriptions).toHaveLength(1)
    expect(bus.stats().rpc?.servers).toHaveLength(1)
    // Nothing was sent: the server handled only the good request.
    expect(bus.stats().rpc?.servers[0]).toMatchObject({ handled: 1 })
    sub.unsubscribe()
    await server.close()
  })

  test('an already-aborted signal: its reason, nothing created', async () => {
    const ac = new AbortController()
    ac.abort(new Error('not now'))
    expect(() => bus.subscribe('prices', { signal: ac.signal })).toThrow('not now')
    expect(() => bus.serve('calc', () => 1, { signal: ac.signal })).toThrow('not now')
    await expect(bus.request('calc', 1, { signal: ac.signal })).rejects.toThrow('not now')
    expect(bus.channelNames()).toEqual([])
  })

  test('iterating a subscription that has a handler (or iterating twice): TypeError with code ERR_INVALID_STATE', () => {
    const withHandler = bus.subscribe('prices', () => {})
    let err: unknown
    try { withHandler[Symbol.asyncIterator]() } catch (e) { err = e }
    expect(err).toBeInstanceOf(TypeError)
    expect(err).toMatchObject({ code: 'ERR_INVALID_STATE', message: "Invalid state: subscription to 'prices' has a handler; subscribe without one to iterate" })
    expect(String(err)).toBe(`TypeError [ERR_INVALID_STATE]: ${(err as Error).message}`)
    expect((err as Error).stack!.split('\n')[0]).toBe(String(err))
    const iterable = bus.subscribe('prices')
    iterable[Symbol.asyncIterator]()
    expect(() => iterable[Symbol.asyncIterator]()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE', message: expect.stringContaining('has been iterated already') }))
    withHandler.unsubscribe()
    iterable.unsubscribe()
  })
})
