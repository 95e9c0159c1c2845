//! Batch signature verification, optionally spread over threads.
//!
//! ```text
//!  items ──┬─ Ed25519 items, in order ── chunks of BATCH_CHUNK ── one cofactored batch equation (ZIP-215)
//!          │                                               └─ chunk fails? verify each item alone
//!          └─ ECDSA items ───────────────────────────────── verified one by one
//! ```
//!
//! **Determinism invariant:** an item's verdict is the verdict of single verification
//! ([`PublicKey::verify`]), whatever the batch it lands in, its size or the number of threads.
//! Ed25519 follows ZIP-215 in both paths: single verification checks `[8](sB - R - kA) = 0`, the
//! batch checks `[8]·Σ zᵢ(sᵢB - Rᵢ - kᵢAᵢ) = 0` with 128-bit coefficients `zᵢ`. Multiplying by the
//! cofactor removes every torsion component, so each term that single verification accepts is zero,
//! and a batch holding a term it refuses sums to zero only if the coefficients hit a root of a
//! non-zero linear form over the prime-order group: probability at most 2⁻¹²⁵ per batch (the same
//! bound as ZIP-215 itself). A failing chunk is re-checked item by item, so the reported items are
//! exactly those that single verification refuses. The coefficients come from a ChaCha20 stream
//! seeded with SHA-256 of the chunk's keys, signatures and messages: no ambient randomness, and an
//! attacker cannot choose signatures after seeing them.

use std::num::NonZeroUsize;

use crate::sig::{PublicKey, SigError, ed25519_signature};

/// Ed25519 items per batch equation. Larger batches amortise better; a failing batch costs
/// one strict verification per item of its chunk on top. Measured per CPU-second on the dev
/// machine (ed25519-dalek 2.2, `cargo run --release -p msp --example verify_rate`): 32 → 73k,
/// 64 → 69k (a dip: Straus at 129 points), 128 → 86k, 256 → 94k, 1024 → 104k. 256 keeps a
/// failing chunk's re-check near 8 ms; under `bench ledger` signature checks are ~30% of a
/// node's CPU, so the 9% over 128 is worth ~3% of the whole.
pub const BATCH_CHUNK: usize = 256;

/// One signature to check: `sig` over `msg` by `key`.
#[derive(Debug, Clone, Copy)]
pub struct VerifyItem<'a> {
    /// The signer's public key (from a validated identity).
    pub key: &'a PublicKey,
    /// The signed message.
    pub msg: &'a [u8],
    /// The signature bytes.
    pub sig: &'a [u8],
}

impl<'a> VerifyItem<'a> {
    /// Bundles a key, a message and a signature.
    pub fn new(key: &'a PublicKey, msg: &'a [u8], sig: &'a [u8]) -> Self {
        VerifyItem { key, msg, sig }
    }
}

/// The items of a batch that did not verify, by index into the slice passed in, ascending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of the batch's signatures failed, first at index {}", .failures.len(), .failures.first().map_or(0, |f| f.0))]
pub struct BatchError {
    /// `(index, reason)` for each bad item, sorted by index. Never empty.
    pub failures: Vec<(usize, SigError)>,
}

impl BatchError {
    /// The indices of the bad items, ascending.
    pub fn failed_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.failures.iter().map(|f| f.0)
    }
}

/// A unit of work: a chunk of Ed25519 item indices, or a single ECDSA item index.
enum Job {
    Ed25519(Vec<usize>),
    Single(usize),
}

