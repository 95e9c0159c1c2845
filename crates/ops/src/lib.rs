//! The operations service, as Hyperledger Fabric's: `/metrics` (Prometheus scrapes it; OpenMetrics text),
//! `/healthz` (the process's health checks, Fabric's JSON), `/readyz` (200 once started) and `/version`.
//!
//! Libraries depend on this crate without its `server` feature for the metric families only
//! ([`PeerMetrics`], [`OrdererMetrics`], [`CseMetrics`], [`BridgeMetrics`]): each
//! `Default` is a private, unregistered set, so a library used without an operations service counts into
//! nothing anyone reads. [`Metrics::new`] registers one set of each with the process's registry; counters a
//! library already keeps (the LwM2M server's, the bridge's) are read at scrape time ([`Metrics::counter_fn`]). Health
//! verdicts are pure functions ([`peer_progress`], [`leader_known`], [`sustained`]) over values and a time passed
//! in.
//! `docs/operations.md` lists every metric.

mod health;
mod metrics;
#[cfg(feature = "server")]
mod server;
#[cfg(test)]
mod tests;
#[cfg(feature = "server")]
mod tls;

pub use health::{
    FailedCheck, Health, HealthCheck, HealthReport, LeaderWatch, Progress, ProgressWatch, SustainedWatch,
    leader_known, peer_progress, sustained,
};
pub use metrics::{
    BridgeMetrics, CseMetrics, Metrics, OrdererLabel, OrdererMetrics, PeerHandle, PeerMetrics, Read,
    SequencerMetrics, Stopwatch,
};
#[cfg(feature = "server")]
pub use server::{Ops, router, serve, serve_tls};
#[cfg(feature = "server")]
pub use tls::OpsTls;

/// Why the operations service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// The metrics could not be written as text.
    #[error("encoding metrics: {0}")]
    Encode(#[from] std::fmt::Error),
    /// The listener failed.
    #[error("operations listener: {0}")]
    Io(#[from] std::io::Error),
    /// The listener's TLS material is unusable.
    #[error("operations TLS: {what}: {message}")]
    Tls {
        /// Which material: `certificate`, `private key`, `client CA`, ….
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// What `/version` answers: the program's name and version and git-less build facts.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct VersionInfo {
    /// The program, e.g. `ipechain`.
    pub name: String,
    /// Its crate version.
    pub version: String,
    /// Target operating system (`std::env::consts::OS`).
    pub os: &'static str,
    /// Target architecture.
    pub arch: &'static str,
    /// `release` or `debug` (whether debug assertions are on).
    pub profile: &'static str,
}

impl VersionInfo {
    /// The running build of `name` at `version` (pass `env!("CARGO_PKG_VERSION")` of the binary).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> VersionInfo {
        VersionInfo {
            name: name.into(),
            version: version.into(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
        }
    }
}
