//! Reading and writing records in segment files with positional I/O (`pread`/`pwrite`), so readers never
//! share a file cursor with the writer.

use super::record::{self, HEADER_LEN, RecordError, RecordHeader};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A failed record read: the file could not be read, or its bytes are not a good record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Record(#[from] RecordError),
}

/// Reads the header of the record at `offset` of a file `file_len` bytes long.
pub(crate) fn read_header(file: &File, offset: u64, file_len: u64) -> Result<RecordHeader, ReadError> {
    let available = file_len.saturating_sub(offset);
    if available < HEADER_LEN as u64 {
        return Err(RecordError::Truncated { needed: HEADER_LEN as u64, available }.into());
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, offset)?;
    let header = record::decode_header(&head)?;
    if header.record_len() > available {
        return Err(RecordError::Truncated { needed: header.record_len(), available }.into());
    }
    Ok(header)
}

/// Reads and checks the whole record at `offset`; returns its header and payload.
pub(crate) fn read_record(
    file: &File,
    offset: u64,
    file_len: u64,
) -> Result<(RecordHeader, Vec<u8>), ReadError> {
    let header = read_header(file, offset, file_len)?;
    let mut buf = vec![0u8; header.record_len() as usize];
    file.read_exact_at(&mut buf, offset)?;
    let (header, _) = record::verify(&buf)?;
    buf.drain(..HEADER_LEN);
    Ok((header, buf))
}

/// Whether any well-formed record (good magic, length and checksum) starts after `offset` in the file:
/// tells a torn final write (nothing good follows) from damage in the middle of the file.
pub(crate) fn good_record_after(file: &File, offset: u64, file_len: u64) -> io::Result<Option<u64>> {
    let start = offset + 1;
    if start >= file_len {
        return Ok(None);
    }
    let mut rest = vec![0u8; (file_len - start) as usize];
    file.read_exact_at(&mut rest, start)?;
    let mut i = 0;
    while let Some(found) = rest[i..].windows(4).position(record::is_magic) {
        let at = i + found;
        if let Some(head) = rest.get(at..at + HEADER_LEN).and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
            && let Ok(h) = record::decode_header(head)
            && let Some(bytes) = rest.get(at..at + h.record_len() as usize)
            && record::verify(bytes).is_ok()
        {
            return Ok(Some(start + at as u64));
        }
        i = at + 1;
    }
    Ok(None)
}

/// The directory holding the segment files of a store.
pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("blocks")
}

/// The segment files present, in order; they must be numbered 0, 1, 2, ... without gaps.
pub(crate) fn list_segments(blocks_dir: &Path) -> io::Result<Result<Vec<u32>, String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(blocks_dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(record::parse_segment_name) {
            found.push(n);
        }
    }
    found.sort_unstable();
    for (i, n) in found.iter().enumerate() {
        if *n as usize != i {
            return Ok(Err(format!("segment {} is missing", record::segment_name(i as u32))));
        }
    }
    Ok(Ok(found))
}

/// Makes a directory entry change (a new segment file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
