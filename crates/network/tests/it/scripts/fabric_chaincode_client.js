// Fabric's own Node client (@hyperledger/fabric-gateway) calling the `assets` chaincode, a fabric-contract-api
// chaincode run as a service, through an ipechain peer: submit (endorsed by both organizations' peers, each
// driving the chaincode server), evaluate, and the chaincode's event read from its block. Usage:
//   node fabric_chaincode_client.js USER_DIR MSP_ID PEER_HOST:PORT CHANNEL ASSET_ID
// Prints one JSON object with what it saw; any failure exits non-zero.
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

const [userDir, mspId, endpoint, channelName, id] = process.argv.slice(2);
const read = (...p) => fs.readFileSync(path.join(userDir, ...p));
const signcerts = path.join(userDir, 'msp', 'signcerts');
const credentials = fs.readFileSync(path.join(signcerts, fs.readdirSync(signcerts)[0]));
const privateKey = crypto.createPrivateKey(read('msp', 'keystore', 'priv_sk'));
const client = new grpc.Client(
  endpoint,
  grpc.credentials.createSsl(read('tls', 'ca.crt'), read('tls', 'client.key'), read('tls', 'client.crt')),
  { 'grpc.ssl_target_name_override': 'localhost' },
);
const gateway = connect({
  client,
  identity: { mspId, credentials },
  signer: signers.newPrivateKeySigner(privateKey),
  hash: privateKey.asymmetricKeyType === 'ed25519' ? hash.none : hash.sha256,
});
const utf8 = (b) => Buffer.from(b).toString('utf8');

async function main() {
  const network = gateway.getNetwork(channelName);
  const assets = network.getContract('assets');
  const commit = await assets.submitAsync('create', { arguments: [id, 'green', 'zoe'] });
  const created = JSON.parse(utf8(commit.getResult()));
  const status = await commit.getStatus();
  if (!status.successful) {
    throw new Error(`create committed with code ${status.code}`);
  }
  const asset = JSON.parse(utf8(await assets.evaluateTransaction('read', id)));
  const events = await network.getChaincodeEvents('assets', { startBlock: status.blockNumber });
  let event;
  try {
    for await (const e of events) {
      if (e.transactionId === commit.getTransactionId()) {
        event = { name: e.eventName, payload: JSON.parse(utf8(e.payload)), block: Number(e.blockNumber) };
        break;
      }
    }
  } finally {
    events.close();
  }
  return { created, asset, event, block: Number(status.blockNumber), tx: commit.getTransactionId() };
}

main()
  .then((r) => {
    process.stdout.write(JSON.stringify(r));
  })
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    gateway.close();
    client.close();
  });
