// Shared helpers of the kafkajs suites: a real Cairn broker on a free
// loopback port with its own temporary data directory.
import { spawn } from 'node:child_process'
import { mkdtempSync, existsSync, openSync, readFileSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import { randomBytes } from 'node:crypto'

const here = dirname(fileURLToPath(import.meta.url))
export const CAIRN_BIN = resolve(process.env.CAIRN_BIN || join(here, '..', '..', '..', 'build', 'cairn'))
const START_TIMEOUT_MS = 10000

export function freePort () {
  return new Promise((res, rej) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => res(port))
    })
  })
}

// opts.amqp: also serve AMQP 0-9-1 on another free loopback port (exposed as
// amqpPort / amqpUrl); without it AMQP is off, as the Kafka suites need.
export async function startBroker (settings = {}, opts = {}) {
  if (!existsSync(CAIRN_BIN)) throw new Error(`broker binary ${CAIRN_BIN} not found (build it or set CAIRN_BIN)`)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'cairn-js-'))
  const logPath = join(dir, 'broker.log')
  // Never the default 5672: it would collide between parallel brokers.
  const amqpPort = opts.amqp ? await freePort() : null
  const args = ['--listen', `127.0.0.1:${port}`,
    '--amqp-listen', amqpPort ? `127.0.0.1:${amqpPort}` : 'off', '--http-listen', 'off',
    '--data-dir', join(dir, 'data')]
  for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`)
  const logFd = openSync(logPath, 'a')
  const proc = spawn(CAIRN_BIN, args, { stdio: ['ignore', logFd, logFd] })
  closeSync(logFd)
  const log = () => { try { return readFileSync(logPath, 'utf8') } catch { return '' } }
  let exited = null
  proc.on('exit', (code, sig) => { exited = { code, sig } })
  const deadline = Date.now() + START_TIMEOUT_MS
  const ready = () => {
    const t = log()
    return t.includes('listening on') && (!amqpPort || t.includes('amqp listening on'))
  }
  while (!ready()) {
    if (exited) throw new Error(`broker exited (${JSON.stringify(exited)}) before listening:\n${log()}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`broker did not print "listening on" within ${START_TIMEOUT_MS} ms:\n${log()}`)
    }
    await new Promise(r => setTimeout(r, 20))
  }
  return {
    port,
    dir,
    log,
    bootstrap: `127.0.0.1:${port}`,
    amqpPort,
    amqpUrl: amqpPort ? `amqp://guest:guest@127.0.0.1:${amqpPort}/` : null,
    alive: () => exited === null,
    async stop () {
      if (exited) return exited
      const done = new Promise(r => proc.once('exit', (code, sig) => r({ code, sig })))
      proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000)
      const res = await done
      clearTimeout(t)
      return res
    }
  }
}

export const uniq = (p) => `${p}-${randomBytes(6).toString('hex')}`
export const sleep = (ms) => new Promise(r => setTimeout(r, ms))

export async function waitFor (cond, ms, what) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return
    await sleep(50)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}
