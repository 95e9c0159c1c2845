//! The process's metric families, Grafana-ready: `ipechain_` prefix, units in the names.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Latency buckets in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Buckets for counts of transactions or envelopes (per block, per batch): 1 to 2,000.
const COUNT_BUCKETS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0];

fn count_histogram() -> Histogram {
    Histogram::new(COUNT_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn count_histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(count_histogram as fn() -> Histogram)
}

fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// A duration measurement for metrics only (never for decisions).
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring.
    #[allow(clippy::disallowed_methods)] // the shell's clock: a latency for a histogram, no decision made on it
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// Seconds since [`Stopwatch::start`].
    #[allow(clippy::disallowed_methods)] // as above
    pub fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// The time now, for health checks that remember since when something holds.
    #[allow(clippy::disallowed_methods)] // the shell's clock, passed to the pure health verdicts
    pub fn now() -> Instant {
        Instant::now()
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Labels: one peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

/// Labels: one peer and an outcome (`ok`, `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerOutcome {
    peer: String,
    outcome: String,
}

/// Labels: one peer and a validation code (Fabric's name, e.g. `VALID`, `MVCC_READ_CONFLICT`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerCode {
    peer: String,
    code: String,
}

/// Peers' metrics (label `peer`).
#[derive(Clone, Debug)]
pub struct PeerMetrics {
    height: Family<PeerLabel, Gauge>,
    delivered: Family<PeerLabel, Gauge>,
    commit: Histograms<PeerLabel>,
    codes: Family<PeerCode, Counter>,
    endorse: Histograms<PeerOutcome>,
    submit: Histograms<PeerOutcome>,
    broadcast_batch: Histograms<PeerLabel>,
    broadcast_in_flight: Family<PeerLabel, Gauge>,
    state_durable: Histograms<PeerLabel>,
}

impl Default for PeerMetrics {
    fn default() -> Self {
        PeerMetrics {
            height: Family::default(),
            delivered: Family::default(),
            commit: histograms(),
            codes: Family::default(),
            endorse: histograms(),
            submit: histograms(),
            broadcast_batch: count_histograms(),
            broadcast_in_flight: Family::default(),
            state_durable: histograms(),
        }
    }
}

impl PeerMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "ipechain_peer_block_height",
            "Blocks in the peer's ledger (the next block number), genesis included",
            self.height.clone(),
        );
        r.register(
            "ipechain_peer_delivered_block_height",
            "Number + 1 of the last block the peer received from an orderer (committed or being committed)",
            self.delivered.clone(),
        );
        r.register_with_unit(
            "ipechain_peer_commit_duration",
            "From a block received from the orderer to its state applied (the block before it finishing, validation, \
             block file, state)",
            Unit::Seconds,
            self.commit.clone(),
        );
        r.register(
            "ipechain_peer_validation_codes",
            "Transactions committed, by the peer's validation code",
            self.codes.clone(),
        );
        r.register_with_unit(
            "ipechain_gateway_endorse_duration",
            "Gateway Endorse on the peer (unary or GatewaySession), other organizations' endorsements included",
            Unit::Seconds,
            self.endorse.clone(),
        );
        r.register_with_unit(
            "ipechain_gateway_submit_duration",
            "Gateway Submit on the peer (unary or GatewaySession): until the ordering service committed the block",
            Unit::Seconds,
            self.submit.clone(),
        );
        r.register(
            "ipechain_peer_broadcast_batch_envelopes",
            "Envelopes per BroadcastBatch the peer sent to the ordering service (the submissions queued when a \
             batch left)",
            self.broadcast_batch.clone(),
        );
        r.register(
            "ipechain_peer_broadcast_batches_in_flight",
            "BroadcastBatch calls of the peer waiting for the ordering service (each until its blocks are \
             committed by Raft)",
            self.broadcast_in_flight.clone(),
        );
        r.register_with_unit(
            "ipechain_peer_state_durable_commit_duration",
            "The world state's durable commit (every 8th block, beside the next blocks): the pages of the \
             commits since the last one written and synced",
            Unit::Seconds,
            self.state_durable.clone(),
        );
    }

    /// The metrics of one peer.
    pub fn for_peer(&self, peer: &str) -> PeerHandle {
        let label = PeerLabel { peer: peer.to_owned() };
        let outcome = |o: &str| PeerOutcome { peer: peer.to_owned(), outcome: o.to_owned() };
        PeerHandle {
            height: self.height.get_or_create_owned(&label),
            delivered: self.delivered.get_or_create_owned(&label),
            commit: self.commit.get_or_create_owned(&label),
            endorse_ok: self.endorse.get_or_create_owned(&outcome("ok")),
            endorse_err: self.endorse.get_or_create_owned(&outcome("error")),
            submit_ok: self.submit.get_or_create_owned(&outcome("ok")),
            submit_err: self.submit.get_or_create_owned(&outcome("error")),
            broadcast_batch: self.broadcast_batch.get_or_create_owned(&label),
            broadcast_in_flight: self.broadcast_in_flight.get_or_create_owned(&label),
            state_durable: self.state_durable.get_or_create_owned(&label),
            codes: self.codes.clone(),
            peer: peer.to_owned(),
        }
    }
}

