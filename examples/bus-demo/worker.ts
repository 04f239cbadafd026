/**
 * The worker side of the bus demo, started by the parent with bus.fork()
 * (or with child_process.fork for the 'ipc' comparison).
 *
 *   sink:   counts the orders received on 'orders:0' and reports the total
 *           on 'done' when it has `count` of them (one way)
 *   stream: receives {id, ts, kind, px, qty} orders on 'orders:<n>' and
 *           answers each with a fill {id, qty} on 'fills' (both ways at once)
 *   echo:   sends every value received on 'ping' straight back on 'pong'
 *   ipc:    the same jobs over process.send (Node's IPC channel, JSON)
 */
import { Bus } from '@ipc/bus'

interface Order { id: number; ts: number; kind: string; px: number; qty: number }

const [mode = 'stream', arg = '0'] = process.argv.slice(2)

if (mode === 'ipc' || mode === 'ipc-sink') {
  let received = 0
  const count = Number(arg)
  process.on('message', (msg: Order | Order[] | { ping: number } | 'bye') => {
    if (msg === 'bye') process.disconnect()
    else if (mode === 'ipc-sink') {
      received += Array.isArray(msg) ? msg.length : 1
      if (received === count) process.send!('done')
    } else if (Array.isArray(msg)) process.send!(msg.map((o) => ({ id: o.id, qty: o.qty })))
    else if ('ping' in msg) process.send!(msg)
    else process.send!({ id: msg.id, qty: msg.qty })
  })
} else if (mode === 'sink') {
  const bus = await Bus.attach()
  const count = Number(arg)
  let received = 0
  bus.channel<Order>('orders:0').on('message', () => {
    if (++received === count) void bus.channel('done').send(received).then(() => bus.close())
  })
} else {
  const bus = await Bus.attach()
  if (mode === 'echo') {
    const pong = bus.channel<number>('pong')
    bus.channel<number | 'bye'>('ping').on('message', (v) => {
      if (v === 'bye') void bus.close()
      else if (!pong.trySend(v)) void pong.send(v)
    })
  } else {
    const fills = bus.channel<{ id: number; qty: number }>('fills')
    const orders = bus.channel<Order | 'bye'>(`orders:${arg}`)
    // Backpressure both ways: when the fills ring is full, pause the orders
    // until the fills that did not fit are written.
    orders.on('message', (order) => {
      if (order === 'bye') {
        void bus.close()
        return
      }
      const fill = { id: order.id, qty: order.qty }
      if (!orders.isPaused && fills.trySend(fill)) return
      orders.pause()
      void fills.send(fill).then(() => orders.resume())
    })
  }
}
