//! Signatures (the BCCSP part): signing keys, public keys and signature bytes.
//!
//! Two algorithms, as DESIGN §3 asks: Ed25519 (the default; fast and batch-verifiable) and ECDSA over
//! P-256 with SHA-256 (accepted for Fabric compatibility). ECDSA signatures are DER-encoded and always
//! produced in low-S form; verification rejects high-S signatures exactly as Fabric's BCCSP does, so a
//! signature can't be made malleable by flipping `s`.
//!
//! Ed25519 verification follows ZIP-215 (docs/msp.md, "The Ed25519 rule"): `S` must be canonical, `A` and
//! `R` are decompressed as encoded, and the *cofactored* equation `[8](sB - R - kA) = 0` decides, in
//! single and in batch verification alike (ed25519-zebra), so the two agree by construction and a
//! verdict is a function of the bytes only. On top of that, keys are checked once when parsed:
//! a public key must be canonically encoded and torsion-free (no small-order or mixed-order keys).

use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use p256::pkcs8::der::pem::{LineEnding, decode_vec, encode_string};
use rand_core::CryptoRngCore;

/// Longest signature this crate produces or accepts: a DER ECDSA P-256 signature (2 × 33-byte
/// integers plus headers). Ed25519 signatures are always 64 bytes.
pub const MAX_SIGNATURE_LEN: usize = 72;

/// A signature algorithm (what Fabric calls the key's "BCCSP" type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Ed25519 (RFC 8032). The default.
    #[default]
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256, DER-encoded, low-S.
    #[serde(rename = "p256", alias = "ecdsa-p256", alias = "ecdsa")]
    EcdsaP256,
}

impl Algorithm {
    /// The name used in configuration files: `ed25519` or `p256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "p256",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a PKCS#8 / SubjectPublicKeyInfo structure for Ed25519 or P-256.
    #[error("malformed or unsupported key: {0}")]
    Malformed(String),
    /// PEM armour could not be decoded, or the label is not the expected one.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// An Ed25519 public key of small order: anyone could forge signatures for it.
    #[error("weak (small-order) Ed25519 public key")]
    WeakKey,
    /// An Ed25519 public key with a torsion component (outside the prime-order subgroup): no honest
    /// key generator makes one.
    #[error("Ed25519 public key has a torsion component")]
    TorsionKey,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// The signature bytes have the wrong length or are not valid DER.
    #[error("malformed signature")]
    Malformed,
    /// An ECDSA signature whose `s` is in the upper half of the group order (Fabric rejects these).
    #[error("ECDSA signature is not low-S")]
    HighS,
    /// Well-formed, but does not verify for this key and message.
    #[error("signature verification failed")]
    Invalid,
}

/// Signature bytes: 64 bytes for Ed25519, DER (≤ 72 bytes) for ECDSA P-256. Stored inline, no heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    len: u8,
    bytes: [u8; MAX_SIGNATURE_LEN],
}

impl Signature {
    fn from_slice(s: &[u8]) -> Self {
        debug_assert!(s.len() <= MAX_SIGNATURE_LEN);
        let mut bytes = [0u8; MAX_SIGNATURE_LEN];
        let len = s.len().min(MAX_SIGNATURE_LEN);
        bytes[..len].copy_from_slice(&s[..len]);
        Signature { len: len as u8, bytes }
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The signature bytes, copied into a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A private signing key.
///
/// `Debug` never prints key material.
#[derive(Clone)]
pub enum SigningKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::SigningKey),
    /// An ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key from `rng` (pass a seeded RNG for reproducible keys in tests).
    pub fn generate(alg: Algorithm, rng: &mut impl CryptoRngCore) -> Self {
        match alg {
            Algorithm::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(rng)),
            Algorithm::EcdsaP256 => SigningKey::EcdsaP256(p256::ecdsa::SigningKey::random(rng)),
        }
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ed25519(_) => Algorithm::Ed25519,
            SigningKey::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// Signs `msg`. Deterministic for both algorithms (Ed25519 by construction, ECDSA with
    /// RFC 6979 nonces); ECDSA signatures are DER-encoded and low-S normalised.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        match self {
            SigningKey::Ed25519(k) => Signature::from_slice(&k.sign(msg).to_bytes()),
            SigningKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                Signature::from_slice(sig.to_der().as_bytes())
            }
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            // A key derived from a secret scalar is canonical and torsion-free by construction.
            SigningKey::Ed25519(k) => PublicKey::Ed25519(
                Ed25519Key::unchecked(k.verifying_key().to_bytes())
                    .expect("a signing key's public key is a point"),
            ),
            SigningKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
        }
    }

    /// PKCS#8 DER encoding: Ed25519 as PKCS#8 v1 (RFC 8410, the secret only: what OpenSSL 3.0 and Node's
    /// `crypto` read, and what Fabric's cryptogen writes), P-256 as SEC1 inside PKCS#8. Reading accepts v1
    /// and v2 (with the public key).
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        let doc = match self {
            SigningKey::Ed25519(k) => {
                ed25519_dalek::pkcs8::KeypairBytes { secret_key: k.to_bytes(), public_key: None }
                    .to_pkcs8_der()
            }
            SigningKey::EcdsaP256(k) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k),
        };
        // Encoding a well-formed in-memory key into DER cannot fail (no I/O, bounded sizes).
        doc.expect("PKCS#8 encoding of a valid key").as_bytes().to_vec()
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as Fabric's keystore holds it.
    pub fn to_pkcs8_pem(&self) -> String {
        encode_string("PRIVATE KEY", LineEnding::LF, &self.to_pkcs8_der())
            .expect("PEM encoding of a short DER document")
    }

    /// Parses a PKCS#8 DER private key of either algorithm.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(SigningKey::Ed25519(k));
        }
        match <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(der) {
            Ok(k) => Ok(SigningKey::EcdsaP256(k)),
            Err(e) => Err(KeyError::Malformed(e.to_string())),
        }
    }

    /// Parses a PKCS#8 PEM private key (`PRIVATE KEY` label) of either algorithm.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (label, der) = decode_vec(pem).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::Pem(format!("expected PRIVATE KEY, found {label}")));
        }
        Self::from_pkcs8_der(&der)
    }
}

