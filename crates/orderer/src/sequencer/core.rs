//! The sequencer's logic as a sans-IO state machine: inputs in ([`SequencerCore::handle`] with the current
//! time and a read-only view of the chain), [`Command`]s out ([`SequencerCore::poll_command`]). The shell
//! (`super::Sequencer`) owns the Raft handle, the signer, the clock and the callers' reply channels.
//!
//! After every `handle` the shell must drain `poll_command` and ask `poll_timeout` again (the cutter's
//! timer may have been armed or disarmed); when that instant passes it calls `handle(now, Input::Timeout)`.
//!
//! ```text
//!  Order ─► follower? ─► Reply NotLeader(hint)          Applied(n, h) ─► in-flight n with hash h: Reply Ok
//!           pending/in flight? ─► wait with it                          other in-flight ≤ n: lost
//!           in the chain? ─► Reply AlreadyOrdered(block) Skipped(n, h) ─► in-flight n with hash h: lost
//!           else ─► cutter ─► batches ─► (leader, ready, < 8 in flight) ─► Propose(block n = next)
//!  lost: leader ─► re-queue (and everything in flight after it), next = chain head
//!        follower ─► Reply NotLeader (the caller forwards to the new leader)
//!  early cut: leader, nothing in flight or ready, fewer than `eager_below` envelopes within the last
//!             EAGER_WINDOW batch timeouts ─► cut the pending batch now
//! ```
//!
//! **Early cuts at low load** (where ipechain differs from Fabric, whose blocks wait for the batch timeout):
//! waiting for the timer buys larger blocks, whose fixed costs (a Raft round, eight durable writes, the
//! signatures and commits of a block) are spread over more transactions: worth it under load, where the CPU is
//! the limit, and pure latency at low load, where a lone transaction would wait the whole timeout. So while
//! fewer than `eager_below` envelopes arrived within the last [`EAGER_WINDOW`] batch timeouts (the orderer's
//! [`crate::OrdererConfig::early_cut_below`], by default 320: 32 per timeout on average), the leader cuts the
//! pending batch as soon as no block is in flight (group commit: what arrives while a block is in consensus
//! goes into the next one). At or above that rate the cutter's rules alone apply, exactly as in Fabric. The
//! rate is averaged over several timeouts because load comes in waves: clients in a closed loop answer
//! commits, so a busy network can see few arrivals in one timeout and many in the next (measured with a
//! one-timeout window: ~10 early cuts per second under `bench interworking --apps 1000`, small blocks whose
//! fixed costs waiting was meant to spread). Only the leader cuts, and followers replicate
//! what it proposed, so when blocks are cut is not something orderers agree on.

use crate::chain::{OrderError, Ordered};
use crate::cutter::{BlockCutter, CutterConfig};
use bytes::Bytes;
use ledger_types::BlockExt;
use ledger_types::Hash32;
use ledger_types::block::BlockBuilder;
use ledger_types::proto::Block;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Blocks proposed but not yet applied, at most.
pub(crate) const MAX_INFLIGHT: usize = 8;

/// The window, in batch timeouts, over which arrivals are counted for early cuts.
pub(crate) const EAGER_WINDOW: u32 = 10;

/// Identifies a caller waiting for an answer (the shell maps it to a reply channel).
pub(crate) type RequestId = u64;

/// What the core may read about the local chain.
pub(crate) trait ChainView {
    /// Height and header hash of the last block (zero hash when empty).
    fn head(&self) -> (u64, Hash32);
    /// The block holding this tx id, if it is in the chain.
    fn stored_at(&self, tx_id: &str) -> Option<u64>;
}

/// Inputs of the core.
#[derive(Debug)]
pub(crate) enum Input {
    /// A caller asks to order an envelope.
    Order { id: RequestId, tx_id: String, envelope: Bytes },
    /// The state machine appended this block.
    Applied { number: u64, hash: Hash32 },
    /// The state machine skipped a committed block entry that did not extend the chain.
    Skipped { number: u64, hash: Hash32 },
    /// Raft's view of the role changed (or was re-reported).
    Role { is_leader: bool, term: u64, leader: Option<u64> },
    /// Leadership in `term` is confirmed and everything committed before it is applied.
    Ready { term: u64 },
    /// The cutter's timer (from `poll_timeout`) has passed.
    Timeout,
}

/// What the shell must do.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Answer a caller.
    Reply { id: RequestId, result: Result<Ordered, OrderError> },
    /// Sign this block's header hash into its metadata and propose it to Raft. `waited`: how long its oldest
    /// envelope waited since the core accepted it; `early`: cut at low load (module docs). Both for metrics.
    Propose { block: Block, waited: Duration, early: bool },
    /// Confirm leadership in `term` (openraft `ensure_linearizable`), then feed `Input::Ready`.
    ConfirmLeadership { term: u64 },
}

