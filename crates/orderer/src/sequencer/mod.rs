//! The leader's sequencer and the Raft-backed [`Chain`].
//!
//! One task per orderer runs an explicit event loop over `ChainEvent`s (orders, applied/skipped blocks
//! reported by the state machine, leadership confirmed), Raft metrics (role changes) and the cutter's timer.
//! The decisions are made by the sans-IO `core::SequencerCore`; this shell feeds it and performs its
//! commands (reply, sign and propose a block, confirm leadership).
//!
//! ```text
//!  Broadcast / Forward ──Order──► sequencer ──(leader, ready)──► cutter ──batch──► build block number
//!                                    ▲                               next = last + 1 over in-flight blocks,
//!                                    │                               sign header hash, client_write_ff
//!          Applied / Skipped ────────┘ resolve waiters of the in-flight block; a lost block's envelopes
//!          (state machine)             are re-queued (leader) or refused with NotLeader (follower)
//! ```
//!
//! A node that becomes leader first waits until everything committed before its term is applied
//! (`ensure_linearizable`), then continues the chain from its own store: so it never proposes a block
//! on a stale head. Waiters are keyed by tx id; a tx id already pending, in flight or in the store is not
//! ordered again (idempotent retries).

use crate::chain::{Chain, OrderError, Ordered};
use crate::raft::network::Network;
use crate::raft::{BlockEntry, OrdererRaft};
use bytes::Bytes;
use futures::future::BoxFuture;
use ledger_rpc::cluster_client::ClusterClient;
use ledger_rpc::messages::ForwardRequest;
use ledger_types::BlockExt;
use ledger_types::store::BlockStore;
use ledger_types::tx::Signer;
use ledger_types::{Hash32, TxId};
use openraft::BasicNode;
use openraft::{RaftMetrics, ServerState};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

mod core;

pub(crate) use self::core::SequencerCore;
use self::core::{ChainView, Command, Input, RequestId};

type Reply = oneshot::Sender<Result<Ordered, OrderError>>;

/// Inputs of the sequencer loop.
pub(crate) enum ChainEvent {
    /// Order an envelope (from Broadcast on this node or Forward from a follower).
    Order { tx_id: String, envelope: Bytes, reply: Reply },
    /// The state machine appended this block.
    Applied { number: u64, hash: Hash32 },
    /// The state machine skipped a committed block entry that did not extend the chain.
    Skipped { number: u64, hash: Hash32 },
    /// Leadership in `term` is confirmed and everything committed before it is applied.
    Ready { term: u64 },
}

/// The one clock of the sequencer (tokio's, so paused-time tests work).
#[allow(clippy::disallowed_methods)] // the shell's single clock read
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Shared halt flag.
pub(crate) type Errored = Arc<Mutex<Option<String>>>;

pub(crate) fn set_errored(e: &Errored, reason: String) {
    if let Ok(mut g) = e.lock() {
        g.get_or_insert(reason);
    }
}

/// The core's view of the local block store.
struct StoreView<'a>(&'a dyn BlockStore);

impl ChainView for StoreView<'_> {
    fn head(&self) -> (u64, Hash32) {
        (self.0.height(), self.0.last_hash().unwrap_or(Hash32::ZERO))
    }

    fn stored_at(&self, tx_id: &str) -> Option<u64> {
        let id = TxId::parse(tx_id).ok()?;
        self.0.tx_location(&id).ok().flatten().map(|l| l.block)
    }
}

/// The shell around [`SequencerCore`]: feeds it events, Raft metrics and the timer; performs its commands.
pub(crate) struct Sequencer {
    raft: OrdererRaft,
    store: Arc<dyn BlockStore>,
    signer: Arc<dyn Signer>,
    core: SequencerCore,
    replies: HashMap<RequestId, Reply>,
    next_id: RequestId,
    events: mpsc::UnboundedSender<ChainEvent>,
    errored: Errored,
    /// The time of the last block this orderer proposed (block times never go back on one orderer).
    last_time: Option<ledger_types::proto::Timestamp>,
    metrics: ops::SequencerMetrics,
    /// When each block in flight was proposed (for metrics only).
    proposed_at: BTreeMap<u64, std::time::Instant>,
}

impl Sequencer {
    pub(crate) fn new(
        raft: OrdererRaft,
        store: Arc<dyn BlockStore>,
        signer: Arc<dyn Signer>,
        core: SequencerCore,
        events: mpsc::UnboundedSender<ChainEvent>,
        errored: Errored,
        metrics: ops::SequencerMetrics,
    ) -> Sequencer {
        Sequencer {
            raft,
            store,
            signer,
            core,
            replies: HashMap::new(),
            next_id: 0,
            events,
            errored,
            last_time: None,
            metrics,
            proposed_at: BTreeMap::new(),
        }
    }

