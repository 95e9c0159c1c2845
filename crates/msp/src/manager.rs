//! `MspManager`: the channel's member organizations, with a bounded validation cache.
//!
//! The ledger sees the same few certificates thousands of times a second, so a successful
//! validation is cached, keyed by the certificate's DER bytes themselves (a SipHash of the bytes
//! and a full comparison, so there is no collision to reason about); a hit costs that lookup, a
//! comparison of the MSP id and of the cached chain validity window against `at`. Failures are
//! never cached (they may depend on `at`). The cache is a FIFO of at most `capacity` entries behind
//! a `RwLock`, so concurrent validator threads share hits without contention.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::msp::{IdentityError, Msp, Role, ValidatedIdentity};
use crate::time::UnixTime;

/// Default number of cached validated certificates.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

#[derive(Default)]
struct Cache {
    /// Certificate DER → its validation (which records the MSP id it was validated for).
    map: HashMap<Box<[u8]>, Arc<ValidatedIdentity>>,
    order: VecDeque<Box<[u8]>>,
}

/// The set of organizations that are members of a channel, each with its [`Msp`].
pub struct MspManager {
    msps: HashMap<String, Msp>,
    capacity: usize,
    cache: RwLock<Cache>,
}

impl std::fmt::Debug for MspManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.msps.keys().collect();
        ids.sort();
        f.debug_struct("MspManager")
            .field("msps", &ids)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MspManager {
    /// A manager over `msps` caching up to [`DEFAULT_CACHE_CAPACITY`] validated certificates.
    /// A later MSP with the same id replaces an earlier one.
    pub fn new(msps: impl IntoIterator<Item = Msp>) -> Self {
        Self::with_cache_capacity(msps, DEFAULT_CACHE_CAPACITY)
    }

    /// A manager caching up to `capacity` validated certificates (0 disables the cache).
    pub fn with_cache_capacity(msps: impl IntoIterator<Item = Msp>, capacity: usize) -> Self {
        MspManager {
            msps: msps.into_iter().map(|m| (m.msp_id().to_owned(), m)).collect(),
            capacity,
            cache: RwLock::new(Cache::default()),
        }
    }

    /// The member MSP with this id.
    pub fn msp(&self, msp_id: &str) -> Option<&Msp> {
        self.msps.get(msp_id)
    }

    /// The member MSP ids, sorted.
    pub fn msp_ids(&self) -> Vec<&str> {
        let mut ids: Vec<_> = self.msps.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Validates `cert_der` as a member of `msp_id` at time `at`.
    ///
    /// Refuses unknown MSP ids and certificates that do not chain to that MSP's CAs (a member of
    /// another organization claiming this MSP id is refused too).
    pub fn validate(
        &self,
        msp_id: &str,
        cert_der: &[u8],
        at: UnixTime,
    ) -> Result<Arc<ValidatedIdentity>, IdentityError> {
        if let Some(hit) = self.lookup(cert_der)
            && hit.msp_id() == msp_id
        {
            hit.check_time(at)?;
            return Ok(hit);
        }
        let msp = self.msps.get(msp_id).ok_or_else(|| IdentityError::UnknownMsp(msp_id.to_owned()))?;
        let id = Arc::new(msp.validate(cert_der, at)?);
        self.insert(cert_der, Arc::clone(&id));
        Ok(id)
    }

    /// [`validate`](Self::validate), then require one of the `allowed` roles.
    pub fn validate_role(
        &self,
        msp_id: &str,
        cert_der: &[u8],
        at: UnixTime,
        allowed: &[Role],
    ) -> Result<Arc<ValidatedIdentity>, IdentityError> {
        let id = self.validate(msp_id, cert_der, at)?;
        id.require_role(allowed)?;
        Ok(id)
    }

    /// Number of cached validations.
    pub fn cached(&self) -> usize {
        self.cache.read().map_or(0, |c| c.map.len())
    }

    fn lookup(&self, cert_der: &[u8]) -> Option<Arc<ValidatedIdentity>> {
        // A poisoned lock only means another thread panicked mid-insert; the map itself is
        // still a consistent HashMap, so keep serving from it.
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.map.get(cert_der).cloned()
    }

    fn insert(&self, cert_der: &[u8], id: Arc<ValidatedIdentity>) {
        if self.capacity == 0 {
            return;
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // A certificate is cached for one MSP at a time (the MSP that last validated it); a
        // certificate valid for two MSPs (shared CA) just alternates.
        if cache.map.insert(cert_der.into(), id).is_none() {
            cache.order.push_back(cert_der.into());
        }
        while cache.map.len() > self.capacity {
            match cache.order.pop_front() {
                Some(old) => {
                    cache.map.remove(&old);
                }
                None => break,
            }
        }
    }
}
