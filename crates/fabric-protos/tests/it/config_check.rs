//! A channel configuration tree (what a Fabric genesis block's CONFIG envelope carries: `ConfigEnvelope` with
//! orderer, application and organization groups, MSP, etcdraft, policies, ACLs, capabilities) and the
//! etcdraft block metadata, built here and by `fabric_messages.js` independently: byte-identical both ways,
//! except that prost leaves out default map values (the FIXME in the first test).

use std::collections::BTreeMap;

use fabric_protos::common::{
    BlockDataHashingStructure, Capabilities, Capability, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy,
    ConfigValue, Envelope, HashingAlgorithm, ImplicitMetaPolicy, MspPrincipal, MspRole, Policy,
    SignaturePolicy, SignaturePolicyEnvelope, implicit_meta_policy, msp_principal, msp_role, policy,
    signature_policy,
};
use fabric_protos::etcdraft::{self, ConfigMetadata, Options};
use fabric_protos::msp::{FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig};
use fabric_protos::orderer::{BatchSize, BatchTimeout, ConsensusType, consensus_type};
use fabric_protos::protos::{AcLs, AnchorPeer, AnchorPeers, ApiResource};
use prost::Message;

use crate::node;

const MSP_ID: &str = "Org1MSP";
const CA_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIBorg1CA\n-----END CERTIFICATE-----\n";
const TLS_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIBtls\n-----END CERTIFICATE-----\n";

fn value(m: &impl Message) -> ConfigValue {
    ConfigValue { version: 0, value: m.encode_to_vec().into(), mod_policy: "Admins".into() }
}

fn implicit_meta(sub_policy: &str, rule: implicit_meta_policy::Rule) -> ConfigPolicy {
    let meta = ImplicitMetaPolicy { sub_policy: sub_policy.into(), rule: rule as i32 };
    ConfigPolicy {
        version: 0,
        policy: Some(Policy {
            r#type: policy::PolicyType::ImplicitMeta as i32,
            value: meta.encode_to_vec().into(),
        }),
        mod_policy: "Admins".into(),
    }
}

fn capabilities(name: &str) -> Capabilities {
    Capabilities { capabilities: BTreeMap::from([(name.to_owned(), Capability {})]) }
}

fn ou(name: &str) -> Option<FabricOuIdentifier> {
    Some(FabricOuIdentifier {
        certificate: CA_PEM.to_vec().into(),
        organizational_unit_identifier: name.into(),
    })
}

fn group(
    groups: Vec<(&str, ConfigGroup)>,
    values: Vec<(&str, ConfigValue)>,
    policies: Vec<(&str, ConfigPolicy)>,
) -> ConfigGroup {
    let owned = |k: &str| k.to_owned();
    ConfigGroup {
        version: 0,
        groups: groups.into_iter().map(|(k, v)| (owned(k), v)).collect(),
        values: values.into_iter().map(|(k, v)| (owned(k), v)).collect(),
        policies: policies.into_iter().map(|(k, v)| (owned(k), v)).collect(),
        mod_policy: "Admins".into(),
    }
}

fn consensus() -> ConsensusType {
    let raft = ConfigMetadata {
        consenters: vec![etcdraft::Consenter {
            host: "127.0.0.1".into(),
            port: 7050,
            client_tls_cert: TLS_PEM.to_vec().into(),
            server_tls_cert: TLS_PEM.to_vec().into(),
        }],
        options: Some(Options {
            tick_interval: "500ms".into(),
            election_tick: 10,
            heartbeat_tick: 1,
            max_inflight_blocks: 5,
            snapshot_interval_size: 16_777_216,
        }),
    };
    ConsensusType {
        r#type: "etcdraft".into(),
        metadata: raft.encode_to_vec().into(),
        state: consensus_type::State::Normal as i32,
    }
}

