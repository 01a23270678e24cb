// kafkajs 2.2.4 idempotent and transactional producing against a real Cairn
// broker, checked across clients (issue 6): librdkafka (confluent_kafka via
// ../py/eos_ck.py, run with Debian's /usr/bin/python3) reads what kafkajs
// wrote, and kafkajs read_committed consumers (groups) read what librdkafka
// wrote. kafkajs uses FindCoordinator v2 (key type 1), InitProducerId v1,
// AddPartitionsToTxn v1, AddOffsetsToTxn v1, TxnOffsetCommit v1, EndTxn v1.
// Starts its own broker.
import { test as nodeTest, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { rmSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { startBroker, uniq, sleep, waitFor } from './cairn.mjs'

const { Kafka, logLevel } = kafkajs
const here = dirname(fileURLToPath(import.meta.url))
const PYTHON = process.env.CAIRN_PYTHON || '/usr/bin/python3'
const EOS_CK = join(here, '..', 'py', 'eos_ck.py')
const GROUP_SETTINGS = { 'group.initial.rebalance.delay.ms': '0', 'group.min.session.timeout.ms': '1000' }
const execFileP = promisify(execFile)

const vals = (prefix, n, start = 0) => Array.from({ length: n }, (_, i) => `${prefix}-${start + i}`)


let broker, kafka, admin
let anyFailed = false
const clients = []

function test (name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {} }
  return nodeTest(name, { timeout: 90000, ...opts }, async (t) => {
    try {
      return await fn(t)
    } catch (e) {
      anyFailed = true
      throw e
    }
  })
}

// confluent_kafka (librdkafka) side, through ../py/eos_ck.py
async function ck (...args) {
  let out
  try {
    out = (await execFileP(PYTHON, [EOS_CK, ...args], { timeout: 90000, maxBuffer: 64 << 20 })).stdout
  } catch (e) {
    throw new Error(`eos_ck.py ${args.join(' ')} failed: ${e.message}\nstdout: ${e.stdout}\nstderr: ${(e.stderr || '').slice(-3000)}`)
  }
  const res = JSON.parse(out.trim().split('\n').pop())
  if (!res.ok) throw new Error(`eos_ck.py ${args.join(' ')}: ${res.err}`)
  return res
}

const ckRead = (topic, partitions, isolation) =>
  ck('read', broker.bootstrap, topic, '--partitions', String(partitions), '--isolation', isolation)

const valuesOf = (res, p) => (res.records[String(p)] || []).map(r => r[2])

function txnProducer (transactionalId, extra = {}) {
  const p = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, ...extra })
  clients.push(p)
  return p
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
  clients.push(c)
  return c
}

before(async () => {
  broker = await startBroker(GROUP_SETTINGS)
  kafka = new Kafka({
    clientId: 'cairn-it-kafkajs-eos',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  admin = kafka.admin()
  await admin.connect()
})

after(async () => {
  for (const c of clients) { try { await c.disconnect() } catch {} }
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

test('kafkajs transactions + idempotent producer; librdkafka read_committed sees committed data only', async () => {
  const topic = uniq('jse-kjs')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true, timeout: 10000 })
  const msgs = (prefix, n) => vals(prefix, n).map((v, i) => ({ partition: i % 2, key: prefix, value: v }))

  const p = txnProducer(uniq('jse-tx'))
  await p.connect() // kafkajs: a plain (idempotent) InitProducerId; the first
  // transaction() does FindCoordinator(key type 1) + InitProducerId(transactionalId)
  let txn = await p.transaction()
  await txn.send({ topic, messages: msgs('c1', 10) })
  await txn.commit()
  txn = await p.transaction()
  await txn.send({ topic, messages: msgs('ab', 10) })
  await txn.abort()

  const idem = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  clients.push(idem)
  await idem.connect()
  await idem.send({ topic, acks: -1, messages: msgs('ip', 6) })

  txn = await p.transaction()
  await txn.send({ topic, messages: msgs('c2', 10) })
  await txn.send({ topic, messages: msgs('c3', 4) }) // a second batch in the same transaction
  await txn.commit()

  const per = (prefix, n, q) => vals(prefix, n).filter((_, i) => i % 2 === q)
  const rc = await ckRead(topic, 2, 'read_committed')
  const ru = await ckRead(topic, 2, 'read_uncommitted')
  for (const q of [0, 1]) {
    assert.deepEqual(valuesOf(rc, q), [...per('c1', 10, q), ...per('ip', 6, q), ...per('c2', 10, q), ...per('c3', 4, q)],
      `read_committed partition ${q}`)
    assert.deepEqual(valuesOf(ru, q), [...per('c1', 10, q), ...per('ab', 10, q), ...per('ip', 6, q), ...per('c2', 10, q), ...per('c3', 4, q)],
      `read_uncommitted partition ${q}`)
    // nothing open: LSO == HW; 3 transactions -> 3 markers per partition
    assert.equal(rc.lso[String(q)], rc.high[String(q)])
    assert.equal(rc.high[String(q)], 5 + 5 + 3 + 5 + 2 + 3)
  }
})

test('kafkajs read_committed group consumer sees only librdkafka-committed transactions', async () => {
  const topic = uniq('jse-ck')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true, timeout: 10000 })
  await ck('txn-write', broker.bootstrap, topic, '--partitions', '2', '--txn-id', uniq('jse-cktx'),
    '--plan', 'commit:k1:10,abort:ka:10,plain:kp:4,commit:k2:10,abort:kb:6')
  const per = (prefix, n, q) => vals(prefix, n).filter((_, i) => i % 2 === q)
  const committed = (q) => [...per('k1', 10, q), ...per('kp', 4, q), ...per('k2', 10, q)]
  const everything = (q) => [...per('k1', 10, q), ...per('ka', 10, q), ...per('kp', 4, q), ...per('k2', 10, q), ...per('kb', 6, q)]

  const readAll = async (groupId, extra, want) => {
    const seen = { 0: [], 1: [] }
    const c = newConsumer(groupId, extra)
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { seen[partition].push(message.value.toString()) } })
    await waitFor(() => seen[0].length + seen[1].length >= want, 30000,
      `kafkajs consumer to read ${want} records (has ${seen[0].length + seen[1].length})`)
    await sleep(1000) // anything extra (aborted data, control records) would show up now
    await c.disconnect()
    return seen
  }
  // default isolation: READ_COMMITTED
  const rc = await readAll(uniq('jse-g'), {}, 24)
  for (const q of [0, 1]) assert.deepEqual(rc[q], committed(q), `read_committed partition ${q}`)
  // readUncommitted: every data record, but no control records
  const ru = await readAll(uniq('jse-gu'), { readUncommitted: true }, 40)
  for (const q of [0, 1]) assert.deepEqual(ru[q], everything(q), `read_uncommitted partition ${q}`)
})

