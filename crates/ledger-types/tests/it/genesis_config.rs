//! The genesis block as Fabric's `common.ConfigEnvelope`: the exact round trip config → genesis → config
//! (a table and a property), determinism, the shape of the tree (only keys Fabric's tooling knows), typed
//! errors for malformed trees and for the earlier format, PEM as OpenSSL writes it, and Fabric's own
//! JavaScript bindings reading the block.

use std::process::{Command, Stdio};

use fabric_protos::common::{
    Capabilities, ConfigEnvelope, ConfigGroup, ImplicitMetaPolicy, Orderers, SignaturePolicyEnvelope,
    implicit_meta_policy, policy,
};
use fabric_protos::etcdraft::ConfigMetadata;
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use fabric_protos::orderer::{BatchSize, BatchTimeout, ConsensusType};
use fabric_protos::protos::AnchorPeers;
use ledger_types::block::{BlockBuilder, BlockExt, stamp};
use ledger_types::config::{ConfigError, config_from_genesis, genesis_block};
use ledger_types::proto::{
    BatchConfig, Block, ChannelConfig, ChannelHeader, Consenter, ContractDefinition, Envelope, Header,
    HeaderType, IpechainConfigExtension, OrgConfig, Payload, SignatureHeader,
};
use ledger_types::tx::serialize_identity;
use ledger_types::{Hash32, TxValidationCode};
use proptest::prelude::*;
use prost::Message;

use crate::blocks::sample_config;

const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBorderer0\n-----END CERTIFICATE-----\n";

/// A configuration using every field: endpoints (IPv4, IPv6, names), several certificates, consenter ids
/// out of order with real identities, partial MSP-id lists, two contracts.
fn full_config() -> ChannelConfig {
    let org = |name: &str, msp: &str, endpoints: &[&str]| OrgConfig {
        msp_id: msp.into(),
        name: name.into(),
        root_certs: vec![format!("{name} root").into_bytes(), format!("{name} second root").into_bytes()],
        tls_root_certs: vec![format!("{name} tls root").into_bytes()],
        peer_endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
    };
    let consenter = |id: u64, port: u32| Consenter {
        id,
        host: format!("orderer{id}.example.com"),
        port,
        identity: serialize_identity("OrdererMSP", CERT_PEM.as_bytes()),
    };
    ChannelConfig {
        channel_id: "iot-2".into(),
        orgs: vec![
            org("Org1", "Org1MSP", &["peer0.org1.example.com:7051", "127.0.0.1:8051"]),
            org("Org2.example", "Org2MSP", &["[::1]:9051"]),
            org("Org3", "Org3MSP", &[]),
        ],
        orderer_orgs: vec![
            org("Orderer", "OrdererMSP", &["orderer7.example.com:7050", "orderer3.example.com:7050"]),
            org("Orderer2", "Orderer2MSP", &[]),
        ],
        consenters: vec![consenter(7, 7050), consenter(3, 7050), consenter(42, 17050)],
        batch: Some(BatchConfig {
            max_message_count: 10,
            preferred_max_bytes: 512 * 1024,
            absolute_max_bytes: 99 * 1024 * 1024,
            batch_timeout_ms: 2000,
        }),
        readers: vec!["Org1MSP".into(), "Org2MSP".into(), "Org3MSP".into()],
        writers: vec!["Org1MSP".into(), "Org3MSP".into()],
        admins: vec!["Org2MSP".into()],
        contracts: vec![
            ContractDefinition {
                name: "ipe".into(),
                endorsement_policy: "AND('Org1MSP.peer', OR('Org2MSP.member', 'Org3MSP.member'))".into(),
                version: "1.2".into(),
            },
            ContractDefinition {
                name: "kv".into(),
                endorsement_policy: "MAJORITY".into(),
                version: "1".into(),
            },
        ],
    }
}

fn configs() -> Vec<(&'static str, ChannelConfig)> {
    let mut no_contracts = full_config();
    no_contracts.contracts.clear();
    let mut nobody = sample_config();
    nobody.readers.clear();
    nobody.writers.clear();
    nobody.admins.clear();
    let mut one = sample_config();
    one.orgs.truncate(1);
    one.readers.truncate(1);
    one.writers.truncate(1);
    one.orderer_orgs.clear();
    one.consenters.truncate(1);
    one.batch = Some(BatchConfig {
        max_message_count: u32::MAX,
        preferred_max_bytes: 1,
        absolute_max_bytes: u32::MAX,
        batch_timeout_ms: u32::MAX,
    });
    vec![
        ("sample", sample_config()),
        ("full", full_config()),
        ("no contracts", no_contracts),
        ("nobody", nobody),
        ("one", one),
    ]
}