/// One peer's metrics (cheap to clone; `Default`: counted into nothing).
#[derive(Clone, Debug)]
pub struct PeerHandle {
    peer: String,
    height: Gauge,
    delivered: Gauge,
    commit: Histogram,
    codes: Family<PeerCode, Counter>,
    endorse_ok: Histogram,
    endorse_err: Histogram,
    submit_ok: Histogram,
    submit_err: Histogram,
    broadcast_batch: Histogram,
    broadcast_in_flight: Gauge,
    state_durable: Histogram,
}

impl Default for PeerHandle {
    fn default() -> Self {
        PeerMetrics::default().for_peer("")
    }
}

impl PeerHandle {
    /// The ledger's height now.
    pub fn set_height(&self, height: u64) {
        self.height.set(gauge_value(height));
    }

    /// The ledger's height as last set.
    pub fn height(&self) -> u64 {
        u64::try_from(self.height.get()).unwrap_or(0)
    }

    /// A block `number` arrived from an orderer.
    pub fn delivered(&self, number: u64) {
        self.delivered.set(gauge_value(number.saturating_add(1)));
    }

    /// Number + 1 of the last block received.
    pub fn delivered_height(&self) -> u64 {
        u64::try_from(self.delivered.get()).unwrap_or(0)
    }

    /// A block committed: its latency from receipt and its transactions' codes.
    pub fn committed<'a>(&self, seconds: f64, codes: impl IntoIterator<Item = &'a str>) {
        self.commit.observe(seconds);
        for code in codes {
            self.codes.get_or_create(&PeerCode { peer: self.peer.clone(), code: code.to_owned() }).inc();
        }
    }

    /// A gateway Endorse answered.
    pub fn endorsed(&self, seconds: f64, ok: bool) {
        if ok { &self.endorse_ok } else { &self.endorse_err }.observe(seconds);
    }

    /// A gateway Submit answered.
    pub fn submitted(&self, seconds: f64, ok: bool) {
        if ok { &self.submit_ok } else { &self.submit_err }.observe(seconds);
    }

    /// A BroadcastBatch of `envelopes` left for the ordering service.
    pub fn broadcast_sent(&self, envelopes: usize) {
        self.broadcast_batch.observe(envelopes as f64);
        self.broadcast_in_flight.inc();
    }

    /// A BroadcastBatch was answered (or failed on every orderer).
    pub fn broadcast_done(&self) {
        self.broadcast_in_flight.dec();
    }

    /// The world state was made durable in `seconds`.
    pub fn state_durable_commit(&self, seconds: f64) {
        self.state_durable.observe(seconds);
    }
}

