//! Raft replication of whole blocks with openraft 0.9 (storage v2 API).
//!
//! ```text
//!   leader sequencer ──client_write_ff(BlockEntry)──► openraft core ──append──► log_store (redb, fsync)
//!                                                          │  replicate (network: Cluster.Raft, CBOR + blocks)
//!                                                          ▼
//!                                      committed entries ──apply──► state_machine ──append──► BlockStore
//!                                                                        │
//!                                           Applied/Skipped events ◄─────┘ (back to the sequencer)
//! ```
//!
//! Every Raft entry is either openraft's own (blank, membership) or a [`BlockEntry`]: the prost-encoded
//! block exactly as the leader cut and signed it. Everything openraft sends or stores is CBOR (ciborium).

pub(crate) mod fetch;
pub(crate) mod log_store;
pub(crate) mod network;
pub(crate) mod state_machine;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io::Cursor;

/// A Raft log payload: one encoded block. Shared bytes: the log's cache of recent entries, replication to
/// the followers and the state machine all hold the same buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct BlockEntry(pub bytes::Bytes);

impl fmt::Debug for BlockEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockEntry({} bytes)", self.0.len())
    }
}

impl fmt::Display for BlockEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Serialize for BlockEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for BlockEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BlockEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("block bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<BlockEntry, E> {
                Ok(BlockEntry(bytes::Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<BlockEntry, E> {
                Ok(BlockEntry(v.into()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<BlockEntry, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(BlockEntry(out.into()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// What applying an entry did (returned to `client_write` callers; the sequencer uses events instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// The block number appended, None when the entry was not a block or was skipped.
    pub appended: Option<u64>,
}

openraft::declare_raft_types!(
    /// openraft type configuration of the ordering service.
    pub TypeConfig:
        D = BlockEntry,
        R = ApplyOutcome,
);

/// The Raft handle type.
pub type OrdererRaft = openraft::Raft<TypeConfig>;

/// A CBOR encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
#[error("cbor: {0}")]
pub struct CborError(String);

/// Encodes a value as CBOR.
pub(crate) fn to_cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, CborError> {
    to_cbor_sized(v, 0)
}

/// Encodes a value as CBOR into a buffer of `capacity` bytes to start with: an encoding that carries
/// blocks is sized from them up front, instead of growing (copying and faulting in) its buffer a dozen
/// times per block.
pub(crate) fn to_cbor_sized<T: Serialize>(v: &T, capacity: usize) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::with_capacity(capacity);
    ciborium::into_writer(v, &mut out).map_err(|e| CborError(e.to_string()))?;
    Ok(out)
}

/// Decodes a CBOR value (never panics on malformed input).
pub(crate) fn from_cbor<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    ciborium::from_reader(bytes).map_err(|e| CborError(e.to_string()))
}