    fn handle(&mut self, input: Input) {
        let store = self.store.clone();
        self.core.handle(now(), input, &StoreView(store.as_ref()));
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<ChainEvent>,
        cancel: CancellationToken,
    ) {
        let mut metrics = self.raft.metrics();
        let m = metrics.borrow_and_update().clone();
        self.on_metrics(&m);
        loop {
            if let Err(reason) = self.perform().await {
                set_errored(&self.errored, reason);
                break;
            }
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                changed = metrics.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let m = metrics.borrow_and_update().clone();
                    self.on_metrics(&m);
                }
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.handle(Input::Timeout),
            }
        }
        let reason = self
            .errored
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| "orderer shutting down".to_owned());
        for (_, reply) in self.replies.drain() {
            let _ = reply.send(Err(OrderError::Unavailable(reason.clone())));
        }
    }

    fn on_event(&mut self, ev: ChainEvent) {
        let input = match ev {
            ChainEvent::Order { tx_id, envelope, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.replies.insert(id, reply);
                Input::Order { id, tx_id, envelope }
            }
            ChainEvent::Applied { number, hash } => {
                self.settled(number);
                Input::Applied { number, hash }
            }
            ChainEvent::Skipped { number, hash } => {
                self.settled(number);
                Input::Skipped { number, hash }
            }
            ChainEvent::Ready { term } => {
                tracing::info!(term, height = self.store.height(), "leader ready");
                Input::Ready { term }
            }
        };
        self.handle(input);
    }

    /// Blocks up to `number` left consensus (applied, skipped or lost): their consensus time for the metrics.
    fn settled(&mut self, number: u64) {
        let now = now();
        let mut latest = None;
        while let Some(entry) = self.proposed_at.first_entry() {
            if *entry.key() > number {
                break;
            }
            let (n, at) = entry.remove_entry();
            if n == number {
                latest = Some(now.saturating_duration_since(at).as_secs_f64());
            }
        }
        self.metrics.applied(latest, self.proposed_at.len());
    }

    fn on_metrics(&mut self, m: &RaftMetrics<u64, BasicNode>) {
        if let Err(fatal) = &m.running_state {
            set_errored(&self.errored, format!("raft stopped: {fatal}"));
        }
        let is_leader = m.state == ServerState::Leader;
        if !is_leader && !self.proposed_at.is_empty() {
            // A follower proposes nothing: what it had in flight is the new leader's to settle.
            self.proposed_at.clear();
            self.metrics.applied(None, 0);
        }
        self.handle(Input::Role { is_leader, term: m.current_term, leader: m.current_leader });
    }

    /// Performs the core's commands: replies, proposals (signed here), leadership confirmation.
    async fn perform(&mut self) -> Result<(), String> {
        while let Some(cmd) = self.core.poll_command() {
            match cmd {
                Command::Reply { id, result } => {
                    if let Some(reply) = self.replies.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Command::Propose { mut block, waited, early } => {
                    let last = match self.last_time {
                        Some(t) => Some(t),
                        None => crate::chain::last_block_time(self.store.as_ref()),
                    };
                    self.last_time =
                        Some(crate::chain::stamp_and_sign(&mut block, last, self.signer.as_ref()));
                    let number = block.number();
                    self.proposed_at.insert(number, now());
                    self.metrics.proposed(
                        block.data.as_ref().map_or(0, |d| d.data.len()),
                        waited.as_secs_f64(),
                        self.proposed_at.len(),
                        early,
                    );
                    // Fire and forget: the outcome arrives as Applied/Skipped from the state machine.
                    let rx = self
                        .raft
                        .client_write_ff(BlockEntry(block.encode_to_vec().into()))
                        .await
                        .map_err(|e| format!("raft stopped: {e}"))?;
                    drop(rx);
                    tracing::debug!(number, "proposed block");
                }
                Command::ConfirmLeadership { term } => {
                    tokio::spawn(confirm_leadership(self.raft.clone(), self.events.clone(), term));
                }
            }
        }
        Ok(())
    }
}