fn orderer_group() -> ConfigGroup {
    let batch =
        BatchSize { max_message_count: 10, absolute_max_bytes: 1_048_576, preferred_max_bytes: 524_288 };
    group(
        vec![],
        vec![
            ("BatchSize", value(&batch)),
            ("BatchTimeout", value(&BatchTimeout { timeout: "2s".into() })),
            ("ConsensusType", value(&consensus())),
            ("Capabilities", value(&capabilities("V2_0"))),
        ],
        vec![],
    )
}

fn fabric_msp() -> FabricMspConfig {
    FabricMspConfig {
        name: MSP_ID.into(),
        root_certs: vec![CA_PEM.to_vec().into()],
        tls_root_certs: vec![TLS_PEM.to_vec().into()],
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        fabric_node_ous: Some(FabricNodeOUs {
            enable: true,
            client_ou_identifier: ou("client"),
            peer_ou_identifier: ou("peer"),
            admin_ou_identifier: ou("admin"),
            orderer_ou_identifier: ou("orderer"),
        }),
        ..Default::default()
    }
}

fn endorsement_policy() -> SignaturePolicyEnvelope {
    let role = MspRole { msp_identifier: MSP_ID.into(), role: msp_role::MspRoleType::Peer as i32 };
    let signed_by = SignaturePolicy { r#type: Some(signature_policy::Type::SignedBy(0)) };
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: vec![signed_by],
            })),
        }),
        identities: vec![MspPrincipal {
            principal_classification: msp_principal::Classification::Role as i32,
            principal: role.encode_to_vec().into(),
        }],
    }
}

