// kafkajs 2.2.4 against a real 3-node Cairn cluster (node:test): moving a
// partition's replicas with the admin client's alterPartitionReassignments
// and following it with listPartitionReassignments (KIP-455; issue 12,
// cluster plan step 8). kafkajs sends both to the controller it finds in
// Metadata. Checked: the move is listed (or already done), ends, every
// node's metadata then shows the target as the replicas, and the records
// written before the move are all read back after it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import kafkajs from 'kafkajs'
import { startBroker, freePort, uniq, waitFor } from './cairn.mjs'

const { Kafka, logLevel } = kafkajs
const nodes = []

before(async () => {
  const cports = [await freePort(), await freePort(), await freePort()]
  const peers = cports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',')
  for (let i = 0; i < 3; i++) {
    nodes.push(await startBroker({
      'node.id': i + 1,
      'cluster.listeners': `127.0.0.1:${cports[i]}`,
      'cluster.peers': peers
    }))
  }
})

after(async () => {
  for (const n of nodes) {
    await n.stop()
    rmSync(n.dir, { recursive: true, force: true })
  }
})

test('alterPartitionReassignments moves a partition, listPartitionReassignments follows it', async () => {
  const kafka = new Kafka({
    clientId: 'cairn-move',
    brokers: nodes.map(n => n.bootstrap),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10 }
  })
  const admin = kafka.admin()
  await admin.connect()
  const topic = uniq('jsmove')
  // The controller answers once it applied the create; another node may
  // not know the topic yet (UNKNOWN_TOPIC_OR_PARTITION, which kafkajs's
  // waitForLeaders does not retry): wait for the metadata here.
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 2 }], waitForLeaders: false })
  const replicasOf = async () => {
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      const p = md.topics[0].partitions[0]
      return p.leader >= 0 ? p.replicas : []
    } catch (e) {
      return []
    }
  }
  let before = []
  await waitFor(async () => { before = await replicasOf(); return before.length === 2 }, 20000, 'replicas')
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const values = Array.from({ length: 200 }, (_, i) => `v${i}`)
  for (let i = 0; i < values.length; i += 20) {
    await producer.send({ topic, acks: -1, messages: values.slice(i, i + 20).map(v => ({ partition: 0, value: v })) })
  }
  const outside = [1, 2, 3].find(n => !before.includes(n))
  const target = [outside, before[0]]
  await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: target }] }] })
  const listed = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [0] }] })
  // Either still running (listed with the node being added) or done already.
  for (const t of listed.topics) {
    assert.equal(t.name, topic)
    for (const p of t.partitions) {
      assert.deepEqual(p.addingReplicas, [outside])
      assert.deepEqual(p.removingReplicas, [before[1]])
    }
  }
  await waitFor(async () => {
    const l = await admin.listPartitionReassignments({ topics: null })
    return !l.topics.some(t => t.name === topic)
  }, 60000, 'the move to end')
  await waitFor(async () => JSON.stringify(await replicasOf()) === JSON.stringify(target), 20000,
    `replicas ${target}`)
  await producer.send({ topic, acks: -1, messages: [{ partition: 0, value: 'after' }] })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: uniq('g') })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = []
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
  await waitFor(async () => seen.length >= values.length + 1, 60000, 'all records read back')
  await consumer.disconnect()
  assert.deepEqual(seen, [...values, 'after'])
  await admin.disconnect()
})
