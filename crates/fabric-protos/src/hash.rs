//! Fabric's hashing and signing rules (Fabric's `protoutil`), as pure functions over the messages.
//!
//! | what | rule |
//! |---|---|
//! | transaction id | lower-case hex of SHA-256(`nonce` ‖ `creator`), `creator` being the encoded `msp.SerializedIdentity` exactly as in the `SignatureHeader` |
//! | block data hash | SHA-256 over the concatenation of `BlockData.data` (Fabric 2.x and 3.x; not a Merkle tree) |
//! | block header bytes | ASN.1 DER `SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }`; the block hash (the next block's `previous_hash`) is its SHA-256 |
//! | orderer block signature | over `Metadata.value` ‖ `MetadataSignature.signature_header` (or, BFT, `identifier_header`) ‖ header bytes, for the `Metadata` in `BlockMetadata.metadata[SIGNATURES]` |
//! | proposal hash | SHA-256(`Header.channel_header` ‖ `Header.signature_header` ‖ encoded `ChaincodeProposalPayload` without its transient map): `ProposalResponsePayload.proposal_hash` |
//! | endorsement signature | over `ProposalResponse.payload` ‖ `Endorsement.endorser` |
//!
//! Signatures themselves (ECDSA P-256 low-S over SHA-256, Ed25519) are the MSP's business: these functions
//! give the exact bytes that are signed.

use crate::common::{Block, BlockData, BlockHeader, BlockMetadataIndex, Header, Metadata};
use crate::common::{IdentifierHeader, SignatureHeader};
use crate::protos::{ChaincodeProposalPayload, Proposal};
use prost::Message;
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

fn sha256_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Fabric's transaction id: lower-case hex of SHA-256(`nonce` ‖ `creator`), where `creator` is the encoded
/// `msp.SerializedIdentity` as it appears in the `SignatureHeader` (not re-encoded).
pub fn tx_id(nonce: &[u8], creator: &[u8]) -> String {
    hex::encode(sha256_parts([nonce, creator]))
}

/// A transaction id that is not the one its nonce and creator give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid txid. got [{got}], expected [{expected}]")]
pub struct TxIdMismatch {
    /// The id the message states.
    pub got: String,
    /// The id computed from its nonce and creator.
    pub expected: String,
}

/// Fabric's `CheckTxID`: the stated id must equal [`tx_id`] exactly (lower-case hex).
pub fn check_tx_id(stated: &str, nonce: &[u8], creator: &[u8]) -> Result<(), TxIdMismatch> {
    let expected = tx_id(nonce, creator);
    if stated == expected { Ok(()) } else { Err(TxIdMismatch { got: stated.to_owned(), expected }) }
}

/// Fabric's block data hash: SHA-256 over the concatenation of the data entries (the encoded envelopes).
pub fn block_data_hash(data: &BlockData) -> Digest {
    sha256_parts(data.data.iter().map(|d| &d[..]))
}