async fn confirm_leadership(raft: OrdererRaft, events: mpsc::UnboundedSender<ChainEvent>, term: u64) {
    loop {
        match raft.ensure_linearizable().await {
            Ok(_) => {
                let _ = events.send(ChainEvent::Ready { term });
                return;
            }
            Err(e) => {
                let m = raft.metrics().borrow().clone();
                if m.current_term != term || m.state != ServerState::Leader || m.running_state.is_err() {
                    return;
                }
                tracing::debug!("leadership not confirmed yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The Raft-backed chain (see the module docs).
pub struct RaftChain {
    id: u64,
    channel_id: String,
    raft: OrdererRaft,
    events: mpsc::UnboundedSender<ChainEvent>,
    peers: BTreeMap<u64, String>,
    network: Network,
    clients: Mutex<HashMap<u64, ClusterClient<Channel>>>,
    order_timeout: Duration,
    errored: Errored,
}

impl RaftChain {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        channel_id: String,
        raft: OrdererRaft,
        events: mpsc::UnboundedSender<ChainEvent>,
        peers: BTreeMap<u64, String>,
        network: Network,
        order_timeout: Duration,
        errored: Errored,
    ) -> RaftChain {
        RaftChain {
            id,
            channel_id,
            raft,
            events,
            peers,
            network,
            clients: Mutex::new(HashMap::new()),
            order_timeout,
            errored,
        }
    }

    /// The Raft handle (status, metrics).
    pub fn raft(&self) -> &OrdererRaft {
        &self.raft
    }

    /// Orders on this node only (no forwarding): what `Cluster.Forward` calls on the leader.
    pub(crate) async fn order_local(&self, envelope: Bytes, tx_id: String) -> Result<Ordered, OrderError> {
        if let Some(reason) = self.errored() {
            return Err(OrderError::Halted(reason));
        }
        let (reply, rx) = oneshot::channel();
        self.events
            .send(ChainEvent::Order { tx_id, envelope, reply })
            .map_err(|_| OrderError::Unavailable("orderer shutting down".into()))?;
        rx.await.map_err(|_| OrderError::Unavailable("orderer shutting down".into()))?
    }

    fn client(&self, leader: u64) -> Result<ClusterClient<Channel>, OrderError> {
        let mut clients = self.clients.lock().map_err(|_| OrderError::Halted("lock poisoned".into()))?;
        if let Some(c) = clients.get(&leader) {
            return Ok(c.clone());
        }
        let addr = self
            .peers
            .get(&leader)
            .ok_or_else(|| OrderError::Unavailable(format!("leader {leader} is not a consenter")))?;
        let ch = self.network.channel(addr).map_err(|e| OrderError::Unavailable(e.to_string()))?;
        let c = ClusterClient::new(ch);
        clients.insert(leader, c.clone());
        Ok(c)
    }

    async fn forward(&self, leader: u64, envelope: Bytes) -> Result<Ordered, OrderError> {
        let mut client = self.client(leader)?;
        let req = ForwardRequest { channel_id: self.channel_id.clone(), envelopes: vec![envelope] };
        let resp = client
            .forward(req)
            .await
            .map_err(|s| OrderError::Unavailable(format!("forward to {leader}: {}", s.message())))?
            .into_inner();
        match resp.status {
            200 => Ok(Ordered { block: resp.info.parse().unwrap_or_default() }),
            // The leader's limit is the channel's, which this node checked already: only a config
            // mismatch gets here.
            413 => Err(OrderError::Unavailable(format!("leader {leader} refused the size: {}", resp.info))),
            409 => Err(OrderError::AlreadyOrdered { block: resp.info.parse().unwrap_or_default() }),
            503 => Err(OrderError::NotLeader { leader: (resp.leader_hint != 0).then_some(resp.leader_hint) }),
            s => Err(OrderError::Unavailable(format!("leader {leader} answered {s}: {}", resp.info))),
        }
    }

    async fn order_with_retry(&self, envelope: Bytes, tx_id: String) -> Result<Ordered, OrderError> {
        loop {
            let last;
            match self.order_local(envelope.clone(), tx_id.clone()).await {
                Err(OrderError::NotLeader { leader: Some(l) }) if l != self.id => {
                    match self.forward(l, envelope.clone()).await {
                        Err(e @ (OrderError::NotLeader { .. } | OrderError::Unavailable(_))) => last = e,
                        other => return other,
                    }
                }
                Err(e @ OrderError::NotLeader { .. }) => last = e,
                other => return other,
            }
            tracing::debug!("ordering retry: {last}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.errored().is_some() {
                return Err(last);
            }
        }
    }
}

impl Chain for RaftChain {
    fn order(&self, envelope: Bytes, tx_id: String) -> BoxFuture<'_, Result<Ordered, OrderError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.order_timeout, self.order_with_retry(envelope, tx_id)).await {
                Ok(r) => r,
                Err(_) => Err(OrderError::Unavailable(format!(
                    "not ordered within {:?} (leader: {:?}); retrying is safe",
                    self.order_timeout,
                    self.raft.metrics().borrow().current_leader
                ))),
            }
        })
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), OrderError>> {
        Box::pin(async move {
            let mut m: watch::Receiver<RaftMetrics<u64, BasicNode>> = self.raft.metrics();
            loop {
                if let Some(reason) = self.errored() {
                    return Err(OrderError::Halted(reason));
                }
                if m.borrow_and_update().current_leader.is_some() {
                    return Ok(());
                }
                if m.changed().await.is_err() {
                    return Err(OrderError::Halted("raft stopped".into()));
                }
            }
        })
    }

    fn errored(&self) -> Option<String> {
        if let Some(r) = self.errored.lock().ok().and_then(|g| g.clone()) {
            return Some(r);
        }
        match &self.raft.metrics().borrow().running_state {
            Err(e) => Some(format!("raft stopped: {e}")),
            Ok(()) => None,
        }
    }
}