/// Labels: one orderer (its node name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrdererLabel {
    /// Node name, e.g. `orderer1.example.com`.
    pub orderer: String,
}

/// Orderers' metrics (label `orderer`): Raft and chain gauges set from openraft's metrics watch, and the
/// sequencer's ([`OrdererMetrics::for_orderer`]): where an envelope waits before and in consensus.
#[derive(Clone, Debug)]
pub struct OrdererMetrics {
    /// `ipechain_orderer_raft_term`.
    pub term: Family<OrdererLabel, Gauge>,
    /// `ipechain_orderer_raft_leader_id`: the known leader's Raft id, -1 when none is known.
    pub leader: Family<OrdererLabel, Gauge>,
    /// `ipechain_orderer_raft_is_leader`: 1 on the leader.
    pub is_leader: Family<OrdererLabel, Gauge>,
    /// `ipechain_orderer_raft_commit_index`: the last applied (committed) Raft log index.
    pub commit_index: Family<OrdererLabel, Gauge>,
    /// `ipechain_orderer_block_height`.
    pub height: Family<OrdererLabel, Gauge>,
    /// `ipechain_orderer_raft_leader_changes_total`: leaders this orderer has learned of (Fabric's
    /// `consensus_etcdraft_leader_changes`); the first leader after start counts.
    pub leader_changes: Family<OrdererLabel, Counter>,
    batch_wait: Histograms<OrdererLabel>,
    consensus: Histograms<OrdererLabel>,
    block_txs: Histograms<OrdererLabel>,
    in_flight: Family<OrdererLabel, Gauge>,
    early_cuts: Family<OrdererLabel, Counter>,
}

impl Default for OrdererMetrics {
    fn default() -> Self {
        OrdererMetrics {
            term: Family::default(),
            leader: Family::default(),
            is_leader: Family::default(),
            commit_index: Family::default(),
            height: Family::default(),
            leader_changes: Family::default(),
            batch_wait: histograms(),
            consensus: histograms(),
            block_txs: count_histograms(),
            in_flight: Family::default(),
            early_cuts: Family::default(),
        }
    }
}

/// One orderer's sequencer metrics (cheap to clone; `Default`: counted into nothing). Only a Raft leader
/// proposes blocks, so only the leader's series move.
#[derive(Clone, Debug)]
pub struct SequencerMetrics {
    batch_wait: Histogram,
    consensus: Histogram,
    block_txs: Histogram,
    in_flight: Gauge,
    early_cuts: Counter,
}

impl Default for SequencerMetrics {
    fn default() -> Self {
        OrdererMetrics::default().for_orderer("")
    }
}

impl SequencerMetrics {
    /// A block of `txs` transactions was proposed to Raft; its oldest envelope had waited `waited_seconds`
    /// since the orderer accepted it; `in_flight` blocks are now proposed and not yet applied.
    /// `early`: cut at low load as soon as nothing was in flight, not by the cutter's rules.
    pub fn proposed(&self, txs: usize, waited_seconds: f64, in_flight: usize, early: bool) {
        if early {
            self.early_cuts.inc();
        }
        self.block_txs.observe(txs as f64);
        self.batch_wait.observe(waited_seconds);
        self.in_flight.set(gauge_value(in_flight as u64));
    }

    /// Blocks cut early so far (see [`SequencerMetrics::proposed`]).
    pub fn early_cuts(&self) -> u64 {
        self.early_cuts.get()
    }

    /// A block proposed `seconds` ago was applied (or lost); `in_flight` blocks remain.
    pub fn applied(&self, seconds: Option<f64>, in_flight: usize) {
        if let Some(s) = seconds {
            self.consensus.observe(s);
        }
        self.in_flight.set(gauge_value(in_flight as u64));
    }
}

