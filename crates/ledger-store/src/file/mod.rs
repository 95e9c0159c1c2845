//! [`FileBlockStore`]: blocks in append-only, checksummed segment files, fsynced before `append` returns,
//! with a redb index (block number → record position, tx id → location) that is derived data.
//!
//! ```text
//! <dir>/blocks/000000.seg   records: [magic|len|number|sha256][encoded Block]  (see `record`)
//! <dir>/blocks/000001.seg   a new segment starts when the current one would exceed `segment_size`
//! <dir>/index.redb          blocks: number -> (segment, offset, len); txs: tx id -> (block, index, code)
//!
//! append:  check number/previous hash ─► pwrite record ─► fdatasync segment ─► index commit ─► height += 1
//!                                                          └─ durable from here: a crash after this point
//!                                                             is repaired by re-indexing on open
//! open:    check record headers of indexed blocks ─► re-read and re-index blocks past the index
//!          ─► a bad final record of the last segment with nothing good after it = torn write: truncated
//!          ─► any other damage: StoreError::Corrupt naming the block and position
//! ```
//!
//! One writer (a mutex), many readers: `block` reads with `pread` on shared file handles and checks the
//! record's checksum on every read.

mod fault;
mod index;
pub mod record;
mod scan;
mod segment;

pub use record::{RecordError, RecordPos};
pub use scan::{Scan, ScanError, ScanProblem, ScannedBlock, scan};

use crate::chain::{block_tx_locations, check_next};
use bytes::Bytes;
use fault::Faults;
use index::{Entry, Index, Loc};
use ledger_types::BlockExt;
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StoreError, TxLocation};
use ledger_types::{Hash32, TxId};
use prost::Message;
use segment::{
    ReadError, good_record_after, list_segments, read_header, read_record, segments_dir, sync_dir,
};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// Tuning of a [`FileBlockStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStoreOptions {
    /// A new segment file is started when the next record would make the current one larger than this
    /// (a record is never split; a block larger than this gets a segment of its own). Default 64 MiB.
    pub segment_size: u64,
    /// Make the index durable every this many appended blocks (it is always made durable on drop, and a
    /// crash loses at most this many index entries, re-derived on the next open). Default 64.
    pub index_sync_every: u32,
    /// On open, read and checksum every record, not only the headers of indexed ones. Default false.
    pub verify_all_on_open: bool,
    /// Page-cache bytes of the newest records to keep: once a record is durable and this many bytes of newer
    /// ones follow it, the kernel is told its pages need not stay cached (`POSIX_FADV_DONTNEED`, as
    /// PostgreSQL does for its write-ahead log). Readers that follow the head (Deliver, event streams) read
    /// the newest blocks, which stay cached; older blocks are rarely read, and caching them only grows the
    /// page cache, whose fresh pages got dearer to fill as it grew (docs/ledger-perf.md, tenth round). A
    /// read of a dropped record goes to the disk. `None`: leave the page cache to the kernel. Default
    /// 16 MiB.
    pub cache_newest_bytes: Option<u64>,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            segment_size: 64 << 20,
            index_sync_every: 64,
            verify_all_on_open: false,
            cache_newest_bytes: Some(16 << 20),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Head {
    height: u64,
    last_hash: Option<Hash32>,
}

#[derive(Debug)]
struct Writer {
    /// Index of the last segment (the one appended to).
    segment: u32,
    /// Its length in bytes.
    segment_len: u64,
    /// Appends since the last durable index commit.
    unsynced: u32,
    /// Set when a write-path operation failed: the on-disk tail is unknown until the store is reopened
    /// (which truncates a partial record, or re-indexes a record that did reach the file).
    poisoned: Option<String>,
    /// Durable records whose pages are still cached, oldest first, and their bytes in all
    /// ([`FileStoreOptions::cache_newest_bytes`]).
    cached: std::collections::VecDeque<(Arc<File>, u64, u64)>,
    cached_bytes: u64,
}

