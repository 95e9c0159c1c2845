//! Blocks: Fabric's `common.Block`, built, hashed, linked and read as Fabric does (`protoutil/blockutils.go`).
//!
//! - The data hash is SHA-256 over the concatenated envelopes ([`fabric_protos::hash::block_data_hash`]).
//! - The block hash, which the next block's `previous_hash` repeats, is SHA-256 of the ASN.1 DER header
//!   ([`fabric_protos::hash::block_header_hash`]).
//! - The metadata is Fabric's five entries ([`BlockMetadataIndex`]): `SIGNATURES` holds
//!   `Metadata{value = OrdererBlockMetadata{last_config, consenter_metadata = ipechain's
//!   [`ConsenterMetadata`] (the block time)}, signatures}`, each orderer signature over
//!   `value ‖ signature_header ‖ header DER`; `TRANSACTIONS_FILTER` one validation code per transaction;
//!   `COMMIT_HASH` the peer's commit hash as `Metadata{value}`; ipechain puts the Raft position in the
//!   deprecated `ORDERER` entry (docs/ledger-format.md).

use crate::TxValidationCode;
use crate::hash::Hash32;
use crate::proto::{
    Block, BlockData, BlockHeader, BlockMetadata, ConsenterMetadata, Metadata, MetadataSignature,
    RaftPosition, Timestamp,
};
use crate::tx::Signer;
use bytes::Bytes;
use fabric_protos::common::{BlockMetadataIndex, LastConfig, OrdererBlockMetadata, SignatureHeader};
use fabric_protos::hash::{block_data_hash, block_header_hash, metadata_signed_bytes};
use prost::Message;

/// Blocks' data this process has hashed, remembered so that the next check of the same bytes compares them
/// instead of hashing them again: `ipechain up` hashes each block's data six times (the leader's build, three
/// orderers' Raft state machines, two peers' ledgers), and comparing ~1 MB costs a tenth of hashing it. A
/// remembered hash is the one SHA-256 gives for byte-for-byte equal data, so every check's verdict is the one
/// hashing gives; data that differs in any byte, or was not seen, is hashed. Holds the last
/// [`KNOWN_BLOCK_DATA`] blocks' envelopes (shared `Bytes`, not copies), at most [`KNOWN_BLOCK_DATA_BYTES`].
mod known_data {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{LazyLock, Mutex};

    type Known = VecDeque<([u8; 32], Vec<Bytes>, usize)>;
    static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(|| Mutex::new(VecDeque::new()));

    fn known() -> std::sync::MutexGuard<'static, Known> {
        KNOWN.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn remember(hash: [u8; 32], data: &BlockData) {
        let size: usize = data.data.iter().map(Bytes::len).sum();
        if size > super::KNOWN_BLOCK_DATA_BYTES || data.data.is_empty() {
            return;
        }
        let mut k = known();
        if k.iter().any(|(h, _, _)| *h == hash) {
            return;
        }
        k.push_back((hash, data.data.clone(), size));
        let mut total: usize = k.iter().map(|(_, _, n)| n).sum();
        while k.len() > super::KNOWN_BLOCK_DATA || total > super::KNOWN_BLOCK_DATA_BYTES {
            if let Some((_, _, n)) = k.pop_front() {
                total -= n;
            }
        }
    }

    pub(super) fn recognises(stated: &[u8], data: &BlockData) -> bool {
        let seen = known().iter().find(|(h, _, _)| h[..] == *stated).map(|(_, d, _)| d.clone());
        seen.is_some_and(|d| d.len() == data.data.len() && d.iter().zip(&data.data).all(|(a, b)| a == b))
    }
}

/// Blocks whose data this process remembers having hashed ([`data_hash_matches`]).
pub const KNOWN_BLOCK_DATA: usize = 16;
/// Bytes of block data remembered at most.
pub const KNOWN_BLOCK_DATA_BYTES: usize = 64 << 20;

