/**
 * The slot protocol of the directory's channel and member tables (publish
 * rules in ./layout.ts): a slot is claimed by CAS of its owner word
 * 0 -> identity, filled, and published by storing its state READY last; it
 * is freed state first, then owner. Offsets are bytes from the directory's
 * start.
 */
import { CorruptSegment } from '../errors.js'
import { readIdentity, type Identity } from '../identity.js'
import { SLOT_CLAIMED, SLOT_FREE, SLOT_READY } from './layout.js'

export class Slots {
  constructor(private readonly i32: Int32Array, private readonly i64: BigInt64Array) {}

  /**
   * Reads a slot that other processes may free or refill meanwhile: the
   * state and owner words are read before and after the fields, and the
   * fields count only if neither changed (else read again, a bounded number
   * of times). Returns null for a slot that is not READY.
   */
  stableRead<T>(at: number, stateAt: number, ownerAt: number, where: string, fields: (owner: Identity) => T): T | null {
    const ownerWord = (at + ownerAt) >> 3
    for (let attempt = 0; attempt < 1000; attempt++) {
      const state = this.state(at + stateAt, `${where} state`)
      const word = Atomics.load(this.i64, ownerWord)
      if (state !== SLOT_READY) return null
      const owner = readIdentity(word, `${where} owner`)
      let value: T | null = null
      let failure: unknown = null
      try {
        if (owner !== null) value = fields(owner)
      } catch (error) {
        failure = error
      }
      if (Atomics.load(this.i32, (at + stateAt) >> 2) !== state || Atomics.load(this.i64, ownerWord) !== word) continue // changed under us
      if (failure !== null) throw failure
      if (owner === null) throw new CorruptSegment(`${where} owner`, 0, 'is empty in a ready slot')
      return value
    }
    return null
  }

  /** CAS the owner word of the first free slot 0 -> owner; returns its index or -1. */
  claim(base: number, entry: number, slots: number, ownerAt: number, owner: bigint): number {
    for (let i = 0; i < slots; i++) {
      const w = (base + i * entry + ownerAt) >> 3
      if (Atomics.load(this.i64, w) === 0n && Atomics.compareExchange(this.i64, w, 0n, owner) === 0n) return i
    }
    return -1
  }

  /** State FREE first, then the owner word: a slot is never READY without an owner. */
  free(at: number, stateAt: number, ownerAt: number): void {
    Atomics.store(this.i32, (at + stateAt) >> 2, SLOT_FREE)
    Atomics.store(this.i64, (at + ownerAt) >> 3, 0n)
  }

  /** The state word at `at`; CorruptSegment for a value that is no slot state. */
  state(at: number, where: string): number {
    const state = Atomics.load(this.i32, at >> 2)
    if (state !== SLOT_FREE && state !== SLOT_CLAIMED && state !== SLOT_READY) throw new CorruptSegment(where, state, 'is not a slot state')
    return state
  }
}
