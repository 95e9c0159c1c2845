// Builds representative Fabric messages with Fabric's own JavaScript bindings (npm @hyperledger/fabric-protos,
// the package @hyperledger/fabric-gateway uses) and checks messages encoded by ipechain's Rust code.
//
//   node fabric_messages.js encode   prints "<name> <hex>" per message (and "<name> <hex>" for the hashes
//                                    computed here with node's crypto)
//   node fabric_messages.js decode   reads "<name> <hex>" lines on stdin (ipechain's encodings), decodes
//                                    each with Fabric's classes and compares it, field by field, with the
//                                    same message built here; prints "ok <name>" per message, exits 1 on
//                                    the first mismatch (the Rust tests check that every message they
//                                    sent is reported "ok").
//
// The values are the ones in tests/it/cross_check.rs: both sides build the same messages independently.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { common, msp, peer, ledger, gateway, orderer, google } = require('@hyperledger/fabric-protos');
const { Timestamp } = require('google-protobuf/google/protobuf/timestamp_pb.js');
const { Any } = require('google-protobuf/google/protobuf/any_pb.js');
const { kvrwset, rwset } = { kvrwset: ledger.rwset.kvrwset, rwset: ledger.rwset };

const CHANNEL = 'mychannel';
const CHAINCODE = 'ipe';
const MSP_ID = 'Org1MSP';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIBfakeCertificateForTests\n-----END CERTIFICATE-----\n';
const NONCE = Buffer.from('0123456789abcdef01234567'); // 24 bytes, as fabric-gateway makes them
const b = (s) => Buffer.from(s);

