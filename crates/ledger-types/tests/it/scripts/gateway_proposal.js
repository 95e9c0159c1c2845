// Builds a transaction proposal with Fabric's own Node client, @hyperledger/fabric-gateway, offline: the
// gRPC client is never called, and the proposal is signed the way fabric-gateway's offline-signing flow
// documents it (`getDigest()`, the signer, `gateway.newSignedProposal`). Usage:
//   node gateway_proposal.js CERT_PEM_FILE KEY_PEM_FILE MSP_ID CHANNEL CHAINCODE TRANSACTION [ARG...]
// Prints one JSON line: {"transaction_id": ..., "proposed_transaction_hex": ...} (gateway.ProposedTransaction,
// as `Proposal.getBytes()` returns it, signed by the key: Ed25519 signs the whole message, ECDSA a SHA-256
// digest, as fabric-gateway's signers do).
const fs = require('node:fs');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

const [certFile, keyFile, mspId, channel, chaincode, transaction, ...args] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const ed25519 = key.asymmetricKeyType === 'ed25519';
const client = new grpc.Client('127.0.0.1:9', grpc.credentials.createInsecure());
const signer = signers.newPrivateKeySigner(key);
const gateway = connect({
  client,
  identity: { mspId, credentials: fs.readFileSync(certFile) },
  hash: ed25519 ? hash.none : hash.sha256,
});

async function main() {
  const unsigned = gateway.getNetwork(channel).getContract(chaincode).newProposal(transaction, { arguments: args });
  const signature = await signer(unsigned.getDigest());
  const proposal = gateway.newSignedProposal(unsigned.getBytes(), signature);
  console.log(
    JSON.stringify({
      transaction_id: proposal.getTransactionId(),
      proposed_transaction_hex: Buffer.from(proposal.getBytes()).toString('hex'),
    }),
  );
  gateway.close();
  client.close();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
