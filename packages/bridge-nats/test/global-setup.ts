/**
 * vitest globalSetup of the `bridge` project: the tests run against a real
 * nats-server, installed here (apt-get, as root) when it is missing; without
 * one the run stops with an error naming Debian's package, never skips.
 */
import { ensureNatsServer } from '../../../test/support/nats.js'

export default function setup(): void {
  ensureNatsServer()
}
