// A Fabric application written against Fabric's own Node client, @hyperledger/fabric-gateway, with nothing
// ipechain-specific but its connection details: a user's cryptogen folder (msp/signcerts, msp/keystore/priv_sk,
// tls/ca.crt, tls/client.crt, tls/client.key), its MSP id and a peer's address. Usage:
//   node fabric_gateway_client.js USER_DIR MSP_ID PEER_HOST:PORT CHANNEL
// Runs every client feature the `kv` chaincode can show and prints one JSON object with what it saw; the Rust
// test asserts on it (and on the ledger). Any unexpected failure exits non-zero with the error.
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const {
  connect,
  hash,
  signers,
  checkpointers,
  EndorseError,
  CommitError,
  GatewayError,
} = require('@hyperledger/fabric-gateway');

const [userDir, mspId, endpoint, channelName] = process.argv.slice(2);
const read = (...p) => fs.readFileSync(path.join(userDir, ...p));
const signcerts = path.join(userDir, 'msp', 'signcerts');
const credentials = fs.readFileSync(path.join(signcerts, fs.readdirSync(signcerts)[0]));
const privateKey = crypto.createPrivateKey(read('msp', 'keystore', 'priv_sk'));
const ed25519 = privateKey.asymmetricKeyType === 'ed25519';
const signer = signers.newPrivateKeySigner(privateKey);
const client = new grpc.Client(
  endpoint,
  grpc.credentials.createSsl(read('tls', 'ca.crt'), read('tls', 'client.key'), read('tls', 'client.crt')),
  // The peer's TLS certificate names localhost (and 127.0.0.1): check that name, as for any host.
  { 'grpc.ssl_target_name_override': 'localhost' },
);
const identity = { mspId, credentials };
// Ed25519 signs the whole message (hash.none); ECDSA a SHA-256 digest (the default).
const digest = ed25519 ? hash.none : hash.sha256;
const deadline = (s) => () => ({ deadline: Date.now() + s * 1000 });
const gateway = connect({
  client,
  identity,
  signer,
  hash: digest,
  evaluateOptions: deadline(10),
  endorseOptions: deadline(15),
  submitOptions: deadline(15),
  commitStatusOptions: deadline(60),
  chaincodeEventsOptions: deadline(60),
  blockEventsOptions: deadline(60),
});
const utf8 = (b) => Buffer.from(b).toString('utf8');
const withTimeout = (promise, what) =>
  Promise.race([
    promise,
    // unref: a pending timer must not keep the process alive once the work is done.
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30000).unref()),
  ]);

// The error's class name, code (a gRPC code; for a CommitError the validation code), message and details, as the
// application sees them. (fabric-gateway exports GatewayError, EndorseError, CommitStatusError and CommitError;
// SubmitError is a GatewayError known by its name.)
function described(e) {
  return {
    kind: e.name,
    gatewayError: e instanceof GatewayError,
    endorseError: e instanceof EndorseError,
    commitError: e instanceof CommitError,
    code: e.code,
    message: e.message,
    details: (e.details || []).map((d) => ({ address: d.address, mspId: d.mspId, message: d.message })),
    transactionId: e.transactionId,
  };
}

