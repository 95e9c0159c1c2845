//! The gateway's journal: what it started on devices and which device requests it still has to close, so a
//! gateway killed mid-flow neither repeats an operation nor leaves a request unanswered.
//!
//! One append-only file of JSON lines; appends are group-committed (one `fdatasync` per batch) and
//! acknowledged only when durable. At open, the file is read (a torn last line is ignored) and rewritten
//! with only the entries still open.
//!
//! ```text
//! {"k":"op","id":"app1-7"}                       a non-idempotent device operation was started
//! {"k":"dreq","id":"gw1-d-3","exp":1700000068}   a device request waits for its answer until exp
//! {"k":"done","id":"app1-7"}                     closed (answer submitted / delivered)
//! ```

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Entry {
    /// A device operation that is not safe to repeat was started for request `id`.
    Op {
        /// Request id.
        id: String,
    },
    /// Device request `id` waits for its answer until `exp` (unix seconds).
    Dreq {
        /// Device request id.
        id: String,
        /// Expiry.
        exp: i64,
    },
    /// `id` is closed.
    Done {
        /// Id.
        id: String,
    },
}

/// What was open when the journal was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Open {
    /// Requests whose device operation was started but not answered.
    pub ops: Vec<String>,
    /// Device requests still waiting, with their expiry.
    pub dreqs: Vec<(String, i64)>,
}

/// A handle to the journal writer.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::UnboundedSender<Job>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, returning what is still open.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Open)> {
        let open = compact(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let p = path.to_path_buf();
        std::thread::Builder::new().name("bridge-journal".into()).spawn(move || writer(file, rx, p))?;
        Ok((Journal { tx }, open))
    }

    /// Appends `e` and waits until it is durable.
    pub async fn append_durable(&self, e: Entry) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((Some(e), true, Some(tx))).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Waits until every entry appended before is durable (one `fdatasync`, shared with concurrent appends).
    pub async fn sync(&self) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((None, true, Some(tx))).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Appends `e` without waiting (a lost `done` only makes a restart re-check the ledger).
    pub fn append(&self, e: Entry) {
        let _ = self.tx.send((Some(e), false, None));
    }
}

fn closed() -> std::io::Error {
    std::io::Error::other("the journal writer stopped")
}

type Job = (Option<Entry>, bool, Option<oneshot::Sender<std::io::Result<()>>>);

fn writer(mut file: File, mut rx: mpsc::UnboundedReceiver<Job>, path: PathBuf) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(j) = rx.try_recv() {
            batch.push(j);
        }
        let mut buf = Vec::new();
        for e in batch.iter().filter_map(|(e, _, _)| e.as_ref()) {
            if serde_json::to_writer(&mut buf, e).is_ok() {
                buf.push(b'\n');
            }
        }
        let durable = batch.iter().any(|(_, d, _)| *d);
        let r = file.write_all(&buf).and_then(|()| if durable { file.sync_data() } else { Ok(()) });
        if let Err(e) = &r {
            tracing::error!(path = %path.display(), error = %e, "journal write failed");
        }
        for (_, _, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack
                    .send(r.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
            }
        }
    }
}

/// Reads the journal and rewrites it with only the open entries (atomically: temp file, fsync, rename).
fn compact(path: &Path) -> std::io::Result<Open> {
    let mut ops: HashMap<String, usize> = HashMap::new();
    let mut dreqs: HashMap<String, (usize, i64)> = HashMap::new();
    let mut n = 0usize;
    match File::open(path) {
        Ok(f) => {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A torn or damaged line (a crash mid-append) ends the readable part.
                let Ok(e) = serde_json::from_str::<Entry>(&line) else { break };
                n += 1;
                match e {
                    Entry::Op { id } => {
                        ops.insert(id, n);
                    }
                    Entry::Dreq { id, exp } => {
                        dreqs.insert(id, (n, exp));
                    }
                    Entry::Done { id } => {
                        ops.remove(&id);
                        dreqs.remove(&id);
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut ops: Vec<(usize, String)> = ops.into_iter().map(|(id, n)| (n, id)).collect();
    ops.sort();
    let mut dreqs: Vec<(usize, String, i64)> = dreqs.into_iter().map(|(id, (n, exp))| (n, id, exp)).collect();
    dreqs.sort();
    let open = Open {
        ops: ops.into_iter().map(|(_, id)| id).collect(),
        dreqs: dreqs.into_iter().map(|(_, id, exp)| (id, exp)).collect(),
    };
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        let mut buf = Vec::new();
        for id in &open.ops {
            serde_json::to_writer(&mut buf, &Entry::Op { id: id.clone() }).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        for (id, exp) in &open.dreqs {
            serde_json::to_writer(&mut buf, &Entry::Dreq { id: id.clone(), exp: *exp })
                .map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(open)
}
