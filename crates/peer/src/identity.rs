//! The seam between the peer and the membership service provider: validating identities and verifying
//! signatures, in batches. The `msp` crate implements it; tests use fakes.

use std::any::Any;
use std::sync::Arc;

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
    /// Validates an encoded `SerializedIdentity` against the channel's organizations (results may be
    /// cached). The error says why, for logs and client-facing statuses.
    fn validate(&self, serialized_identity: &[u8]) -> Result<Arc<ValidatedIdentity>, String>;

    /// Verifies many signatures at once; one result per item, in order.
    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool>;

    /// Verifies one signature.
    fn verify(&self, identity: &ValidatedIdentity, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_batch(&[SigCheck { identity, msg, sig }]).first().copied().unwrap_or(false)
    }
}
