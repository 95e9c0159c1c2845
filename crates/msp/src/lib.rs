//! Identities and signatures for the ipechain ledger: Hyperledger Fabric's MSP, `cryptogen` and
//! BCCSP in one lean core crate.
//!
//! - **Signatures** ([`SigningKey`], [`PublicKey`], [`Signature`]): Ed25519 by default, ECDSA
//!   P-256 accepted (DER, low-S when signing, high-S refused when verifying, as in Fabric).
//! - **Batch verification** ([`verify_batch`], [`verify_batch_parallel`]): Ed25519 signatures
//!   checked with one batch equation per chunk, a failing chunk re-checked item by item so the
//!   exact bad items are reported; verdicts never depend on the thread count.
//! - **Membership** ([`Msp`], [`MspManager`]): a certificate is accepted for an organization only
//!   if it chains to that organization's CA at the given time; the role comes from the subject's OU
//!   (`peer`, `orderer`, `client`, `admin`, Fabric's NodeOUs). The manager caches successful
//!   validations by certificate hash.
//! - **cryptogen** ([`cryptogen::generate`], [`cryptogen::extend`]): a small TOML network description in, CAs,
//!   certificates and keys for every node and user out, laid out like Fabric's cryptogen.
//!
//! The crate is a pure core: no files, no sockets, no clock, no ambient randomness. Time is a
//! [`UnixTime`] argument and keys come from the RNG the caller passes.
//!
//! # Example
//!
//! ```
//! use msp::{cryptogen, NetworkSpec, Role, UnixTime, VerifyItem, verify_batch};
//! use rand::SeedableRng as _;
//!
//! // Generate the default network (3 orderers, Org1 and Org2 with one peer each) from a seed.
//! let now = UnixTime::from_secs(1_780_000_000);
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let material = cryptogen::generate(&NetworkSpec::default_network(), now, &mut rng)?;
//!
//! // A client of Org1 signs a proposal ...
//! let alice = material.identity("Org1MSP", "User1").expect("User1 exists")?;
//! let proposal = b"invoke: put(k, v)";
//! let sig = alice.sign(proposal);
//!
//! // ... and a peer validates the creator and checks the signature.
//! let members = material.msp_manager()?;
//! let creator = members.validate("Org1MSP", alice.cert_der(), now)?;
//! assert_eq!(creator.role(), Role::Client);
//! assert_eq!(creator.common_name(), "User1@org1.ipechain.local");
//! creator.public_key().verify(proposal, sig.as_bytes())?;
//!
//! // Many signatures at once: one batch equation for the Ed25519 ones.
//! verify_batch(&[VerifyItem::new(creator.public_key(), proposal, sig.as_bytes())])?;
//!
//! // Org2 cannot pass off Org1's member as its own.
//! assert!(members.validate("Org2MSP", alice.cert_der(), now).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
pub mod cryptogen;
mod identity;
mod manager;
mod msp;
mod sig;
mod time;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rule;

pub use batch::{BATCH_CHUNK, BatchError, VerifyItem, verify_batch, verify_batch_parallel, verify_each};
pub use cryptogen::{CryptoMaterial, NetworkSpec};
pub use identity::{LoadError, LocalIdentity, TlsIdentity, cert_pem, cert_role_and_name};
pub use manager::{DEFAULT_CACHE_CAPACITY, MspManager};
pub use msp::{IdentityError, MAX_CHAIN_CAS, Msp, Role, ValidatedIdentity, cert_hash, certs_from_pem};
pub use sig::{Algorithm, KeyError, MAX_SIGNATURE_LEN, PublicKey, SigError, Signature, SigningKey};
pub use time::UnixTime;
