/**
 * watchFd: the addon's fd watcher that the signal self-pipe and the FIFO
 * doorbells are read through. Bytes arrive in the one buffer with their
 * count, a full buffer is read again, close() stops it without closing the
 * fd, ref() keeps the loop alive, and a worker that ends (or is terminated)
 * with a watcher open tears it down cleanly.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, writeSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { pipe, watchFd } from '@ipc/native'

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms))

describe('watchFd', () => {
  test('delivers what is written, in order, through one reused buffer', async () => {
    const [r, w] = pipe({ nonBlocking: true })
    const got: string[] = []
    const watch = watchFd(r, 16, (n) => got.push(Buffer.from(watch.bytes.subarray(0, n)).toString()))
    try {
      writeSync(w, 'hello')
      await tick()
      // 40 bytes through a 16-byte buffer: read again while it comes back full.
      writeSync(w, 'abcdefghijklmnopqrstuvwxyz0123456789ABCD')
      await tick()
      expect(got.join('')).toBe('helloabcdefghijklmnopqrstuvwxyz0123456789ABCD')
      expect(got.slice(1).map((s) => s.length)).toEqual([16, 16, 8])
    } finally {
      watch.close()
      closeSync(r)
      closeSync(w)
    }
  })

  test('close() stops delivery and leaves the fd open', async () => {
    const [r, w] = pipe({ nonBlocking: true })
    let calls = 0
    const watch = watchFd(r, 64, () => { calls++ })
    watch.close()
    watch.close() // idempotent
    writeSync(w, 'x')
    await tick()
    expect(calls).toBe(0)
    expect(() => closeSync(r)).not.toThrow() // still ours to close
    closeSync(w)
  })

  test('a callback that closes the watcher ends the read loop; microtasks run after each call', async () => {
    const [r, w] = pipe({ nonBlocking: true })
    const order: string[] = []
    const watch = watchFd(r, 4, (n) => {
      order.push(`data ${n}`)
      void Promise.resolve().then(() => order.push('microtask'))
      watch.close()
    })
    writeSync(w, '12345678')
    await tick()
    expect(order).toEqual(['data 4', 'microtask'])
    closeSync(r)
    closeSync(w)
  })

  test('bad arguments are TypeErrors and RangeErrors, nothing is watched', () => {
    expect(() => watchFd(-1, 16, () => {})).toThrow()
    expect(() => watchFd(0, 0, () => {})).toThrow(RangeError)
    expect(() => watchFd(0, 16, 'no' as never)).toThrow(TypeError)
  })

  test('ref() keeps the process alive until data comes; unref() lets it exit; worker teardown with open watchers is clean', () => {
    const script = `
      const { pipe, watchFd } = await import('@ipc/native')
      const { Worker } = await import('node:worker_threads')
      const [r, w] = pipe({ nonBlocking: true })
      const watch = watchFd(r, 8, (n) => { console.log('data', n); watch.close() })
      watch.ref()
      setTimeout(() => writeLater(w), 50)
      function writeLater(fd) { import('node:fs').then((fs) => fs.writeSync(fd, 'ok')) }
      // A worker that ends, and one terminated, each with a watcher open.
      const code = "const { pipe, watchFd } = await import(process.env.NATIVE); const [r] = pipe({ nonBlocking: true }); const x = watchFd(r, 8, () => {}); x.ref(); (await import('node:worker_threads')).parentPort.postMessage('up')"
      for (const stop of ['terminate', 'exit']) {
        const worker = new Worker(new URL('data:text/javascript,' + encodeURIComponent(code)), { env: { NATIVE: process.env.NATIVE } })
        await new Promise((res) => worker.once('message', res))
        if (stop === 'terminate') await worker.terminate()
        else { worker.unref(); }
      }
      console.log('workers done')
    `
    const native = new URL('../dist/index.js', import.meta.url).pathname
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script.replace("await import('@ipc/native')", `await import(${JSON.stringify(native)})`)], {
      env: { ...process.env, NATIVE: new URL('../dist/index.js', import.meta.url).href }, encoding: 'utf8', timeout: 20_000,
    })
    expect(out.stderr).toBe('')
    expect(out.stdout).toContain('data 2')
    expect(out.stdout).toContain('workers done')
    expect(out.status).toBe(0)
  })
})
