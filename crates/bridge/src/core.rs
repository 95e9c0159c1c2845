//! The bridge's flows as sans-IO state machines: the downlink flow and the event watermark here
//! ([`DownlinkCore`]), the `cmd` flow in [`cmd`] ([`cmd::CmdCore`]), the uplink flow in [`uplink`]
//! ([`uplink::UplinkCore`]), the oneM2M side of events in [`onem2m`] ([`onem2m::Onem2mCore`]). The shell's one
//! loop (in [`crate::events`]) owns the four.
//!
//! The downlink flow and the event watermark: inputs in
//! ([`DownlinkCore::handle`] with the current time), [`Command`]s out ([`DownlinkCore::poll_command`]). No
//! tokio, no clock, no file: the shell owns the ledger connection, the journal file, the LwM2M server and the
//! clock, performs the commands and feeds their results back as inputs.
//!
//! After every `handle` the shell drains `poll_command` and asks `poll_timeout` again; when that time passes
//! it calls `handle(now, Input::Timer)`.
//!
//! ```text
//!  Event(block, tx) ─► watermark seq ─► request for me? ─ no ─► HandleElsewhere(seq) … EventHandled(seq)
//!        │ yes: in flight already (a duplicate)? ─► the flight also closes this seq
//!        ▼
//!  safe op (read, discover, observe, cancel-observe) and not interrupted ─────────────────┐
//!  else QueryRequest ─► RequestStatus: answered / unknown ─► (JournalDone) ─► close        │
//!                       failed ─► retry after QUERY_RETRY                                 │
//!                       pending ─► interrupted and unsafe ─► SubmitAnswer "outcome unknown" │
//!                                  unsafe ─► Journal(Op, durable) ─► JournalDurable ─┐     │
//!                                                         failed ─► SubmitAnswer error   ▼     ▼
//!                                              expired? ─► SubmitAnswer timeout ◄── PerformDeviceOp
//!                                              DeviceResult: answer ─► SubmitAnswer; offline ─► (unsafe:
//!                                              Journal(Done), not sent) wait for DeviceRegistered (then
//!                                              Journal(Op) again) or the expiry
//!  Submitted: ok / refused (409 = answered already) ─► (unsafe: Journal(Done)) ─► close
//!             failed ─► retry after SUBMIT_RETRY
//!  close: every event seq of the request handled ─► watermark moves ─► SaveCheckpoint
//! ```
//!
//! What this guarantees across a crash at any command boundary (the tests below crash at every one): the shell
//! restarts the core from the saved checkpoint and the journal's open operations ([`DownlinkCore::new`]) and
//! replays the events after the checkpoint; an operation that is not safe to repeat is performed only after
//! its `Op` entry is durable, and a request with an open `Op` entry is never performed again: it is answered
//! `error` "outcome unknown" if still pending. Every request gets exactly one answer on the ledger (a second
//! `submit_response` is 409).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use ipe::IpeCall;
use ipe::events::RequestEvent;
use ipe::model::{Address, GatewayRef, Operation, ResponseArgs};
use ledger_client::Checkpoint;
use lwm2m_server::{OpError, OpResponse};

use crate::journal::Entry;

pub mod cmd;
pub mod onem2m;
pub mod uplink;

/// Wall-clock time as milliseconds since the Unix epoch, always passed in by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// From Unix seconds (the contract's timestamps).
    pub fn from_secs(s: i64) -> UnixMillis {
        UnixMillis(s.saturating_mul(1000))
    }

    /// `self` plus `ms` milliseconds.
    pub fn plus_ms(self, ms: i64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(ms))
    }
}

/// The sequence number of an event in the watermark ([`Tracker`]).
pub type EventSeq = u64;

