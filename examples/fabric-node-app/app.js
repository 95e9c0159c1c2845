#!/usr/bin/env node
// A oneM2M application as the paper wrote it: a Node.js program that talks to the IPE chaincode through
// Hyperledger Fabric, here through Fabric's own client @hyperledger/fabric-gateway. Nothing in it is specific to
// ipechain but its connection details: a peer's address, an MSP id, a user's cryptogen folder, the channel and the
// chaincode (`iot` and `ipe` on a network made by `ipechain up`).
//
//   scenario1 --endpoint EP --path /3303/0/5700
//     The application asks an LwM2M device for a value through the IPE: it calls `submit_request`, the bridge
//     gateway reads the device and answers with `submit_response`, and the application receives the answer as
//     the `response` chaincode event addressed to it (the paper's steps 1-1 to 2-9).
//   scenario2 [--endpoint EP] [--content JSON]
//     A device asks the application something (it Sends its request object /32769/0): the application receives
//     the `device.request` event addressed to it (or, for a request that names no application, to the oneM2M
//     side), answers it with `answer_device_request`, and sees the `device.answer` event that the gateway turns
//     into a Write on the device (the paper's steps 3-1 to 3-9).
//
// It prints one JSON line per outcome (`submitted`, `response`, `listening`, `device.request`, `answered`,
// `device.answer`, or `error`) and exits 0 when the scenario completed, 1 otherwise. README.md says how to run it.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers, checkpointers } = require('@hyperledger/fabric-gateway');

const USAGE = `usage: node app.js [connection options] scenario1 --endpoint EP --path /3303/0/5700
       node app.js [connection options] scenario2 [--endpoint EP] [--content JSON]

connection (flag, else environment variable):
  --peer HOST:PORT        FABRIC_PEER        the peer's gRPC address (default 127.0.0.1:7051)
  --tls-name NAME         FABRIC_TLS_NAME    the name the peer's TLS certificate must carry (default localhost)
  --msp-id ID             FABRIC_MSP_ID      the user's MSP id (default Org1MSP)
  --user-dir DIR          FABRIC_USER_DIR    the user's cryptogen folder (msp/signcerts, msp/keystore, tls/)
  --channel NAME          FABRIC_CHANNEL     (default iot)
  --chaincode NAME        FABRIC_CHAINCODE   the IPE chaincode (default ipe)
application:
  --originator AE-ID      ORIGINATOR         this application's oneM2M AE-ID (default Cpaper-app)
  --checkpoint FILE       CHECKPOINT         where to keep the event checkpoint (default: in memory)
  --timeout SECONDS                          how long to wait for the answer at most (default 60)
scenarios:
  --endpoint EP           the device (endpoint name or AE-ID); in scenario 2, answer only its requests
  --path PATH             scenario 1: the resource to read
  --content JSON          scenario 2: the answer's content (default {"setpoint": 21})`;

