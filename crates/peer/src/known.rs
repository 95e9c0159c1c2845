//! Signatures this process knows to be valid, recognised instead of verified again.
//!
//! A transaction's signatures are checked several times inside one `ipechain up`: the orderer checks the
//! envelope's creator signature when it admits the envelope, and then each peer checks it again when the
//! block comes; each peer checks the endorsement signature that one of them made a second earlier. Like
//! Bitcoin Core's signature cache, [`KnownSignatures`] remembers (certificate, message, signature) triples that
//! this process has verified or made itself, and [`RecognisingIdentities`] answers `true` without verifying
//! for an item that is byte for byte one of them.
//!
//! **Verdicts do not change.** Whether a signature verifies is a function of the key, the message and the
//! signature alone (docs/msp.md: single and batch verification agree), so a verdict remembered from a
//! verification in this process, or a signature the signing algorithm produced with this key over exactly
//! these bytes ([`RecordingSigner`]), is the verdict verification would give again. Validation stays a pure
//! function of the block's bytes: a process that never saw a signature (another host's peer, a peer replaying
//! its blocks after a restart, a memory that forgot it) verifies it and reaches the same codes. Only valid
//! triples are remembered, only by code of this process: nothing a peer sends can put one there. Identity
//! validation (the certificate's chain and validity at the transaction's time) is not cached here and runs
//! every time.
//!
//! The memory is bounded ([`KNOWN_SIGNATURES`] entries, [`KNOWN_BYTES`] bytes of messages and certificates;
//! a message longer than [`KNOWN_MESSAGE_MAX`] is not remembered); the oldest entries are forgotten first,
//! which only means verifying again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use ledger_types::proto::SerializedIdentity;
use ledger_types::tx::Signer;
use msp::certs_from_pem;
use prost::Message;

use crate::identity::{Identities, SigCheck, ValidatedIdentity};

/// Entries remembered (about two seconds of a busy node's signatures: a transaction brings two or three).
pub const KNOWN_SIGNATURES: usize = 16_384;
/// Bytes of messages and certificates remembered at most.
pub const KNOWN_BYTES: usize = 64 << 20;
/// A longer message is not remembered (its signature is verified each time).
pub const KNOWN_MESSAGE_MAX: usize = 64 << 10;

/// Valid (certificate, message, signature) triples: a bounded map by signature, the oldest forgotten first.
pub struct KnownSignatures {
    capacity: usize,
    max_bytes: usize,
    inner: Mutex<Remembered>,
}

struct Entry {
    cert_der: Box<[u8]>,
    msg: Box<[u8]>,
}

#[derive(Default)]
struct Remembered {
    by_sig: HashMap<Box<[u8]>, Entry>,
    order: VecDeque<Box<[u8]>>,
    bytes: usize,
}

impl Remembered {
    /// Forgets the oldest entry; false when there was none.
    fn forget_oldest(&mut self) -> bool {
        let Some(old) = self.order.pop_front() else { return false };
        if let Some(e) = self.by_sig.remove(&old) {
            self.bytes -= cost(&old, &e);
        }
        true
    }
}

fn cost(sig: &[u8], e: &Entry) -> usize {
    sig.len() + e.cert_der.len() + e.msg.len()
}