function sha256(...parts) {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function timestamp() {
  const t = new Timestamp();
  t.setSeconds(1700000000);
  t.setNanos(123456789);
  return t;
}

function creator() {
  const id = new msp.SerializedIdentity();
  id.setMspid(MSP_ID);
  id.setIdBytes(b(PEM));
  return id.serializeBinary();
}

function txId() {
  return sha256(NONCE, creator()).toString('hex');
}

function chaincodeId() {
  const id = new peer.ChaincodeID();
  id.setName(CHAINCODE);
  id.setVersion('1.0');
  return id;
}

function channelHeader() {
  const ext = new peer.ChaincodeHeaderExtension();
  const cc = new peer.ChaincodeID();
  cc.setName(CHAINCODE);
  ext.setChaincodeId(cc);
  const h = new common.ChannelHeader();
  h.setType(common.HeaderType.ENDORSER_TRANSACTION);
  h.setVersion(1);
  h.setTimestamp(timestamp());
  h.setChannelId(CHANNEL);
  h.setTxId(txId());
  h.setEpoch(7);
  h.setExtension$(ext.serializeBinary());
  h.setTlsCertHash(b('tls cert hash'));
  return h.serializeBinary();
}

function signatureHeader() {
  const h = new common.SignatureHeader();
  h.setCreator(creator());
  h.setNonce(NONCE);
  return h.serializeBinary();
}

function header() {
  const h = new common.Header();
  h.setChannelHeader(channelHeader());
  h.setSignatureHeader(signatureHeader());
  return h;
}

function invocationSpec() {
  const input = new peer.ChaincodeInput();
  input.setArgsList([b('register'), b('dev-1'), b('{"objects":[3303]}')]);
  input.getDecorationsMap().set('decoration', b('value'));
  input.setIsInit(false);
  const spec = new peer.ChaincodeSpec();
  spec.setType(peer.ChaincodeSpec.Type.NODE);
  spec.setChaincodeId(chaincodeId());
  spec.setInput(input);
  spec.setTimeout(30);
  const cis = new peer.ChaincodeInvocationSpec();
  cis.setChaincodeSpec(spec);
  return cis.serializeBinary();
}

function proposalPayload(withTransient) {
  const p = new peer.ChaincodeProposalPayload();
  p.setInput(invocationSpec());
  if (withTransient) p.getTransientmapMap().set('secret', b('s3cr3t'));
  return p.serializeBinary();
}

function signedProposal() {
  const proposal = new peer.Proposal();
  proposal.setHeader(header().serializeBinary());
  proposal.setPayload(proposalPayload(true));
  const sp = new peer.SignedProposal();
  sp.setProposalBytes(proposal.serializeBinary());
  sp.setSignature(b('proposal signature'));
  return sp;
}

function chaincodeEvent() {
  const e = new peer.ChaincodeEvent();
  e.setChaincodeId(CHAINCODE);
  e.setTxId(txId());
  e.setEventName('request');
  e.setPayload(b('{"id":"r-1"}'));
  return e;
}

function kvRead(key, version) {
  const r = new kvrwset.KVRead();
  r.setKey(key);
  if (version) {
    const v = new kvrwset.Version();
    v.setBlockNum(version[0]);
    v.setTxNum(version[1]);
    r.setVersion(v);
  }
  return r;
}

function kvRwSet() {
  const range = new kvrwset.RangeQueryInfo();
  range.setStartKey('dev-');
  range.setEndKey('dev.');
  range.setItrExhausted(true);
  const reads = new kvrwset.QueryReads();
  reads.setKvReadsList([kvRead('dev-1', [3, 0]), kvRead('dev-2', [4, 2])]);
  range.setRawReads(reads);
  const w1 = new kvrwset.KVWrite();
  w1.setKey('dev-1');
  w1.setValue(b('{"state":"registered"}'));
  const w2 = new kvrwset.KVWrite();
  w2.setKey('old');
  w2.setIsDelete(true);
  const entry = new kvrwset.KVMetadataEntry();
  entry.setName('VALIDATION_PARAMETER');
  entry.setValue(b('policy bytes'));
  const mw = new kvrwset.KVMetadataWrite();
  mw.setKey('dev-1');
  mw.setEntriesList([entry]);
  const set = new kvrwset.KVRWSet();
  set.setReadsList([kvRead('dev-1', [3, 1]), kvRead('missing', null)]);
  set.setRangeQueriesInfoList([range]);
  set.setWritesList([w1, w2]);
  set.setMetadataWritesList([mw]);
  return set;
}

function response() {
  const r = new peer.Response();
  r.setStatus(200);
  r.setMessage('OK');
  r.setPayload(b('{"ok":true}'));
  return r;
}

function proposalResponsePayload() {
  const ns = new rwset.NsReadWriteSet();
  ns.setNamespace(CHAINCODE);
  ns.setRwset(kvRwSet().serializeBinary());
  const txrw = new rwset.TxReadWriteSet();
  txrw.setDataModel(rwset.TxReadWriteSet.DataModel.KV);
  txrw.setNsRwsetList([ns]);
  const action = new peer.ChaincodeAction();
  action.setResults(txrw.serializeBinary());
  action.setEvents(chaincodeEvent().serializeBinary());
  action.setResponse(response());
  action.setChaincodeId(chaincodeId());
  const prp = new peer.ProposalResponsePayload();
  prp.setProposalHash(sha256(channelHeader(), signatureHeader(), proposalPayload(false)));
  prp.setExtension$(action.serializeBinary());
  return prp.serializeBinary();
}

function endorsement(who) {
  const id = new msp.SerializedIdentity();
  id.setMspid(who);
  id.setIdBytes(b(`-----BEGIN CERTIFICATE-----\n${who} peer\n-----END CERTIFICATE-----\n`));
  const e = new peer.Endorsement();
  e.setEndorser(id.serializeBinary());
  e.setSignature(b(`${who} signature`));
  return e;
}

function proposalResponse() {
  const call = new peer.ChaincodeCall();
  call.setName(CHAINCODE);
  call.setNoPrivateReads(true);
  const interest = new peer.ChaincodeInterest();
  interest.setChaincodesList([call]);
  const pr = new peer.ProposalResponse();
  pr.setVersion(1);
  pr.setTimestamp(timestamp());
  pr.setResponse(response());
  pr.setPayload(proposalResponsePayload());
  pr.setEndorsement(endorsement('Org1MSP'));
  pr.setInterest(interest);
  return pr;
}

function transactionEnvelope() {
  const endorsed = new peer.ChaincodeEndorsedAction();
  endorsed.setProposalResponsePayload(proposalResponsePayload());
  endorsed.setEndorsementsList([endorsement('Org1MSP'), endorsement('Org2MSP')]);
  const cap = new peer.ChaincodeActionPayload();
  cap.setChaincodeProposalPayload(proposalPayload(false));
  cap.setAction(endorsed);
  const ta = new peer.TransactionAction();
  ta.setHeader(signatureHeader());
  ta.setPayload(cap.serializeBinary());
  const tx = new peer.Transaction();
  tx.setActionsList([ta]);
  const payload = new common.Payload();
  payload.setHeader(header());
  payload.setData(tx.serializeBinary());
  const env = new common.Envelope();
  env.setPayload(payload.serializeBinary());
  env.setSignature(b('envelope signature'));
  return env;
}

function endorseRequest() {
  const r = new gateway.EndorseRequest();
  r.setTransactionId(txId());
  r.setChannelId(CHANNEL);
  r.setProposedTransaction(signedProposal());
  r.setEndorsingOrganizationsList(['Org1MSP', 'Org2MSP']);
  return r;
}

function blockData() {
  return [transactionEnvelope().serializeBinary(), b('second entry')];
}

function block() {
  const data = new common.BlockData();
  data.setDataList(blockData());
  const h = new common.BlockHeader();
  h.setNumber(5);
  h.setPreviousHash(Buffer.alloc(32, 0xab));
  h.setDataHash(sha256(...blockData()));
  const lastConfig = new common.LastConfig();
  lastConfig.setIndex(0);
  const obm = new common.OrdererBlockMetadata();
  obm.setLastConfig(lastConfig);
  obm.setConsenterMetadata(b('raft term 2 index 9'));
  const sh = new common.SignatureHeader();
  sh.setCreator(b('orderer identity'));
  sh.setNonce(b('orderer nonce'));
  const sig = new common.MetadataSignature();
  sig.setSignatureHeader(sh.serializeBinary());
  sig.setSignature(b('orderer signature'));
  const md = new common.Metadata();
  md.setValue(obm.serializeBinary());
  md.setSignaturesList([sig]);
  const meta = new common.BlockMetadata();
  const codes = Uint8Array.from([peer.TxValidationCode.VALID, peer.TxValidationCode.MVCC_READ_CONFLICT]);
  meta.setMetadataList([md.serializeBinary(), new Uint8Array(0), codes, new Uint8Array(0), b('commit hash')]);
  const blk = new common.Block();
  blk.setHeader(h);
  blk.setData(data);
  blk.setMetadata(meta);
  return blk;
}

function seekPosition(kind, number) {
  const p = new orderer.SeekPosition();
  if (kind === 'specified') {
    const s = new orderer.SeekSpecified();
    s.setNumber(number);
    p.setSpecified(s);
  } else if (kind === 'newest') {
    p.setNewest(new orderer.SeekNewest());
  } else if (kind === 'oldest') {
    p.setOldest(new orderer.SeekOldest());
  } else {
    p.setNextCommit(new orderer.SeekNextCommit());
  }
  return p;
}

function seekInfo() {
  const s = new orderer.SeekInfo();
  s.setStart(seekPosition('specified', 5));
  s.setStop(seekPosition('newest'));
  s.setBehavior(orderer.SeekInfo.SeekBehavior.FAIL_IF_NOT_READY);
  s.setErrorResponse(orderer.SeekInfo.SeekErrorResponse.BEST_EFFORT);
  s.setContentType(orderer.SeekInfo.SeekContentType.HEADER_WITH_SIG);
  return s;
}

function chaincodeEventsRequest() {
  const r = new gateway.ChaincodeEventsRequest();
  r.setChannelId(CHANNEL);
  r.setChaincodeId(CHAINCODE);
  r.setIdentity(creator());
  r.setStartPosition(seekPosition('next_commit'));
  r.setAfterTransactionId(txId());
  return r;
}

function commitStatusResponse() {
  const r = new gateway.CommitStatusResponse();
  r.setResult(peer.TxValidationCode.MVCC_READ_CONFLICT);
  r.setBlockNumber(12);
  return r;
}

function errorDetail() {
  const e = new gateway.ErrorDetail();
  e.setAddress('peer0.org2.example.com:7051');
  e.setMspId('Org2MSP');
  e.setMessage('chaincode response 500, boom');
  return e;
}

// A chaincode-shim message as a chaincode sends it to the peer during an invocation.
function chaincodeMessage() {
  const put = new peer.PutState();
  put.setKey('dev-1');
  put.setValue(b('{"state":"registered"}'));
  put.setCollection('');
  const m = new peer.ChaincodeMessage();
  m.setType(peer.ChaincodeMessage.Type.PUT_STATE);
  m.setTimestamp(timestamp());
  m.setPayload(put.serializeBinary());
  m.setTxid(txId());
  m.setProposal(signedProposal());
  m.setChaincodeEvent(chaincodeEvent());
  m.setChannelId(CHANNEL);
  return m;
}

// A committed transaction as qscc GetTransactionByID returns it.
function processedTransaction() {
  const p = new peer.ProcessedTransaction();
  p.setTransactionenvelope(transactionEnvelope());
  p.setValidationcode(peer.TxValidationCode.PHANTOM_READ_CONFLICT);
  return p;
}

// A channel configuration tree as a genesis block carries it (Payload.data of its CONFIG envelope).
const CA_PEM = b('-----BEGIN CERTIFICATE-----\nMIIBorg1CA\n-----END CERTIFICATE-----\n');
const TLS_PEM = b('-----BEGIN CERTIFICATE-----\nMIIBtls\n-----END CERTIFICATE-----\n');

function configValue(message) {
  const v = new common.ConfigValue();
  v.setValue(message.serializeBinary());
  v.setModPolicy('Admins');
  return v;
}

function implicitMeta(subPolicy, rule) {
  const m = new common.ImplicitMetaPolicy();
  m.setSubPolicy(subPolicy);
  m.setRule(rule);
  const p = new common.Policy();
  p.setType(common.Policy.PolicyType.IMPLICIT_META);
  p.setValue(m.serializeBinary());
  const c = new common.ConfigPolicy();
  c.setPolicy(p);
  c.setModPolicy('Admins');
  return c;
}

function capabilities(name) {
  const c = new common.Capabilities();
  c.getCapabilitiesMap().set(name, new common.Capability());
  return c;
}

function ouIdentifier(ou) {
  const o = new msp.FabricOUIdentifier();
  o.setCertificate(CA_PEM);
  o.setOrganizationalUnitIdentifier(ou);
  return o;
}

function ordererGroup() {
  const batch = new orderer.BatchSize();
  batch.setMaxMessageCount(10);
  batch.setAbsoluteMaxBytes(1048576);
  batch.setPreferredMaxBytes(524288);
  const timeout = new orderer.BatchTimeout();
  timeout.setTimeout('2s');
  const consenter = new orderer.etcdraft.Consenter();
  consenter.setHost('127.0.0.1');
  consenter.setPort(7050);
  consenter.setClientTlsCert(TLS_PEM);
  consenter.setServerTlsCert(TLS_PEM);
  const options = new orderer.etcdraft.Options();
  options.setTickInterval('500ms');
  options.setElectionTick(10);
  options.setHeartbeatTick(1);
  options.setMaxInflightBlocks(5);
  options.setSnapshotIntervalSize(16777216);
  const raft = new orderer.etcdraft.ConfigMetadata();
  raft.setConsentersList([consenter]);
  raft.setOptions(options);
  const consensus = new orderer.ConsensusType();
  consensus.setType('etcdraft');
  consensus.setMetadata(raft.serializeBinary());
  consensus.setState(orderer.ConsensusType.State.STATE_NORMAL);
  const g = new common.ConfigGroup();
  g.getValuesMap().set('BatchSize', configValue(batch));
  g.getValuesMap().set('BatchTimeout', configValue(timeout));
  g.getValuesMap().set('ConsensusType', configValue(consensus));
  g.getValuesMap().set('Capabilities', configValue(capabilities('V2_0')));
  g.setModPolicy('Admins');
  return g;
}

function orgGroup() {
  const crypto = new msp.FabricCryptoConfig();
  crypto.setSignatureHashFamily('SHA2');
  crypto.setIdentityIdentifierHashFunction('SHA256');
  const nodeOus = new msp.FabricNodeOUs();
  nodeOus.setEnable(true);
  nodeOus.setClientOuIdentifier(ouIdentifier('client'));
  nodeOus.setPeerOuIdentifier(ouIdentifier('peer'));
  nodeOus.setAdminOuIdentifier(ouIdentifier('admin'));
  nodeOus.setOrdererOuIdentifier(ouIdentifier('orderer'));
  const fabricMsp = new msp.FabricMSPConfig();
  fabricMsp.setName(MSP_ID);
  fabricMsp.setRootCertsList([CA_PEM]);
  fabricMsp.setTlsRootCertsList([TLS_PEM]);
  fabricMsp.setCryptoConfig(crypto);
  fabricMsp.setFabricNodeOus(nodeOus);
  const mspConfig = new msp.MSPConfig();
  mspConfig.setType(0);
  mspConfig.setConfig(fabricMsp.serializeBinary());
  const anchor = new peer.AnchorPeer();
  anchor.setHost('127.0.0.1');
  anchor.setPort(7051);
  const anchors = new peer.AnchorPeers();
  anchors.setAnchorPeersList([anchor]);
  const role = new common.MSPRole();
  role.setMspIdentifier(MSP_ID);
  role.setRole(common.MSPRole.MSPRoleType.PEER);
  const principal = new common.MSPPrincipal();
  principal.setPrincipalClassification(common.MSPPrincipal.Classification.ROLE);
  principal.setPrincipal(role.serializeBinary());
  const signedBy = new common.SignaturePolicy();
  signedBy.setSignedBy(0);
  const nOutOf = new common.SignaturePolicy.NOutOf();
  nOutOf.setN(1);
  nOutOf.setRulesList([signedBy]);
  const rule = new common.SignaturePolicy();
  rule.setNOutOf(nOutOf);
  const envelope = new common.SignaturePolicyEnvelope();
  envelope.setVersion(0);
  envelope.setRule(rule);
  envelope.setIdentitiesList([principal]);
  const policy = new common.Policy();
  policy.setType(common.Policy.PolicyType.SIGNATURE);
  policy.setValue(envelope.serializeBinary());
  const endorsement = new common.ConfigPolicy();
  endorsement.setPolicy(policy);
  endorsement.setModPolicy('Admins');
  const g = new common.ConfigGroup();
  g.getValuesMap().set('MSP', configValue(mspConfig));
  g.getValuesMap().set('AnchorPeers', configValue(anchors));
  g.getPoliciesMap().set('Endorsement', endorsement);
  g.setModPolicy('Admins');
  return g;
}

function applicationGroup() {
  const acls = new peer.ACLs();
  for (const [resource, ref] of [['peer/Propose', '/Channel/Application/Writers'], ['event/Block', '/Channel/Application/Readers']]) {
    const r = new peer.APIResource();
    r.setPolicyRef(ref);
    acls.getAclsMap().set(resource, r);
  }
  const g = new common.ConfigGroup();
  g.getGroupsMap().set(MSP_ID, orgGroup());
  g.getValuesMap().set('ACLs', configValue(acls));
  g.getValuesMap().set('Capabilities', configValue(capabilities('V2_5')));
  g.getPoliciesMap().set('Endorsement', implicitMeta('Endorsement', common.ImplicitMetaPolicy.Rule.MAJORITY));
  g.setModPolicy('Admins');
  return g;
}

function configEnvelope() {
  const hashing = new common.HashingAlgorithm();
  hashing.setName('SHA256');
  const structure = new common.BlockDataHashingStructure();
  structure.setWidth(4294967295);
  const root = new common.ConfigGroup();
  root.getGroupsMap().set('Orderer', ordererGroup());
  root.getGroupsMap().set('Application', applicationGroup());
  root.getValuesMap().set('HashingAlgorithm', configValue(hashing));
  root.getValuesMap().set('BlockDataHashingStructure', configValue(structure));
  root.getValuesMap().set('Capabilities', configValue(capabilities('V3_0')));
  root.getPoliciesMap().set('Admins', implicitMeta('Admins', common.ImplicitMetaPolicy.Rule.MAJORITY));
  root.getPoliciesMap().set('Readers', implicitMeta('Readers', common.ImplicitMetaPolicy.Rule.ANY));
  root.setModPolicy('Admins');
  const config = new common.Config();
  config.setSequence(3);
  config.setChannelGroup(root);
  const last = new common.Envelope();
  last.setPayload(b('last config update'));
  last.setSignature(b('update signature'));
  const env = new common.ConfigEnvelope();
  env.setConfig(config);
  env.setLastUpdate(last);
  return env;
}

function etcdraftBlockMetadata() {
  const m = new orderer.etcdraft.BlockMetadata();
  m.setConsenterIdsList([1, 2, 3]);
  m.setNextConsenterId(4);
  m.setRaftIndex(17);
  return m;
}

// The grpc-status-details-bin trailer of a failed Endorse, as Fabric's gateway sends it.
function rpcStatus() {
  const details = ['Org1MSP', 'Org2MSP'].map((mspId, i) => {
    const d = new gateway.ErrorDetail();
    d.setAddress(`peer0.org${i + 1}.example.com:7051`);
    d.setMspId(mspId);
    d.setMessage(`chaincode response 500, asset ${i} does not exist`);
    const any = new Any();
    any.setTypeUrl('type.googleapis.com/gateway.ErrorDetail');
    any.setValue(d.serializeBinary());
    return any;
  });
  const s = new google.rpc.Status();
  s.setCode(10); // ABORTED
  s.setMessage('failed to endorse transaction, see attached details for more info');
  s.setDetailsList(details);
  return s;
}

function filteredDeliverResponse() {
  const fca = new peer.FilteredChaincodeAction();
  fca.setChaincodeEvent(chaincodeEvent());
  const actions = new peer.FilteredTransactionActions();
  actions.setChaincodeActionsList([fca]);
  const ftx = new peer.FilteredTransaction();
  ftx.setTxid(txId());
  ftx.setType(common.HeaderType.ENDORSER_TRANSACTION);
  ftx.setTxValidationCode(peer.TxValidationCode.ENDORSEMENT_POLICY_FAILURE);
  ftx.setTransactionActions(actions);
  const fb = new peer.FilteredBlock();
  fb.setChannelId(CHANNEL);
  fb.setNumber(5);
  fb.setFilteredTransactionsList([ftx]);
  const r = new peer.DeliverResponse();
  r.setFilteredBlock(fb);
  return r;
}

// name -> [class, builder]
const MESSAGES = {
  signed_proposal: [peer.SignedProposal, signedProposal],
  transaction_envelope: [common.Envelope, transactionEnvelope],
  proposal_response: [peer.ProposalResponse, proposalResponse],
  endorse_request: [gateway.EndorseRequest, endorseRequest],
  block: [common.Block, block],
  chaincode_event: [peer.ChaincodeEvent, chaincodeEvent],
  kv_rwset: [kvrwset.KVRWSet, kvRwSet],
  seek_info: [orderer.SeekInfo, seekInfo],
  chaincode_events_request: [gateway.ChaincodeEventsRequest, chaincodeEventsRequest],
  commit_status_response: [gateway.CommitStatusResponse, commitStatusResponse],
  error_detail: [gateway.ErrorDetail, errorDetail],
  filtered_deliver_response: [peer.DeliverResponse, filteredDeliverResponse],
  rpc_status: [google.rpc.Status, rpcStatus],
  chaincode_message: [peer.ChaincodeMessage, chaincodeMessage],
  processed_transaction: [peer.ProcessedTransaction, processedTransaction],
  config_envelope: [common.ConfigEnvelope, configEnvelope],
  etcdraft_block_metadata: [orderer.etcdraft.BlockMetadata, etcdraftBlockMetadata],
};

const ENUMS = {
  'common.Status': common.Status,
  'common.HeaderType': common.HeaderType,
  'common.BlockMetadataIndex': common.BlockMetadataIndex,
  'protos.TxValidationCode': peer.TxValidationCode,
  'protos.ChaincodeSpec.Type': peer.ChaincodeSpec.Type,
  'protos.ChaincodeMessage.Type': peer.ChaincodeMessage.Type,
  'rwset.TxReadWriteSet.DataModel': rwset.TxReadWriteSet.DataModel,
  'orderer.SeekInfo.SeekBehavior': orderer.SeekInfo.SeekBehavior,
  'orderer.SeekInfo.SeekErrorResponse': orderer.SeekInfo.SeekErrorResponse,
  'orderer.SeekInfo.SeekContentType': orderer.SeekInfo.SeekContentType,
};

const SERVICES = {
  'gateway.Gateway': gateway.GatewayService,
  'protos.Endorser': peer.EndorserService,
  'protos.Deliver': peer.DeliverService,
  'orderer.AtomicBroadcast': orderer.AtomicBroadcastService,
  'protos.ChaincodeSupport': peer.ChaincodeSupportService,
  'protos.Chaincode': peer.ChaincodeService,
};

// Nested messages carried as bytes, checked layer by layer when decoding the Rust side's encodings.
function nestedLayers(name, msg) {
  const layers = [];
  const add = (what, cls, bytes) => {
    const m = cls.deserializeBinary(bytes);
    layers.push([what, m]);
    return m;
  };
  const headerLayers = (h) => {
    add('channel header', common.ChannelHeader, h.getChannelHeader_asU8());
    add('signature header', common.SignatureHeader, h.getSignatureHeader_asU8());
  };
  if (name === 'signed_proposal' || name === 'endorse_request') {
    const sp = name === 'signed_proposal' ? msg : msg.getProposedTransaction();
    const p = add('proposal', peer.Proposal, sp.getProposalBytes_asU8());
    headerLayers(add('header', common.Header, p.getHeader_asU8()));
    const cpp = add('chaincode proposal payload', peer.ChaincodeProposalPayload, p.getPayload_asU8());
    add('invocation spec', peer.ChaincodeInvocationSpec, cpp.getInput_asU8());
  } else if (name === 'transaction_envelope') {
    const payload = add('payload', common.Payload, msg.getPayload_asU8());
    headerLayers(payload.getHeader());
    const tx = add('transaction', peer.Transaction, payload.getData_asU8());
    const cap = add('chaincode action payload', peer.ChaincodeActionPayload, tx.getActionsList()[0].getPayload_asU8());
    const prp = add('proposal response payload', peer.ProposalResponsePayload,
      cap.getAction().getProposalResponsePayload_asU8());
    add('chaincode action', peer.ChaincodeAction, prp.getExtension_asU8());
  } else if (name === 'proposal_response') {
    const prp = add('proposal response payload', peer.ProposalResponsePayload, msg.getPayload_asU8());
    const action = add('chaincode action', peer.ChaincodeAction, prp.getExtension_asU8());
    const rw = add('tx rwset', rwset.TxReadWriteSet, action.getResults_asU8());
    add('kv rwset', kvrwset.KVRWSet, rw.getNsRwsetList()[0].getRwset_asU8());
    add('chaincode event', peer.ChaincodeEvent, action.getEvents_asU8());
  } else if (name === 'block') {
    const md = add('signatures metadata', common.Metadata, msg.getMetadata().getMetadataList_asU8()[0]);
    add('orderer block metadata', common.OrdererBlockMetadata, md.getValue_asU8());
    add('block signature header', common.SignatureHeader, md.getSignaturesList()[0].getSignatureHeader_asU8());
    add('first envelope', common.Envelope, msg.getData().getDataList_asU8()[0]);
  } else if (name === 'chaincode_message') {
    add('put state', peer.PutState, msg.getPayload_asU8());
  } else if (name === 'processed_transaction') {
    add('payload', common.Payload, msg.getTransactionenvelope().getPayload_asU8());
  } else if (name === 'config_envelope') {
    const root = msg.getConfig().getChannelGroup();
    const value = (group, key) => group.getValuesMap().get(key).getValue_asU8();
    const ord = root.getGroupsMap().get('Orderer');
    add('BatchSize', orderer.BatchSize, value(ord, 'BatchSize'));
    const consensus = add('ConsensusType', orderer.ConsensusType, value(ord, 'ConsensusType'));
    add('etcdraft ConfigMetadata', orderer.etcdraft.ConfigMetadata, consensus.getMetadata_asU8());
    const org = root.getGroupsMap().get('Application').getGroupsMap().get(MSP_ID);
    const mspConfig = add('MSPConfig', msp.MSPConfig, value(org, 'MSP'));
    add('FabricMSPConfig', msp.FabricMSPConfig, mspConfig.getConfig_asU8());
    add('AnchorPeers', peer.AnchorPeers, value(org, 'AnchorPeers'));
    const policy = org.getPoliciesMap().get('Endorsement').getPolicy();
    const spe = add('SignaturePolicyEnvelope', common.SignaturePolicyEnvelope, policy.getValue_asU8());
    add('MSPRole', common.MSPRole, spe.getIdentitiesList()[0].getPrincipal_asU8());
    add('ImplicitMetaPolicy', common.ImplicitMetaPolicy,
      root.getPoliciesMap().get('Admins').getPolicy().getValue_asU8());
  } else if (name === 'rpc_status') {
    // As fabric-gateway's newGatewayError reads them: every detail's value as an ErrorDetail.
    msg.getDetailsList().forEach((d, i) => add(`error detail ${i}`, gateway.ErrorDetail, d.getValue_asU8()));
  }
  return layers;
}

function encode() {
  const out = [];
  for (const [name, [, build]] of Object.entries(MESSAGES)) {
    out.push(`${name} ${Buffer.from(build().serializeBinary()).toString('hex')}`);
  }
  // Hashes computed here with node's crypto, for the Rust side's hashing functions.
  out.push(`hash_tx_id ${Buffer.from(txId()).toString('hex')}`);
  out.push(`hash_proposal ${sha256(channelHeader(), signatureHeader(), proposalPayload(false)).toString('hex')}`);
  out.push(`hash_block_data ${sha256(...blockData()).toString('hex')}`);
  // Enums as Fabric's bindings number them: "NAME=number,..." (hex-encoded like the rest).
  for (const [name, values] of Object.entries(ENUMS)) {
    const text = Object.entries(values).map(([k, v]) => `${k}=${v}`).join(',');
    out.push(`enum:${name} ${Buffer.from(text).toString('hex')}`);
  }
  // gRPC methods as Fabric's clients call them: "path:requestStream:responseStream,...".
  for (const [name, service] of Object.entries(SERVICES)) {
    const text = Object.values(service).map((m) => `${m.path}:${m.requestStream}:${m.responseStream}`).join(',');
    out.push(`service:${name} ${Buffer.from(text).toString('hex')}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

function normalizeCapabilities(group) {
  const capabilities = group.getValuesMap().get('Capabilities');
  if (capabilities) {
    capabilities.setValue(common.Capabilities.deserializeBinary(capabilities.getValue_asU8()).serializeBinary());
  }
  group.getGroupsMap().forEach((child) => normalizeCapabilities(child));
}

async function decode() {
  const seen = new Set();
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const [name, hex] = line.split(' ');
    const entry = MESSAGES[name];
    assert.ok(entry, `unknown message ${name}`);
    const [cls, build] = entry;
    const theirs = cls.deserializeBinary(Buffer.from(hex, 'hex'));
    const ours = build();
    if (name === 'config_envelope') {
      // prost leaves out a map entry's value when it is the default (an empty Capability); Go and this
      // library write it. Decode every Capabilities value with Fabric's classes and re-encode it here, on
      // both sides, so the rest of the tree is compared byte for byte.
      normalizeCapabilities(theirs.getConfig().getChannelGroup());
      normalizeCapabilities(ours.getConfig().getChannelGroup());
    }
    assert.deepStrictEqual(theirs.toObject(), ours.toObject(), `${name}: fields differ`);
    const theirLayers = nestedLayers(name, theirs);
    const ourLayers = nestedLayers(name, ours);
    assert.equal(theirLayers.length, ourLayers.length, `${name}: layers`);
    for (let i = 0; i < ourLayers.length; i++) {
      assert.deepStrictEqual(theirLayers[i][1].toObject(), ourLayers[i][1].toObject(),
        `${name}: ${ourLayers[i][0]} differs`);
    }
    seen.add(name);
    process.stdout.write(`ok ${name} (${theirLayers.length} nested layers)\n`);
  }
  assert.ok(seen.size > 0, 'no message received');
}

const mode = process.argv[2];
if (mode === 'encode') {
  encode();
} else if (mode === 'decode') {
  decode().catch((e) => {
    process.stderr.write(`${e.stack || e}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: node fabric_messages.js encode|decode\n');
  process.exit(2);
}
