//! [`ChannelConfig`] ⇄ Fabric's configuration tree (`common.ConfigGroup`), as `configtxgen` builds an
//! application channel with an orderer group (Fabric 3.x, etcdraft):
//!
//! ```text
//! /Channel                      values HashingAlgorithm{SHA256}, BlockDataHashingStructure{4294967295},
//!                                      OrdererAddresses{consenters' host:port}, Capabilities{V3_0}
//!                               policies Readers (ANY Readers), Writers (ANY Writers), Admins (MAJORITY Admins)
//!   /Orderer                    values ConsensusType{etcdraft, ConfigMetadata{consenters host, port}, NORMAL},
//!                                      Orderers{consenter_mapping: id, host, port, msp_id, identity},
//!                                      BatchSize, BatchTimeout{"<n>ms"}, ChannelRestrictions{}, Capabilities{V2_0}
//!                               policies Readers, Writers (ANY), Admins (MAJORITY), BlockValidation (ANY Writers)
//!     /<orderer org name>       values MSP, Endpoints (its peer_endpoints, if any)
//!                               policies Readers, Writers OR('<msp>.member'), Admins OR('<msp>.admin')
//!   /Application                values Capabilities{V2_5}
//!                               policies Readers, Writers (ANY), Admins, Endorsement, LifecycleEndorsement
//!                                        (MAJORITY)
//!     /<org name>               values MSP, AnchorPeers (its peer_endpoints, if any)
//!                               policies Readers, Writers OR('<msp>.member') if in readers/writers, else
//!                                        reject-all; Admins OR('<msp>.admin') if in admins, else reject-all;
//!                                        Endorsement OR('<msp>.peer')
//! ```
//!
//! Every key is one Fabric's own tooling (configtxlator's protolator, Fabric 3.x: fabric-config v0.2 and
//! later know `Orderers`) knows at its place: an unknown value name makes it refuse the whole block
//! (hyperledger/fabric-config#57), which is why the contract definitions are not a value here. `MSP` is `MSPConfig{type 0 (X.509), FabricMSPConfig{name =
//! msp_id, root_certs, tls_root_certs (PEM), crypto_config SHA2/SHA256, NodeOUs client/peer/admin/orderer}}`.
//! Channel capability `V3_0`: ipechain's identities are Ed25519 (Fabric accepts Ed25519 only on V3_0
//! channels) and `Orderers` is Fabric 3's consenter mapping. Every `mod_policy` is `Admins`, except
//! `OrdererAddresses`' (`/Channel/Orderer/Admins`), as configtxgen writes them.
//!
//! Read back: organizations from the groups, the MSP-id lists from each application organization's
//! policies, consenters from `Orderers` (checked against the etcdraft consenters), batch limits from
//! `BatchSize` and `BatchTimeout`. What is derived or fixed (capabilities, channel-level policies, NodeOUs,
//! `OrdererAddresses`, the orderer organizations' policies) is written but not read.

use std::collections::BTreeMap;

use fabric_protos::common::{
    BlockDataHashingStructure, Capabilities, Capability, ConfigGroup, ConfigPolicy, ConfigValue,
    Consenter as FabricConsenter, HashingAlgorithm, ImplicitMetaPolicy, MspPrincipal, MspRole,
    OrdererAddresses, Orderers, Policy, SignaturePolicy, SignaturePolicyEnvelope, implicit_meta_policy,
    msp_principal, msp_role, policy, signature_policy,
};
use fabric_protos::etcdraft::{self, ConfigMetadata};
use fabric_protos::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig, SerializedIdentity,
};
use fabric_protos::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType, consensus_type};
use fabric_protos::protos::{AnchorPeer, AnchorPeers};
use prost::Message;

use super::ConfigError;
use super::pem::{cert_der, cert_pem};
use crate::proto::{BatchConfig, ChannelConfig, Consenter, ContractDefinition, OrgConfig};

/// The root group's path.
pub(super) const CHANNEL: &str = "/Channel";
const ORDERER: &str = "Orderer";
const APPLICATION: &str = "Application";

const ADMINS: &str = "Admins";
const READERS: &str = "Readers";
const WRITERS: &str = "Writers";
const ENDORSEMENT: &str = "Endorsement";
const LIFECYCLE_ENDORSEMENT: &str = "LifecycleEndorsement";
const BLOCK_VALIDATION: &str = "BlockValidation";

