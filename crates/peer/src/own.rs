//! A peer's own endorsement signatures, recognised when they come back in blocks instead of verified again.
//!
//! Every transaction a peer endorses returns to it in a block, and validation checks each endorsement's
//! signature: with two organizations a third of a peer's signature checks are of signatures it made itself
//! a second earlier. [`RecordingSigner`] remembers the last [`OWN_SIGNATURES`] messages the endorser signed and
//! their signatures; [`RecognisingIdentities`] answers `true` without verifying for a signature that is
//! byte for byte one of them, over byte for byte the same message, claimed by the peer's own certificate.
//!
//! **Verdicts do not change.** Validation stays a pure function of the block's bytes: a recognised item is
//! one the signing algorithm produced with this peer's key over exactly these bytes, which verification
//! (single or batch, docs/msp.md) accepts by construction. Anything else (another message, another
//! certificate, a signature the peer did not make or no longer remembers, a peer that restarted) is
//! verified as before. A peer that did not endorse a transaction, or replays its blocks after a restart,
//! reaches the same codes by verifying.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ledger_types::proto::SerializedIdentity;
use ledger_types::tx::Signer;
use msp::certs_from_pem;
use prost::Message;

use crate::identity::{Identities, SigCheck, ValidatedIdentity};

/// Signatures a peer remembers (about four seconds of endorsements at 2,000 a second; at most a few KB each).
pub const OWN_SIGNATURES: usize = 8_192;

/// The last signatures a signer made, with their messages: a bounded map, the oldest forgotten first.
pub struct OwnSignatures {
    capacity: usize,
    inner: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    by_sig: HashMap<Box<[u8]>, Box<[u8]>>,
    order: VecDeque<Box<[u8]>>,
}

impl OwnSignatures {
    /// Remembers at most `capacity` signatures (0: none).
    pub fn new(capacity: usize) -> OwnSignatures {
        OwnSignatures { capacity, inner: Mutex::new(Remembered::default()) }
    }

    fn remember(&self, msg: &[u8], sig: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key: Box<[u8]> = sig.into();
        if r.by_sig.insert(key.clone(), msg.into()).is_none() {
            r.order.push_back(key);
        }
        while r.order.len() > self.capacity {
            if let Some(old) = r.order.pop_front() {
                r.by_sig.remove(&old);
            }
        }
    }

    /// True when `sig` is one this signer made over exactly `msg` and still remembers.
    pub fn made(&self, msg: &[u8], sig: &[u8]) -> bool {
        let r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.by_sig.get(sig).is_some_and(|m| **m == *msg)
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).order.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Signer`] that remembers what it signed in an [`OwnSignatures`].
pub struct RecordingSigner {
    inner: Arc<dyn Signer>,
    own: Arc<OwnSignatures>,
}

impl RecordingSigner {
    /// Signs with `inner`, remembering into `own`.
    pub fn new(inner: Arc<dyn Signer>, own: Arc<OwnSignatures>) -> RecordingSigner {
        RecordingSigner { inner, own }
    }
}

impl Signer for RecordingSigner {
    fn serialized_identity(&self) -> &[u8] {
        self.inner.serialized_identity()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig = self.inner.sign(msg);
        self.own.remember(msg, &sig);
        sig
    }
}

/// [`Identities`] that recognise the signatures of one [`RecordingSigner`] and pass everything else on.
pub struct RecognisingIdentities {
    inner: Arc<dyn Identities>,
    /// The signer's certificate (DER); `None` when its identity does not carry exactly one certificate,
    /// and then nothing is recognised.
    cert_der: Option<Vec<u8>>,
    own: Arc<OwnSignatures>,
}

impl RecognisingIdentities {
    /// Recognises the signatures in `own`, made as the identity `serialized_identity` (an encoded
    /// `msp.SerializedIdentity`); verifies the others with `inner`.
    pub fn new(
        inner: Arc<dyn Identities>,
        serialized_identity: &[u8],
        own: Arc<OwnSignatures>,
    ) -> RecognisingIdentities {
        let cert_der = SerializedIdentity::decode(serialized_identity)
            .ok()
            .and_then(|si| certs_from_pem(&si.id_bytes).ok())
            .filter(|certs| certs.len() == 1)
            .and_then(|certs| certs.into_iter().next());
        RecognisingIdentities { inner, cert_der, own }
    }

    fn recognises(&self, item: &SigCheck<'_>) -> bool {
        self.cert_der.as_deref().is_some_and(|own| item.identity.cert_der == own)
            && self.own.made(item.msg, item.sig)
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
            for (i, ok) in rest_idx.into_iter().zip(self.inner.verify_batch(&rest)) {
                out[i] = ok;
            }
        }
        out
    }
}
