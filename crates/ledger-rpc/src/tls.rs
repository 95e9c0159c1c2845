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

    /// Client side: present our certificate (none when `cert_pem` is empty: a peer that does not ask for
    /// one, as Fabric's default `clientAuthRequired: false`) and verify the server's name (`domain`, e.g.
    /// `localhost`).
    pub fn client_config(&self, domain: &str) -> ClientTlsConfig {
        let c = ClientTlsConfig::new()
            .domain_name(domain)
            .ca_certificates(self.ca_pems.iter().map(Certificate::from_pem));
        if self.cert_pem.is_empty() {
            c
        } else {
            c.identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
        }
    }
}

/// A lazily connecting mutual-TLS channel to `endpoint` (`host:port`); the server certificate must name
/// `host`. Reconnects by itself when the connection drops.
pub fn channel(
    endpoint: &str,
    tls: &TlsMaterial,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let host =
        endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    channel_named(endpoint, tls, host)
}

/// Like [`channel`], but the server certificate must name `server_name` (Fabric's
/// `ssl-target-name-override`, for a peer reached by an address its certificate does not carry).
pub fn channel_named(
    endpoint: &str,
    tls: &TlsMaterial,
    server_name: &str,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(format!("https://{endpoint}"))?
        .tls_config(tls.client_config(server_name))?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy())
}
