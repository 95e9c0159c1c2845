//! Reading every record of a store's segment files in order, without the index: the audit tool's view
//! (`ipechain verify`). The scan stops at the first bad record and says where and what is wrong.

use super::decode_block;
use super::record::{RecordError, RecordPos, segment_name};
use super::segment::{ReadError, list_segments, read_record, segments_dir};
use crate::chain::check_next;
use ledger_types::BlockExt;
use ledger_types::Hash32;
use ledger_types::proto::Block;
use ledger_types::store::StoreError;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A good record: the block, its number and where it is.
#[derive(Debug, Clone)]
pub struct ScannedBlock {
    /// The block number (== its position in the chain).
    pub number: u64,
    /// Where its record starts.
    pub pos: RecordPos,
    /// Payload length in bytes.
    pub len: u32,
    /// The decoded block.
    pub block: Block,
}

/// The first bad record: which block should have been there, where, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("block {block} at {pos}: {problem}")]
pub struct ScanError {
    /// The number of the block expected at this position.
    pub block: u64,
    /// Where its record starts.
    pub pos: RecordPos,
    /// What is wrong.
    pub problem: ScanProblem,
}

/// What is wrong with a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanProblem {
    /// The file could not be read.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a good record of the expected block (truncated, bad checksum, ...). A truncated
    /// or garbled *final* record of the last segment is what a crash during an unacknowledged append
    /// leaves; opening the store removes it.
    #[error("{0}")]
    Record(#[from] RecordError),
}

/// Iterator over the records of a store; see [`scan`].
#[derive(Debug)]
pub struct Scan {
    blocks_dir: PathBuf,
    segments: u32,
    file: Option<(File, u64)>,
    pos: RecordPos,
    expected: u64,
    last_hash: Option<Hash32>,
    done: bool,
}

/// Reads the segment files of the store in `dir` in order, checking each record's checksum, number,
/// encoding and link to the previous block. Yields every good block, then at most one error (the first
/// bad record), then ends. Does not use or need the index, and does not modify anything.
pub fn scan(dir: impl AsRef<Path>) -> Result<Scan, StoreError> {
    let blocks_dir = segments_dir(dir.as_ref());
    let segments = match list_segments(&blocks_dir) {
        Ok(Ok(s)) => s.len() as u32,
        Ok(Err(e)) => return Err(StoreError::Corrupt(e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    Ok(Scan {
        blocks_dir,
        segments,
        file: None,
        pos: RecordPos { segment: 0, offset: 0 },
        expected: 0,
        last_hash: None,
        done: false,
    })
}

impl Scan {
    /// The blocks only, each error as `(number of the block expected there, "block N at SEGMENT offset O:
    /// what is wrong")`: the shape the peer's chain audit consumes.
    pub fn into_blocks(self) -> impl Iterator<Item = Result<Block, (u64, String)>> {
        self.map(|r| r.map(|s| s.block).map_err(|e| (e.block, e.to_string())))
    }

    fn fail(&mut self, problem: ScanProblem) -> Option<Result<ScannedBlock, ScanError>> {
        self.done = true;
        Some(Err(ScanError { block: self.expected, pos: self.pos, problem }))
    }
}

impl Iterator for Scan {
    type Item = Result<ScannedBlock, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.pos.segment >= self.segments {
                return None;
            }
            let (file, len) = match &self.file {
                Some(f) => f,
                None => {
                    let path = self.blocks_dir.join(segment_name(self.pos.segment));
                    let opened = File::open(path).and_then(|f| f.metadata().map(|m| (f, m.len())));
                    match opened {
                        Ok(f) => self.file.insert(f),
                        Err(e) => return self.fail(e.into()),
                    }
                }
            };
            if self.pos.offset >= *len {
                self.file = None;
                self.pos = RecordPos { segment: self.pos.segment + 1, offset: 0 };
                continue;
            }
            let expected = self.expected;
            let read = read_record(file, self.pos.offset, *len).and_then(|(h, payload)| {
                if h.number != expected {
                    return Err(RecordError::Number { found: h.number, expected }.into());
                }
                let block = decode_block(payload.into(), expected)?;
                check_next(&block, expected, self.last_hash).map_err(|e| RecordError::Link(e.to_string()))?;
                Ok((h, block))
            });
            return match read {
                Ok((h, block)) => {
                    let item = ScannedBlock { number: expected, pos: self.pos, len: h.len, block };
                    self.last_hash = Some(item.block.header_hash());
                    self.pos.offset += h.record_len();
                    self.expected += 1;
                    Some(Ok(item))
                }
                Err(ReadError::Io(e)) => self.fail(e.into()),
                Err(ReadError::Record(e)) => self.fail(e.into()),
            };
        }
    }
}