/// True when `stated` is the data hash of `data` (SHA-256 over its envelopes, Fabric's
/// [`block_data_hash`]); data this process hashed recently is compared with what it hashed instead of hashed
/// again (the verdict is the same).
pub fn data_hash_matches(stated: &[u8], data: &BlockData) -> bool {
    if known_data::recognises(stated, data) {
        return true;
    }
    let actual = block_data_hash(data);
    let matches = actual[..] == *stated;
    if matches {
        known_data::remember(actual, data);
    }
    matches
}

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
    /// The genesis block must have number 0 and an empty previous hash (Fabric's `NewBlock(0, nil)`).
    #[error("genesis block must be number 0 with no previous hash")]
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
    data: Vec<Bytes>,
}

impl BlockBuilder {
    /// A block with no transactions yet.
    pub fn new(number: u64, previous: Hash32) -> BlockBuilder {
        BlockBuilder { number, previous, data: Vec::new() }
    }

    /// Appends an encoded envelope.
    pub fn push_envelope(mut self, envelope: impl Into<Bytes>) -> BlockBuilder {
        self.data.push(envelope.into());
        self
    }

    /// Appends many encoded envelopes.
    pub fn envelopes<E: Into<Bytes>>(mut self, envelopes: impl IntoIterator<Item = E>) -> BlockBuilder {
        self.data.extend(envelopes.into_iter().map(Into::into));
        self
    }

    /// Finishes the block: computes the data hash; Fabric's five metadata entries, every transaction marked
    /// `NOT_VALIDATED`. The genesis block's previous hash is empty (Fabric's `NewBlock(0, nil)`).
    pub fn build(self) -> Block {
        let data = BlockData { data: self.data };
        let data_hash = block_data_hash(&data);
        known_data::remember(data_hash, &data);
        let n = data.data.len();
        let previous_hash = if self.number == 0 && self.previous == Hash32::ZERO {
            Vec::new()
        } else {
            self.previous.0.to_vec()
        };
        let mut metadata = vec![Bytes::new(); METADATA_ENTRIES];
        metadata[BlockMetadataIndex::TransactionsFilter as usize] =
            vec![TxValidationCode::NotValidated.as_u8(); n].into();
        Block {
            header: Some(BlockHeader {
                number: self.number,
                previous_hash: previous_hash.into(),
                data_hash: data_hash.to_vec().into(),
            }),
            data: Some(data),
            metadata: Some(BlockMetadata { metadata }),
        }
    }
}

/// Fabric's number of metadata entries (`len(BlockMetadataIndex_name)`).
pub const METADATA_ENTRIES: usize = 5;

/// `metadata[ORDERER]`: deprecated in Fabric (nothing writes or reads it since 1.x); ipechain keeps the Raft
/// position there.
#[allow(deprecated)]
const ORDERER_ENTRY: BlockMetadataIndex = BlockMetadataIndex::Orderer;

fn entry(block: &Block, index: BlockMetadataIndex) -> Option<&[u8]> {
    block.metadata.as_ref()?.metadata.get(index as usize).map(|e| &e[..])
}

fn entry_mut(block: &mut Block, index: BlockMetadataIndex) -> &mut Bytes {
    let meta = block.metadata.get_or_insert_with(Default::default);
    if meta.metadata.len() < METADATA_ENTRIES {
        meta.metadata.resize(METADATA_ENTRIES, Bytes::new());
    }
    &mut meta.metadata[index as usize]
}

