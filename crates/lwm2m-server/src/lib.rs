//! The LwM2M server shell: a tokio UDP loop that drives the sans-IO [`coap`] endpoint and the [`lwm2m`] core,
//! holds registrations (by location `/rd/<id>`, never by source address, with lifetime expiry), performs
//! device management for in-process callers through [`LwM2mServerHandle`], and serves a Leshan-style REST
//! admin API (see the `rest` module docs for the routes). With [`ServerConfig::dtls`] it also serves
//! `coaps://` (DTLS 1.2 on OpenSSL: PSK, pinned X.509 and RFC 7250 raw public keys), admitting devices through a [`CredentialStore`]
//! (docs/lwm2m.md, "DTLS"). [`BootstrapServer`] is the LwM2M bootstrap server (NoSec and DTLS), which
//! provisions devices from the same credentials (docs/lwm2m.md, "Bootstrap").
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lwm2m_server::{LwM2mServer, ServerConfig, ServerEvent};
//! let (server, join) = LwM2mServer::start(ServerConfig::default()).await?;
//! let mut events = server.subscribe_events();
//! while let Ok(ev) = events.recv().await {
//!     if let ServerEvent::Registered(c) = ev {
//!         let temp = server.read(&c.endpoint, "/3303/0/5700".parse()?, None, None).await?;
//!         println!("{} says {:?}", c.endpoint, temp.records);
//!         break;
//!     }
//! }
//! server.shutdown();
//! join.await?;
//! # Ok(()) }
//! ```

pub mod bootstrap;
mod clock;
pub mod creds;
mod dtls;
mod handle;
mod json;
mod models;
mod packet;
mod rest;
pub mod rpk;
mod server;
mod types;

pub use bootstrap::{
    BootstrapEvent, BootstrapHandle, BootstrapServer, BootstrapServerConfig, BootstrapStartError,
    BootstrapStats, CredentialProvisioner, Provisioner,
};
pub use creds::{
    Binding, BoundCredentialStore, Credential, CredentialError, CredentialStore, FileCredentialStore,
    Identity, RefreshReport,
};
pub use dtls::{CIPHER_SUITES, DtlsConfig, DtlsError, ServerCertificate};
pub use handle::{LwM2mServer, LwM2mServerHandle, StartError, Stats};
pub use models::{ModelLoadError, load_object_definitions};
pub use rest::router as admin_router;
pub use types::{ClientInfo, OpError, OpResponse, SendAnswer, SendReceipt, ServerConfig, ServerEvent};

/// The core crates, re-exported for callers of the handle.
pub use lwm2m;
