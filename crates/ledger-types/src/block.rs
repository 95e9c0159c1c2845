//! Blocks: construction, hashing and chain-link checks.
//!
//! The block hash is SHA-256 of the encoded [`BlockHeader`]; the data hash is SHA-256 of the encoded
//! [`BlockData`]. Both encodings are canonical (see the crate docs), so any node recomputes them exactly.

use crate::TxValidationCode;
use crate::hash::Hash32;
use crate::proto::{Block, BlockData, BlockHeader, BlockMetadata};
use prost::Message;

/// Why a block does not fit its chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The header or data section is missing.
    #[error("block has no {0} section")]
    Missing(&'static str),
    /// `data_hash` does not match the block's data.
    #[error("block {number}: data hash mismatch (header says {stated}, data hashes to {actual})")]
    DataHash { number: u64, stated: String, actual: Hash32 },
    /// `previous_hash` does not match the previous block's header hash.
    #[error(
        "block {number}: previous hash mismatch (header says {stated}, previous block hashes to {actual})"
    )]
    PreviousHash { number: u64, stated: String, actual: Hash32 },
    /// Numbers are not consecutive.
    #[error("block number {number} does not follow {previous}")]
    Number { number: u64, previous: u64 },
    /// The genesis block must have number 0 and a zero previous hash.
    #[error("genesis block must be number 0 with an all-zero previous hash")]
    Genesis,
    /// The metadata does not hold one validation code per transaction.
    #[error("block {number}: {codes} validation codes for {txs} transactions")]
    CodesLength { number: u64, codes: usize, txs: usize },
}

/// Builds a block from its number, the previous header hash and the transactions.
#[derive(Debug, Clone)]
pub struct BlockBuilder {
    number: u64,
    previous: Hash32,
    data: Vec<Vec<u8>>,
}

impl BlockBuilder {
    /// A block with no transactions yet.
    pub fn new(number: u64, previous: Hash32) -> BlockBuilder {
        BlockBuilder { number, previous, data: Vec::new() }
    }

    /// Appends an encoded envelope.
    pub fn push_envelope(mut self, envelope: Vec<u8>) -> BlockBuilder {
        self.data.push(envelope);
        self
    }

    /// Appends many encoded envelopes.
    pub fn envelopes(mut self, envelopes: impl IntoIterator<Item = Vec<u8>>) -> BlockBuilder {
        self.data.extend(envelopes);
        self
    }

    /// Finishes the block: computes the data hash; every transaction is marked `NOT_VALIDATED`.
    pub fn build(self) -> Block {
        let data = BlockData { data: self.data };
        let data_hash = Hash32::of(&data.encode_to_vec());
        let n = data.data.len();
        Block {
            header: Some(BlockHeader {
                number: self.number,
                previous_hash: self.previous.0.to_vec(),
                data_hash: data_hash.0.to_vec(),
            }),
            data: Some(data),
            metadata: Some(BlockMetadata {
                tx_validation_codes: vec![TxValidationCode::NotValidated.as_u8(); n],
                ..Default::default()
            }),
        }
    }
}

fn hex_or_raw(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

impl Block {
    /// The block number (0 when the header is missing; [`Block::check_links`] reports that).
    pub fn number(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.number)
    }

    /// SHA-256 of the encoded header: what the next block's `previous_hash` must be.
    pub fn header_hash(&self) -> Hash32 {
        header_hash(self.header.as_ref().unwrap_or(&BlockHeader::default()))
    }

    /// The encoded envelopes.
    pub fn envelopes(&self) -> &[Vec<u8>] {
        self.data.as_ref().map_or(&[], |d| &d.data)
    }

    /// The validation codes (empty when there is no metadata).
    pub fn validation_codes(&self) -> &[u8] {
        self.metadata.as_ref().map_or(&[], |m| &m.tx_validation_codes)
    }

    /// Checks the data hash and, given the previous block (None for genesis), the number and previous hash.
    pub fn check_links(&self, previous: Option<&Block>) -> Result<(), LinkError> {
        self.check_extends(previous.map(|p| (p.number(), p.header_hash())))
    }

    /// Like [`Block::check_links`] with only the previous block's number and header hash (None for genesis).
    pub fn check_extends(&self, previous: Option<(u64, Hash32)>) -> Result<(), LinkError> {
        let header = self.header.as_ref().ok_or(LinkError::Missing("header"))?;
        let data = self.data.as_ref().ok_or(LinkError::Missing("data"))?;
        match previous {
            None => {
                if header.number != 0 || header.previous_hash != Hash32::ZERO.0 {
                    return Err(LinkError::Genesis);
                }
            }
            Some((prev_number, prev_hash)) => {
                if header.number != prev_number + 1 {
                    return Err(LinkError::Number { number: header.number, previous: prev_number });
                }
                if header.previous_hash != prev_hash.0 {
                    return Err(LinkError::PreviousHash {
                        number: header.number,
                        stated: hex_or_raw(&header.previous_hash),
                        actual: prev_hash,
                    });
                }
            }
        }
        let actual = Hash32::of(&data.encode_to_vec());
        if header.data_hash != actual.0 {
            return Err(LinkError::DataHash {
                number: header.number,
                stated: hex_or_raw(&header.data_hash),
                actual,
            });
        }
        let codes = self.validation_codes().len();
        if codes != data.data.len() {
            return Err(LinkError::CodesLength { number: header.number, codes, txs: data.data.len() });
        }
        Ok(())
    }
}

/// SHA-256 of an encoded block header.
pub fn header_hash(header: &BlockHeader) -> Hash32 {
    Hash32::of(&header.encode_to_vec())
}

/// How far (seconds, either way) a transaction's own timestamp may be from its block's time. A transaction's
/// certificates are judged at its timestamp, so validation reads no clock; the window keeps a client from
/// backdating a transaction to use a certificate that has expired (docs/msp.md, "Time").
pub const TX_TIME_WINDOW_SECS: i64 = 15 * 60;

/// The message an orderer signs for a block: its header hash, followed by the block's time (seconds as 8
/// big-endian bytes, nanoseconds as 4) when the metadata carries one.
pub fn block_signing_bytes(block: &Block) -> Vec<u8> {
    let mut out = block.header_hash().0.to_vec();
    if let Some(t) = block.metadata.as_ref().and_then(|m| m.timestamp) {
        out.extend_from_slice(&t.seconds.to_be_bytes());
        out.extend_from_slice(&t.nanos.to_be_bytes());
    }
    out
}

impl Block {
    /// The time the ordering service gave the block, in Unix seconds (None: genesis or an older block).
    pub fn time_secs(&self) -> Option<i64> {
        self.metadata.as_ref().and_then(|m| m.timestamp).map(|t| t.seconds)
    }
}

/// Whether a transaction timestamp (Unix seconds) lies within [`TX_TIME_WINDOW_SECS`] of `reference`.
pub fn within_tx_window(tx_secs: i64, reference: i64) -> bool {
    tx_secs.abs_diff(reference) <= TX_TIME_WINDOW_SECS as u64
}

/// The peer's commit hash chain: SHA-256(previous commit hash || header hash || validation codes).
pub fn commit_hash(previous: &[u8], header_hash: &Hash32, codes: &[u8]) -> Hash32 {
    Hash32::of_parts([previous, &header_hash.0[..], codes])
}
