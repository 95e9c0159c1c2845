//! Refuses, with a clear message, an OpenSSL without RFC 7250 raw public keys (before 3.2): the DTLS server
//! calls `SSL_CTX_set1_client_cert_type` and friends (`src/rpk.rs`). The workspace builds OpenSSL from source
//! (`openssl-sys`'s `vendored` feature); this only fires if that is overridden (e.g. `OPENSSL_NO_VENDOR=1`
//! with Debian 12's OpenSSL 3.0).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_OPENSSL_VERSION_NUMBER");
    let Ok(v) = std::env::var("DEP_OPENSSL_VERSION_NUMBER") else {
        // LibreSSL or BoringSSL: openssl-sys reports no OpenSSL version; the link step will tell.
        return;
    };
    let n = u64::from_str_radix(&v, 16).unwrap_or(0);
    if n < 0x3020_0000 {
        panic!(
            "lwm2m-server needs OpenSSL >= 3.2 for RFC 7250 raw public keys, but openssl-sys found version \
             0x{v}; build with the workspace's vendored OpenSSL (do not set OPENSSL_NO_VENDOR)"
        );
    }
}
