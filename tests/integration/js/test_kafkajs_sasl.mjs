// kafkajs 2.2.4 over SASL_SSL with SCRAM-SHA-512 and SCRAM-SHA-256, and
// over SSL with a client certificate (mutual TLS) (issue 13): a CA, a
// server and client certificates made here with the openssl command, a
// user made through the broker's HTTP API, then produce and a consumer
// group over TLS + SCRAM; a wrong password is refused with kafkajs's
// authentication error; a client certificate from a CA the broker does not
// trust cannot connect.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { startBroker, freePort, uniq, waitFor } from './cairn.mjs'

const { Kafka, logLevel } = kafkajs
let broker, ssl, httpPort, saslPort, sslPort, certDir

function makeCerts (dir) {
  const run = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' })
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=cairn js test CA')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key',
    '-out', 'server.csr', '-subj', '/CN=localhost')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
  // a client of the trusted CA, and one of a CA the broker does not know
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue-ca.key',
    '-out', 'rogue-ca.pem', '-days', '2', '-subj', '/CN=rogue CA')
  for (const [name, ca] of [['client', 'ca'], ['rogue', 'rogue-ca']]) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
      '-out', `${name}.csr`, '-subj', `/O=Cairn tests/CN=js-${name}`)
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2')
  }
}

before(async () => {
  httpPort = await freePort()
  saslPort = await freePort()
  sslPort = await freePort()
  const plain = await freePort()
  const dir = execFileSync('mktemp', ['-d']).toString().trim()
  certDir = dir
  makeCerts(dir)
  broker = await startBroker({
    listeners: `PLAINTEXT://127.0.0.1:${plain},SASL_SSL://127.0.0.1:${saslPort},SSL://127.0.0.1:${sslPort}`,
    'http.listeners': `127.0.0.1:${httpPort}`,
    'ssl.certificate.location': join(dir, 'server.pem'),
    'ssl.key.location': join(dir, 'server.key'),
    'ssl.ca.location': join(dir, 'ca.pem'),
    'ssl.client.auth': 'requested'
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

function mtlsClient (name) {
  return new Kafka({
    clientId: 'cairn-js-mtls',
    brokers: [`localhost:${sslPort}`],
    ssl: {
      ca: ssl.ca,
      cert: readFileSync(join(certDir, `${name}.pem`)),
      key: readFileSync(join(certDir, `${name}.key`))
    },
    logLevel: logLevel.NOTHING,
    retry: { retries: 1 }
  })
}

test('produce and consume over mutual TLS', async () => {
  const kafka = mtlsClient('client')
  const topic = uniq('jsmtls')
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'signed' }] })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: uniq('g') })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
  await waitFor(() => got.length >= 1, 30000, 'the record')
  await consumer.disconnect()
  assert.deepEqual(got, ['signed'])
})

test('a client certificate from an unknown CA is refused', async () => {
  const admin = mtlsClient('rogue').admin()
  await assert.rejects(admin.connect())
  await waitFor(() => /unable to get local issuer certificate|certificate verify failed/.test(broker.log()),
    5000, 'the refusal in the log')
  assert.ok(broker.alive())
})
