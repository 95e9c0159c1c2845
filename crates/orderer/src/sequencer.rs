//! The leader's sequencer and the Raft-backed [`Chain`].
//!
//! One task per orderer runs an explicit event loop over [`ChainEvent`]s (orders, applied/skipped blocks
//! reported by the state machine, leadership confirmed), Raft metrics (role changes) and the cutter's timer.
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
use crate::cutter::{BlockCutter, CutterConfig};
use crate::raft::network::Network;
use crate::raft::{BlockEntry, OrdererRaft};
use futures::future::BoxFuture;
use ledger_rpc::cluster_client::ClusterClient;
use ledger_rpc::messages::ForwardRequest;
use ledger_types::block::BlockBuilder;
use ledger_types::proto::MetadataSignature;
use ledger_types::store::BlockStore;
use ledger_types::tx::Signer;
use ledger_types::{Hash32, TxId};
use openraft::BasicNode;
use openraft::{RaftMetrics, ServerState};
use prost::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Blocks proposed but not yet applied, at most.
const MAX_INFLIGHT: usize = 8;

type Reply = oneshot::Sender<Result<Ordered, OrderError>>;

/// Inputs of the sequencer loop.
pub(crate) enum ChainEvent {
    /// Order an envelope (from Broadcast on this node or Forward from a follower).
    Order { tx_id: String, envelope: Vec<u8>, reply: Reply },
    /// The state machine appended this block.
    Applied { number: u64, hash: Hash32 },
    /// The state machine skipped a committed block entry that did not extend the chain.
    Skipped { number: u64, hash: Hash32 },
    /// Leadership in `term` is confirmed and everything committed before it is applied.
    Ready { term: u64 },
}

/// The one clock of the sequencer (tokio's, so paused-time tests work).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

struct Item {
    tx_id: String,
    envelope: Vec<u8>,
}

struct Inflight {
    hash: Hash32,
    items: Vec<Item>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Follower,
    /// Leader, waiting until the log of earlier terms is applied.
    Confirming {
        term: u64,
    },
    Leader {
        term: u64,
    },
}

/// Shared halt flag.
pub(crate) type Errored = Arc<Mutex<Option<String>>>;

pub(crate) fn set_errored(e: &Errored, reason: String) {
    if let Ok(mut g) = e.lock() {
        g.get_or_insert(reason);
    }
}

pub(crate) struct Sequencer {
    raft: OrdererRaft,
    store: Arc<dyn BlockStore>,
    signer: Arc<dyn Signer>,
    cutter: BlockCutter<Item>,
    ready: VecDeque<Vec<Item>>,
    inflight: BTreeMap<u64, Inflight>,
    waiters: HashMap<String, Vec<Reply>>,
    role: Role,
    leader: Option<u64>,
    next: (u64, Hash32),
    events: mpsc::UnboundedSender<ChainEvent>,
    errored: Errored,
}

