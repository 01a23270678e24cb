// kafkajs 2.2.4 consumer groups against a real Cairn broker (node:test).
// FindCoordinator v2, JoinGroup v5 (MEMBER_ID_REQUIRED round trip), SyncGroup v3,
// Heartbeat v3, OffsetFetch v4, OffsetCommit v5, LeaveGroup v3, and the admin
// group APIs (DescribeGroups v2, ListGroups v2, DeleteGroups v1).
// Starts its own broker with group.initial.rebalance.delay.ms=0.
import { test as nodeTest, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import kafkajs from 'kafkajs'
import { startBroker, uniq, sleep, waitFor } from './cairn.mjs'

const { Kafka, logLevel } = kafkajs
const GROUP_SETTINGS = { 'group.initial.rebalance.delay.ms': '0', 'group.min.session.timeout.ms': '1000' }



let broker, kafka, admin, producer
let anyFailed = false
const consumers = []

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

function newConsumer (groupId, extra = {}) {
  const c = kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    ...extra
  })
  consumers.push(c)
  return c
}

async function produceN (topic, nparts, start, count) {
  const messages = []
  for (let i = start; i < start + count; i++) messages.push({ partition: i % nparts, value: String(i) })
  await producer.send({ topic, acks: -1, messages })
}

before(async () => {
  broker = await startBroker(GROUP_SETTINGS)
  kafka = new Kafka({
    clientId: 'cairn-it-kafkajs-groups',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  admin = kafka.admin()
  await admin.connect()
  producer = kafka.producer()
  await producer.connect()
})

after(async () => {
  for (const c of consumers) { try { await c.disconnect() } catch {} }
  try { if (producer) await producer.disconnect() } catch {}
  try { if (admin) await admin.disconnect() } catch {}
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

test('consumer.run eachMessage + commitOffsets; a new member resumes at the commit', async () => {
  const topic = uniq('jsg-rt')
  const groupId = uniq('jsg')
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true, timeout: 10000 })
  await produceN(topic, 3, 0, 30)

  const c1 = newConsumer(groupId)
  let joined = null
  c1.on(c1.events.GROUP_JOIN, e => { joined = e.payload })
  await c1.connect()
  await c1.subscribe({ topic, fromBeginning: true })
  const seen = []
  await c1.run({
    autoCommit: false,
    eachMessage: async ({ topic: t, partition, message }) => {
      seen.push([partition, Number(message.offset), message.value.toString()])
      // commit after processing: next offset to read
      await c1.commitOffsets([{ topic: t, partition, offset: String(Number(message.offset) + 1) }])
    }
  })
  await waitFor(() => seen.length >= 30, 30000, 'kafkajs consumer to read 30 records')
  assert.deepEqual(seen.map(s => Number(s[2])).sort((a, b) => a - b), [...Array(30).keys()])
  assert.ok(joined, 'GROUP_JOIN event')
  assert.equal(joined.groupId, groupId)
  assert.ok(joined.isLeader)
  assert.deepEqual((joined.memberAssignment[topic] || []).slice().sort(), [0, 1, 2])
  await c1.disconnect() // LeaveGroup v3

  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.equal(fetched.length, 1)
  assert.deepEqual(fetched[0].partitions.map(p => [p.partition, p.offset]).sort(), [[0, '10'], [1, '10'], [2, '10']])

  // second member, same group: fromBeginning must not matter, the commits win
  await produceN(topic, 3, 30, 6)
  const c2 = newConsumer(groupId)
  await c2.connect()
  await c2.subscribe({ topic, fromBeginning: true })
  const seen2 = []
  await c2.run({ eachMessage: async ({ partition, message }) => { seen2.push([partition, Number(message.offset), message.value.toString()]) } })
  await waitFor(() => seen2.length >= 6, 30000, 'second consumer to read the 6 new records')
  await sleep(500)
  assert.deepEqual(seen2.map(s => Number(s[2])).sort((a, b) => a - b), [30, 31, 32, 33, 34, 35])
  assert.ok(seen2.every(s => s[1] >= 10), JSON.stringify(seen2))
  await c2.disconnect() // autoCommit: commits on disconnect
  const after2 = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(after2[0].partitions.map(p => [p.partition, p.offset]).sort(), [[0, '12'], [1, '12'], [2, '12']])
})

test('two kafkajs members split the partitions; admin describe/list/delete groups', async () => {
  const topic = uniq('jsg-two')
  const groupId = uniq('jsg2')
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true, timeout: 10000 })
  await produceN(topic, 4, 0, 40)
  const got = new Map()
  const assigned = {}
  const mk = async (name) => {
    const c = newConsumer(groupId)
    c.on(c.events.GROUP_JOIN, e => { assigned[name] = (e.payload.memberAssignment[topic] || []).slice().sort() })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { got.set(`${partition}/${message.offset}`, name) } })
    return c
  }
  const a = await mk('a')
  const b = await mk('b')
  const stable = () => assigned.a && assigned.b && assigned.a.length && assigned.b.length &&
    [...assigned.a, ...assigned.b].sort().join() === '0,1,2,3'
  await waitFor(() => stable() && got.size >= 40, 40000, 'two members to share 4 partitions and read 40 records')

  const d = await admin.describeGroups([groupId])
  assert.equal(d.groups.length, 1)
  const g = d.groups[0]
  assert.equal(g.errorCode, 0)
  assert.equal(g.state, 'Stable')
  assert.equal(g.protocolType, 'consumer')
  assert.equal(g.members.length, 2)
  const listed = await admin.listGroups()
  assert.ok(listed.groups.some(x => x.groupId === groupId && x.protocolType === 'consumer'), JSON.stringify(listed))

  await assert.rejects(admin.deleteGroups([groupId]), (e) => {
    const r = (e.groups || [])[0]
    return r && r.groupId === groupId && r.errorCode === 68 // NON_EMPTY_GROUP
  })

  await a.disconnect()
  // b takes over all partitions
  await waitFor(() => assigned.b && assigned.b.length === 4, 30000, 'survivor to get all 4 partitions')
  await b.disconnect()
  const d2 = await admin.describeGroups([groupId])
  assert.equal(d2.groups[0].state, 'Empty')
  const res = await admin.deleteGroups([groupId])
  assert.deepEqual(res.map(r => [r.groupId, r.errorCode]), [[groupId, 0]])
  const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.ok(offs[0].partitions.every(p => p.offset === '-1'), JSON.stringify(offs))
  assert.ok(broker.alive())
})
