//! Adapters from the `msp` crate to the ledger's seams: [`MspIdentities`] implements the peer's
//! `Identities`, [`IdentitySigner`] the `Signer` of `ledger-types`.

use ledger_types::proto::SerializedIdentity;
use ledger_types::tx::{Signer, serialize_identity};
use msp::{LocalIdentity, MspManager, PublicKey, UnixTime, VerifyItem, verify_batch};
use peer::identity::{Identities, SigCheck, ValidatedIdentity};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The current time for certificate validity checks: the nodes' one clock read for identities.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    UnixTime::from_secs(secs)
}

/// Most validated identities kept (the cache is cleared when it grows past this).
const CACHE: usize = 16_384;

/// Validated identities by serialized identity, with the certificate's expiry (Unix seconds).
type Cache = HashMap<Vec<u8>, (Arc<ValidatedIdentity>, i64)>;

/// Channel identities validated by an [`MspManager`], cached by serialized identity.
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
    fn validate(&self, serialized: &[u8]) -> Result<Arc<ValidatedIdentity>, String> {
        let now = unix_now().as_secs();
        if let Some((id, not_after)) = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(serialized)
            && now <= *not_after
        {
            return Ok(id.clone());
        }
        let si = SerializedIdentity::decode(serialized).map_err(|e| format!("malformed identity: {e}"))?;
        let v = self
            .manager
            .validate(&si.msp_id, &si.cert_der, UnixTime::from_secs(now))
            .map_err(|e| e.to_string())?;
        let id = Arc::new(ValidatedIdentity {
            msp_id: si.msp_id,
            role: v.role().ou().to_owned(),
            subject: v.common_name().to_owned(),
            cert_der: si.cert_der,
            key: Arc::new(v.public_key().clone()),
        });
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(serialized.to_vec(), (id.clone(), v.not_after().as_secs()));
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

/// Signs as a local identity (node or user).
pub struct IdentitySigner {
    identity: LocalIdentity,
    serialized: Vec<u8>,
}

impl IdentitySigner {
    /// A signer for `identity`.
    pub fn new(identity: LocalIdentity) -> IdentitySigner {
        let serialized = serialize_identity(identity.msp_id(), identity.cert_der());
        IdentitySigner { identity, serialized }
    }

    /// The identity.
    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }
}

impl Signer for IdentitySigner {
    fn serialized_identity(&self) -> &[u8] {
        &self.serialized
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.identity.sign(msg).to_vec()
    }
}
