//! Channel configuration: the genesis block carries it as its only transaction, a CONFIG envelope whose
//! payload data is Fabric's `common.ConfigEnvelope{config = Config{sequence 0, channel_group}}`, shaped as
//! Fabric's `configtxgen` shapes an application channel with an orderer group and etcdraft consensus
//! (`tree` has the mapping field by field; docs/ledger-format.md, "The genesis block", says what is
//! ipechain's own).
//!
//! [`ChannelConfig`] stays ipechain's in-memory view: [`genesis_block`] writes the tree from it, and
//! [`config_from_genesis`] reads it back. For a config in [`ChannelConfig::normalized`] form the round trip
//! is exact; the tree has no order of organizations, so they come back sorted by name (and the MSP-id
//! lists in that order).

mod pem;
mod tree;

use crate::block::{BlockBuilder, BlockExt, stamp};
use crate::hash::Hash32;
use crate::policy::Policy;
use crate::proto::{Block, ChannelConfig, Envelope, IpechainConfigExtension, Payload};
use crate::{ChannelId, TxValidationCode};
use fabric_protos::common::{ChannelHeader, Config, ConfigEnvelope, Header, HeaderType, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;
use prost::Message;

/// Why a channel configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Malformed or missing piece.
    #[error("channel config: {0}")]
    Invalid(String),
    /// The block is not a genesis block with a config transaction.
    #[error("not a genesis block: {0}")]
    NotGenesis(String),
    /// A group, value or policy of the configuration tree is missing.
    #[error("channel config: {kind} {path} is missing")]
    Missing {
        /// `group`, `value` or `policy`.
        kind: &'static str,
        /// Where, e.g. `/Channel/Orderer/BatchSize`.
        path: String,
    },
    /// A value or policy does not decode as the message its place holds.
    #[error("channel config: {path} does not decode as {message}: {reason}")]
    Undecodable {
        /// Where, e.g. `/Channel/Orderer/ConsensusType`.
        path: String,
        /// The message (or form) expected there, e.g. `orderer.ConsensusType`.
        message: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The tree decodes but holds something ipechain does not write and cannot use (another consensus type,
    /// an Idemix MSP, a policy of another shape, ...).
    #[error("channel config: {path}: {what}")]
    Unsupported {
        /// Where.
        path: String,
        /// What was found and what ipechain expects.
        what: String,
    },
    /// The genesis block carries ipechain's own configuration message, the format before 2026-12.
    #[error(
        "the genesis block carries ipechain's earlier channel configuration format, not Fabric's \
         ConfigEnvelope; this version cannot read it. Start from a fresh data directory: remove the network's \
         data directory (or pass another --data-dir) and run `ipechain up` or `ipechain keys generate` again"
    )]
    EarlierFormat,
}