impl OrdererMetrics {
    fn register(&self, r: &mut Registry) {
        r.register("ipechain_orderer_raft_term", "The orderer's current Raft term", self.term.clone());
        r.register(
            "ipechain_orderer_raft_leader_id",
            "Raft id of the leader this orderer knows, -1 when it knows none",
            self.leader.clone(),
        );
        r.register(
            "ipechain_orderer_raft_is_leader",
            "1 when this orderer is the Raft leader",
            self.is_leader.clone(),
        );
        r.register(
            "ipechain_orderer_raft_commit_index",
            "Index of the last Raft log entry this orderer applied (each entry is one block)",
            self.commit_index.clone(),
        );
        r.register(
            "ipechain_orderer_block_height",
            "Blocks in the orderer's chain (the next block number), genesis included",
            self.height.clone(),
        );
        r.register(
            "ipechain_orderer_raft_leader_changes",
            "Leaders this orderer has learned of since it started, the first included (more than one: \
             elections, and ordering stalled during each)",
            self.leader_changes.clone(),
        );
        r.register_with_unit(
            "ipechain_orderer_batch_wait_duration",
            "On the leader, per block proposed: how long its oldest envelope waited since the orderer accepted it \
             (the block cutter's timeout, and blocks cut but not proposed while 8 are in consensus)",
            Unit::Seconds,
            self.batch_wait.clone(),
        );
        r.register_with_unit(
            "ipechain_orderer_consensus_duration",
            "On the leader, per block: from its proposal to Raft until its entry is applied to the chain \
             (replication, the log writes of a majority, the block store)",
            Unit::Seconds,
            self.consensus.clone(),
        );
        r.register(
            "ipechain_orderer_block_transactions",
            "On the leader, transactions per block proposed",
            self.block_txs.clone(),
        );
        r.register(
            "ipechain_orderer_early_cuts",
            "On the leader, blocks cut at low load as soon as none was in flight, without waiting for the batch \
             timeout (fewer than 320 envelopes within the last ten timeouts: docs/ordering.md)",
            self.early_cuts.clone(),
        );
        r.register(
            "ipechain_orderer_blocks_in_flight",
            "On the leader, blocks proposed to Raft and not yet applied (at most 8)",
            self.in_flight.clone(),
        );
    }

    /// The sequencer metrics of one orderer.
    pub fn for_orderer(&self, orderer: &str) -> SequencerMetrics {
        let l = OrdererLabel { orderer: orderer.to_owned() };
        SequencerMetrics {
            batch_wait: self.batch_wait.get_or_create_owned(&l),
            consensus: self.consensus.get_or_create_owned(&l),
            block_txs: self.block_txs.get_or_create_owned(&l),
            in_flight: self.in_flight.get_or_create_owned(&l),
            early_cuts: self.early_cuts.get_or_create_owned(&l),
        }
    }

    /// One orderer learned of a leader other than the last it knew (the first one included).
    pub fn leader_changed(&self, orderer: &str) {
        self.leader_changes.get_or_create(&OrdererLabel { orderer: orderer.to_owned() }).inc();
    }

    /// Sets one orderer's gauges.
    pub fn set(
        &self,
        orderer: &str,
        term: u64,
        leader: Option<u64>,
        me: u64,
        commit_index: u64,
        height: u64,
    ) {
        let l = OrdererLabel { orderer: orderer.to_owned() };
        self.term.get_or_create(&l).set(gauge_value(term));
        self.leader.get_or_create(&l).set(leader.map_or(-1, gauge_value));
        self.is_leader.get_or_create(&l).set(i64::from(leader == Some(me)));
        self.commit_index.get_or_create(&l).set(gauge_value(commit_index));
        self.height.get_or_create(&l).set(gauge_value(height));
    }
}

/// Labels of a CSE request: operation (`create`, `retrieve`, ...) and response status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpRsc {
    op: String,
    rsc: String,
}

