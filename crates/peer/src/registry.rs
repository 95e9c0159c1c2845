//! The peer's registered identities (see `ledger_types::identity`): an in-memory mirror of the state
//! namespace `_identities`, loaded when the ledger opens and extended after each block's state updates are
//! applied. Validation of block N therefore resolves references against the registrations of blocks < N
//! only, on every peer alike; the endorser resolves against whatever is committed.

use ledger_types::Hash32;
use ledger_types::identity::{self, Form, NAMESPACE, UNKNOWN_REFERENCE};
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StoreError, UpdateBatch};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// An encoded identity as validation needs it: the bytes as carried (full), or the full identity a
/// reference stands for.
#[derive(Debug, Clone)]
pub enum Resolved<'a> {
    /// The identity was carried in full.
    Full(&'a [u8]),
    /// The identity was a reference to this registered full identity.
    Registered(Arc<[u8]>),
}

impl std::ops::Deref for Resolved<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Resolved::Full(b) => b,
            Resolved::Registered(b) => b,
        }
    }
}

struct Entry {
    full: Arc<[u8]>,
    msp_id: String,
}

/// Registered identities, by the hash of their full encoding.
#[derive(Default)]
pub struct IdentityRegistry {
    map: RwLock<HashMap<Hash32, Entry>>,
}

impl std::fmt::Debug for IdentityRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRegistry").field("len", &self.len()).finish()
    }
}

impl IdentityRegistry {
    /// An empty registry.
    pub fn new() -> IdentityRegistry {
        IdentityRegistry::default()
    }

    /// The registrations a state holds.
    pub fn load(snapshot: &dyn StateSnapshot) -> Result<IdentityRegistry, StoreError> {
        let r = IdentityRegistry::new();
        for (key, v) in snapshot.range(NAMESPACE, "", "", usize::MAX)? {
            let hash = Hash32::from_hex(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("registered identity key {key:?}")))?;
            r.insert(hash, &v.value);
        }
        Ok(r)
    }

    fn insert(&self, hash: Hash32, full: &[u8]) {
        let msp_id = identity::msp_id(full).unwrap_or_default();
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(hash).or_insert_with(|| Entry { full: full.into(), msp_id });
    }

    /// Remembers a full identity outside of any block's registrations (an orderer's memory of the identities
    /// it has seen); anything that is not a full identity is ignored. When `max` are held, all are forgotten
    /// first.
    pub fn remember(&self, full: &[u8], max: usize) {
        if full.is_empty() || identity::form(full) != Form::Full {
            return;
        }
        let hash = identity::hash_of(full);
        if self.contains(&hash) {
            return;
        }
        let msp_id = identity::msp_id(full).unwrap_or_default();
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= max {
            map.clear();
        }
        map.insert(hash, Entry { full: full.into(), msp_id });
    }

    /// Takes in the registrations of a block's state updates (after they were applied).
    pub fn absorb(&self, batch: &UpdateBatch) {
        let start = (NAMESPACE.to_owned(), String::new());
        for ((ns, key), v) in batch.updates.range(start..) {
            if ns != NAMESPACE {
                break;
            }
            if let (Some(v), Some(hash)) = (v, Hash32::from_hex(key)) {
                self.insert(hash, &v.value);
            }
        }
    }

    /// Number of registered identities.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the full identity with this hash is registered.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.map.read().unwrap_or_else(|p| p.into_inner()).contains_key(hash)
    }

    /// The full identity `bytes` stands for: itself when carried in full, the registered identity for a
    /// reference. A reference to an unregistered identity, or one stating another MSP id than the
    /// registered identity's, is an error naming [`UNKNOWN_REFERENCE`].
    pub fn resolve<'a>(&self, bytes: &'a [u8]) -> Result<Resolved<'a>, String> {
        match identity::form(bytes) {
            Form::Full => Ok(Resolved::Full(bytes)),
            Form::Reference(hash) => {
                let map = self.map.read().unwrap_or_else(|p| p.into_inner());
                match map.get(&hash) {
                    Some(e) if identity::msp_id(bytes).as_deref() == Some(e.msp_id.as_str()) => {
                        Ok(Resolved::Registered(e.full.clone()))
                    }
                    Some(_) => Err(format!("{UNKNOWN_REFERENCE}: {} states another MSP", hash.to_hex())),
                    None => Err(format!("{UNKNOWN_REFERENCE}: {} is not registered", hash.to_hex())),
                }
            }
        }
    }

    /// Whether `bytes` (full or reference) names a registered identity.
    pub fn knows(&self, bytes: &[u8]) -> bool {
        match identity::form(bytes) {
            Form::Full => self.contains(&identity::hash_of(bytes)),
            Form::Reference(hash) => self.contains(&hash),
        }
    }
}

/// Adds to `batch` the registrations of a valid transaction: each of `identities` carried in full (the
/// creator, the endorsers), keyed by its hash, versioned by the transaction. Validation and replay call it
/// alike, so a state rebuilt from blocks holds the same registrations.
pub fn register<'a>(
    batch: &mut UpdateBatch,
    identities: impl IntoIterator<Item = &'a [u8]>,
    version: Version,
) {
    for bytes in identities {
        if identity::form(bytes) == Form::Full && !bytes.is_empty() {
            batch.put(NAMESPACE, &identity::key(&identity::hash_of(bytes)), bytes.to_vec(), version);
        }
    }
}