fn org_group() -> ConfigGroup {
    let msp = MspConfig { r#type: 0, config: fabric_msp().encode_to_vec().into() };
    let anchors = AnchorPeers { anchor_peers: vec![AnchorPeer { host: "127.0.0.1".into(), port: 7051 }] };
    let policy = Policy {
        r#type: policy::PolicyType::Signature as i32,
        value: endorsement_policy().encode_to_vec().into(),
    };
    group(
        vec![],
        vec![("MSP", value(&msp)), ("AnchorPeers", value(&anchors))],
        vec![("Endorsement", ConfigPolicy { version: 0, policy: Some(policy), mod_policy: "Admins".into() })],
    )
}

fn application_group() -> ConfigGroup {
    let acls = AcLs {
        acls: BTreeMap::from([
            ("peer/Propose".to_owned(), ApiResource { policy_ref: "/Channel/Application/Writers".into() }),
            ("event/Block".to_owned(), ApiResource { policy_ref: "/Channel/Application/Readers".into() }),
        ]),
    };
    group(
        vec![(MSP_ID, org_group())],
        vec![("ACLs", value(&acls)), ("Capabilities", value(&capabilities("V2_5")))],
        vec![("Endorsement", implicit_meta("Endorsement", implicit_meta_policy::Rule::Majority))],
    )
}

fn config_envelope() -> ConfigEnvelope {
    let root = group(
        vec![("Orderer", orderer_group()), ("Application", application_group())],
        vec![
            ("HashingAlgorithm", value(&HashingAlgorithm { name: "SHA256".into() })),
            ("BlockDataHashingStructure", value(&BlockDataHashingStructure { width: u32::MAX })),
            ("Capabilities", value(&capabilities("V3_0"))),
        ],
        vec![
            ("Admins", implicit_meta("Admins", implicit_meta_policy::Rule::Majority)),
            ("Readers", implicit_meta("Readers", implicit_meta_policy::Rule::Any)),
        ],
    );
    ConfigEnvelope {
        config: Some(Config { sequence: 3, channel_group: Some(root) }),
        last_update: Some(Envelope {
            payload: b"last config update".to_vec().into(),
            signature: b"update signature".to_vec().into(),
        }),
    }
}

fn etcdraft_block_metadata() -> etcdraft::BlockMetadata {
    etcdraft::BlockMetadata { consenter_ids: vec![1, 2, 3], next_consenter_id: 4, raft_index: 17 }
}

/// Re-encodes every `Capabilities` value of the tree with prost (see the FIXME below).
fn normalize_capabilities(group: &mut ConfigGroup) {
    if let Some(v) = group.values.get_mut("Capabilities") {
        v.value = Capabilities::decode(v.value.as_ref()).expect("Capabilities decode").encode_to_vec().into();
    }
    group.groups.values_mut().for_each(normalize_capabilities);
}

#[test]
fn fabric_channel_config_decodes_as_ours_byte_for_byte() {
    let theirs: BTreeMap<String, Vec<u8>> = node::encode().into_iter().collect();
    let bytes = theirs.get("config_envelope").expect("node printed config_envelope");
    let mut decoded = ConfigEnvelope::decode(bytes.as_slice()).expect("Fabric's ConfigEnvelope decodes");

    // FIXME: prost leaves out a map entry's key or value when it is the default; Fabric's Go code and its
    // JavaScript bindings always write both. Every Fabric configuration has such an entry (a capability
    // maps to the empty `Capability`), so our encoding of a `Capabilities` value is two bytes shorter
    // than Fabric's. Both decode to the same message; only re-encoding a decoded tree is affected.
    let root = decoded.config.as_ref().and_then(|c| c.channel_group.as_ref()).expect("channel group");
    let fabric_caps = &root.values["Capabilities"].value;
    assert_eq!(hex::encode(fabric_caps), "0a080a0456335f301200", "Fabric: key, then the empty value");
    assert_eq!(hex::encode(capabilities("V3_0").encode_to_vec()), "0a060a0456335f30", "prost: key only");

    // Everything else is byte for byte Fabric's.
    let root = decoded.config.as_mut().and_then(|c| c.channel_group.as_mut()).expect("channel group");
    normalize_capabilities(root);
    assert_eq!(decoded, config_envelope());
    assert_eq!(hex::encode(decoded.encode_to_vec()), hex::encode(config_envelope().encode_to_vec()));

    let root = decoded.config.and_then(|c| c.channel_group).expect("channel group");
    let orderer = &root.groups["Orderer"];
    let ct = ConsensusType::decode(orderer.values["ConsensusType"].value.as_ref()).expect("ConsensusType");
    assert_eq!(ct.r#type, "etcdraft");
    let raft = ConfigMetadata::decode(ct.metadata.as_ref()).expect("etcdraft metadata");
    assert_eq!(raft.consenters[0].port, 7050);
    assert_eq!(raft.options.map(|o| o.tick_interval), Some("500ms".to_owned()));
    let org = &root.groups["Application"].groups[MSP_ID];
    let msp = MspConfig::decode(org.values["MSP"].value.as_ref()).expect("MSPConfig");
    let fabric = FabricMspConfig::decode(msp.config.as_ref()).expect("FabricMSPConfig");
    assert_eq!(fabric, fabric_msp());
    let policy = org.policies["Endorsement"].policy.clone().expect("policy");
    assert_eq!(policy.r#type, policy::PolicyType::Signature as i32);
    let spe = SignaturePolicyEnvelope::decode(policy.value.as_ref()).expect("signature policy");
    assert_eq!(spe, endorsement_policy());

    let bytes = theirs.get("etcdraft_block_metadata").expect("node printed etcdraft_block_metadata");
    assert_eq!(hex::encode(bytes), hex::encode(etcdraft_block_metadata().encode_to_vec()), "packed ids");
}

#[test]
fn fabric_javascript_decodes_our_channel_config() {
    let ours = [
        ("config_envelope", config_envelope().encode_to_vec()),
        ("etcdraft_block_metadata", etcdraft_block_metadata().encode_to_vec()),
    ];
    // The script decodes our Capabilities values with Fabric's classes and re-encodes them (see the FIXME
    // above) before comparing the trees.
    let out = node::decode(&ours);
    assert!(out.contains("ok config_envelope (9 nested layers)"), "{out}");
    assert!(out.contains("ok etcdraft_block_metadata (0 nested layers)"), "{out}");
}
