// Reads an ipechain genesis block (hex of an encoded common.Block on stdin) with Fabric's own JavaScript
// bindings (npm @hyperledger/fabric-protos, the package @hyperledger/fabric-gateway uses), layer by layer as
// Fabric's tooling does (Block -> Envelope -> Payload -> ConfigEnvelope -> the ConfigGroup tree), and prints
// what it found as one JSON object: the channel header, every group/value/policy key, each organization's
// MSP name and certificates, the etcdraft consenters, Fabric 3's consenter mapping, the batch limits, the
// capabilities and the organizations' signature policies. The Rust test compares it with the configuration
// the block was made from.
'use strict';

const fs = require('node:fs');
const { common, msp, peer, orderer } = require('@hyperledger/fabric-protos');

const block = common.Block.deserializeBinary(Buffer.from(fs.readFileSync(0, 'utf8').trim(), 'hex'));
const data = block.getData().getDataList_asU8();
if (data.length !== 1) throw new Error(`expected one envelope, found ${data.length}`);
const envelope = common.Envelope.deserializeBinary(data[0]);
const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
const channelHeader = common.ChannelHeader.deserializeBinary(payload.getHeader().getChannelHeader_asU8());
const configEnvelope = common.ConfigEnvelope.deserializeBinary(payload.getData_asU8());
const root = configEnvelope.getConfig().getChannelGroup();

const text = (u8) => Buffer.from(u8).toString('utf8');
const value = (group, key, cls) => {
  const v = group.getValuesMap().get(key);
  if (!v) throw new Error(`no value ${key}`);
  return cls.deserializeBinary(v.getValue_asU8());
};
const capabilities = (group) => {
  const names = [];
  value(group, 'Capabilities', common.Capabilities).getCapabilitiesMap().forEach((_, k) => names.push(k));
  return names;
};

// Every key of the tree, as "/Channel/Orderer/BatchSize (value)", and every policy's type.
const keys = [];
(function walk(path, group) {
  group.getValuesMap().forEach((_, k) => keys.push(`${path}/${k} (value)`));
  group.getPoliciesMap().forEach((p, k) =>
    keys.push(`${path}/${k} (policy ${p.getPolicy().getType() === common.Policy.PolicyType.SIGNATURE ? 'signature' : p.getPolicy().getType() === common.Policy.PolicyType.IMPLICIT_META ? 'implicit_meta' : p.getPolicy().getType()})`));
  group.getGroupsMap().forEach((g, k) => {
    keys.push(`${path}/${k} (group)`);
    walk(`${path}/${k}`, g);
  });
})('/Channel', root);

function principals(policyValue) {
  const spe = common.SignaturePolicyEnvelope.deserializeBinary(policyValue);
  const rule = spe.getRule();
  const n = rule.hasNOutOf() ? rule.getNOutOf().getN() : null;
  const ids = spe.getIdentitiesList().map((p) => {
    if (p.getPrincipalClassification() !== common.MSPPrincipal.Classification.ROLE) throw new Error('not a role');
    const role = common.MSPRole.deserializeBinary(p.getPrincipal_asU8());
    const name = Object.keys(common.MSPRole.MSPRoleType).find((r) => common.MSPRole.MSPRoleType[r] === role.getRole());
    return `${role.getMspIdentifier()}.${name.toLowerCase()}`;
  });
  return { n, rules: rule.hasNOutOf() ? rule.getNOutOf().getRulesList().length : null, principals: ids };
}

function org(name, group, endpointsKey) {
  const mspConfig = value(group, 'MSP', msp.MSPConfig);
  const fabric = msp.FabricMSPConfig.deserializeBinary(mspConfig.getConfig_asU8());
  const out = {
    name,
    msp_type: mspConfig.getType(),
    msp_id: fabric.getName(),
    root_certs: fabric.getRootCertsList_asU8().map(text),
    tls_root_certs: fabric.getTlsRootCertsList_asU8().map(text),
    node_ous: fabric.getFabricNodeOus().getEnable(),
    policies: {},
  };
  group.getPoliciesMap().forEach((p, k) => {
    out.policies[k] = principals(p.getPolicy().getValue_asU8());
  });
  if (group.getValuesMap().has(endpointsKey)) {
    out.endpoints =
      endpointsKey === 'AnchorPeers'
        ? value(group, 'AnchorPeers', peer.AnchorPeers).getAnchorPeersList().map((a) => `${a.getHost()}:${a.getPort()}`)
        : value(group, 'Endpoints', common.OrdererAddresses).getAddressesList();
  } else {
    out.endpoints = [];
  }
  return out;
}

const ordererGroup = root.getGroupsMap().get('Orderer');
const applicationGroup = root.getGroupsMap().get('Application');
const consensus = value(ordererGroup, 'ConsensusType', orderer.ConsensusType);
const raft = orderer.etcdraft.ConfigMetadata.deserializeBinary(consensus.getMetadata_asU8());
const batch = value(ordererGroup, 'BatchSize', orderer.BatchSize);
const implicit = (group, key) => {
  const p = common.ImplicitMetaPolicy.deserializeBinary(group.getPoliciesMap().get(key).getPolicy().getValue_asU8());
  const rule = Object.keys(common.ImplicitMetaPolicy.Rule).find((r) => common.ImplicitMetaPolicy.Rule[r] === p.getRule());
  return `${rule} ${p.getSubPolicy()}`;
};

const out = {
  block_number: block.getHeader().getNumber(),
  header_type: channelHeader.getType(),
  channel_id: channelHeader.getChannelId(),
  sequence: configEnvelope.getConfig().getSequence(),
  keys: [...new Set(keys)].sort(),
  hashing_algorithm: value(root, 'HashingAlgorithm', common.HashingAlgorithm).getName(),
  block_data_hashing_width: value(root, 'BlockDataHashingStructure', common.BlockDataHashingStructure).getWidth(),
  orderer_addresses: value(root, 'OrdererAddresses', common.OrdererAddresses).getAddressesList(),
  capabilities: {
    channel: capabilities(root),
    orderer: capabilities(ordererGroup),
    application: capabilities(applicationGroup),
  },
  channel_policies: ['Readers', 'Writers', 'Admins'].map((k) => implicit(root, k)),
  block_validation: implicit(ordererGroup, 'BlockValidation'),
  consensus_type: consensus.getType(),
  consensus_state: consensus.getState(),
  etcdraft_consenters: raft.getConsentersList().map((c) => `${c.getHost()}:${c.getPort()}`),
  consenter_mapping: value(ordererGroup, 'Orderers', common.Orderers)
    .getConsenterMappingList()
    .map((c) => ({ id: c.getId(), address: `${c.getHost()}:${c.getPort()}`, msp_id: c.getMspId(), identity: text(c.getIdentity_asU8()) })),
  batch_size: [batch.getMaxMessageCount(), batch.getAbsoluteMaxBytes(), batch.getPreferredMaxBytes()],
  batch_timeout: value(ordererGroup, 'BatchTimeout', orderer.BatchTimeout).getTimeout(),
  orderer_orgs: [],
  application_orgs: [],
};
ordererGroup.getGroupsMap().forEach((g, k) => out.orderer_orgs.push(org(k, g, 'Endpoints')));
applicationGroup.getGroupsMap().forEach((g, k) => out.application_orgs.push(org(k, g, 'AnchorPeers')));
process.stdout.write(`${JSON.stringify(out)}\n`);