/// How long a failed `get_request` waits before it is asked again (the ledger is unreachable or slow).
pub const QUERY_RETRY_MS: i64 = 500;
/// How long a failed answer submission waits before it is submitted again (after the SDK's own retries).
pub const SUBMIT_RETRY_MS: i64 = 500;
/// The longest wait between two attempts of one query or submission: the first retry waits
/// [`QUERY_RETRY_MS`] or [`SUBMIT_RETRY_MS`], each further one twice as long, up to this. A ledger that stays
/// unreachable is then asked about each open request every 8 s, not twice a second.
pub const RETRY_CAP_MS: i64 = 8_000;

/// The wait before the next attempt of something that has failed `failures` times (at least once): `base`,
/// doubled for each failure after the first, at most [`RETRY_CAP_MS`].
pub fn retry_after_ms(base: i64, failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    base.saturating_mul(1i64 << doublings).min(RETRY_CAP_MS)
}
/// How many answered request ids the core remembers, so a duplicate event for them is not acted on again.
const REMEMBERED: usize = 4096;

/// True for the operations the gateway may simply perform again after a restart.
pub fn safe_to_repeat(op: Operation) -> bool {
    matches!(op, Operation::Read | Operation::Discover | Operation::Observe | Operation::CancelObserve)
}

/// What an IPE contract event means for this core.
#[derive(Debug, Clone, PartialEq)]
pub enum EventWork {
    /// A `request` event (acted on if it is addressed to this gateway).
    Request(Box<RequestEvent>),
    /// Handled by the shell (the oneM2M side, device answers): the core emits
    /// [`Command::HandleElsewhere`] and waits for [`Input::EventHandled`].
    Elsewhere,
    /// Nothing to do (another gateway's, unreadable, not an IPE event): handled at once.
    Nothing,
}

/// A request's status on the ledger (`get_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// Still waiting for its answer.
    Pending,
    /// Answered (ok, error or timeout).
    Answered,
    /// The ledger does not know it (404).
    Unknown,
}

/// Why a ledger call produced no result (transport, timeouts, the SDK's retries exhausted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger unavailable: {0}")]
pub struct LedgerFailure(pub String);

/// Why a journal append was not made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalFailure(pub String);

/// The outcome of submitting an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitResult {
    /// Committed.
    Committed,
    /// The contract refused it with this status (409: answered already, by an earlier attempt or a replay).
    Refused(i32),
    /// Not submitted (transport, the SDK's retries exhausted): submitted again later.
    Failed(LedgerFailure),
}

/// Inputs of the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The event stream delivered the event of `tx_id` in `block`.
    Event {
        /// Block.
        block: u64,
        /// Transaction.
        tx_id: String,
        /// What it asks of the core.
        work: EventWork,
    },
    /// The shell finished an event it was given with [`Command::HandleElsewhere`].
    EventHandled {
        /// The event.
        seq: EventSeq,
    },
    /// The result of [`Command::QueryRequest`].
    RequestStatus {
        /// Request.
        request_id: String,
        /// Its status, or why the ledger did not say.
        result: Result<RequestStatus, LedgerFailure>,
    },
    /// The result of a durable [`Command::Journal`].
    JournalDurable {
        /// Request.
        request_id: String,
        /// Durable, or not.
        result: Result<(), JournalFailure>,
    },
    /// The result of [`Command::PerformDeviceOp`].
    DeviceResult {
        /// Request.
        request_id: String,
        /// The device's answer, or why there is none.
        result: Result<OpResponse, OpError>,
    },
    /// A device (re-)registered: requests waiting for it to come online are performed now.
    DeviceRegistered {
        /// Its endpoint name.
        endpoint: String,
    },
    /// The result of [`Command::SubmitAnswer`].
    Submitted {
        /// Request.
        request_id: String,
        /// Outcome.
        result: SubmitResult,
    },
    /// The time of [`DownlinkCore::poll_timeout`] has passed.
    Timer,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask the ledger for the request's status (`get_request`), feed [`Input::RequestStatus`].
    QueryRequest {
        /// The query.
        call: IpeCall,
    },
    /// Append to the journal; when `durable`, wait for the `fdatasync` and feed [`Input::JournalDurable`]
    /// (a non-durable append has no result).
    Journal {
        /// The entry.
        entry: Entry,
        /// Wait until it is on disk.
        durable: bool,
    },
    /// Perform the request's operation on the device, giving up at `deadline`; feed [`Input::DeviceResult`]
    /// (`OpError::UnknownEndpoint` when the device is not registered).
    PerformDeviceOp {
        /// The request.
        request: Box<RequestEvent>,
        /// The request's expiry.
        deadline: UnixMillis,
    },
    /// Submit the answer (`submit_response`), feed [`Input::Submitted`].
    SubmitAnswer {
        /// The call.
        call: IpeCall,
        /// When the request's event was first seen (for latency metrics).
        seen_at: UnixMillis,
    },
    /// Handle this event outside the core; feed [`Input::EventHandled`] with `seq` when done.
    HandleElsewhere {
        /// The event's sequence number (the event just fed with [`Input::Event`]).
        seq: EventSeq,
    },
    /// Persist the checkpoint (the watermark moved); later ones supersede earlier ones. Every journal append
    /// commanded before it must be durable before the checkpoint is: a `Done` lost in a power cut while the
    /// checkpoint moved past its event would leave the `Op` entry open for good (its event is never replayed).
    SaveCheckpoint(Checkpoint),
}