impl ChannelConfig {
    /// Checks names, membership, consenters, batch limits and contract policies, and that every field has
    /// a place in Fabric's configuration tree (organization names are Fabric config keys, consenter ids fit
    /// Fabric's 32 bits, identities are encoded `msp.SerializedIdentity`s, application peer endpoints are
    /// `host:port`, the MSP-id lists name application organizations).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        ChannelId::parse(&self.channel_id).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.orgs.is_empty() {
            return bad("no member organizations".into());
        }
        for (kind, orgs) in [("application", &self.orgs), ("orderer", &self.orderer_orgs)] {
            let mut names = std::collections::BTreeSet::new();
            let mut msp_ids = std::collections::BTreeSet::new();
            for org in orgs {
                if org.msp_id.is_empty() || org.root_certs.is_empty() {
                    return bad(format!(
                        "organization {:?} needs an MSP id and a root certificate",
                        org.name
                    ));
                }
                tree::check_config_key(&org.name).map_err(|why| {
                    ConfigError::Invalid(format!(
                        "organization name {:?} (a Fabric config key): {why}",
                        org.name
                    ))
                })?;
                if !names.insert(org.name.as_str()) || !msp_ids.insert(org.msp_id.as_str()) {
                    return bad(format!(
                        "two {kind} organizations named {:?} or with MSP id {:?}",
                        org.name, org.msp_id
                    ));
                }
            }
        }
        for org in &self.orgs {
            for e in &org.peer_endpoints {
                tree::split_endpoint(e).map_err(|why| {
                    ConfigError::Invalid(format!("organization {:?}: peer endpoint {e:?}: {why}", org.name))
                })?;
            }
        }
        let members = self.member_msp_ids();
        for (list, ids) in [("readers", &self.readers), ("writers", &self.writers), ("admins", &self.admins)]
        {
            if let Some(m) = ids.iter().find(|m| !members.contains(m)) {
                return bad(format!("{list}: {m:?} is not the MSP id of an application organization"));
            }
        }
        if self.consenters.is_empty() {
            return bad("no consenters".into());
        }
        let mut ids: Vec<u64> = self.consenters.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.consenters.len() || ids.contains(&0) {
            return bad("consenter ids must be distinct and non-zero".into());
        }
        for c in &self.consenters {
            if u32::try_from(c.id).is_err() {
                return bad(format!("consenter id {} does not fit Fabric's 32-bit consenter ids", c.id));
            }
            let canonical = SerializedIdentity::decode(c.identity.as_slice())
                .is_ok_and(|id| id.encode_to_vec() == c.identity);
            if !canonical {
                return bad(format!(
                    "consenter {}: the identity is not an encoded msp.SerializedIdentity",
                    c.id
                ));
            }
        }
        let b = self.batch.ok_or_else(|| ConfigError::Invalid("no batch config".into()))?;
        if b.max_message_count == 0
            || b.preferred_max_bytes == 0
            || b.absolute_max_bytes < b.preferred_max_bytes
            || b.batch_timeout_ms == 0
        {
            return bad(format!("batch config {b:?} out of range"));
        }
        for c in &self.contracts {
            if c.name.is_empty() || c.name.starts_with('_') {
                return bad(format!(
                    "contract name {:?}: must not be empty or start with '_' (reserved for the ledger's own state)",
                    c.name
                ));
            }
            Policy::parse(&c.endorsement_policy)
                .map_err(|e| ConfigError::Invalid(format!("contract {}: {e}", c.name)))?;
        }
        Ok(())
    }

    /// MSP ids of the application organizations.
    pub fn member_msp_ids(&self) -> Vec<String> {
        self.orgs.iter().map(|o| o.msp_id.clone()).collect()
    }

    /// The resolved endorsement policy of a contract, `None` if the contract is not defined.
    pub fn endorsement_policy(&self, contract: &str) -> Option<Policy> {
        let def = self.contracts.iter().find(|c| c.name == contract)?;
        let policy = Policy::parse(&def.endorsement_policy).ok()?;
        Some(policy.resolve(&self.member_msp_ids()))
    }

    /// The same configuration in the form [`config_from_genesis`] returns: organizations (application and
    /// orderer) sorted by name, as Fabric's tree keys them, and `readers`/`writers`/`admins` in that
    /// organization order without repeats. Consenters and contracts keep their order. For a valid
    /// configuration `config_from_genesis(&genesis_block(c)?)? == c.normalized()`.
    pub fn normalized(&self) -> ChannelConfig {
        let mut c = self.clone();
        c.orgs.sort_by(|a, b| a.name.cmp(&b.name));
        c.orderer_orgs.sort_by(|a, b| a.name.cmp(&b.name));
        let in_order = |list: &[String]| -> Vec<String> {
            c.orgs.iter().filter(|o| list.contains(&o.msp_id)).map(|o| o.msp_id.clone()).collect()
        };
        let (readers, writers, admins) = (in_order(&c.readers), in_order(&c.writers), in_order(&c.admins));
        ChannelConfig { readers, writers, admins, ..c }
    }
}

/// The genesis block of a channel: number 0, empty previous hash, one config transaction marked valid.
/// A pure function of `config`: the same configuration gives the same bytes.
pub fn genesis_block(config: &ChannelConfig) -> Result<Block, ConfigError> {
    config.validate()?;
    let env =
        Envelope { payload: config_payload(config).encode_to_vec().into(), signature: Vec::new().into() };
    let mut block = BlockBuilder::new(0, Hash32::ZERO).push_envelope(env.encode_to_vec()).build();
    block.set_validation_codes(vec![TxValidationCode::Valid.as_u8()]);
    stamp(&mut block, None);
    Ok(block)
}