/// Labels: an operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: String,
}

/// The embedded CSE's metrics.
#[derive(Clone, Debug)]
pub struct CseMetrics {
    requests: Family<OpRsc, Counter>,
    latency: Histograms<OpLabel>,
}

impl Default for CseMetrics {
    fn default() -> Self {
        CseMetrics { requests: Family::default(), latency: histograms() }
    }
}

impl CseMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "ipechain_cse_requests",
            "oneM2M requests the embedded CSE answered, by operation and response status code (RSC)",
            self.requests.clone(),
        );
        r.register_with_unit(
            "ipechain_cse_request_duration",
            "oneM2M request handling in the embedded CSE, by operation (write-ahead log sync included)",
            Unit::Seconds,
            self.latency.clone(),
        );
    }

    /// A request answered.
    pub fn request(&self, op: &str, rsc: u16, seconds: f64) {
        self.requests.get_or_create(&OpRsc { op: op.to_owned(), rsc: rsc.to_string() }).inc();
        self.latency.get_or_create(&OpLabel { op: op.to_owned() }).observe(seconds);
    }
}

/// Metric handles compare equal: they are no part of a configuration's meaning (a config holding one keeps
/// its `PartialEq`).
impl PartialEq for CseMetrics {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CseMetrics {}

/// Labels: a status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

/// Labels: one side of the bridge (`lwm2m`, `onem2m`) and its ledger peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SidePeer {
    side: String,
    peer: String,
}

/// The bridge gateway's metrics.
#[derive(Clone, Debug)]
pub struct BridgeMetrics {
    requests: Family<Status, Counter>,
    latency: Histograms<Status>,
    chain_lag: Gauge,
    chain_height: Gauge,
    in_flight: Gauge,
    peer_up: Family<SidePeer, Gauge>,
    events_up: Gauge,
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        BridgeMetrics {
            requests: Family::default(),
            latency: histograms(),
            chain_lag: Gauge::default(),
            chain_height: Gauge::default(),
            in_flight: Gauge::default(),
            peer_up: Family::default(),
            events_up: Gauge::default(),
        }
    }
}

impl BridgeMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "ipechain_interworking_requests",
            "Interworking requests (oneM2M to LwM2M device operations) the bridge answered, by status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "ipechain_interworking_request_duration",
            "From the request event on the chain to its answer submitted, by status",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register(
            "ipechain_bridge_chain_lag_blocks",
            "Blocks the bridge trails the chain's head: from the first block with an IPE event it has not \
             handled to the head, both counted; 0 when it has handled every IPE event up to the head",
            self.chain_lag.clone(),
        );
        r.register(
            "ipechain_bridge_chain_height_blocks",
            "The chain's height (newest block + 1) as the bridge's LwM2M-side ledger peer reports it",
            self.chain_height.clone(),
        );
        r.register(
            "ipechain_bridge_events_in_flight",
            "IPE events the bridge has received and not finished handling",
            self.in_flight.clone(),
        );
        r.register(
            "ipechain_bridge_ledger_peer_up",
            "1 while the bridge's filtered-block stream from a ledger peer is open, else 0, by side and peer",
            self.peer_up.clone(),
        );
        r.register(
            "ipechain_bridge_event_stream_up",
            "1 while the bridge's IPE event stream is open, else 0",
            self.events_up.clone(),
        );
    }

    /// A request answered with `status` after `seconds`.
    pub fn answered(&self, status: &str, seconds: f64) {
        let l = Status { status: status.to_owned() };
        self.requests.get_or_create(&l).inc();
        self.latency.get_or_create(&l).observe(seconds);
    }

    /// The bridge's lag behind the chain's head, in blocks.
    pub fn set_chain_lag(&self, blocks: u64) {
        self.chain_lag.set(gauge_value(blocks));
    }

    /// The chain's height as the bridge's LwM2M-side peer reports it.
    pub fn set_chain_height(&self, height: u64) {
        self.chain_height.set(gauge_value(height));
    }

    /// Events received and not yet handled.
    pub fn set_events_in_flight(&self, n: u64) {
        self.in_flight.set(gauge_value(n));
    }

    /// Whether the stream from the ledger peer `peer` of `side` is open.
    pub fn set_peer_up(&self, side: &str, peer: &str, up: bool) {
        let l = SidePeer { side: side.to_owned(), peer: peer.to_owned() };
        self.peer_up.get_or_create(&l).set(i64::from(up));
    }

    /// Whether the IPE event stream is open.
    pub fn set_event_stream_up(&self, up: bool) {
        self.events_up.set(i64::from(up));
    }
}