async function main() {
  const out = { key: ed25519 ? 'ed25519' : privateKey.asymmetricKeyDetails.namedCurve, ms: {} };
  let t0 = Date.now();
  const lap = (what) => { out.ms[what] = Date.now() - t0; t0 = Date.now(); };
  const network = gateway.getNetwork(channelName);
  const kv = network.getContract('kv');

  // Submit and evaluate.
  out.submitted = utf8(await kv.submitTransaction('put', 'js-key', 'js-value'));
  out.evaluated = utf8(await kv.evaluateTransaction('get', 'js-key'));

  lap('submit');
  // submitAsync: the result at once, the commit status later.
  const commit = await kv.submitAsync('incr', { arguments: ['js-counter'] });
  out.async = { result: utf8(commit.getResult()), transactionId: commit.getTransactionId() };
  const status = await commit.getStatus();
  out.async.status = {
    successful: status.successful,
    code: status.code,
    blockNumber: Number(status.blockNumber),
    transactionId: status.transactionId,
  };
  const startBlock = status.blockNumber;

  lap('async');
  // Chaincode events, resumed from a checkpoint after a reconnect: no gaps, no duplicates.
  const puts = [];
  for (const k of ['ev-1', 'ev-2', 'ev-3']) {
    const c = await kv.submitAsync('put', { arguments: [k, 'x'] });
    if (!(await c.getStatus()).successful) throw new Error(`${k} did not commit`);
    puts.push(c.getTransactionId());
  }
  const checkpoint = checkpointers.inMemory();
  const first = [];
  let events = await network.getChaincodeEvents('kv', { startBlock });
  for await (const event of events) {
    first.push({ name: event.eventName, key: utf8(event.payload), tx: event.transactionId, block: Number(event.blockNumber) });
    await checkpoint.checkpointChaincodeEvent(event);
    if (first.length === 2) break;
  }
  events.close();
  const late = await kv.submitAsync('put', { arguments: ['ev-4', 'x'] });
  await late.getStatus();
  const resumed = [];
  events = await network.getChaincodeEvents('kv', { checkpoint });
  await withTimeout(
    (async () => {
      for await (const event of events) {
        resumed.push({ name: event.eventName, key: utf8(event.payload), tx: event.transactionId, block: Number(event.blockNumber) });
        if (utf8(event.payload) === 'ev-4') break;
      }
    })(),
    'resumed chaincode events',
  );
  events.close();
  out.events = { first, resumed, puts, late: late.getTransactionId() };

  lap('events');
  // Block events: whole blocks, filtered blocks, blocks with private data.
  const blocks = await network.getBlockEvents({ startBlock });
  const block = (await withTimeout(blocks[Symbol.asyncIterator]().next(), 'a block')).value;
  blocks.close();
  const filteredEvents = await network.getFilteredBlockEvents({ startBlock });
  const filtered = (await withTimeout(filteredEvents[Symbol.asyncIterator]().next(), 'a filtered block')).value;
  filteredEvents.close();
  const privateEvents = await network.getBlockAndPrivateDataEvents({ startBlock });
  const withPrivate = (await withTimeout(privateEvents[Symbol.asyncIterator]().next(), 'a block with private data')).value;
  privateEvents.close();
  out.blocks = {
    block: Number(block.getHeader().getNumber()),
    transactions: block.getData().getDataList().length,
    filtered: Number(filtered.getNumber()),
    filteredTransactions: filtered.getFilteredTransactionsList().map((t) => ({
      id: t.getTxid(),
      code: t.getTxValidationCode(),
    })),
    withPrivateData: Number(withPrivate.getBlock().getHeader().getNumber()),
    privateDataEntries: withPrivate.getPrivateDataMapMap().getLength(),
  };

  lap('blocks');
  // Refusals, as the application sees them.
  out.errors = {};
  try {
    await kv.submitTransaction('no_such_function');
    out.errors.endorse = 'no error';
  } catch (e) {
    out.errors.endorse = described(e);
  }
  try {
    await kv.evaluateTransaction('get', 'missing-key');
    out.errors.evaluate = 'no error';
  } catch (e) {
    out.errors.evaluate = described(e);
  }
  lap('endorse_evaluate');
  // A transaction whose envelope signature is not the creator's: endorsed, then refused by the orderer.
  const offline = connect({ client, identity, hash: digest });
  const unsigned = offline.getNetwork(channelName).getContract('kv').newProposal('put', { arguments: ['forged', 'x'] });
  const proposal = offline.newSignedProposal(unsigned.getBytes(), await signer(unsigned.getDigest()));
  const endorsed = await proposal.endorse();
  const wrong = await signer(ed25519 ? Buffer.from('not the transaction') : crypto.createHash('sha256').update('x').digest());
  try {
    await offline.newSignedTransaction(endorsed.getBytes(), wrong).submit();
    out.errors.submit = 'no error';
  } catch (e) {
    out.errors.submit = described(e);
  }
  lap('submit_error');
  // Two increments of one counter endorsed at the same state: one commits, the other is an MVCC conflict.
  const race = await Promise.allSettled([
    kv.submitTransaction('incr', 'race'),
    kv.submitTransaction('incr', 'race'),
  ]);
  out.errors.commit = race.map((r) => (r.status === 'fulfilled' ? { ok: utf8(r.value) } : described(r.reason)));

  lap('commit_error');
  console.log(JSON.stringify(out));
  gateway.close();
  offline.close();
  client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