/// Low-watermark tracking of concurrently handled events.
#[derive(Debug, Default)]
pub struct Tracker {
    first: u64,
    pending: VecDeque<(u64, String, bool)>,
    checkpoint: Checkpoint,
    dirty: bool,
}

impl Tracker {
    /// Starts after `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> Self {
        Tracker { checkpoint, ..Tracker::default() }
    }

    /// Registers the next event; returns its sequence number.
    pub fn push(&mut self, block: u64, tx_id: &str) -> EventSeq {
        self.pending.push_back((block, tx_id.to_owned(), false));
        self.first + self.pending.len() as u64 - 1
    }

    /// Marks event `seq` handled and advances the checkpoint over the handled prefix.
    pub fn done(&mut self, seq: EventSeq) {
        let Some(i) = seq.checked_sub(self.first).and_then(|i| usize::try_from(i).ok()) else { return };
        if let Some(e) = self.pending.get_mut(i) {
            e.2 = true;
        }
        while self.pending.front().is_some_and(|e| e.2) {
            if let Some((block, tx, _)) = self.pending.pop_front() {
                self.checkpoint.handled(block, &tx);
                self.first += 1;
                self.dirty = true;
            }
        }
    }

    /// The checkpoint, if it moved since the last call.
    pub fn take_dirty(&mut self) -> Option<Checkpoint> {
        if self.dirty {
            self.dirty = false;
            Some(self.checkpoint.clone())
        } else {
            None
        }
    }

    /// Where the event stream stands: after the last event registered (the checkpoint when every event
    /// registered is handled).
    pub fn received(&self) -> Checkpoint {
        match self.pending.back() {
            Some((block, tx, _)) => Checkpoint { block: *block, tx_id: Some(tx.clone()) },
            None => self.checkpoint.clone(),
        }
    }

    /// The block of the oldest event registered and not handled yet.
    pub fn oldest_pending_block(&self) -> Option<u64> {
        self.pending.iter().find(|e| !e.2).map(|e| e.0)
    }

    /// Events registered and not yet handled.
    pub fn in_flight(&self) -> usize {
        self.pending.iter().filter(|e| !e.2).count()
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `QueryRequest` sent.
    Checking,
    /// `get_request` failed; asked again at the time.
    CheckAgainAt(UnixMillis),
    /// `Journal(Op)` sent, waiting until it is durable.
    Journaling,
    /// `PerformDeviceOp` sent.
    Performing,
    /// The device is not registered: performed when it registers, answered `timeout` at its expiry.
    Offline,
    /// `SubmitAnswer` sent.
    Submitting,
    /// The submission failed; submitted again at the time.
    SubmitAgainAt(UnixMillis),
}

