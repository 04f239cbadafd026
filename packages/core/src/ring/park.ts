/**
 * The parking protocol (docs/design.md, "The parking protocol"): how a receiver goes to sleep
 * without ever missing a message, and how senders decide who wakes it.
 *
 * One `parked` word per receiver (in the channel header) holds AWAKE or
 * PARKED. All accesses are sequentially consistent, and a sender publishes its
 * records with a seq_cst store before it calls shouldRing(). So of the two
 * orders below at least one side sees the other:
 *
 *   receiver: store PARKED ; load every lane's write position
 *   sender:   store write position ; load parked
 *
 * Either the receiver's re-check sees the new record (it stays awake), or the
 * sender sees PARKED and, by winning the CAS PARKED -> AWAKE, rings the
 * doorbell. Exactly one sender wins per park, so doorbells (signals) can never
 * pile up. A doorbell may be spurious (the receiver found data after parking
 * while a sender already won): the receiver then drains nothing and parks
 * again, which is harmless.
 *
 * The one thing the protocol cannot cover is a winner that dies between its
 * CAS and its ring (SIGKILL): the word then says AWAKE and no later sender
 * rings. The receiver must therefore not trust the doorbell alone; the bus's
 * parked receivers re-check their lanes on a backing-off timer (see
 * armParkedCheck() in @ipc/bus's channel.ts).
 */

/** The receiver is running (or about to): senders do nothing. */
export const AWAKE = 0
/** The receiver is asleep until its doorbell rings. */
export const PARKED = 1

/** Anything whose lanes the receiver can re-check, such as a ChannelSegment. */
export interface DataSource {
  /** True when any committed record waits to be consumed. */
  hasData(): boolean
}

/**
 * Receiver side. Call when a drain found nothing. Stores PARKED, then
 * re-checks `source`. Returns true when the receiver may sleep until its
 * doorbell rings; false when data arrived meanwhile (the word is AWAKE again
 * and the receiver must drain).
 */
export function park(parked: Int32Array, index: number, source: DataSource): boolean {
  Atomics.store(parked, index, PARKED)
  if (!source.hasData()) return true
  Atomics.store(parked, index, AWAKE)
  return false
}

/**
 * Sender side. Call after publishing. Returns true when this sender must ring
 * the receiver's doorbell: the receiver was parked and this call is the one
 * that woke it (CAS PARKED -> AWAKE). While the receiver is awake this is one
 * atomic load and no system call.
 */
export function shouldRing(parked: Int32Array, index: number): boolean {
  return Atomics.load(parked, index) === PARKED && Atomics.compareExchange(parked, index, PARKED, AWAKE) === PARKED
}
