//! Adapters from the `msp` crate to the ledger's seams: [`IdentitySigner`] implements the `Signer` of
//! `ledger-types` (the peer's `Identities` is implemented by `peer::identity::MspIdentities`), and the
//! nodes' one clock read for admission checks.

use ledger_types::tx::{Signer, serialize_identity};
use msp::{LocalIdentity, UnixTime};

/// The current time for admission checks (endorsement, broadcast, reads) and key generation: the peer's
/// one clock read ([`peer::unix_now`]). Validation never calls it: it judges a transaction at its own
/// timestamp.
pub fn unix_now() -> UnixTime {
    UnixTime::from_secs(peer::unix_now())
}

/// Signs as a local identity (node or user).
pub struct IdentitySigner {
    identity: LocalIdentity,
    serialized: Vec<u8>,
}

impl IdentitySigner {
    /// A signer for `identity`.
    pub fn new(identity: LocalIdentity) -> IdentitySigner {
        let serialized = serialize_identity(identity.msp_id(), identity.cert_pem().as_bytes());
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