#[derive(Debug)]
struct Flight {
    request: Box<RequestEvent>,
    /// The events (a request event delivered twice) this request closes.
    seqs: Vec<EventSeq>,
    step: Step,
    /// Its `Op` entry was open in the journal at start.
    interrupted: bool,
    /// It has (or may have) an `Op` entry in the journal: closed with `Done`.
    journaled: bool,
    answer: Option<ResponseArgs>,
    seen_at: UnixMillis,
    /// The device's registration count when the operation was last sent (see [`DownlinkCore::registrations`]).
    sent_at_registration: u64,
    /// Failed ledger queries and submissions so far (they space the retries: [`retry_after_ms`]).
    failures: u32,
}

impl Flight {
    fn unsafe_op(&self) -> bool {
        !safe_to_repeat(self.request.downlink.op)
    }

    /// When this flight wants the timer: a retry, or the expiry of a request waiting for its device.
    fn wake_at(&self) -> Option<UnixMillis> {
        match self.step {
            Step::CheckAgainAt(t) | Step::SubmitAgainAt(t) => Some(t),
            Step::Offline => Some(UnixMillis::from_secs(self.request.expires_at)),
            _ => None,
        }
    }
}

/// A core's index of the requests waiting for the timer, by when: the next timeout without a scan of every
/// request in flight (the shell asks for it after each input, and thousands of requests may be in flight).
pub(crate) type Wakes = BTreeSet<(UnixMillis, String)>;

/// Takes the ids whose wake-up is due at `now` out of `wakes`, earliest first.
pub(crate) fn take_due(wakes: &mut Wakes, now: UnixMillis) -> Vec<String> {
    let mut due = Vec::new();
    while wakes.first().is_some_and(|(t, _)| *t <= now) {
        if let Some((_, id)) = wakes.pop_first() {
            due.push(id);
        }
    }
    due
}

/// Forgets `f`'s wake-up (before its step changes).
fn unwake(wakes: &mut Wakes, id: &str, f: &Flight) {
    if let Some(t) = f.wake_at() {
        wakes.remove(&(t, id.to_owned()));
    }
}

/// The downlink flow and the event watermark (see the module docs).
#[derive(Debug)]
pub struct DownlinkCore {
    me: GatewayRef,
    tracker: Tracker,
    /// Requests whose `Op` entry was open in the journal at start.
    interrupted: HashSet<String>,
    flights: HashMap<String, Flight>,
    /// The flights waiting for the timer ([`Flight::wake_at`]).
    wakes: Wakes,
    /// Requests answered in this life (the last [`REMEMBERED`]): a duplicate event for them is only counted.
    answered: HashSet<String>,
    answered_order: VecDeque<String>,
    /// Registrations seen per endpoint: an operation that found its device offline is sent again at once if
    /// the device registered after it was sent (the registration may reach the core before the op's result).
    registrations: HashMap<String, u64>,
    commands: VecDeque<Command>,
}

impl DownlinkCore {
    /// A core that resumes after `checkpoint`, with the journal's open operations (`journal::Open::ops`).
    pub fn new(
        me: GatewayRef,
        checkpoint: Checkpoint,
        interrupted: impl IntoIterator<Item = String>,
    ) -> Self {
        DownlinkCore {
            me,
            tracker: Tracker::new(checkpoint),
            interrupted: interrupted.into_iter().collect(),
            flights: HashMap::new(),
            wakes: BTreeSet::new(),
            answered: HashSet::new(),
            answered_order: VecDeque::new(),
            registrations: HashMap::new(),
            commands: VecDeque::new(),
        }
    }