impl Sequencer {
    pub(crate) fn new(
        raft: OrdererRaft,
        store: Arc<dyn BlockStore>,
        signer: Arc<dyn Signer>,
        cutter: CutterConfig,
        events: mpsc::UnboundedSender<ChainEvent>,
        errored: Errored,
    ) -> Sequencer {
        Sequencer {
            raft,
            store,
            signer,
            cutter: BlockCutter::new(cutter),
            ready: VecDeque::new(),
            inflight: BTreeMap::new(),
            waiters: HashMap::new(),
            role: Role::Follower,
            leader: None,
            next: (0, Hash32::ZERO),
            events,
            errored,
        }
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
            let deadline = self.cutter.poll_timeout().map(tokio::time::Instant::from_std);
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
                } => {
                    if let Some(batch) = self.cutter.handle_timeout(now()) {
                        self.ready.push_back(batch);
                    }
                }
            }
            if let Err(reason) = self.propose_ready().await {
                set_errored(&self.errored, reason);
                break;
            }
        }
        let reason = self
            .errored
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| "orderer shutting down".to_owned());
        for (_, ws) in self.waiters.drain() {
            for w in ws {
                let _ = w.send(Err(OrderError::Unavailable(reason.clone())));
            }
        }
    }

    fn on_metrics(&mut self, m: &RaftMetrics<u64, BasicNode>) {
        if let Err(fatal) = &m.running_state {
            set_errored(&self.errored, format!("raft stopped: {fatal}"));
        }
        self.leader = m.current_leader;
        if m.state == ServerState::Leader {
            let term = m.current_term;
            match self.role {
                Role::Leader { term: t } | Role::Confirming { term: t } if t == term => {}
                _ => {
                    self.role = Role::Confirming { term };
                    tokio::spawn(confirm_leadership(self.raft.clone(), self.events.clone(), term));
                }
            }
        } else if self.role != Role::Follower {
            self.step_down();
        }
    }

    fn step_down(&mut self) {
        tracing::info!(leader = ?self.leader, "no longer leader");
        self.role = Role::Follower;
        let mut dropped: Vec<Item> = self.cutter.cut().unwrap_or_default();
        dropped.extend(self.ready.drain(..).flatten());
        let err = OrderError::NotLeader { leader: self.leader };
        self.finish(dropped, Err(err));
    }

    fn finish(&mut self, items: Vec<Item>, result: Result<Ordered, OrderError>) {
        for item in items {
            if let Some(ws) = self.waiters.remove(&item.tx_id) {
                for w in ws {
                    let _ = w.send(result.clone());
                }
            }
        }
    }

    fn head(&self) -> (u64, Hash32) {
        (self.store.height(), self.store.last_hash().unwrap_or(Hash32::ZERO))
    }

    /// Puts envelopes back into the cutter (those meanwhile found in the store are answered instead).
    fn requeue(&mut self, items: Vec<Item>) {
        for item in items {
            if let Some(block) = self.stored_at(&item.tx_id) {
                self.finish(vec![item], Ok(Ordered { block }));
                continue;
            }
            let size = item.envelope.len();
            match self.cutter.ordered(now(), item, size) {
                Ok(batches) => self.ready.extend(batches),
                Err(e) => tracing::error!("re-queued envelope refused: {e}"),
            }
        }
    }

    fn stored_at(&self, tx_id: &str) -> Option<u64> {
        let id = TxId::parse(tx_id).ok()?;
        self.store.tx_location(&id).ok().flatten().map(|l| l.block)
    }

    fn on_event(&mut self, ev: ChainEvent) {
        match ev {
            ChainEvent::Order { tx_id, envelope, reply } => self.on_order(tx_id, envelope, reply),
            ChainEvent::Applied { number, hash } => {
                let mut lost = Vec::new();
                while let Some(entry) = self.inflight.first_entry() {
                    if *entry.key() > number {
                        break;
                    }
                    let (n, inf) = entry.remove_entry();
                    if n == number && inf.hash == hash {
                        self.finish(inf.items, Ok(Ordered { block: number }));
                    } else {
                        lost.push(inf);
                    }
                }
                if !lost.is_empty() {
                    self.lose(lost);
                }
            }
            ChainEvent::Skipped { number, hash } => {
                if self.inflight.get(&number).is_some_and(|i| i.hash == hash) {
                    let lost: Vec<Inflight> = self.inflight.remove(&number).into_iter().collect();
                    self.lose(lost);
                }
            }
            ChainEvent::Ready { term } => {
                if self.role == (Role::Confirming { term }) {
                    tracing::info!(term, height = self.store.height(), "leader ready");
                    self.role = Role::Leader { term };
                    // Everything committed before this term is applied now: envelopes accepted while
                    // confirming, and blocks proposed in an earlier term of ours that never made it, are
                    // checked against the store again, so none is ordered twice.
                    let mut items: Vec<Item> =
                        std::mem::take(&mut self.inflight).into_values().flat_map(|i| i.items).collect();
                    items.extend(self.ready.drain(..).flatten());
                    items.extend(self.cutter.cut().unwrap_or_default());
                    self.next = self.head();
                    self.requeue(items);
                }
            }
        }
    }

    /// In-flight blocks that will never be in the chain: a leader re-queues them and everything proposed
    /// after them (chained on them, so skipped too); a follower sends their callers elsewhere.
    fn lose(&mut self, lost: Vec<Inflight>) {
        if matches!(self.role, Role::Leader { .. }) {
            let mut items: Vec<Item> = lost.into_iter().flat_map(|i| i.items).collect();
            items.extend(std::mem::take(&mut self.inflight).into_values().flat_map(|i| i.items));
            self.next = self.head();
            self.requeue(items);
        } else {
            let items = lost.into_iter().flat_map(|i| i.items).collect();
            self.finish(items, Err(OrderError::NotLeader { leader: self.leader }));
        }
    }

    fn on_order(&mut self, tx_id: String, envelope: Vec<u8>, reply: Reply) {
        // A follower never holds new envelopes: the caller forwards to the leader (which deduplicates).
        if self.role == Role::Follower {
            let _ = reply.send(Err(OrderError::NotLeader { leader: self.leader }));
            return;
        }
        if let Some(ws) = self.waiters.get_mut(&tx_id) {
            ws.push(reply);
            return;
        }
        if let Some(block) = self.stored_at(&tx_id) {
            let _ = reply.send(Ok(Ordered { block }));
            return;
        }
        let size = envelope.len();
        match self.cutter.ordered(now(), Item { tx_id: tx_id.clone(), envelope }, size) {
            Err(e) => {
                let _ = reply.send(Err(OrderError::TooLarge { size: e.size, max: e.max }));
            }
            Ok(batches) => {
                self.ready.extend(batches);
                self.waiters.insert(tx_id, vec![reply]);
            }
        }
    }

    async fn propose_ready(&mut self) -> Result<(), String> {
        if !matches!(self.role, Role::Leader { .. }) {
            return Ok(());
        }
        while self.inflight.len() < MAX_INFLIGHT {
            let Some(batch) = self.ready.pop_front() else { break };
            let (number, prev) = self.next;
            let mut block =
                BlockBuilder::new(number, prev).envelopes(batch.iter().map(|i| i.envelope.clone())).build();
            let hash = block.header_hash();
            let signature = self.signer.sign(&hash.0);
            block
                .metadata
                .get_or_insert_with(Default::default)
                .signatures
                .push(MetadataSignature { signer: self.signer.serialized_identity().to_vec(), signature });
            // Fire and forget: the outcome arrives as Applied/Skipped from the state machine.
            let rx = self
                .raft
                .client_write_ff(BlockEntry(block.encode_to_vec()))
                .await
                .map_err(|e| format!("raft stopped: {e}"))?;
            drop(rx);
            tracing::debug!(number, txs = batch.len(), "proposed block");
            self.inflight.insert(number, Inflight { hash, items: batch });
            self.next = (number + 1, hash);
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
    pub(crate) async fn order_local(&self, envelope: Vec<u8>, tx_id: String) -> Result<Ordered, OrderError> {
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

    async fn forward(&self, leader: u64, envelope: Vec<u8>) -> Result<Ordered, OrderError> {
        let mut client = self.client(leader)?;
        let req = ForwardRequest { channel_id: self.channel_id.clone(), envelopes: vec![envelope] };
        let resp = client
            .forward(req)
            .await
            .map_err(|s| OrderError::Unavailable(format!("forward to {leader}: {}", s.message())))?
            .into_inner();
        match resp.status {
            200 => Ok(Ordered { block: resp.info.parse().unwrap_or_default() }),
            413 => Err(OrderError::TooLarge { size: 0, max: 0 }),
            503 => Err(OrderError::NotLeader { leader: (resp.leader_hint != 0).then_some(resp.leader_hint) }),
            s => Err(OrderError::Unavailable(format!("leader {leader} answered {s}: {}", resp.info))),
        }
    }

    async fn order_with_retry(&self, envelope: Vec<u8>, tx_id: String) -> Result<Ordered, OrderError> {
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
    fn order(&self, envelope: Vec<u8>, tx_id: String) -> BoxFuture<'_, Result<Ordered, OrderError>> {
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