/// Blocks in append-only segment files with a redb index. See the module docs for the layout and
/// `docs/ledger-format.md` for the byte format and crash guarantees.
#[derive(Debug)]
pub struct FileBlockStore {
    dir: PathBuf,
    options: FileStoreOptions,
    index: Index,
    /// One read/write handle per segment; readers use positional reads on them.
    segments: RwLock<Vec<Arc<File>>>,
    head: RwLock<Head>,
    writer: Mutex<Writer>,
    faults: Faults,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

fn open_segment(blocks_dir: &Path, n: u32, create: bool) -> io::Result<File> {
    let path = blocks_dir.join(record::segment_name(n));
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if create {
        o.create_new(true);
    }
    o.open(path)
}

fn decode_block(payload: Bytes, number: u64) -> Result<Block, RecordError> {
    let block = Block::decode(payload).map_err(|e| RecordError::Decode(e.to_string()))?;
    if block.header.is_none() {
        return Err(RecordError::Decode("block has no header".into()));
    }
    if block.number() != number {
        return Err(RecordError::Number { found: block.number(), expected: number });
    }
    Ok(block)
}

/// Refuses a store whose first record is in ipechain's earlier block format (magic `IPB1`), which this
/// version cannot read, with what to do about it.
fn refuse_old_format(first_segment: &File, dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 4];
    match first_segment.read_exact_at(&mut magic, 0) {
        Ok(()) if magic == record::OLD_MAGIC => Err(StoreError::Format(format!(
            "{} holds blocks in ipechain's earlier ledger format; this version stores Hyperledger Fabric \
             blocks and cannot read them. Start from a fresh data directory: remove the network's data \
             directory (or pass another --data-dir) and run `ipechain up` or `ipechain keys generate` again",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

impl FileBlockStore {
    /// Opens (creating if needed) the store in `dir` with default options; see
    /// [`FileBlockStore::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<FileBlockStore, StoreError> {
        FileBlockStore::open_with(dir, FileStoreOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`: checks the indexed records' headers, re-indexes any
    /// blocks past the index, truncates a torn final record, and reports other damage as
    /// [`StoreError::Corrupt`] naming the block and its position.
    pub fn open_with(dir: impl AsRef<Path>, options: FileStoreOptions) -> Result<FileBlockStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let blocks_dir = segments_dir(&dir);
        std::fs::create_dir_all(&blocks_dir)?;
        // First, as it locks the directory against a second writer (redb holds a file lock).
        let index = Index::open(&dir.join("index.redb"))?;
        let numbers = list_segments(&blocks_dir)?.map_err(corrupt)?;
        let mut files = Vec::with_capacity(numbers.len().max(1));
        for n in &numbers {
            files.push(open_segment(&blocks_dir, *n, false)?);
        }
        if let Some(first) = files.first() {
            refuse_old_format(first, &dir)?;
        }
        if files.is_empty() {
            files.push(open_segment(&blocks_dir, 0, true)?);
            sync_dir(&blocks_dir)?;
            sync_dir(&dir)?;
        }
        let mut lens = Vec::with_capacity(files.len());
        for f in &files {
            lens.push(f.metadata()?.len());
        }
        let recovered = recover(&files, &mut lens, &index, &options)?;
        let last = files.len() - 1;
        let store = FileBlockStore {
            dir,
            options,
            index,
            writer: Mutex::new(Writer {
                segment: u32::try_from(last).map_err(|_| corrupt("too many segments".into()))?,
                segment_len: lens[last],
                unsynced: 0,
                poisoned: None,
                cached: std::collections::VecDeque::new(),
                cached_bytes: 0,
            }),
            segments: RwLock::new(files.into_iter().map(Arc::new).collect()),
            head: RwLock::new(recovered),
            faults: Faults::default(),
        };
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> FileStoreOptions {
        self.options
    }

    /// Arms a fault: the first `n` write-path I/O operations from now succeed and the next one fails
    /// (a failing record write writes half the record first). Operations, in order: create a segment and
    /// sync the directory (only when rolling to a new segment), write the record, sync it, commit the index.
    #[cfg(feature = "failpoints")]
    pub fn fail_after(&self, n: u64) {
        self.faults.fail_after(n);
    }

    fn segment_file(&self, n: u32) -> Option<Arc<File>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner).get(n as usize).cloned()
    }

    fn head(&self) -> Head {
        *self.head.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn append_locked(
        &self,
        w: &mut Writer,
        block: &Block,
        txs: Vec<(TxId, TxLocation)>,
    ) -> Result<(), StoreError> {
        let head = self.head();
        check_next(block, head.height, head.last_hash)?;
        let number = head.height;
        // Encoded straight into the record (one buffer, no copy of the block into it).
        let payload_len = block.encoded_len();
        let rec = record::encode_with(number, payload_len, |out| block.encode_raw(out))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let blocks_dir = segments_dir(&self.dir);
        if w.segment_len > 0 && w.segment_len + rec.len() as u64 > self.options.segment_size {
            let next = w.segment.checked_add(1).ok_or_else(|| corrupt("too many segments".into()))?;
            let file = self.poison_on_err(w, || {
                self.faults.check("create segment")?;
                let file = open_segment(&blocks_dir, next, true)?;
                self.faults.check("sync directory")?;
                sync_dir(&blocks_dir)?;
                Ok::<_, io::Error>(file)
            })?;
            self.segments.write().unwrap_or_else(PoisonError::into_inner).push(Arc::new(file));
            w.segment = next;
            w.segment_len = 0;
        }
        let file = self.segment_file(w.segment).ok_or_else(|| corrupt("current segment missing".into()))?;
        let offset = w.segment_len;
        self.poison_on_err(w, || {
            self.faults.write_at(&file, &rec, offset)?;
            self.faults.check("sync record")?;
            file.sync_data()
        })?;
        w.segment_len += rec.len() as u64;
        // The block is durable from here on.
        if let Some(keep) = self.options.cache_newest_bytes {
            w.cached.push_back((file.clone(), offset, rec.len() as u64));
            w.cached_bytes += rec.len() as u64;
            while w.cached_bytes > keep {
                let Some((f, at, len)) = w.cached.pop_front() else { break };
                w.cached_bytes -= len;
                // Advice only: a kernel that ignores it or fails it changes nothing about the data.
                let _ = rustix::fs::fadvise(
                    &*f,
                    at,
                    std::num::NonZeroU64::new(len),
                    rustix::fs::Advice::DontNeed,
                );
            }
        }
        let entry = Entry {
            number,
            loc: Loc { pos: RecordPos { segment: w.segment, offset }, len: payload_len as u32 },
            txs,
        };
        w.unsynced += 1;
        let durable = w.unsynced >= self.options.index_sync_every;
        self.poison_on_err(w, || {
            self.faults.check("commit index").map_err(StoreError::Io)?;
            self.index.add(std::slice::from_ref(&entry), durable)
        })?;
        if durable {
            w.unsynced = 0;
        }
        *self.head.write().unwrap_or_else(PoisonError::into_inner) =
            Head { height: number + 1, last_hash: Some(block.header_hash()) };
        Ok(())
    }

    fn poison_on_err<T, E: Into<StoreError>>(
        &self,
        w: &mut Writer,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, StoreError> {
        f().map_err(|e| {
            let e = e.into();
            w.poisoned = Some(e.to_string());
            e
        })
    }

    fn read_block(&self, number: u64, loc: Loc) -> Result<Block, StoreError> {
        let at = |e: &dyn std::fmt::Display| corrupt(format!("block {number} at {}: {e}", loc.pos));
        let file = self.segment_file(loc.pos.segment).ok_or_else(|| at(&"segment missing"))?;
        let mut buf = vec![0u8; record::HEADER_LEN + loc.len as usize];
        file.read_exact_at(&mut buf, loc.pos.offset).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => at(&"record extends past the end of the segment"),
            _ => StoreError::Io(e),
        })?;
        let buf = Bytes::from(buf);
        let (header, payload) = record::verify(&buf).map_err(|e| at(&e))?;
        if header.number != number {
            return Err(at(&RecordError::Number { found: header.number, expected: number }));
        }
        // Decoded from shared bytes: the envelopes are slices of the record, not copies.
        decode_block(buf.slice_ref(payload), number).map_err(|e| at(&e))
    }
}

impl Drop for FileBlockStore {
    fn drop(&mut self) {
        let w = self.writer.get_mut().unwrap_or_else(PoisonError::into_inner);
        if w.unsynced > 0 {
            // Best effort: the next open re-indexes whatever this misses.
            if let Err(e) = self.index.sync() {
                tracing::warn!(error = %e, "could not make the block index durable on close");
            }
        }
    }
}

impl BlockStore for FileBlockStore {
    fn height(&self) -> u64 {
        self.head().height
    }

    fn last_hash(&self) -> Option<Hash32> {
        self.head().last_hash
    }

    fn append(&self, block: &Block) -> Result<(), StoreError> {
        // Decoding the tx ids is CPU work that needs no lock.
        let txs = block_tx_locations(block);
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = &w.poisoned {
            return Err(StoreError::Io(io::Error::other(format!(
                "block store is read-only after a failed write ({why}); reopen it to recover"
            ))));
        }
        self.append_locked(&mut w, block, txs)
    }

    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        if number >= self.head().height {
            return Ok(None);
        }
        let loc = self.index.get(number)?.ok_or_else(|| corrupt(format!("block {number} is not indexed")))?;
        self.read_block(number, loc).map(Some)
    }

    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        self.index.tx(tx_id)
    }
}

/// Brings segments and index into agreement and returns the head. See [`FileBlockStore::open_with`].
fn recover(
    files: &[File],
    lens: &mut [u64],
    index: &Index,
    options: &FileStoreOptions,
) -> Result<Head, StoreError> {
    let last_indexed = index.last()?;
    // 1. Walk the records the index covers (headers only, or whole records with `verify_all_on_open`).
    let mut pos = RecordPos { segment: 0, offset: 0 };
    let mut expected = 0u64;
    let mut last_hash = None;
    let mut indexed_ok = true;
    if let Some((last_n, last_loc)) = last_indexed {
        while expected <= last_n {
            let Some(file) = files.get(pos.segment as usize) else {
                indexed_ok = false;
                break;
            };
            let len = lens[pos.segment as usize];
            if pos.offset == len && (pos.segment as usize) + 1 < files.len() {
                pos = RecordPos { segment: pos.segment + 1, offset: 0 };
                continue;
            }
            let at = |e: &dyn std::fmt::Display| corrupt(format!("block {expected} at {pos}: {e}"));
            let header = if options.verify_all_on_open || expected == last_n {
                match read_record(file, pos.offset, len) {
                    Ok((h, payload)) => {
                        let b = decode_block(payload.into(), expected).map_err(|e| at(&e))?;
                        if options.verify_all_on_open {
                            check_next(&b, expected, last_hash).map_err(|e| at(&e))?;
                        }
                        last_hash = Some(b.header_hash());
                        Ok(h)
                    }
                    Err(e) => Err(e),
                }
            } else {
                read_header(file, pos.offset, len)
            };
            let header = match header {
                Ok(h) => h,
                Err(ReadError::Io(e)) => return Err(e.into()),
                Err(ReadError::Record(e)) => return Err(at(&e)),
            };
            if header.number != expected {
                return Err(corrupt(format!(
                    "block {expected} at {pos}: {}",
                    RecordError::Number { found: header.number, expected }
                )));
            }
            if expected == last_n && (pos != last_loc.pos || header.len != last_loc.len) {
                indexed_ok = false;
                break;
            }
            pos.offset += header.record_len();
            expected += 1;
        }
        if !indexed_ok {
            tracing::warn!("block index disagrees with the segment files; rebuilding it");
            index.clear()?;
            pos = RecordPos { segment: 0, offset: 0 };
            expected = 0;
            last_hash = None;
        }
    }
    // 2. Re-index every block past the index; a bad final record with nothing good after it is torn.
    let mut pending = Vec::new();
    loop {
        let si = pos.segment as usize;
        let len = lens[si];
        if pos.offset >= len {
            if si + 1 < files.len() {
                pos = RecordPos { segment: pos.segment + 1, offset: 0 };
                continue;
            }
            break;
        }
        let file = &files[si];
        let read = read_record(file, pos.offset, len).and_then(|(h, payload)| {
            if h.number != expected {
                return Err(RecordError::Number { found: h.number, expected }.into());
            }
            Ok((h, decode_block(payload.into(), expected)?))
        });
        match read {
            Ok((h, block)) => {
                check_next(&block, expected, last_hash)
                    .map_err(|e| corrupt(format!("block {expected} at {pos}: {e}")))?;
                last_hash = Some(block.header_hash());
                pending.push(Entry {
                    number: expected,
                    loc: Loc { pos, len: h.len },
                    txs: block_tx_locations(&block),
                });
                if pending.len() >= 256 {
                    index.add(&pending, false)?;
                    pending.clear();
                }
                pos.offset += h.record_len();
                expected += 1;
            }
            Err(ReadError::Io(e)) => return Err(e.into()),
            Err(ReadError::Record(e)) => {
                let tornable = !matches!(e, RecordError::Number { .. } | RecordError::Decode(_));
                let last_segment = si + 1 == files.len();
                if tornable && last_segment && good_record_after(file, pos.offset, len)?.is_none() {
                    tracing::warn!(
                        block = expected,
                        position = %pos,
                        error = %e,
                        "truncating a torn final record (a crash during an append that was never acknowledged)"
                    );
                    file.set_len(pos.offset)?;
                    file.sync_all()?;
                    lens[si] = pos.offset;
                    break;
                }
                return Err(corrupt(format!("block {expected} at {pos}: {e}")));
            }
        }
    }
    index.add(&pending, true)?;
    Ok(Head { height: expected, last_hash })
}

#[cfg(test)]
mod tests;
