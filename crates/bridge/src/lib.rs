//! The bridge gateway: it carries both interworking flows through the ledger's IPE contract.
//!
//! ```text
//!            LwM2M devices                                                   oneM2M applications
//!                 │ CoAP/UDP                                                   │ Mca (HTTP)
//!         ┌───────▼────────┐   register/update/report/      ┌─────────────┐  ┌─▼──────────────────────┐
//!         │ LwM2M server   │── device_request/submit_response ►│  ledger     │  │ CSE (embedded or remote)│
//!         │ (lwm2m-server) │        (LwM2M side identity)   │  ipe contract│  └─┬──────────▲───────────┘
//!         └───────▲────────┘                                └──────┬──────┘    │ cmd cins   │ trees, cins
//!                 │ downlink ops, answers                          │ events    │ (notified) │
//!                 └──────────────── uplink / downlink / onem2m ◄───┘───────────┘────────────┘
//!                                     (this crate)          submit_request / answer_device_request
//!                                                            (oneM2M side identity)
//! ```
//!
//! - **Uplink** ([`uplink`]): LwM2M server events (register, update, de-register, expiry, notify, send) become
//!   IPE transactions, in order per device ([`core::uplink`]: also the observation map and the timers of
//!   devices' requests).
//! - **Events** ([`events`]): the IPE contract's events are consumed from a persisted checkpoint (the lowest
//!   event not yet fully handled), so a restart resumes with nothing lost. Acting again on a replayed event is
//!   harmless: contentInstances have the request/report id as their name (a replay is a 4105), answers are
//!   refused as 409 by the contract, and device operations that are not safe to repeat are journaled
//!   ([`journal`]) and checked against the ledger first.
//! - **Core** ([`core`]): the flows as sans-IO state machines: the downlink flow (a request event → status →
//!   journal → device → answer) and the event watermark, the `cmd` flow ([`core::cmd`]), the uplink flow
//!   ([`core::uplink`]) and the oneM2M side of events ([`core::onem2m`]), owned by the shell's one loop
//!   ([`events`]).
//! - **oneM2M side** ([`onem2m_side`]): device trees and contentInstances on the CSE; applications' requests
//!   written into a device's `cmd` container become `submit_request` transactions ([`core::cmd`]).
//!
//! Architecture Invariant: every request gets exactly one answer on the ledger (ok, error or timeout), and
//! every answer is written once into the device's `rsp` container.

pub mod core;
pub mod events;
pub mod head;
pub mod journal;
pub mod ledger;
pub mod mca;
pub mod onem2m_side;
pub mod uplink;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ipe::model::GatewayRef;
use ledger_client::Gateway;
use lwm2m::Registry;
use lwm2m_server::LwM2mServerHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use head::{LedgerView, PeerLink, PeerStatus, Side};
pub use mca::{Mca, McaFuture, Notified, Provenance};
pub use onem2m_side::Onem2mSide;

/// The LwM2M object a device uses to ask the oneM2M side something (the paper's scenario 2): object 32769 in
/// OMNA's private range. A device Sends `/32769/0/0` (topic, string) and `/32769/0/2` (body, JSON string),
/// optionally `/32769/0/1` (its own id); the answer is written back to `/32769/0/3` (status) and `/32769/0/4`
/// (content, JSON string), and `/32769/0/1` (the ledger's request id).
pub const DEVICE_REQUEST_OBJECT: u16 = 32769;

