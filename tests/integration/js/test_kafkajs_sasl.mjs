// kafkajs 2.2.4 over SASL_SSL with SCRAM-SHA-512 and SCRAM-SHA-256 (issue
// 13): a CA and server certificate made here with the openssl command, a
// user made through the broker's HTTP API, then produce and a consumer
// group over TLS + SCRAM; a wrong password is refused with kafkajs's
// authentication error.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { startBroker, freePort, uniq, waitFor } from './cairn.mjs'

const { Kafka, logLevel } = kafkajs
let broker, ssl, httpPort, saslPort

function makeCerts (dir) {
  const run = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' })
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=cairn js test CA')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key',
    '-out', 'server.csr', '-subj', '/CN=localhost')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
}

before(async () => {
  httpPort = await freePort()
  saslPort = await freePort()
  const plain = await freePort()
  const dir = execFileSync('mktemp', ['-d']).toString().trim()
  makeCerts(dir)
  broker = await startBroker({
    listeners: `PLAINTEXT://127.0.0.1:${plain},SASL_SSL://127.0.0.1:${saslPort}`,
    'http.listeners': `127.0.0.1:${httpPort}`,
    'ssl.certificate.location': join(dir, 'server.pem'),
    'ssl.key.location': join(dir, 'server.key')
  })
  await waitFor(() => broker.log().includes('http listening on'), 5000, 'http listener')
  ssl = { ca: [readFileSync(join(dir, 'ca.pem'))] }
  const r = await fetch(`http://127.0.0.1:${httpPort}/users`, {
    method: 'POST', body: JSON.stringify({ name: 'js-user', password: 'js-pass' })
  })
  assert.equal(r.status, 200, await r.text())
})

after(async () => { if (broker) await broker.stop() })

function client (mechanism, password = 'js-pass') {
  return new Kafka({
    clientId: 'cairn-js-sasl',
    brokers: [`localhost:${saslPort}`],
    ssl,
    sasl: { mechanism, username: 'js-user', password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
}

for (const mech of ['scram-sha-512', 'scram-sha-256']) {
  test(`produce and a consumer group over SASL_SSL ${mech}`, async () => {
    const kafka = client(mech)
    const topic = uniq('jssasl')
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ value: `v${i}` })) })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: uniq('g') })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const got = []
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
    await waitFor(() => got.length >= 20, 30000, '20 messages')
    await consumer.disconnect()
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `v${i}`))
  })
}

test('a wrong password is refused', async () => {
  const admin = client('scram-sha-512', 'nope').admin()
  await assert.rejects(admin.connect(), (e) => /SASL SCRAM SHA512 authentication failed|Authentication failed/i.test(e.message))
  assert.ok(broker.alive())
})
