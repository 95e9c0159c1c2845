//! Event checkpoints: where a listener resumes after a restart, with no duplicates and no gaps.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A position in the event stream: the block to (re)start from and the last transaction already handled
/// in that block. As in Fabric, resuming from a checkpoint delivers every event after it exactly once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Block to start reading from.
    pub block: u64,
    /// Last transaction id handled within `block` (None: nothing handled there yet).
    pub tx_id: Option<String>,
}

impl Checkpoint {
    /// Records that the event of `tx_id` in `block` has been handled.
    pub fn handled(&mut self, block: u64, tx_id: &str) {
        self.block = block;
        self.tx_id = Some(tx_id.to_owned());
    }

    /// Records that a whole block has been handled (resume at the next one).
    pub fn block_done(&mut self, block: u64) {
        self.block = block + 1;
        self.tx_id = None;
    }
}

/// A checkpoint persisted in a file, replaced atomically (write, fsync, rename, fsync directory).
#[derive(Debug, Clone)]
pub struct FileCheckpointer {
    path: PathBuf,
}

impl FileCheckpointer {
    /// A checkpointer at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> FileCheckpointer {
        FileCheckpointer { path: path.into() }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored checkpoint, or the start of the chain when there is none.
    pub async fn load(&self) -> std::io::Result<Checkpoint> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(e) => Err(e),
        }
    }

    /// Stores a checkpoint durably.
    pub async fn save(&self, cp: &Checkpoint) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec(cp).map_err(std::io::Error::other)?;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&bytes).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &self.path).await?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::File::open(dir).await?.sync_all().await?;
        }
        Ok(())
    }
}