/// The bytes Fabric hashes for a block header: the ASN.1 DER encoding of
/// `SEQUENCE { number INTEGER, previous_hash OCTET STRING, data_hash OCTET STRING }` (Go's
/// `asn1.Marshal` of a `big.Int` and two byte slices; empty slices are zero-length OCTET STRINGs).
pub fn block_header_bytes(header: &BlockHeader) -> Vec<u8> {
    let mut content = Vec::with_capacity(16 + header.previous_hash.len() + header.data_hash.len());
    der_u64(&mut content, header.number);
    der_octets(&mut content, &header.previous_hash);
    der_octets(&mut content, &header.data_hash);
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(0x30);
    der_len(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

/// The block hash: SHA-256 of [`block_header_bytes`]. The next block's `previous_hash` is this.
pub fn block_header_hash(header: &BlockHeader) -> Digest {
    sha256_parts([block_header_bytes(header).as_slice()])
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A non-negative INTEGER: minimal big-endian two's complement (a leading 0x00 when the top bit is set).
fn der_u64(out: &mut Vec<u8>, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let digits = &bytes[skip..];
    let pad = digits[0] & 0x80 != 0;
    out.push(0x02);
    der_len(out, digits.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

fn der_octets(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(0x04);
    der_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The bytes an orderer signs for one `MetadataSignature` of a block: `metadata_value` ‖ `signer_header`
/// (the encoded `SignatureHeader`, or for BFT consenters named by id the encoded `IdentifierHeader`) ‖
/// [`block_header_bytes`].
pub fn metadata_signed_bytes(metadata_value: &[u8], signer_header: &[u8], header: &BlockHeader) -> Vec<u8> {
    let header_bytes = block_header_bytes(header);
    let mut out = Vec::with_capacity(metadata_value.len() + signer_header.len() + header_bytes.len());
    out.extend_from_slice(metadata_value);
    out.extend_from_slice(signer_header);
    out.extend_from_slice(&header_bytes);
    out
}

/// Who made a block signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockSigner {
    /// The `SignatureHeader.creator`: an encoded `msp.SerializedIdentity`.
    Creator(Vec<u8>),
    /// A BFT consenter named by its id in the channel's consenter set (`IdentifierHeader.identifier`).
    ConsenterId(u32),
}

/// One orderer signature of a block with the exact bytes it must verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSignature {
    /// The signer.
    pub signer: BlockSigner,
    /// The signed bytes ([`metadata_signed_bytes`]).
    pub signed_bytes: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Why a block's signatures cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockSignatureError {
    /// The block has no header.
    #[error("block has no header")]
    NoHeader,
    /// The metadata has no `SIGNATURES` entry.
    #[error("no signatures in block metadata")]
    NoSignatures,
    /// The `SIGNATURES` entry is not an encoded `common.Metadata`.
    #[error("error unmarshalling signatures from metadata: {0}")]
    Metadata(prost::DecodeError),
    /// A signature's `signature_header` does not decode.
    #[error("signature {index}: failed unmarshalling signature header: {source}")]
    SignatureHeader {
        /// Position in `Metadata.signatures`.
        index: usize,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// A signature's `identifier_header` does not decode.
    #[error("signature {index}: failed unmarshalling identifier header: {source}")]
    IdentifierHeader {
        /// Position in `Metadata.signatures`.
        index: usize,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// A signature names no signer at all.
    #[error("signature {index}: neither a signature header nor an identifier header")]
    NoSigner {
        /// Position in `Metadata.signatures`.
        index: usize,
    },
}

/// The orderer signatures of a block (from `metadata[SIGNATURES]`), each with the bytes it signs. A
/// signature with a `signature_header` names its creator; one with only an `identifier_header` names a
/// BFT consenter by id (the caller decides whether it accepts those, as Fabric does only under BFT).
pub fn block_signatures(block: &Block) -> Result<Vec<BlockSignature>, BlockSignatureError> {
    let header = block.header.as_ref().ok_or(BlockSignatureError::NoHeader)?;
    let entry = block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(BlockMetadataIndex::Signatures as usize))
        .ok_or(BlockSignatureError::NoSignatures)?;
    let md = Metadata::decode(&entry[..]).map_err(BlockSignatureError::Metadata)?;
    let header_bytes = block_header_bytes(header);
    let mut out = Vec::with_capacity(md.signatures.len());
    for (index, sig) in md.signatures.into_iter().enumerate() {
        let (signer, signer_header) = if !sig.signature_header.is_empty() {
            let sh = SignatureHeader::decode(&sig.signature_header[..])
                .map_err(|source| BlockSignatureError::SignatureHeader { index, source })?;
            (BlockSigner::Creator(sh.creator.to_vec()), sig.signature_header)
        } else if !sig.identifier_header.is_empty() {
            let ih = IdentifierHeader::decode(&sig.identifier_header[..])
                .map_err(|source| BlockSignatureError::IdentifierHeader { index, source })?;
            (BlockSigner::ConsenterId(ih.identifier), sig.identifier_header)
        } else {
            return Err(BlockSignatureError::NoSigner { index });
        };
        let mut signed_bytes = Vec::with_capacity(md.value.len() + signer_header.len() + header_bytes.len());
        signed_bytes.extend_from_slice(&md.value);
        signed_bytes.extend_from_slice(&signer_header);
        signed_bytes.extend_from_slice(&header_bytes);
        out.push(BlockSignature { signer, signed_bytes, signature: sig.signature.to_vec() });
    }
    Ok(out)
}

/// The bytes an endorser signs: `ProposalResponse.payload` ‖ `Endorsement.endorser`.
pub fn endorsement_signed_bytes(proposal_response_payload: &[u8], endorser: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(proposal_response_payload.len() + endorser.len());
    out.extend_from_slice(proposal_response_payload);
    out.extend_from_slice(endorser);
    out
}

/// Why a proposal hash cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalHashError {
    /// `Proposal.header` is not an encoded `common.Header`.
    #[error("error unmarshalling Header: {0}")]
    Header(prost::DecodeError),
    /// The header lacks its channel header or signature header.
    #[error("nil arguments")]
    MissingHeaderPart,
    /// `Proposal.payload` is not an encoded `ChaincodeProposalPayload`.
    #[error("error unmarshalling ChaincodeProposalPayload: {0}")]
    Payload(prost::DecodeError),
}

/// The payload of a chaincode proposal as it goes into the transaction
/// (`ChaincodeActionPayload.chaincode_proposal_payload`): the encoded `ChaincodeProposalPayload` without
/// its transient map (Fabric's `GetBytesProposalPayloadForTx`).
pub fn proposal_payload_for_tx(proposal_payload: &[u8]) -> Result<Vec<u8>, ProposalHashError> {
    let cpp = ChaincodeProposalPayload::decode(proposal_payload).map_err(ProposalHashError::Payload)?;
    Ok(ChaincodeProposalPayload { input: cpp.input, transient_map: Default::default() }.encode_to_vec())
}

/// The endorser's hash of a chaincode proposal (Fabric's `GetProposalHash1`), which goes into
/// `ProposalResponsePayload.proposal_hash`: SHA-256(channel header ‖ signature header ‖
/// [`proposal_payload_for_tx`]).
pub fn proposal_hash(proposal: &Proposal) -> Result<Digest, ProposalHashError> {
    let header = Header::decode(proposal.header.clone()).map_err(ProposalHashError::Header)?;
    let for_tx = proposal_payload_for_tx(&proposal.payload)?;
    proposal_hash_for_tx(&header, &for_tx)
}

/// The committer's side (Fabric's `GetProposalHash2`): SHA-256(channel header ‖ signature header ‖
/// `chaincode_proposal_payload` as carried in the transaction, not re-encoded).
pub fn proposal_hash_for_tx(
    header: &Header,
    chaincode_proposal_payload: &[u8],
) -> Result<Digest, ProposalHashError> {
    if header.channel_header.is_empty() || header.signature_header.is_empty() {
        return Err(ProposalHashError::MissingHeaderPart);
    }
    Ok(sha256_parts([&header.channel_header[..], &header.signature_header[..], chaincode_proposal_payload]))
}

#[cfg(test)]
mod tests;
