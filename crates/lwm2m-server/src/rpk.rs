//! RFC 7250 raw public keys on OpenSSL (≥ 3.2): the few calls the `openssl` crate does not wrap, declared
//! here and wrapped safely. Nothing else in the crate touches these pointers.
//!
//! A raw public key is identified, as on chain, by the SHA-256 of its DER `SubjectPublicKeyInfo`
//! ([`spki_sha256`]).

#![allow(unsafe_code)] // FFI to OpenSSL's RPK API (openssl-sys 0.9 does not declare it); see each SAFETY note

use std::ffi::{c_int, c_uchar};

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::pkey::{PKey, PKeyRef, Public};
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::X509StoreContextRef;

/// `TLSEXT_cert_type_x509` (RFC 7250 §3).
pub const CERT_TYPE_X509: u8 = 0;
/// `TLSEXT_cert_type_rpk` (RFC 7250 §3).
pub const CERT_TYPE_RPK: u8 = 2;

unsafe extern "C" {
    // OpenSSL 3.2+, include/openssl/ssl.h and x509_vfy.h. The build script refuses an older OpenSSL.
    fn SSL_CTX_set1_client_cert_type(
        ctx: *mut openssl_sys::SSL_CTX,
        val: *const c_uchar,
        len: usize,
    ) -> c_int;
    fn SSL_CTX_set1_server_cert_type(
        ctx: *mut openssl_sys::SSL_CTX,
        val: *const c_uchar,
        len: usize,
    ) -> c_int;
    fn SSL_get_negotiated_client_cert_type(s: *const openssl_sys::SSL) -> c_int;
    fn SSL_get0_peer_rpk(s: *const openssl_sys::SSL) -> *mut openssl_sys::EVP_PKEY;
    fn X509_STORE_CTX_get0_rpk(ctx: *const openssl_sys::X509_STORE_CTX) -> *mut openssl_sys::EVP_PKEY;
}

/// Sets the certificate types a context accepts from clients (`client_certificate_type`) and presents as a
/// server or accepts from servers (`server_certificate_type`), in preference order. A peer that sends
/// neither extension gets X.509, as before RFC 7250.
pub fn set_cert_types(
    b: &mut SslContextBuilder,
    client: &[u8],
    server: &[u8],
) -> Result<(), openssl::error::ErrorStack> {
    // SAFETY: `b` owns a valid SSL_CTX for the duration of the calls; OpenSSL copies `len` bytes from the
    // slice (the `set1` convention) and keeps no pointer into it.
    let ok = unsafe {
        SSL_CTX_set1_client_cert_type(b.as_ptr(), client.as_ptr(), client.len()) == 1
            && SSL_CTX_set1_server_cert_type(b.as_ptr(), server.as_ptr(), server.len()) == 1
    };
    if ok { Ok(()) } else { Err(openssl::error::ErrorStack::get()) }
}

/// The peer's raw public key, if the session negotiated RPK for the client certificate type (server side).
pub fn peer_rpk(ssl: &SslRef) -> Option<PKey<Public>> {
    // SAFETY: `ssl` is a valid SSL for the duration of the calls. SSL_get0_peer_rpk returns a borrowed
    // pointer (get0) owned by the session, or NULL; we take our own reference (EVP_PKEY_up_ref) before
    // wrapping it in an owning PKey, so the session's reference is untouched.
    unsafe {
        if SSL_get_negotiated_client_cert_type(ssl.as_ptr()) != c_int::from(CERT_TYPE_RPK) {
            return None;
        }
        owned(SSL_get0_peer_rpk(ssl.as_ptr()))
    }
}

/// The raw public key being verified, in a verify callback (`None` when a certificate is being verified).
pub fn store_ctx_rpk(ctx: &X509StoreContextRef) -> Option<PKey<Public>> {
    // SAFETY: `ctx` is the valid X509_STORE_CTX OpenSSL passed to the callback; X509_STORE_CTX_get0_rpk
    // returns a borrowed pointer or NULL, and `owned` takes its own reference.
    unsafe { owned(X509_STORE_CTX_get0_rpk(ctx.as_ptr())) }
}

/// An owning `PKey` for a borrowed `EVP_PKEY` pointer (NULL: `None`).
///
/// # Safety
/// `p` is NULL or a valid `EVP_PKEY` that stays alive until this returns.
unsafe fn owned(p: *mut openssl_sys::EVP_PKEY) -> Option<PKey<Public>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is valid (caller's contract); after up_ref the new PKey owns one reference and frees only
    // that one when dropped.
    unsafe {
        if openssl_sys::EVP_PKEY_up_ref(p) != 1 {
            return None;
        }
        Some(PKey::from_ptr(p))
    }
}

/// SHA-256 of a public key's DER `SubjectPublicKeyInfo`: how a raw public key is bound on chain.
pub fn spki_sha256(key: &PKeyRef<Public>) -> Option<[u8; 32]> {
    key.public_key_to_der().ok().map(|der| openssl::sha::sha256(&der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_of_the_spki_der() {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::ec::EcKey::generate(&group).unwrap();
        let private = PKey::from_ec_key(key).unwrap();
        let der = private.public_key_to_der().unwrap();
        let public = PKey::public_key_from_der(&der).unwrap();
        assert_eq!(spki_sha256(&public), Some(openssl::sha::sha256(&der)));
        // 91 bytes: the SPKI of a P-256 key (what `openssl pkey -pubout -outform DER` writes).
        assert_eq!(der.len(), 91);
    }

    #[test]
    fn cert_types_are_accepted_by_a_dtls_context() {
        let mut b = SslContextBuilder::new(openssl::ssl::SslMethod::dtls_server()).unwrap();
        set_cert_types(&mut b, &[CERT_TYPE_RPK, CERT_TYPE_X509], &[CERT_TYPE_RPK, CERT_TYPE_X509]).unwrap();
        assert!(set_cert_types(&mut b, &[9], &[CERT_TYPE_X509]).is_err(), "an unknown type is refused");
    }
}
