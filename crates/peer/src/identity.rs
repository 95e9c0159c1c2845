//! The seam between the peer and the membership service provider: validating identities and verifying
//! signatures, in batches. [`MspIdentities`] implements it with the `msp` crate.

use ledger_types::proto::SerializedIdentity;
use msp::{MspManager, PublicKey, UnixTime, VerifyItem, certs_from_pem, verify_batch};
use prost::Message;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// An identity whose certificate chains to a channel member's CA.
pub struct ValidatedIdentity {
    /// The organization.
    pub msp_id: String,
    /// `peer`, `client`, `admin`, `orderer` or `member`.
    pub role: String,
    /// The certificate subject's common name.
    pub subject: String,
    /// The DER certificate.
    pub cert_der: Vec<u8>,
    /// The parsed public key, in whatever form the [`Identities`] implementation verifies with.
    pub key: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for ValidatedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedIdentity")
            .field("msp_id", &self.msp_id)
            .field("role", &self.role)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// One signature to check.
pub struct SigCheck<'a> {
    /// Who claims to have signed.
    pub identity: &'a ValidatedIdentity,
    /// The signed bytes.
    pub msg: &'a [u8],
    /// The signature.
    pub sig: &'a [u8],
}

/// Identity validation and signature verification for one channel.
pub trait Identities: Send + Sync + 'static {
    /// Validates an encoded `msp.SerializedIdentity{mspid, id_bytes = PEM certificate}` against the channel's organizations as of `at` (Unix
    /// seconds: a transaction's or block's own time in validation, the node's clock at admission; results
    /// may be cached). The error says why, for logs and client-facing statuses.
    fn validate(&self, serialized_identity: &[u8], at: i64) -> Result<Arc<ValidatedIdentity>, String>;

    /// Verifies many signatures at once; one result per item, in order.
    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool>;

    /// Verifies one signature.
    fn verify(&self, identity: &ValidatedIdentity, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_batch(&[SigCheck { identity, msg, sig }]).first().copied().unwrap_or(false)
    }
}

/// Most validated identities kept (the cache is cleared when it grows past this).
const CACHE: usize = 16_384;

/// Validated identities by serialized identity, with the certificate chain's validity window (Unix seconds).
type Cache = HashMap<Vec<u8>, (Arc<ValidatedIdentity>, i64, i64)>;

/// Channel identities validated by an [`MspManager`], cached by serialized identity. Signatures are checked
/// with `msp`'s batch verification, whose verdicts equal single verification's (docs/msp.md).
pub struct MspIdentities {
    manager: MspManager,
    cache: RwLock<Cache>,
}

impl MspIdentities {
    /// Identities of the organizations `manager` knows.
    pub fn new(manager: MspManager) -> MspIdentities {
        MspIdentities { manager, cache: RwLock::new(HashMap::new()) }
    }

    /// The underlying manager.
    pub fn manager(&self) -> &MspManager {
        &self.manager
    }
}

impl Identities for MspIdentities {
    fn validate(&self, serialized: &[u8], at: i64) -> Result<Arc<ValidatedIdentity>, String> {
        if let Some((id, not_before, not_after)) =
            self.cache.read().unwrap_or_else(|p| p.into_inner()).get(serialized)
            && (*not_before..=*not_after).contains(&at)
        {
            return Ok(id.clone());
        }
        let si = SerializedIdentity::decode(serialized).map_err(|e| format!("malformed identity: {e}"))?;
        let cert_der = match certs_from_pem(&si.id_bytes) {
            Ok(certs) if certs.len() == 1 => certs.into_iter().next().unwrap_or_default(),
            Ok(certs) => return Err(format!("identity carries {} certificates, expected one", certs.len())),
            Err(e) => return Err(format!("identity bytes are not a PEM certificate: {e}")),
        };
        let v = self
            .manager
            .validate(&si.mspid, &cert_der, UnixTime::from_secs(at))
            .map_err(|e| e.to_string())?;
        let id = Arc::new(ValidatedIdentity {
            msp_id: si.mspid,
            role: v.role().ou().to_owned(),
            subject: v.common_name().to_owned(),
            cert_der,
            key: Arc::new(v.public_key().clone()),
        });
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(serialized.to_vec(), (id.clone(), v.not_before().as_secs(), v.not_after().as_secs()));
        Ok(id)
    }

    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool> {
        let mut out = vec![false; items.len()];
        let mut idx = Vec::with_capacity(items.len());
        let mut batch = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            if let Some(key) = it.identity.key.downcast_ref::<PublicKey>() {
                idx.push(i);
                batch.push(VerifyItem::new(key, it.msg, it.sig));
            }
        }
        match verify_batch(&batch) {
            Ok(()) => {
                for i in idx {
                    out[i] = true;
                }
            }
            Err(e) => {
                let failed: std::collections::HashSet<usize> = e.failed_indices().collect();
                for (k, i) in idx.into_iter().enumerate() {
                    out[i] = !failed.contains(&k);
                }
            }
        }
        out
    }
}
