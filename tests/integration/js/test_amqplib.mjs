// amqplib 0.10 (npm) against a real Cairn broker's AMQP 0-9-1 front end (node:test).
// Starts its own broker on free loopback ports (Kafka and AMQP) with a fresh
// temp data dir; CAIRN_BIN overrides the binary (default build/cairn).
// Covers: connect and server properties, durable queue + persistent
// sendToQueue, prefetch(1) work sharing between two consumers with acks,
// a confirm channel with 200 publishes, topic routing, and a soft error
// (checkQueue on a missing queue: 404 closes the channel, not the connection).
import { test as nodeTest, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import amqp from 'amqplib'
import { startBroker, uniq, sleep, waitFor } from './cairn.mjs'

let broker
let anyFailed = false
const conns = []

function test (name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {} }
  return nodeTest(name, { timeout: 60000, ...opts }, async (t) => {
    try {
      return await fn(t)
    } catch (e) {
      anyFailed = true
      throw e
    }
  })
}

async function connect () {
  // noDelay: amqplib leaves Nagle on by default; then a basic.ack (no reply)
  // followed by a basic.get waits for the kernel's delayed ACK (~40 ms each
  // on Linux; 200 gets took 8.7 s). Client-side TCP behaviour, the same
  // against RabbitMQ; the connect test below keeps the default.
  const c = await amqp.connect(broker.amqpUrl, { timeout: 5000, noDelay: true })
  conns.push(c)
  return c
}

// get every message currently in the queue (basic.get until get-empty), acking each
async function getAll (ch, queue) {
  const out = []
  for (;;) {
    const m = await ch.get(queue, { noAck: false })
    if (m === false) return out
    out.push(m)
    ch.ack(m)
  }
}

before(async () => {
  broker = await startBroker({}, { amqp: true })
})

after(async () => {
  for (const c of conns) { try { await c.close() } catch {} }
  if (broker) {
    if (anyFailed) console.error(`----- cairn broker log (${broker.dir}) -----\n${broker.log().slice(-12000)}`)
    const res = await broker.stop()
    if (res.code !== 0) {
      console.error(broker.log())
      throw new Error(`broker did not exit cleanly on SIGTERM: ${JSON.stringify(res)}`)
    }
    rmSync(broker.dir, { recursive: true, force: true })
  }
})

test('connect: server properties and capabilities, channel open/close', async () => {
  const c = await amqp.connect(broker.amqpUrl) // default options, as user code has them
  conns.push(c)
  const sp = c.connection.serverProperties
  assert.ok(sp.product, 'server announces a product')
  assert.equal(sp.capabilities.publisher_confirms, true)
  assert.equal(sp.capabilities['basic.nack'], true)
  assert.equal(sp.capabilities.consumer_cancel_notify, true)
  const ch = await c.createChannel()
  await ch.close()
  await c.close()
  conns.splice(conns.indexOf(c), 1)
})

test('assertQueue durable, sendToQueue persistent, consume with ack', async () => {
  const c = await connect()
  const ch = await c.createChannel()
  const q = uniq('jsq')
  const ok = await ch.assertQueue(q, { durable: true })
  assert.equal(ok.queue, q)
  assert.equal(ok.messageCount, 0)
  assert.equal(ok.consumerCount, 0)
  // idempotent redeclare with the same arguments
  await ch.assertQueue(q, { durable: true })

  const n = 30
  for (let i = 0; i < n; i++) {
    ch.sendToQueue(q, Buffer.from(`msg-${i}`), {
      persistent: true, contentType: 'text/plain', headers: { i, tag: 'amqplib' }, messageId: `id-${i}`
    })
  }
  const got = []
  const { consumerTag } = await ch.consume(q, (m) => {
    got.push(m)
    ch.ack(m)
  }, { noAck: false })
  assert.ok(consumerTag)
  await waitFor(() => got.length >= n, 10000, `${n} deliveries`)
  await sleep(200) // no duplicates trailing behind
  assert.equal(got.length, n)
  got.forEach((m, i) => {
    assert.equal(m.content.toString(), `msg-${i}`)
    assert.equal(m.properties.deliveryMode, 2)
    assert.equal(m.properties.contentType, 'text/plain')
    assert.equal(m.properties.messageId, `id-${i}`)
    assert.deepEqual(m.properties.headers, { i, tag: 'amqplib' })
    assert.equal(m.fields.redelivered, false)
    assert.equal(m.fields.routingKey, q)
    assert.equal(m.fields.exchange, '')
    assert.equal(m.fields.consumerTag, consumerTag)
  })
  await ch.cancel(consumerTag)
  const after = await ch.checkQueue(q)
  assert.equal(after.messageCount, 0, 'all acked')
  await ch.deleteQueue(q)
  await ch.close()
})

