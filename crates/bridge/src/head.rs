//! Where the chain ends, and how far the gateway trails it.
//!
//! The bridge follows each ledger peer it uses with a `DeliverFiltered` stream (Fabric's filtered blocks: every
//! transaction's id, validation code and chaincode event name, no payloads). The stream tells whether the
//! peer is reachable, the newest block it has committed (the chain's head as the gateway sees it), and, on
//! the LwM2M side's peer (the one whose IPE events the bridge handles), which blocks hold valid IPE events.
//! The gateway's lag is then exact: the blocks from the first one holding an IPE event the gateway has not
//! handled yet to the head, both counted ([`chain_lag`]); blocks without IPE events do not count against it.
//!
//! The stream starts at the block of the event checkpoint, so after a restart it replays the filtered blocks
//! since the checkpoint (a few hundred bytes each) before it follows the head; until it has, the head it
//! reports is behind the chain's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fabric_protos::protos::deliver_client::DeliverClient;
use fabric_protos::protos::{FilteredBlock, deliver_response, filtered_transaction};
use ledger_client::Checkpoint;
use ledger_types::proto::Timestamp;
use ledger_types::tx::{Signer, seek_envelope, seek_range};
use tokio_util::sync::CancellationToken;

/// Which side of the bridge a ledger connection serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The LwM2M side: it registers and serves the devices, and reads the IPE events.
    Lwm2m,
    /// The oneM2M side: it submits the applications' requests and answers.
    Onem2m,
}

impl Side {
    /// `lwm2m` or `onem2m`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Lwm2m => "lwm2m",
            Side::Onem2m => "onem2m",
        }
    }
}

/// A ledger peer the bridge watches: the gRPC connection of its side's gateway, the channel, and the
/// side's signing identity (a seek request is signed).
#[derive(Clone)]
pub struct PeerLink {
    /// The side it serves.
    pub side: Side,
    /// `host:port`, for metrics and health messages.
    pub peer: String,
    /// The connection (shared with the side's [`ledger_client::Gateway`]).
    pub channel: tonic::transport::Channel,
    /// The channel's name.
    pub channel_id: String,
    /// The side's identity.
    pub signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink").field("side", &self.side).field("peer", &self.peer).finish_non_exhaustive()
    }
}

/// What the bridge knows of one watched peer.
#[derive(Debug)]
pub struct PeerStatus {
    /// The side it serves.
    pub side: Side,
    /// `host:port`.
    pub peer: String,
    connected: AtomicBool,
    /// Newest block number + 1 seen on its stream (0: none yet).
    height: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl PeerStatus {
    fn new(side: Side, peer: String) -> PeerStatus {
        PeerStatus {
            side,
            peer,
            connected: AtomicBool::new(false),
            height: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Whether its filtered-block stream is open.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The chain's height as this peer reported it (newest block + 1; 0 before the first block).
    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Acquire)
    }

    /// Why the stream last failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_connected(&self, up: bool, error: Option<String>) {
        self.connected.store(up, Ordering::Release);
        if error.is_some() || up {
            *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
        }
    }
}

/// Blocks holding valid IPE events (the last such transaction of each), as the LwM2M side's stream saw them.
#[derive(Debug, Default)]
pub(crate) struct EventBlocks {
    pub(crate) blocks: BTreeMap<u64, String>,
}

/// The ledger as the gateway sees it: its peers' reachability and heads, its event stream, its lag.
#[derive(Debug)]
pub struct LedgerView {
    peers: Vec<Arc<PeerStatus>>,
    events_connected: AtomicBool,
    /// [`chain_lag`], once the head is known.
    lag: Mutex<Option<u64>>,
    pub(crate) event_blocks: Mutex<EventBlocks>,
}

impl LedgerView {
    pub(crate) fn new(links: &[PeerLink]) -> LedgerView {
        LedgerView {
            peers: links.iter().map(|l| Arc::new(PeerStatus::new(l.side, l.peer.clone()))).collect(),
            events_connected: AtomicBool::new(false),
            lag: Mutex::new(None),
            event_blocks: Mutex::default(),
        }
    }

    /// The watched peers.
    pub fn peers(&self) -> &[Arc<PeerStatus>] {
        &self.peers
    }