#[derive(Debug)]
struct Item {
    tx_id: String,
    envelope: Bytes,
    /// When the core accepted it.
    at: Instant,
}

#[derive(Debug)]
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

/// The sequencer state machine (see the module docs).
#[derive(Debug)]
pub(crate) struct SequencerCore {
    cutter: BlockCutter<Item>,
    ready: VecDeque<Vec<Item>>,
    inflight: BTreeMap<u64, Inflight>,
    waiters: HashMap<String, Vec<RequestId>>,
    role: Role,
    leader: Option<u64>,
    next: (u64, Hash32),
    commands: VecDeque<Command>,
    /// Early cuts below this many envelopes per [`EAGER_WINDOW`] batch timeouts (0: never, Fabric's behaviour).
    eager_below: usize,
    /// When the last (at most `eager_below`) envelopes were accepted, oldest first.
    arrivals: VecDeque<Instant>,
}

impl SequencerCore {
    /// A core cutting with `cutter`, early while fewer than `eager_below` envelopes arrive per
    /// [`EAGER_WINDOW`] batch timeouts (the shell passes the orderer's setting, by default
    /// [`crate::DEFAULT_EARLY_CUT_BELOW`]; 0 disables early cuts).
    pub(crate) fn new(cutter: CutterConfig, eager_below: usize) -> SequencerCore {
        SequencerCore {
            cutter: BlockCutter::new(cutter),
            ready: VecDeque::new(),
            inflight: BTreeMap::new(),
            waiters: HashMap::new(),
            role: Role::Follower,
            leader: None,
            next: (0, Hash32::ZERO),
            commands: VecDeque::new(),
            eager_below,
            arrivals: VecDeque::with_capacity(eager_below),
        }
    }