test('prefetch(1) shares a work queue between two consumers, each message once', async () => {
  const c = await connect()
  const pub = await c.createChannel()
  const q = uniq('jswork')
  await pub.assertQueue(q, { durable: true })
  const n = 40
  const seen = new Map()
  const perConsumer = { a: 0, b: 0 }
  let violations = 0

  async function worker (name, delayMs) {
    const ch = await c.createChannel()
    await ch.prefetch(1)
    let outstanding = 0
    await ch.consume(q, (m) => {
      outstanding++
      if (outstanding > 1) violations++
      const k = m.content.toString()
      seen.set(k, (seen.get(k) || 0) + 1)
      perConsumer[name]++
      setTimeout(() => { outstanding--; ch.ack(m) }, delayMs)
    }, { noAck: false })
    return ch
  }
  const wa = await worker('a', 20)
  const wb = await worker('b', 20)
  for (let i = 0; i < n; i++) pub.sendToQueue(q, Buffer.from(`w${i}`), { persistent: true })
  await waitFor(() => seen.size >= n, 15000, `${n} distinct deliveries`)
  await sleep(300)
  assert.equal(violations, 0, 'never more than one unacked message per consumer with prefetch 1')
  assert.equal(seen.size, n)
  for (const [k, v] of seen) assert.equal(v, 1, `${k} delivered ${v} times`)
  assert.ok(perConsumer.a > 0 && perConsumer.b > 0, `both consumers got work: ${JSON.stringify(perConsumer)}`)
  assert.equal(perConsumer.a + perConsumer.b, n)
  await wa.close()
  await wb.close()
  assert.equal((await pub.checkQueue(q)).messageCount, 0)
  await pub.deleteQueue(q)
  await pub.close()
})

test('confirm channel: 200 publishes confirmed, all in the queue', async () => {
  const c = await connect()
  const ch = await c.createConfirmChannel()
  const q = uniq('jsconfirm')
  await ch.assertQueue(q, { durable: true })
  const n = 200
  const acks = []
  for (let i = 0; i < n; i++) {
    ch.sendToQueue(q, Buffer.from(`c${i}`), { persistent: true, headers: { i } }, (err) => {
      acks.push(err)
    })
  }
  await ch.waitForConfirms()
  assert.equal(acks.length, n, 'a confirm callback per message')
  assert.ok(acks.every(e => e === null || e === undefined), 'no nacks')
  assert.equal((await ch.checkQueue(q)).messageCount, n)
  const got = await getAll(ch, q)
  assert.equal(got.length, n)
  got.forEach((m, i) => {
    assert.equal(m.content.toString(), `c${i}`)
    assert.equal(m.properties.headers.i, i)
    assert.equal(m.properties.deliveryMode, 2)
  })
  // confirms also for publishes through a named exchange
  const ex = uniq('jsconfex')
  await ch.assertExchange(ex, 'direct', { durable: false })
  await ch.bindQueue(q, ex, 'k')
  let confirmed = 0
  for (let i = 0; i < 10; i++) ch.publish(ex, 'k', Buffer.from('x'), {}, (err) => { if (!err) confirmed++ })
  await ch.waitForConfirms()
  assert.equal(confirmed, 10)
  assert.equal((await getAll(ch, q)).length, 10)
  await ch.deleteQueue(q)
  await ch.deleteExchange(ex)
  await ch.close()
})

