//! What every block store shares: the "is this the next block" rule and the transaction ids a block indexes.

use ledger_types::BlockExt;
use ledger_types::proto::ChannelHeader;
use ledger_types::proto::{Block, Envelope, Payload};
use ledger_types::store::{StoreError, TxLocation};
use ledger_types::{Hash32, TxId, TxValidationCode};
use prost::Message;
use std::collections::HashSet;

/// Checks that `block` extends a chain of `height` blocks whose last header hash is `last_hash`
/// (the genesis block must have number 0 and an empty previous hash, as Fabric's).
pub(crate) fn check_next(block: &Block, height: u64, last_hash: Option<Hash32>) -> Result<(), StoreError> {
    let header = block.header.as_ref().ok_or_else(|| StoreError::NotNext("block has no header".into()))?;
    if header.number != height {
        return Err(StoreError::NotNext(format!(
            "block number {} but the store holds {height} blocks (expected number {height})",
            header.number
        )));
    }
    let expected = match last_hash {
        Some(h) => h.0.to_vec(),
        None => Vec::new(),
    };
    if header.previous_hash != expected {
        let expected = last_hash.map_or_else(|| "nothing (genesis)".to_owned(), |h| h.to_string());
        return Err(StoreError::NotNext(format!(
            "block {}: previous hash {} but the last block hashes to {expected}",
            header.number,
            hex(&header.previous_hash)
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The transaction id an encoded envelope claims, if it decodes and carries a well-formed one (config
/// transactions and malformed envelopes have none and are not indexed).
///
/// Every append computes this for each envelope of the block, so the usual shape (each field on the path
/// `Envelope.payload` → `Payload.header` → `Header.channel_header` → `ChannelHeader.tx_id` present once, no
/// groups) is read in place without decoding or copying anything; any other shape goes through a full
/// decode, with protobuf's merge rules. The in-place reading checks the wire format of the messages on the
/// path but not the content of fields off it, which a full decode would also reject (e.g. invalid UTF-8 in
/// another string): no block holds such an envelope, as orderers fully decode every envelope they order.
pub fn envelope_tx_id(envelope: &[u8]) -> Option<TxId> {
    match fast_tx_id(envelope) {
        Fast::Id(id) => Some(id),
        Fast::None => None,
        Fast::Decode => decoded_tx_id(envelope),
    }
}

enum Fast {
    Id(TxId),
    /// Certainly no id: the full decode would fail or find none.
    None,
    /// An unusual shape: decode fully.
    Decode,
}

fn fast_tx_id(envelope: &[u8]) -> Fast {
    use ledger_types::wire::{CHANNEL_HEADER_TX_ID, FieldError, envelope_channel_header, only_field};
    let walk = || -> Result<Option<&str>, FieldError> {
        let Some(header) = envelope_channel_header(envelope)? else { return Ok(None) };
        let Some(id) = only_field(header, CHANNEL_HEADER_TX_ID)? else { return Ok(None) };
        std::str::from_utf8(id).map(Some).map_err(|_| FieldError::Malformed)
    };
    match walk() {
        Ok(Some(id)) => TxId::parse(id).map_or(Fast::None, Fast::Id),
        Ok(None) | Err(FieldError::Malformed) => Fast::None,
        Err(FieldError::Unusual) => Fast::Decode,
    }
}

/// [`envelope_tx_id`] by full decoding.
fn decoded_tx_id(envelope: &[u8]) -> Option<TxId> {
    let env = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(env.payload.as_ref()).ok()?;
    let header = ChannelHeader::decode(payload.header?.channel_header.as_ref()).ok()?;
    TxId::parse(&header.tx_id).ok()
}

/// The code stored for transaction `index` of a block: a missing code reads as `NOT_VALIDATED`, an
/// unknown byte as `INVALID_OTHER_REASON`.
pub(crate) fn code_at(codes: &[u8], index: usize) -> TxValidationCode {
    match codes.get(index) {
        None => TxValidationCode::NotValidated,
        Some(b) => TxValidationCode::from_u8(*b).unwrap_or(TxValidationCode::InvalidOtherReason),
    }
}

/// The transaction ids of a block with their locations, first occurrence within the block only.
pub fn block_tx_locations(block: &Block) -> Vec<(TxId, TxLocation)> {
    let number = block.number();
    let codes = block.validation_codes();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(block.envelopes().len());
    for (i, env) in block.envelopes().iter().enumerate() {
        let Some(id) = envelope_tx_id(env) else { continue };
        let Ok(index) = u32::try_from(i) else { break };
        if seen.insert(id.clone()) {
            out.push((id, TxLocation { block: number, index, code: code_at(codes, i) }));
        }
    }
    out
}

#[cfg(test)]
mod tests;
