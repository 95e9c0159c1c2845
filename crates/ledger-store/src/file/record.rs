//! The segment record format: a fixed 48-byte header followed by the prost-encoded block.
//!
//! ```text
//! offset  size  field
//!      0     4  magic  b"IPB3" (b"IPB2" is still read; b"IPB1" was ipechain's own block format, refused)
//!      4     4  payload length L (u32 little-endian)
//!      8     8  block number (u64 little-endian)
//!     16    32  checksum over bytes [0, 16) of this header followed by the payload:
//!               IPB3: CRC-32 (ISO-HDLC, little-endian) in bytes [16, 20), zero in [20, 48)
//!               IPB2: SHA-256
//!     48     L  payload: the encoded `Block`
//! ```
//!
//! The checksum only finds damage on disk (torn writes, flipped bits); it never vouched for content, since
//! whoever can write the file can recompute a SHA-256 as easily as a CRC. What a block *is* is fixed by the
//! chain: each header names the hash of the one before (checked here on open) and the hash of its data
//! (checked by peers on receipt and by `ipechain verify`), and the orderer signs it. SHA-256 over every record,
//! written and read back on three orderers and each peer, was 3–4% of the node's CPU under load
//! (docs/ledger-perf.md, fourth and seventh rounds); `crc32fast` uses the CPU's carry-less multiply. Records of
//! both kinds may follow each other in one segment (a store written before commit 2503043, 2026-12-04, goes on
//! with IPB3 records).
//!
//! Pure functions over buffers; the file I/O is in the private `segment` module.

use ledger_types::Hash32;
use std::fmt;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 48;
/// The record magic: the payload is a Fabric `common.Block`, the checksum a CRC-32.
pub const MAGIC: [u8; 4] = *b"IPB3";
/// The magic of records whose checksum is a SHA-256 (written before commit 2503043, 2026-12-04; still read).
pub const SHA256_MAGIC: [u8; 4] = *b"IPB2";
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
    /// The stored checksum field (a CRC-32 and 28 zero bytes, or a SHA-256).
    pub checksum: [u8; 32],
    /// Which checksum the record carries.
    pub kind: ChecksumKind,
}

/// The checksum a record carries, by its magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumKind {
    /// `IPB3`: CRC-32.
    Crc32,
    /// `IPB2`: SHA-256.
    Sha256,
}

impl ChecksumKind {
    /// The checksum field for a header's first 16 bytes and a payload.
    fn field(self, head: &[u8], payload: &[u8]) -> [u8; 32] {
        match self {
            ChecksumKind::Crc32 => {
                let mut h = crc32fast::Hasher::new();
                h.update(head);
                h.update(payload);
                let mut out = [0u8; 32];
                out[..4].copy_from_slice(&h.finalize().to_le_bytes());
                out
            }
            ChecksumKind::Sha256 => Hash32::of_parts([head, payload]).0,
        }
    }
}

impl RecordHeader {
    /// Total bytes of the record (header and payload).
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// Encodes a whole record for `payload` (an encoded block with this number).
pub fn encode(number: u64, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
    encode_with(number, payload.len(), |out| out.extend_from_slice(payload))
}

/// Encodes a whole record whose payload `write` appends (`payload_len` bytes) to the buffer after the
/// header: the payload is encoded in place, not encoded and then copied into the record.
pub fn encode_with(
    number: u64,
    payload_len: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, RecordError> {
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(RecordError::TooLong(u32::MAX))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    out.resize(HEADER_LEN, 0);
    write(&mut out);
    if out.len() != HEADER_LEN + payload_len {
        // A writer that disagrees with its own length would make a record that never reads back.
        return Err(RecordError::Truncated {
            needed: (HEADER_LEN + payload_len) as u64,
            available: out.len() as u64,
        });
    }
    let sum = ChecksumKind::Crc32.field(&out[..16], &out[HEADER_LEN..]);
    out[16..HEADER_LEN].copy_from_slice(&sum);
    Ok(out)
}

/// Whether four bytes are the magic of a record this version reads.
pub fn is_magic(bytes: &[u8]) -> bool {
    bytes == MAGIC || bytes == SHA256_MAGIC
}

/// Decodes a header from its 48 bytes, checking the magic and the length bound.
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Result<RecordHeader, RecordError> {
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[0..4]);
    let kind = match magic {
        MAGIC => ChecksumKind::Crc32,
        SHA256_MAGIC => ChecksumKind::Sha256,
        _ => return Err(RecordError::BadMagic(magic)),
    };
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
    Ok(RecordHeader { len, number: u64::from_le_bytes(number), checksum: sum, kind })
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
    if header.kind.field(&bytes[..16], payload) != header.checksum {
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