/// Fabric's genesis `ChannelHeader.version` (`common/genesis`: `msgVersion`).
const GENESIS_HEADER_VERSION: i32 = 1;

/// The genesis transaction's payload: `Payload{header{ChannelHeader{type CONFIG, version 1, channel_id},
/// empty SignatureHeader}, data = ConfigEnvelope{config = Config{sequence 0, channel_group}}}` followed, when
/// the channel has contracts, by ipechain's extension field ([`IpechainConfigExtension`]). Fabric's
/// `configtxgen` also sets a timestamp, a random nonce and the tx id derived from it; ipechain leaves them
/// out so that the block is a pure function of the configuration.
fn config_payload(config: &ChannelConfig) -> Payload {
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: GENESIS_HEADER_VERSION,
        channel_id: config.channel_id.clone(),
        ..Default::default()
    };
    let envelope = ConfigEnvelope {
        config: Some(Config { sequence: 0, channel_group: Some(tree::channel_group(config)) }),
        last_update: None,
    };
    let mut data = envelope.encode_to_vec();
    if !config.contracts.is_empty() {
        data.extend(IpechainConfigExtension { contracts: config.contracts.clone() }.encode_to_vec());
    }
    Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: SignatureHeader::default().encode_to_vec().into(),
        }),
        data: data.into(),
    }
}

/// Reads the channel configuration out of a genesis block (and checks the block's own links), in
/// [`ChannelConfig::normalized`] form.
pub fn config_from_genesis(block: &Block) -> Result<ChannelConfig, ConfigError> {
    block.check_links(None).map_err(|e| ConfigError::NotGenesis(e.to_string()))?;
    let [env] = block.envelopes() else {
        return Err(ConfigError::NotGenesis("expected exactly one transaction".into()));
    };
    let not_genesis = |e: &dyn std::fmt::Display| ConfigError::NotGenesis(e.to_string());
    let env = Envelope::decode(&env[..]).map_err(|e| not_genesis(&e))?;
    let payload = Payload::decode(env.payload.as_ref()).map_err(|e| not_genesis(&e))?;
    let header = payload.header.ok_or_else(|| ConfigError::NotGenesis("payload has no header".into()))?;
    let ch = ChannelHeader::decode(header.channel_header.as_ref()).map_err(|e| not_genesis(&e))?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err(ConfigError::NotGenesis("transaction is not a config transaction".into()));
    }
    if is_earlier_format(&payload.data, &ch.channel_id) {
        return Err(ConfigError::EarlierFormat);
    }
    let undecodable = |message, e: prost::DecodeError| ConfigError::Undecodable {
        path: "the genesis payload data".into(),
        message,
        reason: e.to_string(),
    };
    let envelope =
        ConfigEnvelope::decode(payload.data.as_ref()).map_err(|e| undecodable("common.ConfigEnvelope", e))?;
    let extension = IpechainConfigExtension::decode(payload.data.as_ref())
        .map_err(|e| undecodable("ipechain's ConfigEnvelope extension (field 1000)", e))?;
    let config = envelope
        .config
        .ok_or_else(|| ConfigError::Missing { kind: "message", path: "ConfigEnvelope.config".into() })?;
    let root = config
        .channel_group
        .ok_or_else(|| ConfigError::Missing { kind: "group", path: tree::CHANNEL.into() })?;
    let parsed = tree::parse(&root, ch.channel_id, extension.contracts)?;
    parsed.validate()?;
    Ok(parsed)
}

/// Whether `data` is the encoding of ipechain's earlier genesis payload, its own `ChannelConfig` naming the
/// block's channel. (A Fabric `ConfigEnvelope` cannot pass: its field 1 is a `Config` message, which would
/// have to be the channel name's bytes.)
fn is_earlier_format(data: &[u8], channel_id: &str) -> bool {
    !channel_id.is_empty() && ChannelConfig::decode(data).is_ok_and(|c| c.channel_id == channel_id)
}