impl std::fmt::Debug for KnownSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.lock();
        f.debug_struct("KnownSignatures")
            .field("entries", &r.order.len())
            .field("bytes", &r.bytes)
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl KnownSignatures {
    /// Remembers at most `capacity` entries (0: none) and [`KNOWN_BYTES`] bytes.
    pub fn new(capacity: usize) -> KnownSignatures {
        KnownSignatures::with_max_bytes(capacity, KNOWN_BYTES)
    }

    /// Remembers at most `capacity` entries and `max_bytes` bytes of signatures, messages and certificates.
    pub fn with_max_bytes(capacity: usize, max_bytes: usize) -> KnownSignatures {
        KnownSignatures { capacity, max_bytes, inner: Mutex::new(Remembered::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that `sig` is a valid signature over `msg` by the key of the certificate `cert_der`. Callers
    /// vouch for that: they verified it, or made it with that key.
    fn remember(&self, cert_der: &[u8], msg: &[u8], sig: &[u8]) {
        self.remember_all(std::iter::once((cert_der, msg, sig)));
    }

    fn remember_all<'a>(&self, items: impl IntoIterator<Item = (&'a [u8], &'a [u8], &'a [u8])>) {
        if self.capacity == 0 {
            return;
        }
        let mut r = self.lock();
        for (cert_der, msg, sig) in items {
            if msg.len() > KNOWN_MESSAGE_MAX {
                continue;
            }
            let entry = Entry { cert_der: cert_der.into(), msg: msg.into() };
            let key: Box<[u8]> = sig.into();
            let c = cost(&key, &entry);
            if c > self.max_bytes {
                continue;
            }
            match r.by_sig.insert(key.clone(), entry) {
                // The same signature again (a retry): keep its place, count the bytes of the newer entry.
                Some(old) => r.bytes = r.bytes - cost(&key, &old) + c,
                None => {
                    r.order.push_back(key);
                    r.bytes += c;
                }
            }
            while (r.order.len() > self.capacity || r.bytes > self.max_bytes) && r.forget_oldest() {}
        }
    }

    /// True when `sig` over exactly `msg` by exactly the certificate `cert_der` is remembered.
    pub fn knows(&self, cert_der: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let r = self.lock();
        r.by_sig.get(sig).is_some_and(|e| *e.msg == *msg && *e.cert_der == *cert_der)
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of signatures, messages and certificates remembered.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// The memory shared by every node and client of this process (`ipechain up` runs its orderers, peers and
/// bridge in one).
pub fn process_signatures() -> Arc<KnownSignatures> {
    static PROCESS: LazyLock<Arc<KnownSignatures>> =
        LazyLock::new(|| Arc::new(KnownSignatures::new(KNOWN_SIGNATURES)));
    PROCESS.clone()
}

/// The single certificate (DER) an encoded `msp.SerializedIdentity` carries, if it carries exactly one.
fn identity_cert(serialized_identity: &[u8]) -> Option<Vec<u8>> {
    SerializedIdentity::decode(serialized_identity)
        .ok()
        .and_then(|si| certs_from_pem(&si.id_bytes).ok())
        .filter(|certs| certs.len() == 1)
        .and_then(|certs| certs.into_iter().next())
}

/// A [`Signer`] that remembers what it signs in a [`KnownSignatures`].
pub struct RecordingSigner {
    inner: Arc<dyn Signer>,
    /// The signer's certificate; `None` when its identity does not carry exactly one, and then nothing is
    /// remembered.
    cert_der: Option<Vec<u8>>,
    known: Arc<KnownSignatures>,
}

impl RecordingSigner {
    /// Signs with `inner`, remembering into `known`. A signer whose signatures do not verify under its own
    /// certificate's key (a key file that does not belong to the certificate) remembers nothing: verification
    /// elsewhere would refuse what this process would then recognise. One probe signature tells.
    pub fn new(inner: Arc<dyn Signer>, known: Arc<KnownSignatures>) -> RecordingSigner {
        const PROBE: &[u8] = b"ipechain: does this key belong to this certificate?";
        let cert_der = identity_cert(inner.serialized_identity()).filter(|cert| {
            let matches = msp::PublicKey::from_certificate_der(cert)
                .is_ok_and(|key| key.verify(PROBE, &inner.sign(PROBE)).is_ok());
            if !matches {
                tracing::warn!(
                    "a signing key does not match its certificate: its signatures are not remembered"
                );
            }
            matches
        });
        RecordingSigner { inner, cert_der, known }
    }
}

impl Signer for RecordingSigner {
    fn serialized_identity(&self) -> &[u8] {
        self.inner.serialized_identity()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig = self.inner.sign(msg);
        if let Some(cert) = &self.cert_der {
            self.known.remember(cert, msg, &sig);
        }
        sig
    }
}

/// [`Identities`] that recognise the signatures a [`KnownSignatures`] holds and verify the others with an
/// inner implementation, remembering those that verify unless made with [`RecognisingIdentities::recognising_only`].
pub struct RecognisingIdentities {
    inner: Arc<dyn Identities>,
    known: Arc<KnownSignatures>,
    remember_verified: bool,
}

impl RecognisingIdentities {
    /// Recognises what `known` holds; verifies the rest with `inner` and remembers what verifies (for checks
    /// whose signatures come back: envelopes admitted by an orderer, a block's transactions).
    pub fn new(inner: Arc<dyn Identities>, known: Arc<KnownSignatures>) -> RecognisingIdentities {
        RecognisingIdentities { inner, known, remember_verified: true }
    }

    /// Recognises what `known` holds and remembers nothing (for signatures seen once: proposals).
    pub fn recognising_only(
        inner: Arc<dyn Identities>,
        known: Arc<KnownSignatures>,
    ) -> RecognisingIdentities {
        RecognisingIdentities { inner, known, remember_verified: false }
    }

    fn recognises(&self, item: &SigCheck<'_>) -> bool {
        self.known.knows(&item.identity.cert_der, item.msg, item.sig)
    }
}

impl Identities for RecognisingIdentities {
    fn validate(&self, serialized_identity: &[u8], at: i64) -> Result<Arc<ValidatedIdentity>, String> {
        self.inner.validate(serialized_identity, at)
    }

    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool> {
        let mut out = vec![false; items.len()];
        let mut rest = Vec::with_capacity(items.len());
        let mut rest_idx = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            if self.recognises(it) {
                out[i] = true;
            } else {
                rest_idx.push(i);
                rest.push(SigCheck { identity: it.identity, msg: it.msg, sig: it.sig });
            }
        }
        if !rest.is_empty() {
            let verdicts = self.inner.verify_batch(&rest);
            for (&i, &ok) in rest_idx.iter().zip(&verdicts) {
                out[i] = ok;
            }
            if self.remember_verified {
                self.known.remember_all(
                    rest.iter()
                        .zip(&verdicts)
                        .filter(|(_, ok)| **ok)
                        .map(|(it, _)| (it.identity.cert_der.as_slice(), it.msg, it.sig)),
                );
            }
        }
        out
    }
}