    /// When the shell must feed [`Input::Timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.cutter.poll_timeout()
    }

    /// The next command to perform.
    pub(crate) fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Processes one input.
    pub(crate) fn handle(&mut self, now: Instant, input: Input, view: &dyn ChainView) {
        match input {
            Input::Order { id, tx_id, envelope } => self.on_order(now, id, tx_id, envelope, view),
            Input::Applied { number, hash } => {
                let mut lost = Vec::new();
                while let Some(entry) = self.inflight.first_entry() {
                    if *entry.key() > number {
                        break;
                    }
                    let (n, inf) = entry.remove_entry();
                    if n == number && inf.hash == hash {
                        self.finish(inf.items, &Ok(Ordered { block: number }));
                    } else {
                        lost.push(inf);
                    }
                }
                if !lost.is_empty() {
                    self.lose(now, lost, view);
                }
            }
            Input::Skipped { number, hash } => {
                if self.inflight.get(&number).is_some_and(|i| i.hash == hash) {
                    let lost: Vec<Inflight> = self.inflight.remove(&number).into_iter().collect();
                    self.lose(now, lost, view);
                }
            }
            Input::Role { is_leader, term, leader } => {
                self.leader = leader;
                if is_leader {
                    match self.role {
                        Role::Leader { term: t } | Role::Confirming { term: t } if t == term => {}
                        _ => {
                            self.role = Role::Confirming { term };
                            self.commands.push_back(Command::ConfirmLeadership { term });
                        }
                    }
                } else if self.role != Role::Follower {
                    self.step_down();
                }
            }
            Input::Ready { term } => {
                if self.role == (Role::Confirming { term }) {
                    self.role = Role::Leader { term };
                    // Everything committed before this term is applied now: envelopes accepted while
                    // confirming, and blocks proposed in an earlier term of ours that never made it, are
                    // checked against the chain again, so none is ordered twice.
                    let mut items: Vec<Item> =
                        std::mem::take(&mut self.inflight).into_values().flat_map(|i| i.items).collect();
                    items.extend(self.ready.drain(..).flatten());
                    items.extend(self.cutter.cut().unwrap_or_default());
                    self.next = view.head();
                    self.requeue(now, items, view);
                }
            }
            Input::Timeout => {
                if let Some(batch) = self.cutter.handle_timeout(now) {
                    self.ready.push_back(batch);
                }
            }
        }
        self.propose_ready(now);
    }

    fn reply(&mut self, id: RequestId, result: Result<Ordered, OrderError>) {
        self.commands.push_back(Command::Reply { id, result });
    }

    fn finish(&mut self, items: Vec<Item>, result: &Result<Ordered, OrderError>) {
        for item in items {
            for id in self.waiters.remove(&item.tx_id).unwrap_or_default() {
                self.reply(id, result.clone());
            }
        }
    }

    fn step_down(&mut self) {
        self.role = Role::Follower;
        let mut dropped: Vec<Item> = self.cutter.cut().unwrap_or_default();
        dropped.extend(self.ready.drain(..).flatten());
        let err = Err(OrderError::NotLeader { leader: self.leader });
        self.finish(dropped, &err);
    }

    /// Puts envelopes back into the cutter (those meanwhile found in the chain are answered instead).
    fn requeue(&mut self, now: Instant, items: Vec<Item>, view: &dyn ChainView) {
        for item in items {
            if let Some(block) = view.stored_at(&item.tx_id) {
                self.finish(vec![item], &Ok(Ordered { block }));
                continue;
            }
            let size = item.envelope.len();
            // Cannot be refused: it was accepted under the same limits before.
            if let Ok(batches) = self.cutter.ordered(now, item, size) {
                self.ready.extend(batches);
            }
        }
    }

    /// In-flight blocks that will never be in the chain: a leader re-queues them and everything proposed
    /// after them (chained on them, so skipped too); a follower sends their callers elsewhere.
    fn lose(&mut self, now: Instant, lost: Vec<Inflight>, view: &dyn ChainView) {
        if matches!(self.role, Role::Leader { .. }) {
            let mut items: Vec<Item> = lost.into_iter().flat_map(|i| i.items).collect();
            items.extend(std::mem::take(&mut self.inflight).into_values().flat_map(|i| i.items));
            self.next = view.head();
            self.requeue(now, items, view);
        } else {
            let items = lost.into_iter().flat_map(|i| i.items).collect();
            self.finish(items, &Err(OrderError::NotLeader { leader: self.leader }));
        }
    }

    fn on_order(
        &mut self,
        now: Instant,
        id: RequestId,
        tx_id: String,
        envelope: Bytes,
        view: &dyn ChainView,
    ) {
        // A follower never holds new envelopes: the caller forwards to the leader (which deduplicates).
        if self.role == Role::Follower {
            self.reply(id, Err(OrderError::NotLeader { leader: self.leader }));
            return;
        }
        if let Some(ws) = self.waiters.get_mut(&tx_id) {
            ws.push(id);
            return;
        }
        if let Some(block) = view.stored_at(&tx_id) {
            self.reply(id, Err(OrderError::AlreadyOrdered { block }));
            return;
        }
        let size = envelope.len();
        match self.cutter.ordered(now, Item { tx_id: tx_id.clone(), envelope, at: now }, size) {
            Err(e) => self.reply(id, Err(OrderError::TooLarge { size: e.size, max: e.max })),
            Ok(batches) => {
                self.ready.extend(batches);
                self.waiters.insert(tx_id, vec![id]);
                if self.eager_below > 0 {
                    if self.arrivals.len() == self.eager_below {
                        self.arrivals.pop_front();
                    }
                    self.arrivals.push_back(now);
                }
            }
        }
    }

    /// Whether fewer than `eager_below` envelopes arrived within the last [`EAGER_WINDOW`] batch timeouts.
    fn quiet(&self, now: Instant) -> bool {
        self.eager_below > 0
            && (self.arrivals.len() < self.eager_below
                || self.arrivals.front().is_some_and(|t| {
                    now.saturating_duration_since(*t) >= self.cutter.config().batch_timeout * EAGER_WINDOW
                }))
    }

    fn propose_ready(&mut self, now: Instant) {
        if !matches!(self.role, Role::Leader { .. }) {
            return;
        }
        let mut early = false;
        if self.inflight.is_empty() && self.ready.is_empty() && self.quiet(now) {
            early = self.cutter.pending_len() > 0;
            self.ready.extend(self.cutter.cut());
        }
        while self.inflight.len() < MAX_INFLIGHT {
            let Some(batch) = self.ready.pop_front() else { break };
            let (number, prev) = self.next;
            let block =
                BlockBuilder::new(number, prev).envelopes(batch.iter().map(|i| i.envelope.clone())).build();
            let hash = block.header_hash();
            let waited = batch.iter().map(|i| now.saturating_duration_since(i.at)).max().unwrap_or_default();
            self.inflight.insert(number, Inflight { hash, items: batch });
            self.next = (number + 1, hash);
            self.commands.push_back(Command::Propose { block, waited, early: std::mem::take(&mut early) });
        }
    }
}

#[cfg(test)]
mod tests;
