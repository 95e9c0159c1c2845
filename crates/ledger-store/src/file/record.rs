//! The segment record format: a fixed 48-byte header followed by the prost-encoded block.
//!
//! ```text
//! offset  size  field
//!      0     4  magic  b"IPB2" (Fabric blocks; b"IPB1" was ipechain's own block format, refused)
//!      4     4  payload length L (u32 little-endian)
//!      8     8  block number (u64 little-endian)
//!     16    32  SHA-256 over bytes [0, 16) of this header followed by the payload
//!     48     L  payload: the encoded `Block`
//! ```
//!
//! Pure functions over buffers; the file I/O is in the private `segment` module.

use ledger_types::Hash32;
use std::fmt;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 48;
/// The record magic: the payload is a Fabric `common.Block`.
pub const MAGIC: [u8; 4] = *b"IPB2";
/// The magic of stores written before the ledger spoke Fabric's formats (ipechain's own `Block`).
pub const OLD_MAGIC: [u8; 4] = *b"IPB1";
/// Largest payload accepted when reading (a corrupt length must not make us allocate gigabytes).
pub const MAX_PAYLOAD: u32 = 256 << 20;

/// Why the bytes at a record position are not a good record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The file ends inside the record (fewer bytes than the header or its stated length).
    #[error("record truncated: {needed} bytes needed, {available} left in the file")]
    Truncated {
        /// Bytes the record needs from its start.
        needed: u64,
        /// Bytes left in the file from the record's start.
        available: u64,
    },
    /// The first four bytes are not the record magic.
    #[error("bad record magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The stated payload length is larger than any block may be.
    #[error("record length {0} exceeds the maximum {MAX_PAYLOAD}")]
    TooLong(u32),
    /// The checksum does not match the header and payload.
    #[error("checksum mismatch")]
    Checksum,
    /// The record holds another block than the one expected at this position.
    #[error("record holds block {found}, expected block {expected}")]
    Number {
        /// The number the record states.
        found: u64,
        /// The number expected here.
        expected: u64,
    },
    /// The payload does not decode as a block, or the block disagrees with its record.
    #[error("payload does not decode as a block: {0}")]
    Decode(String),
    /// The block does not extend the chain of the blocks before it.
    #[error("block does not extend the chain: {0}")]
    Link(String),
}

/// A decoded record header (not yet checked against its payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length.
    pub len: u32,
    /// Block number stated by the record.
    pub number: u64,
    /// The stored checksum.
    pub checksum: [u8; 32],
}

impl RecordHeader {
    /// Total bytes of the record (header and payload).
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// Encodes a whole record for `payload` (an encoded block with this number).
pub fn encode(number: u64, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(RecordError::TooLong(u32::MAX))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    let sum = checksum(&out[..16], payload);
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    Ok(out)
}

fn checksum(head: &[u8], payload: &[u8]) -> [u8; 32] {
    Hash32::of_parts([head, payload]).0
}

/// Decodes a header from its 48 bytes, checking the magic and the length bound.
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Result<RecordHeader, RecordError> {
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[0..4]);
    if magic != MAGIC {
        return Err(RecordError::BadMagic(magic));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[4..8]);
    let len = u32::from_le_bytes(len);
    if len > MAX_PAYLOAD {
        return Err(RecordError::TooLong(len));
    }
    let mut number = [0u8; 8];
    number.copy_from_slice(&bytes[8..16]);
    let mut sum = [0u8; 32];
    sum.copy_from_slice(&bytes[16..48]);
    Ok(RecordHeader { len, number: u64::from_le_bytes(number), checksum: sum })
}

/// Checks a whole record (`bytes` = header + payload, exactly) and returns its header and payload.
pub fn verify(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), RecordError> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(RecordError::Truncated { needed: HEADER_LEN as u64, available: bytes.len() as u64 })?;
    let header = decode_header(head)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != u64::from(header.len) {
        return Err(RecordError::Truncated { needed: header.record_len(), available: bytes.len() as u64 });
    }
    if checksum(&bytes[..16], payload) != header.checksum {
        return Err(RecordError::Checksum);
    }
    Ok((header, payload))
}

/// Where a record starts: segment index and byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordPos {
    /// Segment index (`blocks/{segment:06}.seg`).
    pub segment: u32,
    /// Byte offset of the record header in the segment.
    pub offset: u64,
}

impl fmt::Display for RecordPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} offset {}", segment_name(self.segment), self.offset)
    }
}

/// The file name of a segment.
pub fn segment_name(segment: u32) -> String {
    format!("{segment:06}.seg")
}

/// The segment index of a file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests;
