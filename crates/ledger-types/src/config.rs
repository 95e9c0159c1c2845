//! Channel configuration: the genesis block carries it as its only transaction.

use crate::block::{BlockBuilder, BlockExt, stamp};
use crate::hash::Hash32;
use crate::policy::Policy;
use crate::proto::{Block, ChannelConfig, Envelope, Payload};
use crate::{ChannelId, TxValidationCode};
use fabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
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
}

impl ChannelConfig {
    /// Checks names, membership, consenters, batch limits and contract policies.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        ChannelId::parse(&self.channel_id).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.orgs.is_empty() {
            return bad("no member organizations".into());
        }
        for org in self.orgs.iter().chain(&self.orderer_orgs) {
            if org.msp_id.is_empty() || org.root_certs.is_empty() {
                return bad(format!("organization {:?} needs an MSP id and a root certificate", org.name));
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
}

/// The genesis block of a channel: number 0, zero previous hash, one config transaction marked valid.
pub fn genesis_block(config: &ChannelConfig) -> Result<Block, ConfigError> {
    config.validate()?;
    let env = Envelope { payload: config_payload(config).encode_to_vec(), signature: Vec::new() };
    let mut block = BlockBuilder::new(0, Hash32::ZERO).push_envelope(env.encode_to_vec()).build();
    block.set_validation_codes(vec![TxValidationCode::Valid.as_u8()]);
    stamp(&mut block, None);
    Ok(block)
}

/// The genesis transaction's payload: `Payload{header{ChannelHeader{type CONFIG, channel_id}, empty
/// SignatureHeader}, data = the encoded ChannelConfig}`. The data is ipechain's configuration message
/// until the genesis block carries Fabric's `ConfigEnvelope` (docs/fabric-migration.md, step 8).
fn config_payload(config: &ChannelConfig) -> Payload {
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        channel_id: config.channel_id.clone(),
        ..Default::default()
    };
    Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: SignatureHeader::default().encode_to_vec(),
        }),
        data: config.encode_to_vec(),
    }
}

/// Reads the channel configuration out of a genesis block (and checks the block's own links).
pub fn config_from_genesis(block: &Block) -> Result<ChannelConfig, ConfigError> {
    block.check_links(None).map_err(|e| ConfigError::NotGenesis(e.to_string()))?;
    let [env] = block.envelopes() else {
        return Err(ConfigError::NotGenesis("expected exactly one transaction".into()));
    };
    let not_genesis = |e: &dyn std::fmt::Display| ConfigError::NotGenesis(e.to_string());
    let env = Envelope::decode(env.as_slice()).map_err(|e| not_genesis(&e))?;
    let payload = Payload::decode(env.payload.as_slice()).map_err(|e| not_genesis(&e))?;
    let header = payload.header.ok_or_else(|| ConfigError::NotGenesis("payload has no header".into()))?;
    let ch = ChannelHeader::decode(header.channel_header.as_slice()).map_err(|e| not_genesis(&e))?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err(ConfigError::NotGenesis("transaction is not a config transaction".into()));
    }
    let config = ChannelConfig::decode(payload.data.as_slice()).map_err(|e| not_genesis(&e))?;
    if config.channel_id != ch.channel_id {
        return Err(ConfigError::NotGenesis(format!(
            "config names channel {:?}, its header {:?}",
            config.channel_id, ch.channel_id
        )));
    }
    config.validate()?;
    Ok(config)
}