/// The genesis transaction's payload.
fn payload(genesis: &Block) -> Payload {
    let env = Envelope::decode(genesis.envelopes()[0].as_ref()).unwrap();
    Payload::decode(env.payload.as_ref()).unwrap()
}

fn tree(genesis: &Block) -> ConfigGroup {
    let data = payload(genesis).data;
    ConfigEnvelope::decode(data.as_ref()).unwrap().config.unwrap().channel_group.unwrap()
}

/// A genesis block as `genesis_block` makes it, around any payload data.
fn genesis_with_data(channel: &str, data: Vec<u8>) -> Block {
    let ch = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1,
        channel_id: channel.into(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: SignatureHeader::default().encode_to_vec().into(),
        }),
        data: data.into(),
    };
    let env = Envelope { payload: payload.encode_to_vec().into(), signature: vec![].into() };
    let mut block = BlockBuilder::new(0, Hash32::ZERO).push_envelope(env.encode_to_vec()).build();
    block.set_validation_codes(vec![TxValidationCode::Valid.as_u8()]);
    stamp(&mut block, None);
    block
}

/// The genesis of `sample_config` with its tree changed by `edit`.
fn edited(edit: impl FnOnce(&mut ConfigGroup)) -> Result<ChannelConfig, ConfigError> {
    let genesis = genesis_block(&sample_config()).unwrap();
    let data = payload(&genesis).data;
    let mut env = ConfigEnvelope::decode(data.as_ref()).unwrap();
    edit(env.config.as_mut().unwrap().channel_group.as_mut().unwrap());
    let ext = IpechainConfigExtension::decode(data.as_ref()).unwrap();
    let mut data = env.encode_to_vec();
    data.extend(ext.encode_to_vec());
    config_from_genesis(&genesis_with_data("iot", data))
}

fn keys<T>(m: &std::collections::BTreeMap<String, T>) -> Vec<String> {
    m.keys().cloned().collect()
}

fn orderer(g: &mut ConfigGroup) -> &mut ConfigGroup {
    g.groups.get_mut("Orderer").unwrap()
}

fn org1(g: &mut ConfigGroup) -> &mut ConfigGroup {
    g.groups.get_mut("Application").unwrap().groups.get_mut("Org1").unwrap()
}

fn set_value(g: &mut ConfigGroup, key: &str, m: &impl Message) {
    g.values.get_mut(key).unwrap_or_else(|| panic!("value {key}")).value = m.encode_to_vec().into();
}

fn missing(kind: &'static str, path: &str) -> Result<ChannelConfig, ConfigError> {
    Err(ConfigError::Missing { kind, path: path.into() })
}

#[test]
fn config_round_trips_exactly_through_the_genesis_block() {
    for (name, cfg) in configs() {
        let cfg = cfg.normalized();
        let genesis = genesis_block(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(genesis.number(), 0);
        assert_eq!(genesis.validation_codes(), &[TxValidationCode::Valid.as_u8()]);
        assert_eq!(config_from_genesis(&genesis).as_ref(), Ok(&cfg), "{name}");
        assert_eq!(genesis_block(&cfg).unwrap(), genesis, "{name}: deterministic");
    }
}

#[test]
fn organizations_come_back_in_the_trees_order() {
    let mut cfg = full_config();
    cfg.orgs.reverse();
    cfg.orderer_orgs.reverse();
    cfg.readers.reverse();
    cfg.writers.push("Org1MSP".into());
    assert_ne!(cfg, cfg.normalized());
    let genesis = genesis_block(&cfg).unwrap();
    assert_eq!(config_from_genesis(&genesis), Ok(cfg.normalized()));
    assert_eq!(genesis.encode_to_vec(), genesis_block(&cfg.normalized()).unwrap().encode_to_vec());
    let back = cfg.normalized();
    let names: Vec<&str> = back.orgs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["Org1", "Org2.example", "Org3"]);
    assert_eq!(back.readers, ["Org1MSP", "Org2MSP", "Org3MSP"]);
    assert_eq!(back.writers, ["Org1MSP", "Org3MSP"]);
}

