// kafkajs 2.2.4 against a real Cairn broker (node:test).
// Starts its own broker: free loopback port, fresh temp data dir, waits for
// "listening on" on stderr. CAIRN_BIN overrides the binary (default build/cairn).
// Data is read back through admin offsets APIs and (if installed) kcat;
// kafkajs consumers (groups) are tested in test_kafkajs_groups.mjs.
import { test as nodeTest, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import kafkajs from 'kafkajs'
import { startBroker, uniq, CAIRN_BIN } from './cairn.mjs'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = kafkajs

const hasKcat = spawnSync('kcat', ['-V']).status === 0

function kcatRead (bootstrap, topic, partition) {
  const r = spawnSync('kcat', ['-b', bootstrap, '-X', 'log_level=3', '-C', '-t', topic, '-p', String(partition),
    '-o', 'beginning', '-e', '-J'], { timeout: 30000, encoding: 'utf8' })
  assert.equal(r.status, 0, `kcat failed: ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean).map(l => JSON.parse(l))
}

function kcatHeaders (m) {
  const h = m.headers || []
  if (h.length && Array.isArray(h[0])) return Object.fromEntries(h)
  const o = {}
  for (let i = 0; i < h.length; i += 2) o[h[i]] = h[i + 1]
  return o
}

let broker, kafka, admin, producer
let anyFailed = false

// node:test wrapper that remembers failures so the broker log can be shown
function test (name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {} }
  return nodeTest(name, opts, async (t) => {
    try {
      return await fn(t)
    } catch (e) {
      anyFailed = true
      throw e
    }
  })
}

before(async () => {
  broker = await startBroker()
  kafka = new Kafka({
    clientId: 'cairn-it-kafkajs',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  admin = kafka.admin()
  await admin.connect()
  producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
})

after(async () => {
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

test('metadata: single node, controller 1', async () => {
  const cluster = await admin.describeCluster()
  assert.equal(cluster.controller, 1)
  assert.deepEqual(cluster.brokers.map(b => [b.nodeId, b.host, b.port]), [[1, '127.0.0.1', broker.port]])
})

test('admin createTopics / fetchTopicMetadata / describeConfigs / alterConfigs / createPartitions', async () => {
  const topic = uniq('js-admin')
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    waitForLeaders: true,
    timeout: 10000
  })
  assert.equal(created, true)
  // creating again reports "not created" (TOPIC_ALREADY_EXISTS is swallowed)
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], timeout: 10000 }), false)

  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(md.topics.length, 1)
  assert.equal(md.topics[0].name, topic)
  const parts = md.topics[0].partitions.sort((a, b) => a.partitionId - b.partitionId)
  assert.deepEqual(parts.map(p => p.partitionId), [0, 1, 2])
  for (const p of parts) {
    assert.equal(p.partitionErrorCode, 0)
    assert.equal(p.leader, 1)
    assert.deepEqual(p.replicas, [1])
    assert.deepEqual(p.isr, [1])
  }
  assert.ok((await admin.listTopics()).includes(topic))

  const describe = async () => {
    const r = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }]
    })
    assert.equal(r.resources.length, 1)
    assert.equal(r.resources[0].errorCode, 0)
    return Object.fromEntries(r.resources[0].configEntries.map(e => [e.configName, e.configValue]))
  }
  assert.deepEqual(await describe(), { 'retention.ms': '3600000' })
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }]
  })
  assert.deepEqual(await describe(), { 'retention.ms': '7200000' })

  await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }], timeout: 10000 })
  const md2 = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(md2.topics[0].partitions.length, 5)
})

test('producer gzip, acks -1, keys, headers, timestamps: offsets and watermarks', async () => {
  const topic = uniq('js-produce')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true, timeout: 10000 })
  const t0 = 1600000000000
  const perPart = [0, 0]
  const sent = [[], []]
  for (let round = 0; round < 4; round++) {
    const messages = []
    for (let i = 0; i < 50; i++) {
      const n = round * 50 + i
      const partition = n % 2
      const m = {
        partition,
        key: n % 5 === 0 ? null : `key-${n}`,
        value: `value-${n}-${'x'.repeat(n % 30)}`,
        headers: { n: String(n), src: 'kafkajs' },
        timestamp: String(t0 + n * 10)
      }
      messages.push(m)
      sent[partition].push(m)
    }
    const res = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
    // one RecordMetadata per partition; baseOffset = records already in it
    const byPart = Object.fromEntries(res.map(r => [r.partition, r]))
    for (const p of [0, 1]) {
      assert.equal(byPart[p].topicName, topic)
      assert.equal(byPart[p].errorCode, 0)
      assert.equal(byPart[p].baseOffset, String(perPart[p]), `partition ${p} round ${round}`)
      perPart[p] += 25
    }
  }

  const offs = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition)
  assert.deepEqual(offs.map(o => [o.partition, o.low, o.high, o.offset]), [[0, '0', '100', '100'], [1, '0', '100', '100']])

  // by timestamp: record n has ts t0 + 10n, partition n % 2, offset floor(n/2)
  const byTs = async (ts) => Object.fromEntries(
    (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).map(o => [o.partition, o.offset]))
  assert.deepEqual(await byTs(t0 - 1), { 0: '0', 1: '0' })
  assert.deepEqual(await byTs(t0 + 10 * 41), { 0: '21', 1: '20' }) // n=42 -> p0 off 21; n=41 -> p1 off 20
  assert.deepEqual(await byTs(t0 + 10 * 1000), { 0: '100', 1: '100' }) // none: kafkajs falls back to HW

  if (!hasKcat) return // contents check needs kcat
  for (const p of [0, 1]) {
    const got = kcatRead(broker.bootstrap, topic, p)
    assert.equal(got.length, 100)
    got.forEach((m, i) => {
      const want = sent[p][i]
      assert.equal(m.offset, i)
      assert.equal(m.key, want.key)
      assert.equal(m.payload, want.value)
      assert.equal(m.ts, Number(want.timestamp))
      assert.deepEqual(kcatHeaders(m), want.headers)
    })
  }
})

test('auto-created topic on produce, then deleteTopics removes it', async () => {
  const topic = uniq('js-auto')
  const res = await producer.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }] })
  assert.equal(res.length, 1)
  assert.equal(res[0].baseOffset, '0')
  assert.ok((await admin.listTopics()).includes(topic))
  const offs = await admin.fetchTopicOffsets(topic)
  assert.equal(offs.reduce((s, o) => s + Number(o.high), 0), 2)

  await admin.deleteTopics({ topics: [topic], timeout: 10000 })
  let topics = await admin.listTopics()
  for (let i = 0; i < 50 && topics.includes(topic); i++) {
    await new Promise(r => setTimeout(r, 100))
    topics = await admin.listTopics()
  }
  assert.ok(!topics.includes(topic), 'topic still listed after deleteTopics')
  assert.ok(broker.alive())
})

test('acks 1 and acks 0 produce', async () => {
  const topic = uniq('js-acks')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true, timeout: 10000 })
  const r1 = await producer.send({ topic, acks: 1, messages: [{ value: 'one' }, { value: 'two' }] })
  assert.equal(r1[0].baseOffset, '0')
  await producer.send({ topic, acks: 0, messages: [{ value: 'three' }] })
  let high = '0'
  for (let i = 0; i < 50 && high !== '3'; i++) {
    high = (await admin.fetchTopicOffsets(topic))[0].high
    if (high !== '3') await new Promise(r => setTimeout(r, 100))
  }
  assert.equal(high, '3')
})