fn plan(items: &[VerifyItem<'_>]) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut chunk = Vec::with_capacity(BATCH_CHUNK);
    for (i, item) in items.iter().enumerate() {
        match item.key {
            PublicKey::Ed25519(_) => {
                chunk.push(i);
                if chunk.len() == BATCH_CHUNK {
                    jobs.push(Job::Ed25519(std::mem::replace(&mut chunk, Vec::with_capacity(BATCH_CHUNK))));
                }
            }
            PublicKey::EcdsaP256(_) => jobs.push(Job::Single(i)),
        }
    }
    if !chunk.is_empty() {
        jobs.push(Job::Ed25519(chunk));
    }
    jobs
}

fn run_job(items: &[VerifyItem<'_>], job: &Job, failures: &mut Vec<(usize, SigError)>) {
    match job {
        Job::Single(i) => {
            let it = &items[*i];
            if let Err(e) = it.key.verify(it.msg, it.sig) {
                failures.push((*i, e));
            }
        }
        Job::Ed25519(idx) => ed25519_chunk(items, idx, failures),
    }
}

fn ed25519_chunk(items: &[VerifyItem<'_>], idx: &[usize], failures: &mut Vec<(usize, SigError)>) {
    use rand_chacha::rand_core::SeedableRng as _;
    use sha2::Digest as _;
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    let mut transcript = sha2::Sha256::new();
    transcript.update(b"ipechain ed25519 batch v1");
    let mut malformed = false;
    for &i in idx {
        let it = &items[i];
        let PublicKey::Ed25519(k) = it.key else {
            continue;
        };
        match ed25519_signature(it.sig) {
            Ok(sig) => {
                transcript.update(k.as_bytes());
                transcript.update(it.sig);
                transcript.update((it.msg.len() as u64).to_le_bytes());
                transcript.update(it.msg);
                verifier.queue((ed25519_zebra::VerificationKeyBytes::from(*k.as_bytes()), sig, it.msg));
            }
            Err(_) => malformed = true,
        }
    }
    let rng = rand_chacha::ChaCha20Rng::from_seed(transcript.finalize().into());
    if !malformed && verifier.verify(rng).is_ok() {
        return;
    }
    // The batch failed (or had malformed members): find exactly which items are bad.
    for &i in idx {
        let it = &items[i];
        if let Err(e) = it.key.verify(it.msg, it.sig) {
            failures.push((i, e));
        }
    }
}

/// Verifies all `items` on the calling thread, batching Ed25519 signatures.
///
/// Returns `Ok(())` when every signature verifies, otherwise exactly the bad items.
pub fn verify_batch(items: &[VerifyItem<'_>]) -> Result<(), BatchError> {
    let mut failures = Vec::new();
    for job in plan(items) {
        run_job(items, &job, &mut failures);
    }
    finish(failures)
}

/// Like [`verify_batch`], but spreads the work over `threads` scoped threads (the calling
/// thread included). The verdicts are identical to [`verify_batch`] for any thread count.
pub fn verify_batch_parallel(items: &[VerifyItem<'_>], threads: NonZeroUsize) -> Result<(), BatchError> {
    let jobs = plan(items);
    let threads = threads.get().min(jobs.len()).max(1);
    if threads == 1 {
        let mut failures = Vec::new();
        for job in &jobs {
            run_job(items, job, &mut failures);
        }
        return finish(failures);
    }
    let groups = split_by_weight(&jobs, threads);
    let mut groups = groups.into_iter();
    let first = groups.next().unwrap_or(&[]);
    let failures = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .map(|group| {
                s.spawn(move || {
                    let mut f = Vec::new();
                    for job in group {
                        run_job(items, job, &mut f);
                    }
                    f
                })
            })
            .collect();
        let mut failures = Vec::new();
        for job in first {
            run_job(items, job, &mut failures);
        }
        for h in handles {
            match h.join() {
                Ok(f) => failures.extend(f),
                // Verification code does not panic on any input; if a worker did, re-raise it.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        failures
    });
    finish(failures)
}

/// Relative cost of a job: an ECDSA P-256 verification costs about as much as this many Ed25519
/// signatures inside a batch.
const ECDSA_WEIGHT: usize = 6;

fn weight(job: &Job) -> usize {
    match job {
        Job::Ed25519(idx) => idx.len(),
        Job::Single(_) => ECDSA_WEIGHT,
    }
}

/// Cuts `jobs` into at most `parts` contiguous groups of roughly equal weight.
fn split_by_weight(jobs: &[Job], parts: usize) -> Vec<&[Job]> {
    let total: usize = jobs.iter().map(weight).sum();
    let target = total.div_ceil(parts.max(1)).max(1);
    let mut groups = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0);
    for (i, job) in jobs.iter().enumerate() {
        acc += weight(job);
        if acc >= target && groups.len() + 1 < parts {
            groups.push(&jobs[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < jobs.len() {
        groups.push(&jobs[start..]);
    }
    groups
}

/// Per-item verdicts, in item order: [`verify_batch_parallel`] turned into one `Result` per item
/// (what a block validator turns into validation codes).
pub fn verify_each(items: &[VerifyItem<'_>], threads: NonZeroUsize) -> Vec<Result<(), SigError>> {
    let mut out = vec![Ok(()); items.len()];
    if let Err(e) = verify_batch_parallel(items, threads) {
        for (i, reason) in e.failures {
            out[i] = Err(reason);
        }
    }
    out
}

fn finish(mut failures: Vec<(usize, SigError)>) -> Result<(), BatchError> {
    if failures.is_empty() {
        Ok(())
    } else {
        failures.sort_unstable_by_key(|f| f.0);
        Err(BatchError { failures })
    }
}
