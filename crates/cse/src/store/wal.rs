//! The write-ahead log: two files written in turn, one record per commit group, one `fdatasync` per record.
//!
//! ```text
//!  record = len u32 | crc32c u32 (of seq and payload) | seq u64 | payload
//!  payload = n u32, then per op: 1 | klen u32 | key | vlen u32 | value   (Put)
//!                                2 | klen u32 | key                       (Del)
//! ```
//! Little-endian. Records are written over space that was already filled with zeros and synced (the files grow
//! in [`CHUNK`] steps), so the `fdatasync` after a record changes no file metadata and costs one device flush.
//! A file is read from offset 0 for as long as records are whole, their CRC matches and their `seq` follows the
//! one before; whatever follows (a torn record, zeros, older records from the file's previous turn) is not part
//! of the log. Sequence numbers grow across turns and restarts, so an older record never continues a newer chain.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Op;

/// Record header size: len, crc, seq.
pub(crate) const HEADER: usize = 16;
/// Files grow by this much, zero-filled and synced before records are written there.
pub(crate) const CHUNK: u64 = 1 << 20;
/// A record larger than this is not read back (a corrupt length); the CSE's body limit keeps records far below.
const MAX_RECORD: usize = 256 << 20;

const fn crc_table() -> [u32; 256] {
    // CRC-32C (Castagnoli), reflected polynomial.
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32C of `data`, continuing from `crc` (start with 0).
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn put_u32(buf: &mut Vec<u8>, v: usize) {
    // Keys and records are bounded by the CSE's body limit, far below 4 GiB.
    #[allow(clippy::cast_possible_truncation)]
    buf.extend_from_slice(&(v as u32).to_le_bytes());
}

/// Appends the record for `seq` holding `ops` (in order) to `buf`.
pub(crate) fn encode<'a>(buf: &mut Vec<u8>, seq: u64, ops: impl Iterator<Item = &'a Op>) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER]);
    let count_at = buf.len();
    buf.extend_from_slice(&[0u8; 4]);
    let mut n = 0usize;
    for op in ops {
        n += 1;
        match op {
            Op::Put(k, v) => {
                buf.push(1);
                put_u32(buf, k.len());
                buf.extend_from_slice(k.as_bytes());
                put_u32(buf, v.len());
                buf.extend_from_slice(v);
            }
            Op::Del(k) => {
                buf.push(2);
                put_u32(buf, k.len());
                buf.extend_from_slice(k.as_bytes());
            }
        }
    }
    #[allow(clippy::cast_possible_truncation)] // see put_u32
    buf[count_at..count_at + 4].copy_from_slice(&(n as u32).to_le_bytes());
    let len = buf.len() - start - HEADER;
    buf[start + 8..start + 16].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c(0, &buf[start + 8..]);
    #[allow(clippy::cast_possible_truncation)] // see put_u32
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<usize> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
}

/// Decodes a record payload (already CRC-checked); `None` if it is malformed.
fn decode_ops(payload: &[u8]) -> Option<Vec<Op>> {
    let mut r = Reader(payload);
    let n = r.u32()?;
    let mut ops = Vec::with_capacity(n.min(payload.len()));
    for _ in 0..n {
        let tag = r.u8()?;
        let kl = r.u32()?;
        let k = String::from_utf8(r.bytes(kl)?.to_vec()).ok()?;
        match tag {
            1 => {
                let vl = r.u32()?;
                ops.push(Op::Put(k, r.bytes(vl)?.to_vec()));
            }
            2 => ops.push(Op::Del(k)),
            _ => return None,
        }
    }
    r.0.is_empty().then_some(ops)
}

/// One record read back.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) ops: Vec<Op>,
}

/// Reads the chain of whole, valid, consecutive records from the start of `data`.
pub(crate) fn scan(data: &[u8]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut at = 0usize;
    while let Some(h) = data.get(at..at + HEADER) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&h[8..16]);
        let seq = u64::from_le_bytes(s);
        if !(4..=MAX_RECORD).contains(&len) {
            break;
        }
        let Some(payload) = data.get(at + HEADER..at + HEADER + len) else { break };
        if crc32c(crc32c(0, &h[8..16]), payload) != crc {
            break;
        }
        if out.last().is_some_and(|p| p.seq.checked_add(1) != Some(seq)) {
            break;
        }
        let Some(ops) = decode_ops(payload) else { break };
        out.push(Record { seq, ops });
        at += HEADER + len;
    }
    out
}

/// One log file: records are written at `end`, below `zeroed` (the synced, zero-filled length).
pub(crate) struct LogFile {
    pub(crate) file: File,
    pub(crate) end: u64,
    zeroed: u64,
}

impl LogFile {
    /// Opens (or creates) the file and reads its record chain. The file's whole length is synced once, so that
    /// space filled before a crash is durable before records go there.
    pub(crate) fn open(path: &Path) -> io::Result<(LogFile, Vec<Record>)> {
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let mut data = Vec::new();
        io::Read::read_to_end(&mut &file, &mut data)?;
        file.sync_all()?;
        let records = scan(&data);
        let zeroed = data.len() as u64;
        Ok((LogFile { file, end: 0, zeroed }, records))
    }

    /// Starts the file's next turn: records go from offset 0 again. Space that [`fill`] prepared (synced before the
    /// file was handed back) counts as zero-filled.
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        self.end = 0;
        self.zeroed = self.zeroed.max(self.file.metadata()?.len());
        Ok(())
    }

    /// Writes `rec` at the end and makes it durable (one `fdatasync`, after growing the file if needed).
    pub(crate) fn append_durable(&mut self, rec: &[u8]) -> io::Result<()> {
        let need = self.end + rec.len() as u64;
        if need > self.zeroed {
            let target = need.div_ceil(CHUNK) * CHUNK;
            let zeros = vec![0u8; usize::try_from(target - self.zeroed).map_err(io::Error::other)?];
            self.file.write_all_at(&zeros, self.zeroed)?;
            // The new length and blocks must be durable before records rely on them.
            self.file.sync_all()?;
            self.zeroed = target;
        }
        self.file.write_all_at(rec, self.end)?;
        self.file.sync_data()?;
        self.end = need;
        Ok(())
    }
}

/// Zero-fills `file` up to `len` bytes (whole [`CHUNK`]s) and syncs it, so that a later turn of the file writes
/// its records over prepared space. Done by the checkpoint thread for a file no one writes at the time.
pub(crate) fn fill(file: &File, len: u64) -> io::Result<()> {
    let have = file.metadata()?.len();
    let target = len.div_ceil(CHUNK) * CHUNK;
    if have >= target {
        return Ok(());
    }
    let zeros = vec![0u8; usize::try_from(CHUNK).map_err(io::Error::other)?];
    let mut at = have;
    while at < target {
        let n = (target - at).min(CHUNK);
        file.write_all_at(&zeros[..usize::try_from(n).map_err(io::Error::other)?], at)?;
        at += n;
    }
    file.sync_all()
}
