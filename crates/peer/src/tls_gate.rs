//! Who is on the other end of a mutual-TLS connection, by role: the gate in front of the services that are
//! not for every channel member. The TLS handshake already proved that the client's certificate chains to
//! one of the channel's TLS CAs; the gate finds which organization's, and the role OU the certificate
//! carries (cryptogen gives TLS certificates their member's role, as NodeOUs do for signing certificates).
//!
//! | service | admitted |
//! |---|---|
//! | orderers' `Cluster` (Raft, Forward) | `orderer` TLS certificates of an orderer organization of the channel |
//! | `Admin` (peers and orderers) | `admin` TLS certificates of any organization of the channel |
//!
//! Everyone else is refused with `PERMISSION_DENIED` by an interceptor, before the request is decoded.

use ledger_types::proto::ChannelConfig;
use msp::{Msp, MspManager, Role, UnixTime};
use std::collections::HashSet;

/// The channel's TLS CAs by organization, and which organizations order.
pub struct TlsGate {
    tls: MspManager,
    orderer_orgs: HashSet<String>,
}

impl TlsGate {
    /// The gate of a channel: every organization's TLS root certificates from its configuration.
    pub fn from_config(config: &ChannelConfig) -> Result<TlsGate, String> {
        let mut msps = Vec::new();
        for o in config.orgs.iter().chain(&config.orderer_orgs) {
            msps.push(
                Msp::new(o.msp_id.clone(), o.tls_root_certs.clone(), Vec::new())
                    .map_err(|e| format!("TLS CAs of {}: {e}", o.msp_id))?,
            );
        }
        Ok(TlsGate {
            tls: MspManager::new(msps),
            orderer_orgs: config.orderer_orgs.iter().map(|o| o.msp_id.clone()).collect(),
        })
    }

    /// The organization and role of the client presenting `certs` (DER, leaf first) at `at` (Unix seconds).
    pub fn identify(&self, certs: &[Vec<u8>], at: i64) -> Result<(String, Role), String> {
        let leaf = certs.first().ok_or("no client certificate")?;
        let mut why = String::from("no organization of the channel issued this TLS certificate");
        for msp_id in self.tls.msp_ids() {
            match self.tls.validate(msp_id, leaf, UnixTime::from_secs(at)) {
                Ok(id) => return Ok((msp_id.to_owned(), id.role())),
                Err(e) => why = e.to_string(),
            }
        }
        Err(why)
    }

    /// Admits only orderers of the channel's orderer organizations (the `Cluster` service).
    pub fn authorize_cluster(&self, certs: &[Vec<u8>], at: i64) -> Result<(), String> {
        match self.identify(certs, at)? {
            (msp, Role::Orderer) if self.orderer_orgs.contains(&msp) => Ok(()),
            (msp, role) => Err(format!(
                "the cluster service is for the channel's orderers; this client is a {} of {msp}",
                role.ou()
            )),
        }
    }

    /// Admits only admins of the channel's organizations (the `Admin` service).
    pub fn authorize_admin(&self, certs: &[Vec<u8>], at: i64) -> Result<(), String> {
        match self.identify(certs, at)? {
            (_, Role::Admin) => Ok(()),
            (msp, role) => {
                Err(format!("the admin service is for admins; this client is a {} of {msp}", role.ou()))
            }
        }
    }
}

/// The client certificates of a request (DER, leaf first; empty without mutual TLS).
pub fn client_certs<T>(request: &tonic::Request<T>) -> Vec<Vec<u8>> {
    request.peer_certs().map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect()).unwrap_or_default()
}
