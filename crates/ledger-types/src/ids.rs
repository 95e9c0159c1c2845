//! Identifier newtypes that validate in their constructors.

use crate::hash::Hash32;
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// A transaction id must be 64 lower-case hex digits.
    #[error("transaction id must be 64 lower-case hex digits, got {0:?}")]
    TxId(String),
    /// A channel name must match `[a-z][a-z0-9.-]{0,248}`.
    #[error("channel name must match [a-z][a-z0-9.-]{{0,248}}, got {0:?}")]
    Channel(String),
}

/// A block's position in its chain; the genesis block is 0.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, serde::Serialize, serde::Deserialize,
)]
pub struct BlockNumber(pub u64);

impl BlockNumber {
    /// The block after this one.
    pub fn next(self) -> BlockNumber {
        BlockNumber(self.0 + 1)
    }
}

impl fmt::Display for BlockNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A transaction id: hex SHA-256 of the proposal's nonce followed by the creator's serialized identity (as in
/// Fabric), so a client cannot choose an id that collides with another creator's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TxId(String);

impl TxId {
    /// The id a proposal with this nonce and creator must carry.
    pub fn compute(nonce: &[u8], creator: &[u8]) -> TxId {
        TxId(Hash32::of_parts([nonce, creator]).to_hex())
    }

    /// An id computed by `fabric_protos::hash::tx_id` (64 lower-case hex digits by construction).
    pub(crate) fn from_fabric_hex(hex: String) -> TxId {
        debug_assert!(TxId::parse(&hex).is_ok(), "not a tx id: {hex}");
        TxId(hex)
    }

    /// Parses and validates an id received from outside.
    pub fn parse(s: &str) -> Result<TxId, IdError> {
        let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok { Ok(TxId(s.to_owned())) } else { Err(IdError::TxId(s.chars().take(80).collect())) }
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TxId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TxId::parse(&s)
    }
}

impl From<TxId> for String {
    fn from(t: TxId) -> String {
        t.0
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel name, following Fabric's rule `[a-z][a-z0-9.-]{0,248}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(String);

impl ChannelId {
    /// Validates a channel name.
    pub fn parse(s: &str) -> Result<ChannelId, IdError> {
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if first_ok && rest_ok && s.len() <= 249 {
            Ok(ChannelId(s.to_owned()))
        } else {
            Err(IdError::Channel(s.chars().take(80).collect()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ChannelId::parse(&s)
    }
}

impl From<ChannelId> for String {
    fn from(c: ChannelId) -> String {
        c.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