test('topic exchange with bindings routes by pattern', async () => {
  const c = await connect()
  const ch = await c.createChannel()
  const ex = uniq('jstopic')
  await ch.assertExchange(ex, 'topic', { durable: false })
  const qs = {}
  const patterns = { star: 'logs.*.error', hash: 'logs.#', exact: 'logs.db.info', any2: '*.*' }
  for (const [name, pat] of Object.entries(patterns)) {
    const { queue } = await ch.assertQueue('', { exclusive: true })
    assert.ok(queue.length > 0, 'server-named queue')
    await ch.bindQueue(queue, ex, pat)
    qs[name] = queue
  }
  const keys = ['logs.db.error', 'logs.db.info', 'logs', 'logs.api.error.extra', 'metrics.cpu', 'logs.x']
  for (const k of keys) ch.publish(ex, k, Buffer.from(k), { contentType: 'text/plain' })
  // a round trip so the publishes are routed before we look
  await ch.checkExchange(ex)
  await sleep(100)
  const got = {}
  for (const [name, queue] of Object.entries(qs)) {
    got[name] = (await getAll(ch, queue)).map(m => {
      assert.equal(m.fields.exchange, ex)
      assert.equal(m.content.toString(), m.fields.routingKey)
      return m.fields.routingKey
    })
  }
  assert.deepEqual(got.star, ['logs.db.error'])
  assert.deepEqual(got.hash, ['logs.db.error', 'logs.db.info', 'logs', 'logs.api.error.extra', 'logs.x'])
  assert.deepEqual(got.exact, ['logs.db.info'])
  assert.deepEqual(got.any2, ['metrics.cpu', 'logs.x'])
  // unbind: no longer routed
  await ch.unbindQueue(qs.hash, ex, 'logs.#')
  ch.publish(ex, 'logs.db.error', Buffer.from('logs.db.error'))
  await ch.checkExchange(ex)
  await sleep(100)
  assert.equal((await getAll(ch, qs.hash)).length, 0)
  assert.equal((await getAll(ch, qs.star)).length, 1)
  await ch.deleteExchange(ex)
  await ch.close()
})

test('checkQueue on a missing queue rejects with 404; the connection stays usable', async () => {
  const c = await connect()
  let connClosed = false
  let connError = null
  c.on('close', () => { connClosed = true })
  c.on('error', (e) => { connError = e })
  const ch = await c.createChannel()
  const chErrors = []
  ch.on('error', (e) => chErrors.push(e))
  let chClosed = false
  ch.on('close', () => { chClosed = true })
  const missing = uniq('jsmissing')
  await assert.rejects(ch.checkQueue(missing), (e) => {
    assert.equal(e.code, 404, `code ${e.code}: ${e.message}`)
    assert.match(e.message, /NOT_FOUND/)
    return true
  })
  await waitFor(() => chClosed, 5000, 'channel close')
  // the failed channel is gone for good
  await assert.rejects(ch.checkQueue(missing))
  // a new channel on the same connection works
  const ch2 = await c.createChannel()
  const q = uniq('jsafter')
  await ch2.assertQueue(q, { durable: false, autoDelete: false })
  ch2.sendToQueue(q, Buffer.from('still here'))
  await waitFor(async () => (await ch2.checkQueue(q)).messageCount === 1, 5000, 'message in queue')
  const [m] = await getAll(ch2, q)
  assert.equal(m.content.toString(), 'still here')
  // exchange 404 too, then again a fresh channel
  const ch3 = await c.createChannel()
  ch3.on('error', () => {})
  await assert.rejects(ch3.checkExchange(uniq('jsnoex')), (e) => e.code === 404)
  const ch4 = await c.createChannel()
  await ch4.deleteQueue(q)
  await ch4.close()
  await ch2.close()
  assert.equal(connClosed, false, 'connection not closed by a soft error')
  assert.equal(connError, null)
  await c.close()
  conns.splice(conns.indexOf(c), 1)
})