const HASHING_ALGORITHM: &str = "HashingAlgorithm";
const BLOCK_DATA_HASHING_STRUCTURE: &str = "BlockDataHashingStructure";
const ORDERER_ADDRESSES: &str = "OrdererAddresses";
const CAPABILITIES: &str = "Capabilities";
const CONSENSUS_TYPE: &str = "ConsensusType";
const ORDERERS: &str = "Orderers";
const BATCH_SIZE: &str = "BatchSize";
const BATCH_TIMEOUT: &str = "BatchTimeout";
const CHANNEL_RESTRICTIONS: &str = "ChannelRestrictions";
const MSP: &str = "MSP";
const ENDPOINTS: &str = "Endpoints";
const ANCHOR_PEERS: &str = "AnchorPeers";

const ORDERER_ADMINS: &str = "/Channel/Orderer/Admins";
const CHANNEL_CAPABILITY: &str = "V3_0";
const ORDERER_CAPABILITY: &str = "V2_0";
const APPLICATION_CAPABILITY: &str = "V2_5";
const ETCDRAFT: &str = "etcdraft";
/// `MSPConfig.type` of Fabric's X.509 MSP (`FABRIC`; 1 is Idemix).
const FABRIC_MSP_TYPE: i32 = 0;

// ---------------------------------------------------------------------------------------------------------
// Checks shared with `ChannelConfig::validate`.

/// Fabric's rule for config keys (`configtx.validateConfigID`): 1 to 249 of `[A-Za-z0-9.-]`, not `.` or `..`.
pub(super) fn check_config_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > 249 {
        return Err("must have 1 to 249 characters");
    }
    if key == "." || key == ".." {
        return Err("must not be `.` or `..`");
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return Err("only letters, digits, '.' and '-' are allowed");
    }
    Ok(())
}

/// `host:port` → (host, port), where `port` is written as `u16::to_string` writes it (so that Fabric's
/// `AnchorPeer{host, port}` gives the same string back) and is not 0.
pub(super) fn split_endpoint(endpoint: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = endpoint.rsplit_once(':').ok_or("expected host:port")?;
    let number: u16 = port.parse().map_err(|_| "the port must be a number from 1 to 65535")?;
    if host.is_empty() || number == 0 || number.to_string() != port {
        return Err("expected host:port with a port from 1 to 65535, without leading zeros");
    }
    Ok((host, number))
}

fn join_endpoint(host: &str, port: u32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---------------------------------------------------------------------------------------------------------
// Writing.

fn group() -> ConfigGroup {
    ConfigGroup { mod_policy: ADMINS.into(), ..Default::default() }
}

fn value_with(message: &impl Message, mod_policy: &str) -> ConfigValue {
    ConfigValue { version: 0, value: message.encode_to_vec().into(), mod_policy: mod_policy.into() }
}

fn value(message: &impl Message) -> ConfigValue {
    value_with(message, ADMINS)
}

fn config_policy(policy_type: policy::PolicyType, value: Vec<u8>) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(Policy { r#type: policy_type as i32, value: value.into() }),
        mod_policy: ADMINS.into(),
    }
}

fn implicit_meta(rule: implicit_meta_policy::Rule, sub_policy: &str) -> ConfigPolicy {
    let meta = ImplicitMetaPolicy { sub_policy: sub_policy.into(), rule: rule as i32 };
    config_policy(policy::PolicyType::ImplicitMeta, meta.encode_to_vec())
}

/// `OR('<msp>.<role>')` as Fabric's policy DSL compiles it.
fn signed_by(msp_id: &str, role: msp_role::MspRoleType) -> SignaturePolicyEnvelope {
    let principal = MspRole { msp_identifier: msp_id.into(), role: role as i32 };
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: vec![SignaturePolicy { r#type: Some(signature_policy::Type::SignedBy(0)) }],
            })),
        }),
        identities: vec![MspPrincipal {
            principal_classification: msp_principal::Classification::Role as i32,
            principal: principal.encode_to_vec().into(),
        }],
    }
}

/// Fabric's `policydsl.RejectAllPolicy`: one of no rules.
fn reject_all() -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf { n: 1, rules: vec![] })),
        }),
        identities: vec![],
    }
}

fn signature(envelope: &SignaturePolicyEnvelope) -> ConfigPolicy {
    config_policy(policy::PolicyType::Signature, envelope.encode_to_vec())
}

fn capabilities(name: &str) -> Capabilities {
    Capabilities { capabilities: BTreeMap::from([(name.to_owned(), Capability {})]) }
}