/// An Ed25519 public key that passed the key checks (canonical encoding, torsion-free), kept in the
/// forms its uses need: the encoding (batch items, SPKI) and ed25519-zebra's verification key (single
/// verification without decompressing `A` again).
#[derive(Clone, Copy)]
pub struct Ed25519Key {
    bytes: [u8; 32],
    zebra: ed25519_zebra::VerificationKey,
}

impl Ed25519Key {
    /// Checks an encoded key: it must decode to a curve point, be canonically encoded, and lie in the
    /// prime-order subgroup (no small-order "weak" key, no torsion component).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Ed25519Key, KeyError> {
        let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
            .decompress()
            .ok_or_else(|| KeyError::Malformed("Ed25519 key is not a curve point".into()))?;
        if point.is_small_order() {
            return Err(KeyError::WeakKey);
        }
        if point.compress().to_bytes() != bytes {
            return Err(KeyError::Malformed("Ed25519 key is not canonically encoded".into()));
        }
        if !point.is_torsion_free() {
            return Err(KeyError::TorsionKey);
        }
        Ed25519Key::unchecked(bytes)
    }

    /// Any decodable point, without the key checks: only for tests of the verification rule itself.
    pub(crate) fn unchecked(bytes: [u8; 32]) -> Result<Ed25519Key, KeyError> {
        let zebra = ed25519_zebra::VerificationKey::try_from(bytes)
            .map_err(|_| KeyError::Malformed("Ed25519 key is not a curve point".into()))?;
        Ok(Ed25519Key { bytes, zebra })
    }

    /// The 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Verifies under the ZIP-215 rule (canonical `S`, cofactored equation).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
        let sig = ed25519_signature(sig)?;
        self.zebra.verify(&sig, msg).map_err(|_| SigError::Invalid)
    }
}

/// A 64-byte Ed25519 signature; anything else is malformed.
pub(crate) fn ed25519_signature(sig: &[u8]) -> Result<ed25519_zebra::Signature, SigError> {
    let bytes: &[u8; 64] = sig.try_into().map_err(|_| SigError::Malformed)?;
    Ok(ed25519_zebra::Signature::from_bytes(bytes))
}

impl PartialEq for Ed25519Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Ed25519Key {}

/// A public key that verifies signatures, usually taken from a certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An Ed25519 key (canonical and torsion-free: see [`Ed25519Key::from_bytes`]).
    Ed25519(Ed25519Key),
    /// An ECDSA P-256 key (a point on the curve, not the identity).
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}:", self.algorithm())?;
        for b in self.to_spki_der().iter().rev().take(8).rev() {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl PublicKey {
    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// Parses a DER `SubjectPublicKeyInfo` (the public key field of an X.509 certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(spki) = ed25519_dalek::pkcs8::PublicKeyBytes::from_public_key_der(der) {
            return Ok(PublicKey::Ed25519(Ed25519Key::from_bytes(spki.to_bytes())?));
        }
        match <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(der) {
            Ok(k) => Ok(PublicKey::EcdsaP256(k)),
            Err(e) => Err(KeyError::Malformed(e.to_string())),
        }
    }

    /// Takes the public key out of a DER X.509 certificate. Does not validate the certificate;
    /// use [`crate::Msp::validate`] for that.
    pub fn from_certificate_der(cert_der: &[u8]) -> Result<Self, KeyError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(cert_der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Self::from_spki_der(cert.tbs_certificate.subject_pki.raw)
    }

    /// DER `SubjectPublicKeyInfo` encoding.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let doc = match self {
            PublicKey::Ed25519(k) => ed25519_dalek::pkcs8::PublicKeyBytes(k.bytes).to_public_key_der(),
            PublicKey::EcdsaP256(k) => p256::pkcs8::EncodePublicKey::to_public_key_der(k),
        };
        doc.expect("SPKI encoding of a valid key").into_vec()
    }

    /// The raw key bytes as they appear inside the SPKI bit string: 32 bytes for Ed25519,
    /// the 65-byte uncompressed SEC1 point for P-256.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.bytes.to_vec(),
            PublicKey::EcdsaP256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// Verifies `sig` over `msg`. Ed25519 follows ZIP-215 (the same verdict as batch verification);
    /// ECDSA refuses high-S and anything but strict DER.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
        match self {
            PublicKey::Ed25519(k) => k.verify(msg, sig),
            PublicKey::EcdsaP256(k) => {
                parse_ecdsa_low_s(sig)?;
                // ring's P-256 is several times faster than the p256 crate; the p256 parse above
                // enforces strict DER and low-S, ring then checks the same DER signature.
                let point = k.to_encoded_point(false);
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_ASN1,
                    point.as_bytes(),
                )
                .verify(msg, sig)
                .map_err(|_| SigError::Invalid)
            }
        }
    }
}

/// Parses a DER ECDSA signature and refuses high-S.
fn parse_ecdsa_low_s(sig: &[u8]) -> Result<p256::ecdsa::Signature, SigError> {
    let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| SigError::Malformed)?;
    if sig.normalize_s().is_some() {
        return Err(SigError::HighS);
    }
    Ok(sig)
}

impl From<&SigningKey> for PublicKey {
    fn from(k: &SigningKey) -> Self {
        k.public_key()
    }
}
