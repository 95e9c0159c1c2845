//! Mutual TLS for every gRPC connection: servers demand a client certificate chaining to one of the
//! channel's TLS CAs; clients verify the server the same way.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A node's or client's TLS material, PEM-encoded.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The certificate presented to the other side.
    pub cert_pem: Vec<u8>,
    /// Its private key (PKCS#8).
    pub key_pem: Vec<u8>,
    /// Trusted TLS root CAs (every channel member's TLS CA).
    pub ca_pems: Vec<Vec<u8>>,
}

impl TlsMaterial {
    /// Server side: present our certificate, require and verify a client certificate.
    pub fn server_config(&self) -> ServerTlsConfig {
        let bundle: Vec<u8> = self.ca_pems.iter().flat_map(|p| p.iter().copied().chain([b'\n'])).collect();
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(bundle))
    }

    /// Client side: present our certificate and verify the server's name (`domain`, e.g. `localhost`).
    pub fn client_config(&self, domain: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .domain_name(domain)
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .ca_certificates(self.ca_pems.iter().map(Certificate::from_pem))
    }
}