test('kafkajs sendOffsets: offsets of an aborted transaction are dropped, committed ones kept', async () => {
  const input = uniq('jse-in')
  const output = uniq('jse-out')
  const groupId = uniq('jse-og')
  await admin.createTopics({ topics: [{ topic: input }, { topic: output }], waitForLeaders: true, timeout: 10000 })
  const p = txnProducer(uniq('jse-otx'))
  await p.connect()
  const offsetsOf = async () => {
    const r = await admin.fetchOffsets({ groupId, topics: [input] })
    return r[0].partitions.map(x => [x.partition, x.offset])
  }

  let txn = await p.transaction()
  await txn.send({ topic: output, messages: vals('o1', 5).map(value => ({ partition: 0, value })) })
  await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '5' }] }] })
  await txn.abort()
  assert.deepEqual(await offsetsOf(), [[0, '-1']], 'aborted transactional offset became visible')

  txn = await p.transaction()
  await txn.send({ topic: output, messages: vals('o2', 5).map(value => ({ partition: 0, value })) })
  await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '10' }] }] })
  await txn.commit()
  assert.deepEqual(await offsetsOf(), [[0, '10']])

  const rc = await ckRead(output, 1, 'read_committed')
  assert.deepEqual(valuesOf(rc, 0), vals('o2', 5))
})

test('kafkajs zombie: a second producer with the same transactionalId fences the first', async () => {
  const topic = uniq('jse-z')
  await admin.createTopics({ topics: [{ topic }], waitForLeaders: true, timeout: 10000 })
  const tid = uniq('jse-ztx')
  const p1 = txnProducer(tid, { retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } })
  await p1.connect()
  const t1 = await p1.transaction()
  await t1.send({ topic, messages: [{ partition: 0, value: 'zombie-1' }] })

  const p2 = txnProducer(tid)
  await p2.connect()
  // kafkajs sends InitProducerId(transactionalId) on the first transaction():
  // it bumps the epoch and aborts p1's open transaction
  const t2 = await p2.transaction()

  await assert.rejects(async () => {
    await t1.send({ topic, messages: [{ partition: 0, value: 'zombie-2' }] })
    await t1.commit()
  }, (e) => /fenced|epoch|INVALID_PRODUCER|PRODUCER_FENCED|transaction/i.test(`${e.type} ${e.message}`),
  'the fenced producer must not commit')

  await t2.send({ topic, messages: [{ partition: 0, value: 'live' }] })
  await t2.commit()

  const rc = await ckRead(topic, 1, 'read_committed')
  assert.deepEqual(valuesOf(rc, 0), ['live'])
  const ru = await ckRead(topic, 1, 'read_uncommitted')
  assert.ok(!valuesOf(ru, 0).includes('zombie-2'), `broker appended the fenced write: ${valuesOf(ru, 0)}`)
})
