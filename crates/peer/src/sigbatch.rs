//! Coalesces signature checks from concurrent requests into batches: Ed25519 batch verification costs about
//! a third of single checks per signature. No timer: a batch is whatever is queued when the previous one is
//! taken, so a lone request is checked at once and a busy peer checks hundreds together.

use crate::identity::{Identities, SigCheck, ValidatedIdentity};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most signatures in one batch.
const MAX: usize = 512;

struct Job {
    identity: Arc<ValidatedIdentity>,
    msg: Bytes,
    sig: Bytes,
    reply: oneshot::Sender<bool>,
}

/// A handle to the batching task; cheap to clone.
#[derive(Clone)]
pub struct SigBatcher {
    queue: mpsc::UnboundedSender<Job>,
}

impl SigBatcher {
    /// Starts the batching task (inside a Tokio runtime); it ends when the last handle is dropped. At most
    /// `parallel` batches are verified at once, each on a blocking thread.
    pub fn start(ids: Arc<dyn Identities>, parallel: usize) -> SigBatcher {
        let (queue, mut rx) = mpsc::unbounded_channel::<Job>();
        let slots = Arc::new(Semaphore::new(parallel.max(1)));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let ids = ids.clone();
                tokio::task::spawn_blocking(move || {
                    let checks: Vec<SigCheck<'_>> = jobs
                        .iter()
                        .map(|j| SigCheck { identity: &j.identity, msg: &j.msg, sig: &j.sig })
                        .collect();
                    let verdicts = ids.verify_batch(&checks);
                    drop(checks);
                    for (job, ok) in jobs.into_iter().zip(verdicts) {
                        let _ = job.reply.send(ok);
                    }
                    drop(permit);
                });
            }
        });
        SigBatcher { queue }
    }

    /// Whether `sig` is `identity`'s signature over `msg`.
    pub async fn verify(&self, identity: Arc<ValidatedIdentity>, msg: Bytes, sig: Bytes) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.queue.send(Job { identity, msg, sig, reply }).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