/// How the gateway is set up.
#[derive(Clone)]
pub struct BridgeConfig {
    /// Short name, the prefix of the ids the gateway makes (`gw1` → `gw1-r-…`, `gw1-d-…`).
    pub name: String,
    /// Where the checkpoint and the journal live.
    pub state_dir: PathBuf,
    /// The LwM2M side's ledger connection (it registers and serves the devices).
    pub lwm2m_ledger: Gateway,
    /// Who that is on the ledger: `{org: MSP id, id: certificate CN}`.
    pub lwm2m_identity: GatewayRef,
    /// The oneM2M side's ledger connection (it submits applications' requests and answers).
    pub onem2m_ledger: Gateway,
    /// The IPE chaincode's name on the channel (`ipe::NAME` on ipechain's networks).
    pub ipe_contract: String,
    /// The LwM2M server.
    pub lwm2m: LwM2mServerHandle,
    /// Object definitions (the same as the contract's).
    pub registry: Arc<Registry>,
    /// The oneM2M side.
    pub onem2m: Onem2mSide,
    /// Default request timeout (s) for device requests.
    pub device_request_timeout: u32,
    /// Interworking request latencies by status, the lag behind the chain, the ledger connections
    /// (`ops::BridgeMetrics::default()`: a private set; docs/operations.md).
    pub metrics: ops::BridgeMetrics,
    /// The ledger peers whose reachability and chain head the bridge follows ([`head`]): the LwM2M side's
    /// (its IPE events are the bridge's work: the lag is measured on it) and the oneM2M side's. Empty:
    /// neither is watched, and the lag is unknown.
    pub watch: Vec<PeerLink>,
}

/// Counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// LwM2M events turned into transactions.
    pub uplink_tx: AtomicU64,
    /// Requests answered (submit_response committed).
    pub answered: AtomicU64,
    /// Requests answered with timeout.
    pub timeouts: AtomicU64,
    /// Requests from `cmd` containers submitted.
    pub cmd_requests: AtomicU64,
    /// contentInstances written.
    pub cins: AtomicU64,
    /// Events handled.
    pub events: AtomicU64,
    /// Errors (logged).
    pub errors: AtomicU64,
}

/// Shared state of a running bridge.
pub(crate) struct Shared {
    pub(crate) cfg: BridgeConfig,
    pub(crate) journal: journal::Journal,
    pub(crate) stats: Arc<Stats>,
    /// The shell loop's inbox (the results of commands performed in tasks come back through it).
    pub(crate) inbox: events::Inbox,
    /// The ledger as the gateway sees it.
    pub(crate) view: Arc<LedgerView>,
    pub(crate) stop: CancellationToken,
}

/// A tag unique to this process start (so ids stay unique across restarts).
pub(crate) fn boot_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        #[allow(clippy::disallowed_methods)] // the bridge shell's one clock read for id uniqueness
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        format!("{:x}", t.as_millis())
    })
}

/// Milliseconds since the epoch (the bridge shell's clock, for the core's `now`).
pub(crate) fn unix_now_ms() -> core::UnixMillis {
    #[allow(clippy::disallowed_methods)] // the bridge shell's clock
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    core::UnixMillis(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// State directory or journal.
    #[error("state: {0}")]
    Io(#[from] std::io::Error),
    /// The oneM2M side refused the IPE AE.
    #[error("oneM2M side: {0}")]
    Onem2m(#[from] onem2m_side::Onem2mError),
}

/// A running bridge.
pub struct Bridge {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the gateway: registers the IPE AE on the oneM2M side, resumes the event stream from the
    /// persisted checkpoint and starts listening to the LwM2M server and the CSE's notifications.
    pub async fn start(
        cfg: BridgeConfig,
        notifications: tokio::sync::mpsc::UnboundedReceiver<Notified>,
    ) -> Result<Bridge, BridgeError> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        let (journal, open) = journal::Journal::open(&cfg.state_dir.join("journal.log"))?;
        cfg.onem2m.register_ipe().await?;
        let stop = CancellationToken::new();
        let view = Arc::new(LedgerView::new(&cfg.watch));
        let (inbox, inbox_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            cfg,
            journal,
            stats: Arc::default(),
            inbox: events::Inbox(inbox),
            view,
            stop: stop.clone(),
        });
        let tasks =
            vec![tokio::spawn(events::run(shared.clone(), open.ops, open.dreqs, inbox_rx, notifications))];
        Ok(Bridge { shared, tasks })
    }

    /// Counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// The ledger as the gateway sees it: its peers' reachability, its event stream, its lag.
    pub fn ledger_view(&self) -> Arc<LedgerView> {
        self.shared.view.clone()
    }

    /// Stops the tasks (the checkpoint is saved first).
    pub async fn shutdown(self) {
        self.shared.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}
