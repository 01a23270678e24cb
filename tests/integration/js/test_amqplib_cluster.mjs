// amqplib 0.10 against a real 3-node Cairn cluster (node:test; issue 12,
// cluster plan step 7, ARCHITECTURE.md "AMQP in a cluster"). One node serves
// AMQP; the others relay to it, so the client is given one address only, a
// node's that may not serve. Checked: the server property cluster_node names
// the serving node; 100 persistent messages published on a confirm channel
// are confirmed; 10 are consumed and acked; the serving node is stopped
// (SIGTERM: a controlled shutdown hands its logs to the others); connecting
// again through a surviving node finds the other 90, in order, and nothing
// else.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import amqp from 'amqplib'
import { startBroker, freePort, waitFor, sleep } from './cairn.mjs'

const nodes = []

before(async () => {
  const cports = [await freePort(), await freePort(), await freePort()]
  const peers = cports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',')
  for (let i = 0; i < 3; i++) {
    nodes.push(await startBroker({
      'node.id': i + 1,
      'cluster.listeners': `127.0.0.1:${cports[i]}`,
      'cluster.peers': peers
    }, { amqp: true }))
  }
})

after(async () => {
  for (const n of nodes) {
    await n.stop()
    rmSync(n.dir, { recursive: true, force: true })
  }
})

// A connection through node n, retried while the cluster elects the node
// that serves (connection.open is refused with 320 then).
async function connectVia (n, ms = 30000) {
  let conn = null
  let last = null
  await waitFor(async () => {
    try {
      conn = await amqp.connect(n.amqpUrl, { timeout: 5000, noDelay: true })
      return true
    } catch (e) {
      last = e
      return false
    }
  }, ms, `an AMQP connection through ${n.amqpUrl} (last error: ${last})`)
  conn.on('error', () => {})
  return conn
}

const serving = (conn) => Number(conn.connection.serverProperties.cluster_node)

test('a client given one node reaches the serving node; confirmed messages survive it', { timeout: 120000 }, async () => {
  const conn = await connectVia(nodes[2])
  const sid = serving(conn)
  assert.ok(sid >= 1 && sid <= 3, `cluster_node ${sid}`)
  const ch = await conn.createConfirmChannel()
  const q = 'js.cluster'
  await ch.assertQueue(q, { durable: true })
  for (let i = 0; i < 100; i++) ch.sendToQueue(q, Buffer.from(`m${i}`), { persistent: true })
  await ch.waitForConfirms()
  for (let i = 0; i < 10; i++) {
    const m = await ch.get(q, { noAck: false })
    assert.ok(m, `message ${i}`)
    assert.equal(m.content.toString(), `m${i}`)
    ch.ack(m)
  }
  await sleep(500) // the acks' record reaches __amqp_meta within a loop pass, then commits
  await conn.close().catch(() => {})

  await nodes[sid - 1].stop()
  const other = nodes.find((n, i) => i !== sid - 1)
  const conn2 = await connectVia(other, 60000)
  assert.notEqual(serving(conn2), sid)
  const ch2 = await conn2.createChannel()
  const got = []
  for (;;) {
    const m = await ch2.get(q, { noAck: true })
    if (!m) break
    got.push(m.content.toString())
  }
  assert.deepEqual(got, Array.from({ length: 90 }, (_, i) => `m${i + 10}`))
  await conn2.close()
})