function options() {
  const env = process.env;
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      peer: { type: 'string', default: env.FABRIC_PEER ?? '127.0.0.1:7051' },
      'tls-name': { type: 'string', default: env.FABRIC_TLS_NAME ?? 'localhost' },
      'msp-id': { type: 'string', default: env.FABRIC_MSP_ID ?? 'Org1MSP' },
      'user-dir': { type: 'string', default: env.FABRIC_USER_DIR },
      channel: { type: 'string', default: env.FABRIC_CHANNEL ?? 'iot' },
      chaincode: { type: 'string', default: env.FABRIC_CHAINCODE ?? 'ipe' },
      originator: { type: 'string', default: env.ORIGINATOR ?? 'Cpaper-app' },
      checkpoint: { type: 'string', default: env.CHECKPOINT },
      timeout: { type: 'string', default: '60' },
      endpoint: { type: 'string' },
      path: { type: 'string' },
      content: { type: 'string', default: '{"setpoint": 21}' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const scenario = positionals[0];
  const missing = (what) => {
    console.error(`${what}\n\n${USAGE}`);
    process.exit(2);
  };
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (scenario !== 'scenario1' && scenario !== 'scenario2') missing('say scenario1 or scenario2');
  if (!values['user-dir']) missing('--user-dir (or FABRIC_USER_DIR) is required');
  if (scenario === 'scenario1' && !(values.endpoint && values.path)) missing('scenario1 needs --endpoint and --path');
  return { ...values, scenario, timeout: Number(values.timeout), content: JSON.parse(values.content) };
}

/** One JSON line per outcome. */
function emit(outcome) {
  console.log(JSON.stringify(outcome));
}

const utf8 = (bytes) => Buffer.from(bytes).toString('utf8');

/** A gateway connection as the user of a cryptogen folder: its certificate, its key and its TLS files. */
function connectAs(opts) {
  const dir = opts['user-dir'];
  const read = (...p) => fs.readFileSync(path.join(dir, ...p));
  const signcerts = path.join(dir, 'msp', 'signcerts');
  const keystore = path.join(dir, 'msp', 'keystore');
  const certificate = fs.readFileSync(path.join(signcerts, fs.readdirSync(signcerts)[0]));
  const privateKey = crypto.createPrivateKey(fs.readFileSync(path.join(keystore, fs.readdirSync(keystore)[0])));
  const client = new grpc.Client(
    opts.peer,
    // Mutual TLS: the peer is checked against the organization's TLS CA, the user presents its TLS certificate.
    grpc.credentials.createSsl(read('tls', 'ca.crt'), read('tls', 'client.key'), read('tls', 'client.crt')),
    { 'grpc.ssl_target_name_override': opts['tls-name'] },
  );
  const deadline = (seconds) => () => ({ deadline: Date.now() + seconds * 1000 });
  const gateway = connect({
    client,
    identity: { mspId: opts['msp-id'], credentials: certificate },
    signer: signers.newPrivateKeySigner(privateKey),
    // An Ed25519 key signs the message itself; an ECDSA key (Fabric's default) signs its SHA-256 digest.
    hash: privateKey.asymmetricKeyType === 'ed25519' ? hash.none : hash.sha256,
    evaluateOptions: deadline(10),
    endorseOptions: deadline(15),
    submitOptions: deadline(15),
    commitStatusOptions: deadline(60),
    // The event stream ends with DEADLINE_EXCEEDED if the awaited event has not come by then.
    chaincodeEventsOptions: deadline(opts.timeout),
  });
  return { client, gateway };
}

/** The IPE addresses every event (`"to"`): is this one for the oneM2M application `originator`? */
function addressedTo(payload, originator) {
  return payload.to?.kind === 'originator' && payload.to.id === originator;
}

/** Scenario 1: read a device's resource through the IPE; the answer comes as a `response` event. */
async function scenario1(opts, network, ipe, checkpoint) {
  const request = {
    request_id: `${opts.originator.slice(1)}-${crypto.randomUUID()}`,
    originator: opts.originator,
    endpoint: opts.endpoint,
    path: opts.path,
    op: 'read',
  };
  // (1-2) Call the IPE chaincode; it checks the device and the access policy and addresses a `request` event to
  // the gateway that serves the device.
  const commit = await ipe.submitAsync('submit_request', { arguments: [JSON.stringify(request)] });
  const receipt = JSON.parse(utf8(commit.getResult()));
  const status = await commit.getStatus();
  emit({
    event: 'submitted',
    request_id: request.request_id,
    status: receipt.status,
    expires_at: receipt.expires_at,
    transaction_id: status.transactionId,
    block: Number(status.blockNumber),
    committed: status.successful,
  });
  if (!status.successful) return false;
  // (1-1) Listen to the IPE's events: from the checkpoint, or else from the block that holds the request (the
  // answer can only come after it, and listening from there misses nothing however fast the device answers).
  const events = await network.getChaincodeEvents(opts.chaincode, { checkpoint, startBlock: status.blockNumber });
  try {
    for await (const event of events) {
      const payload = JSON.parse(utf8(event.payload));
      await checkpoint.checkpointChaincodeEvent(event);
      // (2-9) The gateway answered on the ledger: the `response` event for our request.
      if (
        event.eventName === 'response' &&
        addressedTo(payload, opts.originator) &&
        payload.request_id === request.request_id
      ) {
        const outcome = payload.outcome;
        emit({
          event: 'response',
          request_id: payload.request_id,
          endpoint: payload.endpoint,
          path: payload.path,
          status: outcome.status,
          rsc: outcome.rsc,
          code: outcome.code,
          values: outcome.content?.values ?? null,
          message: outcome.message,
          transaction_id: event.transactionId,
          block: Number(event.blockNumber),
        });
        return outcome.status === 'ok';
      }
    }
  } finally {
    events.close();
  }
  return false;
}

/** Scenario 2: answer a device's request (a `device.request` event) through the IPE. */
async function scenario2(opts, network, ipe, checkpoint) {
  // (3-4) Listen to the IPE's events: from the checkpoint, or else from the next block.
  const events = await network.getChaincodeEvents(opts.chaincode, { checkpoint });
  const from = checkpoint.getBlockNumber();
  emit({ event: 'listening', originator: opts.originator, from_block: from === undefined ? null : Number(from) });
  let answered = null;
  try {
    for await (const event of events) {
      const payload = JSON.parse(utf8(event.payload));
      if (
        answered === null &&
        event.eventName === 'device.request' &&
        // To us, or to the oneM2M side when the device named no application (then the policy decides who may
        // answer: the permission `answer`).
        (addressedTo(payload, opts.originator) || payload.to?.kind === 'onem2m') &&
        (!opts.endpoint || payload.endpoint === opts.endpoint || payload.ae_id === opts.endpoint)
      ) {
        // (3-5) A device asks.
        emit({
          event: 'device.request',
          request_id: payload.request_id,
          endpoint: payload.endpoint,
          topic: payload.topic,
          content: payload.content,
          to: payload.to,
          expires_at: payload.expires_at,
          block: Number(event.blockNumber),
        });
        // (3-6) Answer it through the IPE.
        const answer = {
          request_id: payload.request_id,
          originator: opts.originator,
          status: 'ok',
          content: opts.content,
        };
        const commit = await ipe.submitAsync('answer_device_request', { arguments: [JSON.stringify(answer)] });
        const status = await commit.getStatus();
        emit({
          event: 'answered',
          request_id: payload.request_id,
          transaction_id: status.transactionId,
          block: Number(status.blockNumber),
          committed: status.successful,
        });
        if (!status.successful) return false;
        answered = payload.request_id;
      } else if (event.eventName === 'device.answer' && payload.request_id === answered) {
        // (3-8) The answer is on the ledger, addressed to the gateway that writes it to the device (3-9).
        await checkpoint.checkpointChaincodeEvent(event);
        emit({
          event: 'device.answer',
          request_id: payload.request_id,
          endpoint: payload.endpoint,
          status: payload.answer.status,
          originator: payload.answer.originator,
          content: payload.answer.content,
          to: payload.to,
          block: Number(event.blockNumber),
        });
        return true;
      }
      await checkpoint.checkpointChaincodeEvent(event);
    }
  } finally {
    events.close();
  }
  return false;
}

/** A failure as the application sees it: fabric-gateway's error class, gRPC code, message and the peers' details. */
function described(e) {
  return {
    event: 'error',
    kind: e.name,
    code: e.code,
    message: e.message,
    details: (e.details ?? []).map((d) => ({ address: d.address, mspId: d.mspId, message: d.message })),
  };
}

async function main() {
  const opts = options();
  const { client, gateway } = connectAs(opts);
  const checkpoint = opts.checkpoint ? await checkpointers.file(opts.checkpoint) : checkpointers.inMemory();
  try {
    const network = gateway.getNetwork(opts.channel);
    const ipe = network.getContract(opts.chaincode);
    const run = opts.scenario === 'scenario1' ? scenario1 : scenario2;
    return await run(opts, network, ipe, checkpoint);
  } catch (e) {
    emit(described(e));
    return false;
  } finally {
    gateway.close();
    client.close();
  }
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
