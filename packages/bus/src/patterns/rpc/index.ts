/**
 * Request/reply on the bus: `bus.serve(name, handler)` and
 * `await bus.request(name, payload, {timeout, signal, retries})`. This is
 * the one object the bus holds for them; the work is done by
 *
 * - server.ts: a server receiving on `s:<name>:<pid>.<n>` and running the
 *   handler (deadlines, at-most-once memory);
 * - replies.ts: sending a server's replies to clients' reply channels;
 * - client.ts: requests, round robin over the listed servers, timeouts,
 *   retries, dead servers;
 * - wire.ts: the request and reply shapes and errors as data.
 *
 * The directory's channel table is the registry of servers (see
 * ../names.ts): there is no other shared state.
 */
import type { Channel } from '../../channel/channel.js'
import { InvalidArgType } from '../../errors.js'
import { checkServeOptions, type ChannelOptions } from '../../options.js'
import type { PatternHost } from '../host.js'
import { checkPatternName, newServerName } from '../names.js'
import type { RequestOptions, ServeOptions } from '../../options.js'
import { reportError } from '../../report.js'
import { Client, type ClientStats } from './client.js'
import { Replies } from './replies.js'
import { Server, type Handler, type RequestContext, type ServerContext, type ServerStats } from './server.js'
import type { Request } from './wire.js'

export { Server }
export type { Handler, RequestContext, RequestOptions, ServeOptions, ServerStats }

export interface RpcStats extends ClientStats {
  servers: ServerStats[]
}

export class Rpc {
  private readonly client: Client
  private readonly replies: Replies
  private readonly servers = new Set<Server>()
  private readonly serverContext: ServerContext

  constructor(private readonly host: PatternHost) {
    this.client = new Client(host)
    this.replies = new Replies(host)
    this.serverContext = {
      reply: (replyTo, reply, deadline) => this.replies.send(replyTo, reply, deadline),
      closed: (server) => this.forget(server),
      report: (what, err) => reportError(host, what, err),
    }
  }

  /**
   * Everything is checked, on every call, before anything is created: the
   * options (InvalidArgType / InvalidArgValue / OutOfRange, see
   * ../../options.ts), the name, the handler; then the channel's sizes
   * against the bus's (bus.channel() checks them before it creates anything).
   */
  serve(name: string, handler: Handler, options?: ServeOptions): Server {
    options = checkServeOptions(options)
    checkPatternName('service name', name)
    if (typeof handler !== 'function') throw new InvalidArgType('handler', 'of type function', handler)
    if (options.signal?.aborted) throw options.signal.reason
    const channelName = newServerName(this.host, name)
    const channelOptions: ChannelOptions = { ringBytes: options.ringBytes, maxSenders: options.maxSenders }
    const channel: Channel<Request> = this.host.channel<Request>(channelName, channelOptions)
    const server = new Server(this.serverContext, channel, name, handler, options)
    this.servers.add(server)
    return server
  }

  /** Checks the options and the name on every call, before anything is created or sent; rejects (never throws) with what they throw. */
  request<Res = unknown>(service: string, payload: unknown, options?: RequestOptions): Promise<Res> {
    return this.client.request<Res>(service, payload, options)
  }

  /** A server closed (its channel too): remove the channel from the directory. */
  private forget(server: Server): void {
    if (!this.servers.delete(server)) return
    try {
      this.host.dropChannel(server.channelName, { force: true })
    } catch {
      // bus closed
    }
  }

  stats(): RpcStats {
    return { ...this.client.stats(), servers: [...this.servers].map((s) => s.stats()) }
  }

  /** Rejects pending requests with Closed, stops every server, removes our channels. Called by bus.close(). */
  close(): void {
    this.client.close()
    for (const server of [...this.servers]) void server.close()
    this.replies.close()
  }
}