/// A counter or gauge read at scrape time from a value kept elsewhere (an atomic a library already has).
pub type Read = Box<dyn Fn() -> u64 + Send + Sync>;

struct ReadCollector {
    name: &'static str,
    help: &'static str,
    counter: bool,
    /// The label's name, with one value per sample; `None`: one unlabelled sample.
    label: Option<&'static str>,
    samples: Vec<(&'static str, Read)>,
}

impl std::fmt::Debug for ReadCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCollector").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Collector for ReadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let kind = if self.counter { MetricType::Counter } else { MetricType::Gauge };
        let mut family = encoder.encode_descriptor(self.name, self.help, None, kind)?;
        match self.label {
            None => {
                let v = self.samples.first().map_or(0, |(_, read)| read());
                encode_read(self.counter, v, family)?;
            }
            Some(label) => {
                for (value, read) in &self.samples {
                    let labels = [(label, *value)];
                    encode_read(self.counter, read(), family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_read(counter: bool, v: u64, sample: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
    if counter { ConstCounter::new(v).encode(sample) } else { ConstGauge::new(gauge_value(v)).encode(sample) }
}

/// The process's metrics: one registry, one set of every family.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    /// Peers (label `peer`).
    pub peer: PeerMetrics,
    /// Orderers (label `orderer`).
    pub orderer: OrdererMetrics,
    /// The embedded CSE.
    pub cse: CseMetrics,
    /// The bridge gateway.
    pub bridge: BridgeMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every family registered (a family without samples shows only its `# HELP`/`# TYPE`).
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Arc::new(RwLock::new(Registry::default())),
            peer: PeerMetrics::default(),
            orderer: OrdererMetrics::default(),
            cse: CseMetrics::default(),
            bridge: BridgeMetrics::default(),
        };
        m.peer.register(&mut r);
        m.orderer.register(&mut r);
        m.cse.register(&mut r);
        m.bridge.register(&mut r);
        Metrics { registry: Arc::new(RwLock::new(r)), ..m }
    }

    /// Adds a counter read at scrape time (`name` without `_total`; the exposition appends it).
    pub fn counter_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.add(ReadCollector {
            name,
            help,
            counter: true,
            label: None,
            samples: vec![("", Box::new(read))],
        });
    }

    /// Adds a gauge read at scrape time.
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.add(ReadCollector {
            name,
            help,
            counter: false,
            label: None,
            samples: vec![("", Box::new(read))],
        });
    }

    /// Adds a counter of several samples read at scrape time, one per value of `label`.
    pub fn counters_fn(
        &self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        samples: Vec<(&'static str, Read)>,
    ) {
        self.add(ReadCollector { name, help, counter: true, label: Some(label), samples });
    }

    fn add(&self, c: ReadCollector) {
        let mut r = self.registry.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        r.register_collector(Box::new(c));
    }

    /// The exposition: OpenMetrics text (`# EOF`-terminated), which Prometheus also reads as its text format.
    pub fn encode(&self) -> Result<String, crate::OpsError> {
        let r = self.registry.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r)?;
        Ok(out)
    }
}

/// Whole seconds of a duration, for messages.
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_secs()
}