    /// The next command to perform.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When the shell must feed [`Input::Timer`]: the earliest retry, or the expiry of a request waiting for
    /// its device.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.wakes.first().map(|(t, _)| *t)
    }

    /// [`DownlinkCore::poll_timeout`] the slow way, from every flight (tests check the index against it).
    #[cfg(test)]
    fn scanned_timeout(&self) -> Option<UnixMillis> {
        self.flights.values().filter_map(Flight::wake_at).min()
    }

    /// The watermark (for metrics: where the stream stands, what is in flight).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Requests being handled.
    pub fn requests_in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Processes one input.
    pub fn handle(&mut self, now: UnixMillis, input: Input) {
        match input {
            Input::Event { block, tx_id, work } => self.on_event(now, block, &tx_id, work),
            Input::EventHandled { seq } => self.tracker.done(seq),
            Input::RequestStatus { request_id, result } => self.on_status(now, &request_id, result),
            Input::JournalDurable { request_id, result } => self.on_journaled(now, &request_id, result),
            Input::DeviceResult { request_id, result } => self.on_device(now, &request_id, result),
            Input::DeviceRegistered { endpoint } => {
                *self.registrations.entry(endpoint.clone()).or_default() += 1;
                let waiting: Vec<String> = self
                    .flights
                    .iter()
                    .filter(|(_, f)| f.step == Step::Offline && f.request.endpoint == endpoint)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in waiting {
                    self.start(now, &id);
                }
            }
            Input::Submitted { request_id, result } => self.on_submitted(now, &request_id, result),
            Input::Timer => self.on_timer(now),
        }
        if let Some(cp) = self.tracker.take_dirty() {
            self.commands.push_back(Command::SaveCheckpoint(cp));
        }
    }

    fn is_me(&self, to: &Address) -> bool {
        matches!(to, Address::Gateway { org, id } if *org == self.me.org && *id == self.me.id)
    }

    fn on_event(&mut self, now: UnixMillis, block: u64, tx_id: &str, work: EventWork) {
        let seq = self.tracker.push(block, tx_id);
        let r = match work {
            EventWork::Request(r) if self.is_me(&r.to) => r,
            EventWork::Elsewhere => {
                self.commands.push_back(Command::HandleElsewhere { seq });
                return;
            }
            EventWork::Request(_) | EventWork::Nothing => {
                self.tracker.done(seq);
                return;
            }
        };
        let id = r.request_id.clone();
        // A duplicate delivery: the flight in progress closes it too; an answered request is left alone.
        if let Some(f) = self.flights.get_mut(&id) {
            f.seqs.push(seq);
            return;
        }
        if self.answered.contains(&id) {
            self.tracker.done(seq);
            return;
        }
        let interrupted = self.interrupted.contains(&id);
        let unsafe_op = !safe_to_repeat(r.downlink.op);
        let f = Flight {
            request: r,
            seqs: vec![seq],
            step: Step::Checking,
            interrupted,
            journaled: interrupted,
            answer: None,
            seen_at: now,
            sent_at_registration: 0,
            failures: 0,
        };
        self.flights.insert(id.clone(), f);
        // Only a request still pending on the ledger is acted on (a replayed event may be answered already).
        if interrupted || unsafe_op {
            self.query(&id);
        } else {
            self.perform(now, &id);
        }
    }

    fn query(&mut self, id: &str) {
        if let Some(f) = self.flights.get_mut(id) {
            unwake(&mut self.wakes, id, f);
            f.step = Step::Checking;
            self.commands
                .push_back(Command::QueryRequest { call: IpeCall::GetRequest { request_id: id.to_owned() } });
        }
    }

    fn on_status(&mut self, now: UnixMillis, id: &str, result: Result<RequestStatus, LedgerFailure>) {
        let Some(f) = self.flights.get_mut(id) else { return };
        if f.step != Step::Checking {
            return;
        }
        match result {
            Err(_) => {
                f.failures = f.failures.saturating_add(1);
                let t = now.plus_ms(retry_after_ms(QUERY_RETRY_MS, f.failures));
                f.step = Step::CheckAgainAt(t);
                self.wakes.insert((t, id.to_owned()));
            }
            Ok(RequestStatus::Answered | RequestStatus::Unknown) => self.close(id),
            Ok(RequestStatus::Pending) if f.interrupted && f.unsafe_op() => {
                let answer = failed(
                    id,
                    "error",
                    "outcome unknown: the gateway restarted while the device operation was in flight; it is not \
                     repeated",
                );
                self.submit(id, answer);
            }
            Ok(RequestStatus::Pending) => self.start(now, id),
        }
    }

    fn on_journaled(&mut self, now: UnixMillis, id: &str, result: Result<(), JournalFailure>) {
        let Some(f) = self.flights.get(id) else { return };
        if f.step != Step::Journaling {
            return;
        }
        match result {
            Ok(()) => self.perform(now, id),
            // Not durable: performing it could repeat it after a crash, so it is not performed.
            Err(e) => self.submit(id, failed(id, "error", &format!("not performed: {e}"))),
        }
    }

    /// Performs the operation, after a durable `Op` entry if it is not safe to repeat.
    fn start(&mut self, now: UnixMillis, id: &str) {
        let Some(f) = self.flights.get_mut(id) else { return };
        if f.unsafe_op() && !f.journaled {
            unwake(&mut self.wakes, id, f);
            f.step = Step::Journaling;
            f.journaled = true;
            self.commands
                .push_back(Command::Journal { entry: Entry::Op { id: id.to_owned() }, durable: true });
        } else {
            self.perform(now, id);
        }
    }

    fn perform(&mut self, now: UnixMillis, id: &str) {
        let Some(f) = self.flights.get_mut(id) else { return };
        let deadline = UnixMillis::from_secs(f.request.expires_at);
        if now >= deadline {
            self.submit(id, expired(id));
            return;
        }
        unwake(&mut self.wakes, id, f);
        f.step = Step::Performing;
        f.sent_at_registration = self.registrations.get(&f.request.endpoint).copied().unwrap_or(0);
        self.commands.push_back(Command::PerformDeviceOp { request: f.request.clone(), deadline });
    }

    fn on_device(&mut self, now: UnixMillis, id: &str, result: Result<OpResponse, OpError>) {
        let Some(f) = self.flights.get_mut(id) else { return };
        if f.step != Step::Performing {
            return;
        }
        let answer = match result {
            Ok(rsp) => response_args(id, f.request.downlink.op, &rsp),
            Err(OpError::Timeout) => expired(id),
            Err(OpError::UnknownEndpoint(_)) => {
                // Offline: wait for it to come back (register) until the request expires. The operation was not
                // sent, so performing it later is its first time.
                let registered = self.registrations.get(&f.request.endpoint).copied().unwrap_or(0);
                if now >= UnixMillis::from_secs(f.request.expires_at) {
                    expired(id)
                } else if registered != f.sent_at_registration {
                    self.perform(now, id);
                    return;
                } else {
                    f.step = Step::Offline;
                    self.wakes.insert((UnixMillis::from_secs(f.request.expires_at), id.to_owned()));
                    // Not started after all: a crash while waiting must not make it "outcome unknown". The
                    // `Op` entry is written again (durable) before the next attempt.
                    if f.journaled && !f.interrupted {
                        f.journaled = false;
                        self.commands.push_back(Command::Journal {
                            entry: Entry::Done { id: id.to_owned() },
                            durable: false,
                        });
                    }
                    return;
                }
            }
            Err(OpError::Reset) => failed(id, "error", "the device rejected the message (CoAP Reset)"),
            Err(e) => failed(id, "error", &e.to_string()),
        };
        self.submit(id, answer);
    }

    fn submit(&mut self, id: &str, answer: ResponseArgs) {
        let Some(f) = self.flights.get_mut(id) else { return };
        unwake(&mut self.wakes, id, f);
        f.step = Step::Submitting;
        let call = IpeCall::SubmitResponse(answer.clone());
        f.answer = Some(answer);
        self.commands.push_back(Command::SubmitAnswer { call, seen_at: f.seen_at });
    }

    fn on_submitted(&mut self, now: UnixMillis, id: &str, result: SubmitResult) {
        let Some(f) = self.flights.get_mut(id) else { return };
        if f.step != Step::Submitting {
            return;
        }
        match result {
            // Committed, answered already (409), or refused for good: retrying would not change it.
            SubmitResult::Committed | SubmitResult::Refused(_) => self.close(id),
            SubmitResult::Failed(_) => {
                f.failures = f.failures.saturating_add(1);
                let t = now.plus_ms(retry_after_ms(SUBMIT_RETRY_MS, f.failures));
                f.step = Step::SubmitAgainAt(t);
                self.wakes.insert((t, id.to_owned()));
            }
        }
    }

    fn on_timer(&mut self, now: UnixMillis) {
        let mut due: Vec<(String, Step)> = take_due(&mut self.wakes, now)
            .into_iter()
            .filter_map(|id| self.flights.get(&id).map(|f| (id, f.step)))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0)); // deterministic order
        for (id, step) in due {
            match step {
                Step::CheckAgainAt(_) => self.query(&id),
                Step::SubmitAgainAt(_) => {
                    if let Some(answer) = self.flights.get(&id).and_then(|f| f.answer.clone()) {
                        self.submit(&id, answer);
                    }
                }
                Step::Offline => self.submit(&id, expired(&id)),
                _ => {}
            }
        }
    }

    /// The request is answered (or was): its journal entry is closed and its events are handled.
    fn close(&mut self, id: &str) {
        let Some(f) = self.flights.remove(id) else { return };
        unwake(&mut self.wakes, id, &f);
        if f.journaled {
            self.commands
                .push_back(Command::Journal { entry: Entry::Done { id: id.to_owned() }, durable: false });
        }
        self.interrupted.remove(id);
        for seq in f.seqs {
            self.tracker.done(seq);
        }
        if self.answered.insert(id.to_owned()) {
            self.answered_order.push_back(id.to_owned());
            if self.answered_order.len() > REMEMBERED
                && let Some(old) = self.answered_order.pop_front()
            {
                self.answered.remove(&old);
            }
        }
    }
}