    /// Whether the IPE event stream is open.
    pub fn events_connected(&self) -> bool {
        self.events_connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_events_connected(&self, up: bool) {
        self.events_connected.store(up, Ordering::Release);
    }

    /// Blocks the gateway trails the chain's head ([`chain_lag`]); `None` while the head is unknown (no
    /// LwM2M-side peer watched, or its stream has not delivered a block yet).
    pub fn lag_blocks(&self) -> Option<u64> {
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The LwM2M side's peer, whose events the bridge handles.
    fn lwm2m(&self) -> Option<&Arc<PeerStatus>> {
        self.peers.iter().find(|p| p.side == Side::Lwm2m)
    }

    /// Recomputes the lag from the head and what the event tracker has received (`received`: the position
    /// after the last event received) and not yet handled (`oldest_pending`: the oldest such event's block),
    /// and forgets event blocks before `received`. Returns the lag.
    pub(crate) fn update_lag(&self, received: &Checkpoint, oldest_pending: Option<u64>) -> Option<u64> {
        let head = self.lwm2m().map(|p| p.height()).filter(|&h| h > 0).map(|h| h - 1);
        let mut blocks = self.event_blocks.lock().unwrap_or_else(PoisonError::into_inner);
        let lag = head.map(|head| chain_lag(head, &blocks.blocks, received, oldest_pending));
        blocks.blocks = blocks.blocks.split_off(&received.block);
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner) = lag;
        lag
    }
}

/// The first block holding a valid IPE event that the gateway has not received: `event_blocks` maps each
/// such block (as the filtered-block stream saw them) to its last IPE transaction; `received` is the event
/// stream's position (resume at `block`, after `tx_id` there; `None`: all of `block` is still to come).
pub fn first_unreceived(event_blocks: &BTreeMap<u64, String>, received: &Checkpoint) -> Option<u64> {
    event_blocks
        .range(received.block..)
        .find(|(b, last)| **b > received.block || received.tx_id.as_deref() != Some(last.as_str()))
        .map(|(b, _)| *b)
}

/// The gateway's lag behind the chain, in blocks: from the first block holding an IPE event it has not
/// handled (received and still being handled, `oldest_pending`, or not received yet, by
/// [`first_unreceived`]) to the head (`head`: the newest block's number), both counted; 0 when it has handled
/// every IPE event up to the head. Blocks without IPE events cost nothing to the gateway and do not count.
pub fn chain_lag(
    head: u64,
    event_blocks: &BTreeMap<u64, String>,
    received: &Checkpoint,
    oldest_pending: Option<u64>,
) -> u64 {
    let first = match (oldest_pending, first_unreceived(event_blocks, received)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match first {
        Some(b) if b <= head => head - b + 1,
        _ => 0,
    }
}

/// The valid transactions of `block` with an event of `contract`, in block order.
fn ipe_txs<'a>(block: &'a FilteredBlock, contract: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    block
        .filtered_transactions
        .iter()
        .filter(|t| t.tx_validation_code == 0) // VALID
        .filter(move |t| match &t.data {
            Some(filtered_transaction::Data::TransactionActions(a)) => a
                .chaincode_actions
                .iter()
                .any(|c| c.chaincode_event.as_ref().is_some_and(|e| e.chaincode_id == contract)),
            None => false,
        })
        .map(|t| t.txid.as_str())
}

#[allow(clippy::disallowed_methods)] // the bridge shell's clock: a seek request's timestamp
fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), nanos: d.subsec_nanos() as i32 }
}

/// How long to wait between attempts to reach a peer that failed.
const RETRY: retry::Backoff = retry::Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

/// Follows `link`'s filtered blocks from block `start` (`None`: the next block the peer commits) until
/// `stop`, keeping `status` (and, with `contract`, the view's IPE event blocks) current; reconnects after
/// failures, from the block after the last one seen.
pub(crate) async fn watch(
    link: PeerLink,
    status: Arc<PeerStatus>,
    view: Arc<LedgerView>,
    contract: Option<String>,
    start: Option<u64>,
    metrics: ops::BridgeMetrics,
    stop: CancellationToken,
) {
    let label = (link.side.as_str(), link.peer.as_str());
    let mut next = start;
    let mut failures = 0u32;
    loop {
        let env = seek_envelope(link.signer.as_ref(), &link.channel_id, &seek_range(next, None), now());
        let request = {
            use tokio_stream::StreamExt;
            tokio_stream::iter([env]).chain(tokio_stream::pending())
        };
        let mut client = DeliverClient::new(link.channel.clone()).max_decoding_message_size(64 << 20);
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            r = client.deliver_filtered(request) => r,
        };
        let error = match opened {
            Ok(response) => {
                let mut stream = response.into_inner();
                status.set_connected(true, None);
                metrics.set_peer_up(label.0, label.1, true);
                failures = 0;
                loop {
                    let msg = tokio::select! {
                        () = stop.cancelled() => return,
                        m = stream.message() => m,
                    };
                    match msg.map(|m| m.and_then(|m| m.r#type)) {
                        Ok(Some(deliver_response::Type::FilteredBlock(b))) => {
                            if let Some(contract) = &contract
                                && let Some(last) = ipe_txs(&b, contract).last()
                            {
                                view.event_blocks
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .blocks
                                    .insert(b.number, last.to_owned());
                            }
                            status.height.store(b.number + 1, Ordering::Release);
                            next = Some(b.number + 1);
                            if link.side == Side::Lwm2m {
                                metrics.set_chain_height(b.number + 1);
                            }
                        }
                        Ok(Some(deliver_response::Type::Status(s))) => {
                            break format!("the peer ended the stream ({s})");
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break "the peer closed the stream".to_owned(),
                        Err(e) => break e.to_string(),
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        if status.connected() {
            tracing::warn!(peer = %link.peer, side = link.side.as_str(), %error, "ledger peer stream lost");
        } else if failures == 0 {
            tracing::warn!(peer = %link.peer, side = link.side.as_str(), %error, "ledger peer unreachable");
        }
        status.set_connected(false, Some(error));
        metrics.set_peer_up(label.0, label.1, false);
        let delay = RETRY.delay(failures, retry::os_random()).unwrap_or(RETRY.cap());
        failures = failures.saturating_add(1);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