/// What ipechain reads and writes on a Fabric block.
pub trait BlockExt {
    /// The block number (0 when the header is missing; [`BlockExt::check_links`] reports that).
    fn number(&self) -> u64;
    /// The block hash (SHA-256 of the DER header): what the next block's `previous_hash` must be.
    fn header_hash(&self) -> Hash32;
    /// The encoded envelopes.
    fn envelopes(&self) -> &[Bytes];
    /// The validation codes, `metadata[TRANSACTIONS_FILTER]` (empty when absent).
    fn validation_codes(&self) -> &[u8];
    /// Sets `metadata[TRANSACTIONS_FILTER]`.
    fn set_validation_codes(&mut self, codes: Vec<u8>);
    /// The peer's commit hash, `metadata[COMMIT_HASH]` = `Metadata{value}` (None when absent or malformed).
    fn commit_hash(&self) -> Option<Vec<u8>>;
    /// Sets `metadata[COMMIT_HASH]` to `Metadata{value = hash}`, as Fabric's kvledger does.
    fn set_commit_hash(&mut self, hash: &Hash32);
    /// `metadata[SIGNATURES]` decoded (None when absent or malformed).
    fn signatures_metadata(&self) -> Option<Metadata>;
    /// The time the ordering service gave the block (None: genesis, or no readable time).
    fn time(&self) -> Option<Timestamp>;
    /// [`BlockExt::time`] in Unix seconds.
    fn time_secs(&self) -> Option<i64> {
        self.time().map(|t| t.seconds)
    }
    /// The Raft position ipechain's orderers record (None: genesis or absent).
    fn raft_position(&self) -> Option<RaftPosition>;
    /// Records the Raft position (unsigned metadata).
    fn set_raft_position(&mut self, position: RaftPosition);
    /// Checks the data hash, the codes' count and, given the previous block (None for genesis), the number
    /// and previous hash.
    fn check_links(&self, previous: Option<&Block>) -> Result<(), LinkError> {
        self.check_extends(previous.map(|p| (p.number(), p.header_hash())))
    }
    /// Like [`BlockExt::check_links`] with only the previous block's number and header hash.
    fn check_extends(&self, previous: Option<(u64, Hash32)>) -> Result<(), LinkError>;
}

impl BlockExt for Block {
    fn number(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.number)
    }

    fn header_hash(&self) -> Hash32 {
        header_hash(self.header.as_ref().unwrap_or(&BlockHeader::default()))
    }

    fn envelopes(&self) -> &[Bytes] {
        self.data.as_ref().map_or(&[], |d| &d.data)
    }

    fn validation_codes(&self) -> &[u8] {
        entry(self, BlockMetadataIndex::TransactionsFilter).unwrap_or(&[])
    }

    fn set_validation_codes(&mut self, codes: Vec<u8>) {
        *entry_mut(self, BlockMetadataIndex::TransactionsFilter) = codes.into();
    }

    fn commit_hash(&self) -> Option<Vec<u8>> {
        let bytes = entry(self, BlockMetadataIndex::CommitHash).filter(|b| !b.is_empty())?;
        Metadata::decode(bytes).ok().map(|m| m.value.to_vec())
    }

    fn set_commit_hash(&mut self, hash: &Hash32) {
        *entry_mut(self, BlockMetadataIndex::CommitHash) =
            Metadata { value: hash.0.to_vec().into(), signatures: Vec::new() }.encode_to_vec().into();
    }

    fn signatures_metadata(&self) -> Option<Metadata> {
        Metadata::decode(entry(self, BlockMetadataIndex::Signatures)?).ok()
    }

    fn time(&self) -> Option<Timestamp> {
        let md = self.signatures_metadata()?;
        let obm = OrdererBlockMetadata::decode(md.value.as_ref()).ok()?;
        ConsenterMetadata::decode(obm.consenter_metadata.as_ref()).ok()?.timestamp
    }

    fn raft_position(&self) -> Option<RaftPosition> {
        let bytes = entry(self, ORDERER_ENTRY).filter(|b| !b.is_empty())?;
        let md = Metadata::decode(bytes).ok()?;
        RaftPosition::decode(md.value.as_ref()).ok()
    }

    fn set_raft_position(&mut self, position: RaftPosition) {
        *entry_mut(self, ORDERER_ENTRY) =
            Metadata { value: position.encode_to_vec().into(), signatures: Vec::new() }
                .encode_to_vec()
                .into();
    }

    fn check_extends(&self, previous: Option<(u64, Hash32)>) -> Result<(), LinkError> {
        let header = self.header.as_ref().ok_or(LinkError::Missing("header"))?;
        let data = self.data.as_ref().ok_or(LinkError::Missing("data"))?;
        match previous {
            None => {
                if header.number != 0 || !header.previous_hash.is_empty() {
                    return Err(LinkError::Genesis);
                }
            }
            Some((prev_number, prev_hash)) => {
                if header.number != prev_number + 1 {
                    return Err(LinkError::Number { number: header.number, previous: prev_number });
                }
                if header.previous_hash[..] != prev_hash.0 {
                    return Err(LinkError::PreviousHash {
                        number: header.number,
                        stated: hex::encode(&header.previous_hash),
                        actual: prev_hash,
                    });
                }
            }
        }
        if !data_hash_matches(&header.data_hash, data) {
            return Err(LinkError::DataHash {
                number: header.number,
                stated: hex::encode(&header.data_hash),
                actual: Hash32(block_data_hash(data)),
            });
        }
        let codes = self.validation_codes().len();
        if codes != data.data.len() {
            return Err(LinkError::CodesLength { number: header.number, codes, txs: data.data.len() });
        }
        Ok(())
    }
}