fn expired(id: &str) -> ResponseArgs {
    failed(id, "timeout", "the device did not answer before the request expired")
}

/// An answer without a device's code: `status` with `message`.
pub fn failed(id: &str, status: &str, message: &str) -> ResponseArgs {
    ResponseArgs {
        request_id: id.to_owned(),
        status: status.to_owned(),
        code: None,
        records: None,
        payload: None,
        content_format: None,
        links: None,
        location: None,
        message: Some(message.to_owned()),
    }
}

/// The `submit_response` argument for a device's answer.
pub fn response_args(id: &str, op: Operation, rsp: &OpResponse) -> ResponseArgs {
    let ok = rsp.code.is_success();
    let mut a = ResponseArgs {
        request_id: id.to_owned(),
        status: if ok { "ok" } else { "error" }.to_owned(),
        code: Some(rsp.code.to_string()),
        records: None,
        payload: None,
        content_format: None,
        links: None,
        location: None,
        message: None,
    };
    if !ok {
        return a;
    }
    match op {
        Operation::Read | Operation::Observe => {
            a.records = ipe::translate::records_to_json(&rsp.records).ok()
        }
        Operation::Discover => a.links = Some(lwm2m::link::format(&rsp.links)),
        Operation::Create => a.location.clone_from(&rsp.location),
        _ => {}
    }
    a
}

#[cfg(test)]
mod tests;