fn insert<T>(map: &mut BTreeMap<String, T>, entries: impl IntoIterator<Item = (&'static str, T)>) {
    map.extend(entries.into_iter().map(|(k, v)| (k.to_owned(), v)));
}

fn msp_value(org: &OrgConfig) -> ConfigValue {
    let root_pem: Vec<bytes::Bytes> = org.root_certs.iter().map(|c| cert_pem(c).into()).collect();
    let ou = |name: &str| {
        Some(FabricOuIdentifier {
            certificate: root_pem.first().cloned().unwrap_or_default(),
            organizational_unit_identifier: name.into(),
        })
    };
    let fabric = FabricMspConfig {
        name: org.msp_id.clone(),
        root_certs: root_pem.clone(),
        tls_root_certs: org.tls_root_certs.iter().map(|c| cert_pem(c).into()).collect(),
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
    };
    value(&MspConfig { r#type: FABRIC_MSP_TYPE, config: fabric.encode_to_vec().into() })
}

/// The root `Channel` group for `c` (which [`ChannelConfig::validate`] accepted).
pub(super) fn channel_group(c: &ChannelConfig) -> ConfigGroup {
    use implicit_meta_policy::Rule::{Any, Majority};
    let mut root = group();
    let addresses = c.consenters.iter().map(|k| join_endpoint(&k.host, k.port)).collect();
    insert(
        &mut root.values,
        [
            (HASHING_ALGORITHM, value(&HashingAlgorithm { name: "SHA256".into() })),
            (BLOCK_DATA_HASHING_STRUCTURE, value(&BlockDataHashingStructure { width: u32::MAX })),
            (ORDERER_ADDRESSES, value_with(&OrdererAddresses { addresses }, ORDERER_ADMINS)),
            (CAPABILITIES, value(&capabilities(CHANNEL_CAPABILITY))),
        ],
    );
    insert(
        &mut root.policies,
        [
            (READERS, implicit_meta(Any, READERS)),
            (WRITERS, implicit_meta(Any, WRITERS)),
            (ADMINS, implicit_meta(Majority, ADMINS)),
        ],
    );
    insert(&mut root.groups, [(ORDERER, orderer_group(c)), (APPLICATION, application_group(c))]);
    root
}

fn orderer_group(c: &ChannelConfig) -> ConfigGroup {
    use implicit_meta_policy::Rule::{Any, Majority};
    let b = c.batch.unwrap_or_default();
    let raft = ConfigMetadata {
        consenters: c
            .consenters
            .iter()
            .map(|k| etcdraft::Consenter { host: k.host.clone(), port: k.port, ..Default::default() })
            .collect(),
        options: None,
    };
    let consensus = ConsensusType {
        r#type: ETCDRAFT.into(),
        metadata: raft.encode_to_vec().into(),
        state: consensus_type::State::Normal as i32,
    };
    let mapping = Orderers {
        consenter_mapping: c
            .consenters
            .iter()
            .map(|k| {
                let id = SerializedIdentity::decode(k.identity.as_slice()).unwrap_or_default();
                FabricConsenter {
                    id: u32::try_from(k.id).unwrap_or(u32::MAX),
                    host: k.host.clone(),
                    port: k.port,
                    msp_id: id.mspid,
                    identity: id.id_bytes,
                    ..Default::default()
                }
            })
            .collect(),
    };
    let batch_size = BatchSize {
        max_message_count: b.max_message_count,
        absolute_max_bytes: b.absolute_max_bytes,
        preferred_max_bytes: b.preferred_max_bytes,
    };
    let mut g = group();
    insert(
        &mut g.values,
        [
            (CONSENSUS_TYPE, value(&consensus)),
            (ORDERERS, value(&mapping)),
            (BATCH_SIZE, value(&batch_size)),
            (BATCH_TIMEOUT, value(&BatchTimeout { timeout: format!("{}ms", b.batch_timeout_ms) })),
            (CHANNEL_RESTRICTIONS, value(&ChannelRestrictions { max_count: 0 })),
            (CAPABILITIES, value(&capabilities(ORDERER_CAPABILITY))),
        ],
    );
    insert(
        &mut g.policies,
        [
            (READERS, implicit_meta(Any, READERS)),
            (WRITERS, implicit_meta(Any, WRITERS)),
            (ADMINS, implicit_meta(Majority, ADMINS)),
            (BLOCK_VALIDATION, implicit_meta(Any, WRITERS)),
        ],
    );
    for org in &c.orderer_orgs {
        use msp_role::MspRoleType::{Admin, Member};
        let mut o = group();
        o.values.insert(MSP.into(), msp_value(org));
        if !org.peer_endpoints.is_empty() {
            let endpoints = OrdererAddresses { addresses: org.peer_endpoints.clone() };
            o.values.insert(ENDPOINTS.into(), value(&endpoints));
        }
        insert(
            &mut o.policies,
            [
                (READERS, signature(&signed_by(&org.msp_id, Member))),
                (WRITERS, signature(&signed_by(&org.msp_id, Member))),
                (ADMINS, signature(&signed_by(&org.msp_id, Admin))),
            ],
        );
        g.groups.insert(org.name.clone(), o);
    }
    g
}

fn application_group(c: &ChannelConfig) -> ConfigGroup {
    use implicit_meta_policy::Rule::{Any, Majority};
    use msp_role::MspRoleType::{Admin, Member, Peer};
    let mut g = group();
    g.values.insert(CAPABILITIES.into(), value(&capabilities(APPLICATION_CAPABILITY)));
    insert(
        &mut g.policies,
        [
            (READERS, implicit_meta(Any, READERS)),
            (WRITERS, implicit_meta(Any, WRITERS)),
            (ADMINS, implicit_meta(Majority, ADMINS)),
            (ENDORSEMENT, implicit_meta(Majority, ENDORSEMENT)),
            (LIFECYCLE_ENDORSEMENT, implicit_meta(Majority, ENDORSEMENT)),
        ],
    );
    for org in &c.orgs {
        let member_if = |list: &[String], role| {
            signature(&if list.contains(&org.msp_id) { signed_by(&org.msp_id, role) } else { reject_all() })
        };
        let mut o = group();
        o.values.insert(MSP.into(), msp_value(org));
        if !org.peer_endpoints.is_empty() {
            let anchor_peers = org
                .peer_endpoints
                .iter()
                .filter_map(|e| split_endpoint(e).ok())
                .map(|(host, port)| AnchorPeer { host: host.into(), port: i32::from(port) })
                .collect();
            o.values.insert(ANCHOR_PEERS.into(), value(&AnchorPeers { anchor_peers }));
        }
        insert(
            &mut o.policies,
            [
                (READERS, member_if(&c.readers, Member)),
                (WRITERS, member_if(&c.writers, Member)),
                (ADMINS, member_if(&c.admins, Admin)),
                (ENDORSEMENT, signature(&signed_by(&org.msp_id, Peer))),
            ],
        );
        g.groups.insert(org.name.clone(), o);
    }
    g
}

// ---------------------------------------------------------------------------------------------------------
// Reading.

fn subgroup<'a>(parent: &'a ConfigGroup, path: &str, key: &str) -> Result<&'a ConfigGroup, ConfigError> {
    parent
        .groups
        .get(key)
        .ok_or_else(|| ConfigError::Missing { kind: "group", path: format!("{path}/{key}") })
}

fn decode_value<M: Message + Default>(
    g: &ConfigGroup,
    path: &str,
    key: &str,
    message: &'static str,
) -> Result<Option<M>, ConfigError> {
    let Some(v) = g.values.get(key) else { return Ok(None) };
    M::decode(v.value.as_ref()).map(Some).map_err(|e| ConfigError::Undecodable {
        path: format!("{path}/{key}"),
        message,
        reason: e.to_string(),
    })
}

fn required_value<M: Message + Default>(
    g: &ConfigGroup,
    path: &str,
    key: &str,
    message: &'static str,
) -> Result<M, ConfigError> {
    decode_value(g, path, key, message)?
        .ok_or_else(|| ConfigError::Missing { kind: "value", path: format!("{path}/{key}") })
}

fn certs(pems: &[bytes::Bytes], path: &str, field: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    pems.iter()
        .map(|p| {
            cert_der(p).map_err(|e| ConfigError::Undecodable {
                path: format!("{path}/MSP {field}"),
                message: "a PEM certificate",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// An organization group: its MSP (name = MSP id, PEM root and TLS root certificates); endpoints are read
/// by the caller.
fn org_from_group(path: &str, name: &str, g: &ConfigGroup) -> Result<OrgConfig, ConfigError> {
    let msp: MspConfig = required_value(g, path, MSP, "msp.MSPConfig")?;
    if msp.r#type != FABRIC_MSP_TYPE {
        return Err(ConfigError::Unsupported {
            path: format!("{path}/{MSP}"),
            what: format!("MSP type {} (ipechain supports Fabric's X.509 MSP, type 0)", msp.r#type),
        });
    }
    let fabric = FabricMspConfig::decode(msp.config.as_ref()).map_err(|e| ConfigError::Undecodable {
        path: format!("{path}/{MSP}"),
        message: "msp.FabricMSPConfig",
        reason: e.to_string(),
    })?;
    Ok(OrgConfig {
        msp_id: fabric.name,
        name: name.to_owned(),
        root_certs: certs(&fabric.root_certs, path, "root_certs")?,
        tls_root_certs: certs(&fabric.tls_root_certs, path, "tls_root_certs")?,
        peer_endpoints: Vec::new(),
    })
}

/// Whether an application organization's policy `key` admits its MSP's `role` (`OR('<msp>.<role>')`) or
/// nobody (reject-all); any other shape is refused.
fn admits(
    path: &str,
    g: &ConfigGroup,
    key: &str,
    msp_id: &str,
    role: msp_role::MspRoleType,
) -> Result<bool, ConfigError> {
    let path = format!("{path}/{key}");
    let policy = g
        .policies
        .get(key)
        .and_then(|p| p.policy.as_ref())
        .ok_or_else(|| ConfigError::Missing { kind: "policy", path: path.clone() })?;
    if policy.r#type != policy::PolicyType::Signature as i32 {
        return Err(ConfigError::Unsupported {
            path,
            what: format!("policy type {} (ipechain writes a signature policy here)", policy.r#type),
        });
    }
    let envelope =
        SignaturePolicyEnvelope::decode(policy.value.as_ref()).map_err(|e| ConfigError::Undecodable {
            path: path.clone(),
            message: "common.SignaturePolicyEnvelope",
            reason: e.to_string(),
        })?;
    if envelope == signed_by(msp_id, role) {
        Ok(true)
    } else if envelope == reject_all() {
        Ok(false)
    } else {
        let role = role.as_str_name().to_ascii_lowercase();
        Err(ConfigError::Unsupported {
            path,
            what: format!(
                "a signature policy other than OR('{msp_id}.{role}') or reject-all, which ipechain writes"
            ),
        })
    }
}

/// A Go duration of whole milliseconds (`"20ms"`, `"2s"`, `"1m30s"`; units h, m, s, ms, us, µs, ns).
fn duration_ms(text: &str) -> Option<u32> {
    let mut rest = text;
    let mut nanos: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let number: u128 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        nanos = nanos.checked_add(number.checked_mul(scale)?)?;
        rest = tail;
    }
    if !nanos.is_multiple_of(1_000_000) {
        return None;
    }
    u32::try_from(nanos / 1_000_000).ok()
}

/// Reads the tree back into a [`ChannelConfig`] (not yet validated) for `channel_id`, with `contracts` from
/// ipechain's extension.
pub(super) fn parse(
    root: &ConfigGroup,
    channel_id: String,
    contracts: Vec<ContractDefinition>,
) -> Result<ChannelConfig, ConfigError> {
    let orderer_path = format!("{CHANNEL}/{ORDERER}");
    let orderer = subgroup(root, CHANNEL, ORDERER)?;
    let application_path = format!("{CHANNEL}/{APPLICATION}");
    let application = subgroup(root, CHANNEL, APPLICATION)?;

    // Consensus: etcdraft, consenters from Fabric 3's consenter mapping.
    let consensus: ConsensusType =
        required_value(orderer, &orderer_path, CONSENSUS_TYPE, "orderer.ConsensusType")?;
    if consensus.r#type != ETCDRAFT {
        return Err(ConfigError::Unsupported {
            path: format!("{orderer_path}/{CONSENSUS_TYPE}"),
            what: format!("consensus type {:?} (ipechain orders with Raft: etcdraft)", consensus.r#type),
        });
    }
    let raft = ConfigMetadata::decode(consensus.metadata.as_ref()).map_err(|e| ConfigError::Undecodable {
        path: format!("{orderer_path}/{CONSENSUS_TYPE} metadata"),
        message: "etcdraft.ConfigMetadata",
        reason: e.to_string(),
    })?;
    let mapping: Orderers = required_value(orderer, &orderer_path, ORDERERS, "common.Orderers")?;
    let consenters: Vec<Consenter> = mapping
        .consenter_mapping
        .into_iter()
        .map(|k| Consenter {
            id: u64::from(k.id),
            host: k.host,
            port: k.port,
            identity: SerializedIdentity { mspid: k.msp_id, id_bytes: k.identity }.encode_to_vec(),
        })
        .collect();
    let raft_addresses: Vec<(&str, u32)> =
        raft.consenters.iter().map(|k| (k.host.as_str(), k.port)).collect();
    let mapped_addresses: Vec<(&str, u32)> = consenters.iter().map(|k| (k.host.as_str(), k.port)).collect();
    if raft_addresses != mapped_addresses {
        return Err(ConfigError::Invalid(format!(
            "{orderer_path}: the etcdraft consenters {raft_addresses:?} are not the consenters of {ORDERERS} \
             {mapped_addresses:?}"
        )));
    }

    // Block cutting.
    let size: BatchSize = required_value(orderer, &orderer_path, BATCH_SIZE, "orderer.BatchSize")?;
    let timeout: BatchTimeout =
        required_value(orderer, &orderer_path, BATCH_TIMEOUT, "orderer.BatchTimeout")?;
    let batch_timeout_ms = duration_ms(&timeout.timeout).ok_or_else(|| ConfigError::Unsupported {
        path: format!("{orderer_path}/{BATCH_TIMEOUT}"),
        what: format!(
            "timeout {:?} (expected a duration of whole milliseconds, e.g. \"20ms\")",
            timeout.timeout
        ),
    })?;
    let batch = BatchConfig {
        max_message_count: size.max_message_count,
        preferred_max_bytes: size.preferred_max_bytes,
        absolute_max_bytes: size.absolute_max_bytes,
        batch_timeout_ms,
    };

    // Organizations.
    let mut orderer_orgs = Vec::new();
    for (name, g) in &orderer.groups {
        let path = format!("{orderer_path}/{name}");
        let mut org = org_from_group(&path, name, g)?;
        let endpoints: Option<OrdererAddresses> =
            decode_value(g, &path, ENDPOINTS, "common.OrdererAddresses")?;
        org.peer_endpoints = endpoints.map(|e| e.addresses).unwrap_or_default();
        orderer_orgs.push(org);
    }
    let (mut orgs, mut readers, mut writers, mut admins) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, g) in &application.groups {
        use msp_role::MspRoleType::{Admin, Member};
        let path = format!("{application_path}/{name}");
        let mut org = org_from_group(&path, name, g)?;
        let anchors: Option<AnchorPeers> = decode_value(g, &path, ANCHOR_PEERS, "peer.AnchorPeers")?;
        for a in anchors.map(|a| a.anchor_peers).unwrap_or_default() {
            let port = u16::try_from(a.port).ok().filter(|p| *p != 0).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{path}/{ANCHOR_PEERS}: port {} of {:?} is not from 1 to 65535",
                    a.port, a.host
                ))
            })?;
            org.peer_endpoints.push(format!("{}:{port}", a.host));
        }
        for (list, key, role) in
            [(&mut readers, READERS, Member), (&mut writers, WRITERS, Member), (&mut admins, ADMINS, Admin)]
        {
            if admits(&path, g, key, &org.msp_id, role)? {
                list.push(org.msp_id.clone());
            }
        }
        orgs.push(org);
    }

    Ok(ChannelConfig {
        channel_id,
        orgs,
        orderer_orgs,
        consenters,
        batch: Some(batch),
        readers,
        writers,
        admins,
        contracts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_go_writes_them() {
        for (text, ms) in
            [("20ms", Some(20)), ("2s", Some(2000)), ("1m30s", Some(90_000)), ("1h", Some(3_600_000))]
        {
            assert_eq!(duration_ms(text), ms, "{text}");
        }
        for text in ["", "20", "ms", "1.5s", "1500us1ns", "20 ms", "-1s", "5000000h", "2d"] {
            assert_eq!(duration_ms(text), None, "{text}");
        }
        assert_eq!(duration_ms("1500us500us"), Some(2));
    }

    #[test]
    fn config_keys_and_endpoints_follow_fabric() {
        for ok in ["Org1", "org1.example.com", "Org-1", "a"] {
            assert_eq!(check_config_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "Org 1", "Org_1", "Org/1", &"a".repeat(250)] {
            assert!(check_config_key(bad).is_err(), "{bad}");
        }
        assert_eq!(split_endpoint("127.0.0.1:7051"), Ok(("127.0.0.1", 7051)));
        assert_eq!(split_endpoint("[::1]:7051"), Ok(("[::1]", 7051)));
        for bad in ["peer0", ":7051", "h:0", "h:07051", "h:+7051", "h:65536", "h:"] {
            assert!(split_endpoint(bad).is_err(), "{bad}");
        }
    }
}