#[test]
fn the_tree_is_fabrics_configtxgen_shape() {
    let cfg = full_config();
    let genesis = genesis_block(&cfg).unwrap();
    let p = payload(&genesis);
    let ch = ChannelHeader::decode(p.header.unwrap().channel_header.as_ref()).unwrap();
    assert_eq!((ch.r#type, ch.version, ch.channel_id.as_str()), (HeaderType::Config as i32, 1, "iot-2"));
    let env = ConfigEnvelope::decode(p.data.as_ref()).unwrap();
    assert_eq!(env.last_update, None);
    let config = env.config.clone().unwrap();
    assert_eq!(config.sequence, 0);
    // The data is Fabric's ConfigEnvelope followed by ipechain's extension field 1000, nothing else.
    let ext = IpechainConfigExtension { contracts: cfg.contracts.clone() };
    assert_eq!(p.data, [env.encode_to_vec(), ext.encode_to_vec()].concat());
    assert_eq!(hex::encode(&ext.encode_to_vec()[..2]), "c23e", "field 1000, length-delimited");

    let root = config.channel_group.unwrap();
    assert_eq!(
        keys(&root.values),
        ["BlockDataHashingStructure", "Capabilities", "HashingAlgorithm", "OrdererAddresses"]
    );
    assert_eq!(keys(&root.groups), ["Application", "Orderer"]);
    assert_eq!(keys(&root.policies), ["Admins", "Readers", "Writers"]);
    let orderer = &root.groups["Orderer"];
    assert_eq!(
        keys(&orderer.values),
        ["BatchSize", "BatchTimeout", "Capabilities", "ChannelRestrictions", "ConsensusType", "Orderers"]
    );
    assert_eq!(keys(&orderer.policies), ["Admins", "BlockValidation", "Readers", "Writers"]);
    assert_eq!(keys(&orderer.groups), ["Orderer", "Orderer2"]);
    assert_eq!(keys(&orderer.groups["Orderer"].values), ["Endpoints", "MSP"]);
    assert_eq!(keys(&orderer.groups["Orderer2"].values), ["MSP"]);
    let app = &root.groups["Application"];
    assert_eq!(keys(&app.values), ["Capabilities"]);
    assert_eq!(keys(&app.policies), ["Admins", "Endorsement", "LifecycleEndorsement", "Readers", "Writers"]);
    assert_eq!(keys(&app.groups), ["Org1", "Org2.example", "Org3"]);
    assert_eq!(keys(&app.groups["Org1"].values), ["AnchorPeers", "MSP"]);
    assert_eq!(keys(&app.groups["Org3"].values), ["MSP"]);
    assert_eq!(keys(&app.groups["Org1"].policies), ["Admins", "Endorsement", "Readers", "Writers"]);
    assert_eq!(root.values["OrdererAddresses"].mod_policy, "/Channel/Orderer/Admins");
    assert_eq!(root.values["Capabilities"].mod_policy, "Admins");
    assert_eq!(root.mod_policy, "Admins");

    let caps = |g: &ConfigGroup| {
        Capabilities::decode(g.values["Capabilities"].value.as_ref())
            .unwrap()
            .capabilities
            .into_keys()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (caps(&root), caps(orderer), caps(app)),
        (vec!["V3_0".to_owned()], vec!["V2_0".to_owned()], vec!["V2_5".to_owned()])
    );
    let implicit = |g: &ConfigGroup, key: &str| {
        let p = g.policies[key].policy.clone().unwrap();
        assert_eq!(p.r#type, policy::PolicyType::ImplicitMeta as i32, "{key}");
        let m = ImplicitMetaPolicy::decode(p.value.as_ref()).unwrap();
        (implicit_meta_policy::Rule::try_from(m.rule).unwrap(), m.sub_policy)
    };
    use implicit_meta_policy::Rule::{Any, Majority};
    assert_eq!(implicit(&root, "Admins"), (Majority, "Admins".into()));
    assert_eq!(implicit(orderer, "BlockValidation"), (Any, "Writers".into()));
    assert_eq!(implicit(app, "LifecycleEndorsement"), (Majority, "Endorsement".into()));

    let ct = ConsensusType::decode(orderer.values["ConsensusType"].value.as_ref()).unwrap();
    assert_eq!((ct.r#type.as_str(), ct.state), ("etcdraft", 0));
    let raft = ConfigMetadata::decode(ct.metadata.as_ref()).unwrap();
    let raft: Vec<(String, u32)> = raft.consenters.into_iter().map(|c| (c.host, c.port)).collect();
    assert_eq!(raft[2], ("orderer42.example.com".to_owned(), 17050));
    let mapping = Orderers::decode(orderer.values["Orderers"].value.as_ref()).unwrap().consenter_mapping;
    assert_eq!(mapping.iter().map(|c| c.id).collect::<Vec<_>>(), [7, 3, 42]);
    assert_eq!(
        (mapping[0].msp_id.as_str(), mapping[0].identity.as_ref()),
        ("OrdererMSP", CERT_PEM.as_bytes())
    );
    let size = BatchSize::decode(orderer.values["BatchSize"].value.as_ref()).unwrap();
    assert_eq!(
        (size.max_message_count, size.absolute_max_bytes, size.preferred_max_bytes),
        (10, 99 << 20, 512 << 10)
    );
    let timeout = BatchTimeout::decode(orderer.values["BatchTimeout"].value.as_ref()).unwrap();
    assert_eq!(timeout.timeout, "2000ms");

    let msp = MspConfig::decode(app.groups["Org1"].values["MSP"].value.as_ref()).unwrap();
    assert_eq!(msp.r#type, 0);
    let fabric = FabricMspConfig::decode(msp.config.as_ref()).unwrap();
    assert_eq!(fabric.name, "Org1MSP");
    assert!(
        String::from_utf8(fabric.root_certs[1].to_vec())
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    let ous = fabric.fabric_node_ous.unwrap();
    assert!(ous.enable);
    assert_eq!(ous.peer_ou_identifier.unwrap().certificate, fabric.root_certs[0]);
    let anchors =
        AnchorPeers::decode(app.groups["Org2.example"].values["AnchorPeers"].value.as_ref()).unwrap();
    assert_eq!((anchors.anchor_peers[0].host.as_str(), anchors.anchor_peers[0].port), ("[::1]", 9051));

    // Readers/writers/admins as each organization's signature policies.
    let principal = |org: &str, key: &str| {
        let p = app.groups[org].policies[key].policy.clone().unwrap();
        assert_eq!(p.r#type, policy::PolicyType::Signature as i32);
        SignaturePolicyEnvelope::decode(p.value.as_ref()).unwrap().identities.len()
    };
    assert_eq!(principal("Org1", "Writers"), 1);
    assert_eq!(principal("Org2.example", "Writers"), 0, "reject-all");
    assert_eq!(principal("Org1", "Admins"), 0, "reject-all");
    assert_eq!(principal("Org2.example", "Admins"), 1);

    // Without contracts the payload is a pure Fabric ConfigEnvelope.
    let mut plain = cfg.clone();
    plain.contracts.clear();
    let data = payload(&genesis_block(&plain).unwrap()).data;
    assert_eq!(ConfigEnvelope::decode(data.as_ref()).unwrap().encode_to_vec(), data);
}

#[test]
fn malformed_trees_give_typed_errors() {
    assert_eq!(edited(|_| {}), Ok(sample_config()));
    assert_eq!(edited(|g| drop(g.groups.remove("Orderer"))), missing("group", "/Channel/Orderer"));
    assert_eq!(edited(|g| drop(g.groups.remove("Application"))), missing("group", "/Channel/Application"));
    assert_eq!(
        edited(|g| drop(orderer(g).values.remove("BatchSize"))),
        missing("value", "/Channel/Orderer/BatchSize")
    );
    assert_eq!(
        edited(|g| drop(orderer(g).values.remove("Orderers"))),
        missing("value", "/Channel/Orderer/Orderers")
    );
    assert_eq!(
        edited(|g| drop(orderer(g).values.remove("ConsensusType"))),
        missing("value", "/Channel/Orderer/ConsensusType")
    );
    let r = edited(|g| orderer(g).values.get_mut("ConsensusType").unwrap().value = vec![0xff, 0xff].into());
    assert!(
        matches!(&r, Err(ConfigError::Undecodable { path, .. }) if path == "/Channel/Orderer/ConsensusType"),
        "{r:?}"
    );
    let r = edited(|g| {
        set_value(orderer(g), "ConsensusType", &ConsensusType { r#type: "BFT".into(), ..Default::default() })
    });
    assert!(matches!(&r, Err(ConfigError::Unsupported { what, .. }) if what.contains("\"BFT\"")), "{r:?}");
    let r = edited(|g| {
        let ct = ConsensusType { r#type: "etcdraft".into(), metadata: vec![0x0a, 0x05].into(), state: 0 };
        set_value(orderer(g), "ConsensusType", &ct)
    });
    assert!(matches!(&r, Err(ConfigError::Undecodable { message: "etcdraft.ConfigMetadata", .. })), "{r:?}");
    let r = edited(|g| {
        let ct = ConsensusType::decode(orderer(g).values["ConsensusType"].value.as_ref()).unwrap();
        let mut raft = ConfigMetadata::decode(ct.metadata.as_ref()).unwrap();
        raft.consenters[1].port += 1;
        set_value(orderer(g), "ConsensusType", &ConsensusType { metadata: raft.encode_to_vec().into(), ..ct })
    });
    assert!(matches!(&r, Err(ConfigError::Invalid(m)) if m.contains("etcdraft consenters")), "{r:?}");
    let r = edited(|g| set_value(orderer(g), "BatchTimeout", &BatchTimeout { timeout: "1.5s".into() }));
    assert!(
        matches!(&r, Err(ConfigError::Unsupported { path, .. }) if path == "/Channel/Orderer/BatchTimeout"),
        "{r:?}"
    );
    let r = edited(|g| set_value(orderer(g), "BatchTimeout", &BatchTimeout { timeout: "2s".into() }));
    assert_eq!(
        r.map(|c| c.batch.unwrap().batch_timeout_ms),
        Ok(2000),
        "a Go duration as configtxgen writes it"
    );
    let r = edited(|g| set_value(orderer(g), "BatchSize", &BatchSize::default()));
    assert!(matches!(&r, Err(ConfigError::Invalid(m)) if m.contains("batch config")), "{r:?}");

    assert_eq!(
        edited(|g| drop(org1(g).values.remove("MSP"))),
        missing("value", "/Channel/Application/Org1/MSP")
    );
    let r = edited(|g| {
        let msp = MspConfig::decode(org1(g).values["MSP"].value.as_ref()).unwrap();
        set_value(org1(g), "MSP", &MspConfig { r#type: 1, ..msp })
    });
    assert!(matches!(&r, Err(ConfigError::Unsupported { what, .. }) if what.contains("MSP type 1")), "{r:?}");
    let r = edited(|g| {
        let msp = MspConfig::decode(org1(g).values["MSP"].value.as_ref()).unwrap();
        let mut fabric = FabricMspConfig::decode(msp.config.as_ref()).unwrap();
        fabric.root_certs[0] = b"not PEM".to_vec().into();
        set_value(org1(g), "MSP", &MspConfig { config: fabric.encode_to_vec().into(), ..msp })
    });
    assert!(matches!(&r, Err(ConfigError::Undecodable { message: "a PEM certificate", .. })), "{r:?}");
    assert_eq!(
        edited(|g| drop(org1(g).policies.remove("Readers"))),
        missing("policy", "/Channel/Application/Org1/Readers")
    );
    let r = edited(|g| {
        let other = org1(g).policies["Endorsement"].clone();
        org1(g).policies.insert("Writers".into(), other);
    });
    assert!(
        matches!(&r, Err(ConfigError::Unsupported { path, what }) if path.ends_with("Org1/Writers") && what.contains("OR('Org1MSP.member')")),
        "{r:?}"
    );
    let r = edited(|g| {
        let meta = g.policies["Readers"].clone();
        org1(g).policies.insert("Admins".into(), meta);
    });
    assert!(
        matches!(&r, Err(ConfigError::Unsupported { what, .. }) if what.contains("policy type 3")),
        "{r:?}"
    );
    let r = edited(|g| {
        let anchors = AnchorPeers {
            anchor_peers: vec![fabric_protos::protos::AnchorPeer { host: "h".into(), port: 0 }],
        };
        org1(g).values.insert(
            "AnchorPeers".into(),
            fabric_protos::common::ConfigValue {
                value: anchors.encode_to_vec().into(),
                ..Default::default()
            },
        );
    });
    assert!(matches!(&r, Err(ConfigError::Invalid(m)) if m.contains("port 0")), "{r:?}");
    let r = edited(|g| {
        let apps = &mut g.groups.get_mut("Application").unwrap().groups;
        let org = apps.remove("Org1").unwrap();
        apps.insert("Org 1".into(), org);
    });
    assert!(matches!(&r, Err(ConfigError::Invalid(m)) if m.contains("Fabric config key")), "{r:?}");

    // Around the tree.
    let genesis = |data: Vec<u8>| config_from_genesis(&genesis_with_data("iot", data));
    let no_config = ConfigEnvelope { config: None, last_update: None };
    assert_eq!(genesis(no_config.encode_to_vec()), missing("message", "ConfigEnvelope.config"));
    let no_group = ConfigEnvelope {
        config: Some(fabric_protos::common::Config { sequence: 0, channel_group: None }),
        last_update: None,
    };
    assert_eq!(genesis(no_group.encode_to_vec()), missing("group", "/Channel"));
    assert!(matches!(genesis(vec![0xff]), Err(ConfigError::Undecodable { .. })));
    let mut truncated_extension = payload(&genesis_block(&sample_config()).unwrap()).data.to_vec();
    truncated_extension.truncate(truncated_extension.len() - 1);
    assert!(matches!(genesis(truncated_extension), Err(ConfigError::Undecodable { .. })));
}

#[test]
fn an_earlier_format_genesis_says_to_start_from_a_fresh_data_directory() {
    // The genesis payload as ipechain wrote it before 2026-12: its own ChannelConfig message.
    let old = genesis_with_data("iot", sample_config().encode_to_vec());
    let e = config_from_genesis(&old).unwrap_err();
    assert_eq!(e, ConfigError::EarlierFormat);
    let msg = e.to_string();
    assert!(
        msg.contains("earlier channel configuration format") && msg.contains("fresh data directory"),
        "{msg}"
    );
    // Another channel's name in the header: not recognized as the old format, and not a Fabric tree either.
    assert!(!matches!(
        config_from_genesis(&genesis_with_data("other", sample_config().encode_to_vec())),
        Ok(_) | Err(ConfigError::EarlierFormat)
    ));
}

#[test]
fn configs_without_a_fabric_place_are_refused() {
    let refused = |edit: &dyn Fn(&mut ChannelConfig), what: &str| {
        let mut c = sample_config();
        edit(&mut c);
        let e = genesis_block(&c).unwrap_err().to_string();
        assert!(e.contains(what), "{what}: {e}");
    };
    refused(&|c| c.orgs[0].name = "Org 1".into(), "Fabric config key");
    refused(&|c| c.orgs[1].name = "Org1".into(), "two application organizations");
    refused(&|c| c.orgs[1].msp_id = "Org1MSP".into(), "two application organizations");
    refused(&|c| c.orgs[0].peer_endpoints = vec!["peer0".into()], "peer endpoint");
    refused(&|c| c.orgs[0].peer_endpoints = vec!["peer0:07051".into()], "peer endpoint");
    refused(&|c| c.readers.push("OrdererMSP".into()), "readers: \"OrdererMSP\"");
    refused(&|c| c.admins.push("Nobody".into()), "admins");
    refused(&|c| c.consenters[0].id = u64::from(u32::MAX) + 1, "32-bit");
    refused(&|c| c.consenters[0].identity = b"raw bytes".to_vec(), "SerializedIdentity");
    // Orderer organizations' endpoints are kept as written (Fabric's Endpoints are strings).
    let mut c = sample_config();
    c.orderer_orgs[0].peer_endpoints = vec!["anything goes".into()];
    assert_eq!(config_from_genesis(&genesis_block(&c).unwrap()), Ok(c));
}

#[test]
fn certificates_are_pem_as_openssl_writes_them() {
    let ca = test_support::pki::Ca::new("Org1 CA");
    let x509 = openssl::x509::X509::from_pem(&ca.cert_pem).unwrap();
    let mut cfg = sample_config();
    cfg.orgs[0].root_certs = vec![x509.to_der().unwrap()];
    let genesis = genesis_block(&cfg).unwrap();
    let msp =
        MspConfig::decode(tree(&genesis).groups["Application"].groups["Org1"].values["MSP"].value.as_ref())
            .unwrap();
    let fabric = FabricMspConfig::decode(msp.config.as_ref()).unwrap();
    assert_eq!(
        String::from_utf8(fabric.root_certs[0].to_vec()).unwrap(),
        String::from_utf8(x509.to_pem().unwrap()).unwrap()
    );
    assert_eq!(config_from_genesis(&genesis), Ok(cfg));
}

/// Fabric's own JavaScript bindings read our genesis block and find everything where Fabric keeps it.
#[test]
fn fabric_javascript_reads_the_genesis_config() {
    let cfg = full_config();
    let genesis = genesis_block(&cfg).unwrap();
    let script =
        test_support::workspace_root().join("crates/ledger-types/tests/it/scripts/genesis_config.js");
    let mut child = Command::new("node")
        .arg(script)
        .env("NODE_PATH", test_support::fabric_protos_node_modules())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/test.sh needs Node.js for the npm peers)");
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        hex::encode(genesis.encode_to_vec()).as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(v["block_number"], 0);
    assert_eq!(v["header_type"], HeaderType::Config as i32);
    assert_eq!(v["channel_id"], "iot-2");
    assert_eq!(v["sequence"], 0);
    assert_eq!(v["hashing_algorithm"], "SHA256");
    assert_eq!(v["block_data_hashing_width"], u32::MAX);
    assert_eq!(
        v["orderer_addresses"],
        serde_json::json!([
            "orderer7.example.com:7050",
            "orderer3.example.com:7050",
            "orderer42.example.com:17050"
        ])
    );
    assert_eq!(
        v["capabilities"],
        serde_json::json!({"channel": ["V3_0"], "orderer": ["V2_0"], "application": ["V2_5"]})
    );
    assert_eq!(v["channel_policies"], serde_json::json!(["ANY Readers", "ANY Writers", "MAJORITY Admins"]));
    assert_eq!(v["block_validation"], "ANY Writers");
    assert_eq!(
        (&v["consensus_type"], &v["consensus_state"]),
        (&serde_json::json!("etcdraft"), &serde_json::json!(0))
    );
    assert_eq!(v["etcdraft_consenters"], v["orderer_addresses"]);
    assert_eq!(
        v["consenter_mapping"][2],
        serde_json::json!({"id": 42, "address": "orderer42.example.com:17050", "msp_id": "OrdererMSP", "identity": CERT_PEM})
    );
    assert_eq!(v["batch_size"], serde_json::json!([10, 99 << 20, 512 << 10]));
    assert_eq!(v["batch_timeout"], "2000ms");

    let orgs = v["application_orgs"].as_array().unwrap();
    let names: Vec<(&str, &str)> =
        orgs.iter().map(|o| (o["name"].as_str().unwrap(), o["msp_id"].as_str().unwrap())).collect();
    assert_eq!(names, [("Org1", "Org1MSP"), ("Org2.example", "Org2MSP"), ("Org3", "Org3MSP")]);
    let org1 = &orgs[0];
    assert_eq!(org1["msp_type"], 0);
    assert_eq!(org1["node_ous"], true);
    assert_eq!(org1["endpoints"], serde_json::json!(["peer0.org1.example.com:7051", "127.0.0.1:8051"]));
    // The PEM Fabric reads decodes to the DER we started from.
    let pem = org1["root_certs"][1].as_str().unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(openssl::base64::decode_block(&b64).unwrap(), cfg.orgs[0].root_certs[1]);
    let policy = |o: &serde_json::Value, key: &str| o["policies"][key]["principals"].clone();
    assert_eq!(policy(org1, "Readers"), serde_json::json!(["Org1MSP.member"]));
    assert_eq!(policy(org1, "Writers"), serde_json::json!(["Org1MSP.member"]));
    assert_eq!(policy(org1, "Admins"), serde_json::json!([]), "reject-all");
    assert_eq!(org1["policies"]["Admins"]["n"], 1);
    assert_eq!(policy(org1, "Endorsement"), serde_json::json!(["Org1MSP.peer"]));
    assert_eq!(policy(&orgs[1], "Admins"), serde_json::json!(["Org2MSP.admin"]));
    assert_eq!(policy(&orgs[1], "Writers"), serde_json::json!([]));
    assert_eq!(orgs[1]["endpoints"], serde_json::json!(["[::1]:9051"]));

    let orderers = v["orderer_orgs"].as_array().unwrap();
    assert_eq!(orderers[0]["msp_id"], "OrdererMSP");
    assert_eq!(
        orderers[0]["endpoints"],
        serde_json::json!(["orderer7.example.com:7050", "orderer3.example.com:7050"])
    );
    assert_eq!(policy(&orderers[0], "Writers"), serde_json::json!(["OrdererMSP.member"]));
    assert_eq!(policy(&orderers[1], "Admins"), serde_json::json!(["Orderer2MSP.admin"]));

    // Only Fabric's vocabulary (configtxlator refuses a block with any other value name).
    let keys: Vec<&str> = v["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    for key in &keys {
        let name = key.rsplit('/').next().unwrap();
        let known = [
            "HashingAlgorithm (value)",
            "BlockDataHashingStructure (value)",
            "OrdererAddresses (value)",
            "Capabilities (value)",
            "ConsensusType (value)",
            "Orderers (value)",
            "BatchSize (value)",
            "BatchTimeout (value)",
            "ChannelRestrictions (value)",
            "MSP (value)",
            "Endpoints (value)",
            "AnchorPeers (value)",
            "Orderer (group)",
            "Application (group)",
        ];
        let org_group = key.ends_with("(group)")
            && (key.starts_with("/Channel/Orderer/") || key.starts_with("/Channel/Application/"));
        let policy = key.contains("(policy signature)") || key.contains("(policy implicit_meta)");
        assert!(known.contains(&name) || org_group || policy, "{key}");
    }
    assert_eq!(keys.len(), 56, "{keys:#?}");
}

fn arb_org(prefix: &'static str) -> impl Strategy<Value = OrgConfig> {
    (
        "[A-Za-z0-9][A-Za-z0-9.-]{0,8}",
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..3),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..2),
        proptest::collection::vec(("[a-z0-9.]{1,12}", 1u16..), 0..3),
    )
        .prop_map(move |(name, root_certs, tls_root_certs, endpoints)| OrgConfig {
            msp_id: format!("{prefix}{name}MSP"),
            name: format!("{prefix}{name}"),
            root_certs,
            tls_root_certs,
            peer_endpoints: endpoints.into_iter().map(|(h, p)| format!("{h}:{p}")).collect(),
        })
}

fn arb_config() -> impl Strategy<Value = ChannelConfig> {
    (
        proptest::collection::vec(arb_org("A"), 1..4),
        proptest::collection::vec(arb_org("O"), 0..3),
        proptest::collection::btree_set(1u64..=u64::from(u32::MAX), 1..4),
        proptest::collection::vec(any::<bool>(), 12),
        (1u32.., 1u32.., 1u32..),
        proptest::collection::vec(("[a-z][a-z0-9]{0,6}", "[0-9.]{1,4}"), 0..3),
    )
        .prop_map(|(mut orgs, mut orderer_orgs, ids, picks, (count, preferred, timeout), contracts)| {
            orgs.sort_by(|a, b| a.name.cmp(&b.name));
            orgs.dedup_by(|a, b| a.name == b.name);
            orderer_orgs.sort_by(|a, b| a.name.cmp(&b.name));
            orderer_orgs.dedup_by(|a, b| a.name == b.name);
            let pick = |offset: usize| -> Vec<String> {
                orgs.iter()
                    .enumerate()
                    .filter(|(i, _)| picks[(offset + i) % 12])
                    .map(|(_, o)| o.msp_id.clone())
                    .collect()
            };
            let (readers, writers, admins) = (pick(0), pick(4), pick(8));
            let consenters = ids
                .into_iter()
                .rev()
                .map(|id| Consenter {
                    id,
                    host: format!("o{id}"),
                    port: (id % 65536) as u32,
                    identity: if id % 2 == 0 {
                        Vec::new()
                    } else {
                        serialize_identity("OMSP", format!("cert {id}").as_bytes())
                    },
                })
                .collect();
            ChannelConfig {
                channel_id: "iot".into(),
                orgs,
                orderer_orgs,
                consenters,
                batch: Some(BatchConfig {
                    max_message_count: count,
                    preferred_max_bytes: preferred,
                    absolute_max_bytes: preferred.saturating_add(count),
                    batch_timeout_ms: timeout,
                }),
                readers,
                writers,
                admins,
                contracts: contracts
                    .into_iter()
                    .map(|(name, version)| ContractDefinition {
                        name,
                        endorsement_policy: "ANY".into(),
                        version,
                    })
                    .collect(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_valid_config_round_trips(cfg in arb_config()) {
        prop_assume!(cfg.validate().is_ok());
        let genesis = genesis_block(&cfg).unwrap();
        prop_assert_eq!(config_from_genesis(&genesis), Ok(cfg.normalized()));
        prop_assert_eq!(&cfg, &cfg.normalized(), "the strategy makes normalized configs");
        prop_assert_eq!(genesis.encode_to_vec(), genesis_block(&cfg).unwrap().encode_to_vec());
    }

    #[test]
    fn damaged_genesis_payloads_give_errors_not_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4)) {
        let mut data = payload(&genesis_block(&full_config()).unwrap()).data.to_vec();
        for (at, x) in flips {
            let i = at.index(data.len());
            data[i] ^= x;
        }
        let _ = config_from_genesis(&genesis_with_data("iot-2", data));
    }
}
