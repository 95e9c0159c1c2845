//! The generated TLS material works with rustls (ring provider): an in-memory mutual-TLS
//! handshake between a peer and a client of another organization, no sockets.

use std::sync::Arc;

use msp::{Algorithm, CryptoMaterial, NetworkSpec};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::{network, network_of};

fn roots(m: &CryptoMaterial) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for ca in m.tls_root_certs() {
        roots.add(CertificateDer::from(ca)).expect("root");
    }
    Arc::new(roots)
}

fn chain_and_key(
    m: &CryptoMaterial,
    msp_id: &str,
    name: &str,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let id = m.identity(msp_id, name).expect("member").expect("identity");
    let tls = id.tls().expect("tls");
    (
        vec![CertificateDer::from(tls.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls.key_pkcs8_der.clone())),
    )
}

/// Runs a handshake between `client_side` (trusting `client_trust`) and `server_side`.
fn handshake(
    server_side: &CryptoMaterial,
    client_side: &CryptoMaterial,
    client_msp: &str,
) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(server_side), provider.clone())
        .build()
        .expect("verifier");
    let (chain, key) = chain_and_key(server_side, "Org1MSP", "peer0");
    let server_cfg = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    let (chain, key) = chain_and_key(client_side, client_msp, "User1");
    let client_cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(server_side))
        .with_client_auth_cert(chain, key)?;
    let name = ServerName::try_from("peer0.org1.ipechain.local").expect("name");
    let mut client = ClientConnection::new(Arc::new(client_cfg), name)?;
    let mut server = ServerConnection::new(Arc::new(server_cfg))?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).expect("write");
        server.read_tls(&mut buf.as_slice()).expect("read");
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).expect("write");
        client.read_tls(&mut buf.as_slice()).expect("read");
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            assert!(server.peer_certificates().is_some_and(|c| c.len() == 1));
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

#[test]
fn mutual_tls_between_orgs_p256_and_ed25519() {
    let m = network(30);
    handshake(&m, &m, "Org2MSP").expect("p256 mTLS handshake");
    let mut spec = NetworkSpec::default_network();
    spec.tls_key_algorithm = Algorithm::Ed25519;
    let m = network_of(&spec, 31);
    handshake(&m, &m, "Org1MSP").expect("ed25519 mTLS handshake");
}

#[test]
fn foreign_tls_client_is_refused() {
    let ours = network(32);
    let theirs = network(33);
    assert!(handshake(&ours, &theirs, "Org2MSP").is_err());
}