/// Fabric's block hash: SHA-256 of the DER-encoded header.
pub fn header_hash(header: &BlockHeader) -> Hash32 {
    Hash32(block_header_hash(header))
}

/// How far (seconds, either way) a transaction's own timestamp may be from its block's time. A transaction's
/// certificates are judged at its timestamp, so validation reads no clock; the window keeps a client from
/// backdating a transaction to use a certificate that has expired (docs/msp.md, "Time").
pub const TX_TIME_WINDOW_SECS: i64 = 15 * 60;

/// Gives a block its `metadata[SIGNATURES]` value: `OrdererBlockMetadata{last_config{index 0} (the genesis
/// block is the only config block), consenter_metadata = ConsenterMetadata{time}}`, with no signature yet.
/// Any signature already there is dropped (it would not cover the new value).
pub fn stamp(block: &mut Block, time: Option<Timestamp>) {
    let consenter_metadata =
        if time.is_some() { ConsenterMetadata { timestamp: time }.encode_to_vec() } else { Vec::new() };
    let value = OrdererBlockMetadata {
        last_config: Some(LastConfig { index: 0 }),
        consenter_metadata: consenter_metadata.into(),
    };
    *entry_mut(block, BlockMetadataIndex::Signatures) =
        Metadata { value: value.encode_to_vec().into(), signatures: Vec::new() }.encode_to_vec().into();
}

/// Adds `signer`'s orderer signature to a stamped block ([`stamp`]): `MetadataSignature{signature_header =
/// SignatureHeader{creator}, signature over value ‖ signature_header ‖ header DER}` (Fabric's rule; no nonce:
/// the bytes are a pure function of the block and the signer).
pub fn sign(block: &mut Block, signer: &dyn Signer) {
    let mut md = block.signatures_metadata().unwrap_or_default();
    let signature_header =
        SignatureHeader { creator: signer.serialized_identity().to_vec().into(), nonce: Vec::new().into() }
            .encode_to_vec();
    let header = block.header.clone().unwrap_or_default();
    let signature = signer.sign(&metadata_signed_bytes(&md.value, &signature_header, &header));
    md.signatures.push(MetadataSignature {
        signature_header: signature_header.into(),
        signature: signature.into(),
        identifier_header: Vec::new().into(),
    });
    *entry_mut(block, BlockMetadataIndex::Signatures) = md.encode_to_vec().into();
}

/// Whether a transaction timestamp (Unix seconds) lies within [`TX_TIME_WINDOW_SECS`] of `reference`.
pub fn within_tx_window(tx_secs: i64, reference: i64) -> bool {
    tx_secs.abs_diff(reference) <= TX_TIME_WINDOW_SECS as u64
}

/// The peer's commit hash chain: SHA-256(previous commit hash || header hash || validation codes).
pub fn commit_hash(previous: &[u8], header_hash: &Hash32, codes: &[u8]) -> Hash32 {
    Hash32::of_parts([previous, &header_hash.0[..], codes])
}
