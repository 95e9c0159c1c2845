//! The uplink flow (an LwM2M device → the ledger) as a sans-IO state machine: the LwM2M server's events become
//! typed IPE calls, one at a time per device and in the order the server reported them (a report never
//! overtakes the registration it depends on), concurrently across devices. The observation bookkeeping (which
//! observe request a notification answers) and the timers of devices' requests (answered `timeout` when
//! nobody answered them in time) are here too. Inputs in ([`UplinkCore::handle`] with the current time),
//! [`UplinkCommand`]s out ([`UplinkCore::poll_command`]), [`UplinkCore::poll_timeout`] for the timers.
//!
//! ```text
//!  Server(event) ─► the device's queue ─► (one event of a device at a time) ─► its steps:
//!    Registered ─► Submit register_device
//!    Updated    ─► Submit update_device ─ 404 (not on the ledger) ─► Submit register_device
//!    Deregistered / Expired ─► forget the device's observations ─► Submit deregister_device (404: fine)
//!    Notification (2.xx) ─► Submit report "notify" (naming the observe request of (endpoint, path))
//!    Send ─► Submit report "send" (data) ─► device request (object 32769):
//!              Journal Dreq(id, now + timeout + margin), durable ─► Submit device_request
//!              ─► committed: Journal Dreq(id, the record's expires_at) ─► timer at expires_at + 1 s
//!                 refused: Journal Done; failed: the timer of the journaled expiry stays
//!    Submitted: committed ─► next step; refused / failed ─► the event's other steps are dropped (logged)
//!    A Send with a receipt (the LwM2M server holds the device's exchange): AnswerSend Recorded after its
//!    last step; at a refusal 4.00/4.03/4.04 with the reason, at a failure 5.03 (the device sends it again)
//!  Timer ─► SubmitTimeout answer_device_request "timeout" ─► committed ─► done (its delivery journals Done)
//!           409 (answered) / 404 (never committed) ─► Journal Done; failed ─► again after SUBMIT_RETRY
//!  Observed / ObserveCancelled (the downlink's observe and cancel-observe) ─► the observation map
//!  Answer (an application's answer to a device's request, from the event stream) ─► WriteDevice, one write
//!    at a time ─ unreachable: again after 2, 4, 8, 8 s, then given up (reported) ─► Journal Done ─► Delivered
//!    (the checkpoint may pass the event; a crash before replays it and the answer is written again)
//! ```
//!
//! A device's request is journaled before it is submitted, so a crash between its commit and its timer cannot
//! leave it open for good: the shell restarts the core with the journal's open device requests, whose timers
//! are armed again. The other uplink events are not persisted (the LwM2M server keeps registrations in memory;
//! devices register again after a restart). A Send is not lost to a crash either: its device hears 2.04 only
//! after the last of its steps committed, so a crash before leaves it unanswered and the device sends again.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ipe::IpeCall;
use ipe::model::{AnswerArgs, DeregisterArgs, DeviceRequestArgs, RegisterArgs, ReportArgs, UpdateArgs};
use lwm2m::LwM2mPath;
use lwm2m::codec::Record;
use lwm2m_server::{ClientInfo, SendAnswer, SendReceipt, ServerEvent};
use serde_json::{Value as Json, json};

use super::{LedgerFailure, SUBMIT_RETRY_MS, UnixMillis, retry_after_ms};
use crate::DEVICE_REQUEST_OBJECT;
use crate::journal::Entry;

/// Added to the estimated expiry journaled before a device request is submitted: the contract's `expires_at`
/// counts from its transaction's timestamp, a little later than the gateway's clock when it journals.
pub const DREQ_MARGIN_S: i64 = 5;

/// The outcome of an uplink submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkSubmitResult {
    /// Committed, with the contract's answer (`None`: a 409 on the SDK's own retry, the earlier attempt
    /// committed).
    Committed(Option<Vec<u8>>),
    /// The contract refused it.
    Refused {
        /// Its status (400, 403, 404, 409).
        status: i32,
        /// Its message.
        message: String,
    },
    /// Not submitted (transport, the SDK's retries exhausted).
    Failed(LedgerFailure),
}

/// Inputs of the uplink flow.
#[derive(Debug, Clone)]
pub enum UplinkInput {
    /// An event of the LwM2M server.
    Server(ServerEvent),
    /// The result of the device's [`UplinkCommand::Submit`].
    Submitted {
        /// The device.
        endpoint: String,
        /// Outcome.
        result: UplinkSubmitResult,
    },
    /// The device's durable [`UplinkCommand::Journal`] is on disk (or could not be made durable).
    Journaled {
        /// The device.
        endpoint: String,
        /// Durable, or why not.
        result: Result<(), super::JournalFailure>,
    },
    /// The result of [`UplinkCommand::SubmitTimeout`].
    TimeoutSubmitted {
        /// The device request.
        request_id: String,
        /// Outcome.
        result: UplinkSubmitResult,
    },
    /// An observation of `path` on the device was set up for request `request_id` (the downlink's observe).
    Observed {
        /// The device.
        endpoint: String,
        /// Observed path.
        path: LwM2mPath,
        /// The observe request.
        request_id: String,
    },
    /// The observation of `path` on the device was cancelled.
    ObserveCancelled {
        /// The device.
        endpoint: String,
        /// Observed path.
        path: LwM2mPath,
    },
    /// An application's answer to a device's request, to be written to the device (the contract's
    /// `device.answer` event at position `seq` of the event stream).
    Answer {
        /// The event's position (reported back in [`UplinkCommand::Delivered`]).
        seq: u64,
        /// The device.
        endpoint: String,
        /// The device request.
        request_id: String,
        /// The writes, in order: object 32769's answer resources first ([`answer_writes`]).
        writes: Vec<(LwM2mPath, Vec<Record>)>,
    },
    /// The result of [`UplinkCommand::WriteDevice`].
    Written {
        /// The answer's event position.
        seq: u64,
        /// Outcome.
        result: WriteResult,
    },
    /// The time of [`UplinkCore::poll_timeout`] has passed.
    Timer,
}

/// How a write of an answer to a device ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The device took it (2.xx).
    Written,
    /// The device answered with an error code: the same write would be refused again.
    Refused(String),
    /// No answer (offline, asleep past the timeout, not registered now): tried again later.
    Unreachable(String),
}

/// Attempts of one write of an answer to an unreachable device before the answer is given up: the waits
/// between them grow from [`ANSWER_RETRY_MS`] ([`retry_after_ms`]), 22 s in all, each attempt's own timeout
/// aside (a device in queue mode is written when it wakes up).
pub const ANSWER_WRITE_ATTEMPTS: u32 = 5;
/// The first wait before an answer's write to an unreachable device is tried again.
pub const ANSWER_RETRY_MS: i64 = 2_000;

/// How an uplink event or a timer ended (for the shell's logs and counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkOutcome {
    /// The event is on the ledger.
    Recorded,
    /// It is not (the contract refused a call, or the ledger kept failing).
    NotRecorded(String),
    /// A device request was answered `timeout`.
    TimedOut,
}

/// What the shell must do for the uplink flow.
#[derive(Debug, Clone, PartialEq)]
pub enum UplinkCommand {
    /// Submit the call with the LwM2M side's identity; feed [`UplinkInput::Submitted`] for `endpoint`.
    Submit {
        /// The device (its events are submitted one at a time).
        endpoint: String,
        /// The call.
        call: IpeCall,
    },
    /// Append to the journal; when `durable`, wait for the `fdatasync` and feed [`UplinkInput::Journaled`] for
    /// `endpoint`.
    Journal {
        /// The device (empty for the `Done` of a device request's timer: nothing waits for it).
        endpoint: String,
        /// The entry.
        entry: Entry,
        /// Wait until it is on disk.
        durable: bool,
    },
    /// Submit a device request's `timeout` answer; feed [`UplinkInput::TimeoutSubmitted`].
    SubmitTimeout {
        /// The device request.
        request_id: String,
        /// `answer_device_request` with status `timeout`.
        call: IpeCall,
    },
    /// Write `records` at `path` of the device (an answer's write); feed [`UplinkInput::Written`].
    WriteDevice {
        /// The answer's event position.
        seq: u64,
        /// The device.
        endpoint: String,
        /// The object instance written.
        path: LwM2mPath,
        /// The values.
        records: Vec<Record>,
    },
    /// The answer at `seq` is done with (written, refused or given up, and its `Done` journaled before this):
    /// the event stream's checkpoint may pass it.
    Delivered {
        /// The answer's event position.
        seq: u64,
    },
    /// Answer a Send that waits for its receipt (the LwM2M server's `answer_send`): recorded once every step
    /// of it is on the ledger, or why not.
    AnswerSend {
        /// The Send.
        receipt: SendReceipt,
        /// The answer.
        answer: SendAnswer,
    },
    /// For the logs and counters.
    Outcome {
        /// The device (or the device request).
        subject: String,
        /// What happened.
        outcome: UplinkOutcome,
    },
}

/// One step of a device's event.
#[derive(Debug, Clone)]
enum Step {
    /// Submit the call; a 404 is handled as `on_404` says.
    Call { call: IpeCall, on_404: On404 },
    /// Journal the device request's estimated expiry (durable), then submit it.
    JournalDreq { id: String, exp: i64 },
    /// Submit the device request; its timer follows.
    DeviceRequest { id: String, call: IpeCall, exp: i64 },
}

#[derive(Debug, Clone)]
enum On404 {
    /// A refusal like any other.
    Fail,
    /// Fine (de-registering a device the ledger does not know).
    Ignore,
    /// Submit this instead (an update of a device whose registration was lost: register it).
    Then(Box<IpeCall>),
}

#[derive(Debug, Default)]
struct Device {
    /// Events not started yet.
    queue: VecDeque<ServerEvent>,
    /// The remaining steps of the event being handled.
    steps: VecDeque<Step>,
    /// The step in flight.
    current: Option<Step>,
    /// The receipt of the Send being handled, answered when its steps are done or one fails.
    receipt: Option<SendReceipt>,
}

/// An answer on its way to its device.
#[derive(Debug)]
struct Delivery {
    endpoint: String,
    request_id: String,
    /// The writes not done yet; the first is in flight or waiting for its retry.
    writes: VecDeque<(LwM2mPath, Vec<Record>)>,
    /// Failed attempts of the first write.
    failures: u32,
    /// When the first write is tried again (`None`: in flight).
    retry_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerState {
    /// Fires at the time.
    At(UnixMillis),
    /// `SubmitTimeout` sent.
    Submitting,
}

/// The uplink flow (see the module docs).
#[derive(Debug)]
pub struct UplinkCore {
    /// The prefix of the ids the gateway makes (`<name>-<kind>-<boot tag>-<n>`).
    name: String,
    boot: String,
    seq: u64,
    /// Default timeout (s) of devices' requests.
    device_request_timeout: u32,
    devices: HashMap<String, Device>,
    /// (endpoint, path) → the observe request whose notifications these are.
    observations: HashMap<(String, LwM2mPath), String>,
    /// Device requests waiting for their answer (a `BTreeMap`: timers fire in a deterministic order).
    timers: BTreeMap<String, TimerState>,
    /// Failed `timeout` submissions per device request (they space the retries: [`retry_after_ms`]).
    timeout_failures: HashMap<String, u32>,
    /// Answers being written to their devices, by event position.
    deliveries: BTreeMap<u64, Delivery>,
    commands: VecDeque<UplinkCommand>,
}

impl UplinkCore {
    /// A core making ids `<name>-<kind>-<boot>-<n>`, with the journal's open device requests (id, expiry in
    /// Unix seconds) whose timers it arms.
    pub fn new(
        name: impl Into<String>,
        boot: impl Into<String>,
        device_request_timeout: u32,
        open_device_requests: impl IntoIterator<Item = (String, i64)>,
    ) -> Self {
        UplinkCore {
            name: name.into(),
            boot: boot.into(),
            seq: 0,
            device_request_timeout,
            devices: HashMap::new(),
            observations: HashMap::new(),
            timers: open_device_requests
                .into_iter()
                .map(|(id, exp)| (id, TimerState::At(timeout_due(exp))))
                .collect(),
            timeout_failures: HashMap::new(),
            deliveries: BTreeMap::new(),
            commands: VecDeque::new(),
        }
    }

    /// The next command to perform.
    pub fn poll_command(&mut self) -> Option<UplinkCommand> {
        self.commands.pop_front()
    }

    /// When the shell must feed [`UplinkInput::Timer`]: the earliest device request's timer.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let timers = self.timers.values().filter_map(|t| match t {
            TimerState::At(t) => Some(*t),
            TimerState::Submitting => None,
        });
        timers.chain(self.deliveries.values().filter_map(|d| d.retry_at)).min()
    }

    /// Answers being written to their devices.
    pub fn deliveries_open(&self) -> usize {
        self.deliveries.len()
    }

    /// The observe request of `(endpoint, path)`, if the gateway set it up.
    pub fn observation(&self, endpoint: &str, path: LwM2mPath) -> Option<&str> {
        self.observations.get(&(endpoint.to_owned(), path)).map(String::as_str)
    }

    /// Events being handled or waiting, over all devices.
    pub fn events_pending(&self) -> usize {
        self.devices.values().map(|d| d.queue.len() + usize::from(d.current.is_some())).sum()
    }

    /// Device requests whose timer is armed or firing.
    pub fn device_requests_open(&self) -> usize {
        self.timers.len()
    }

    /// Processes one input.
    pub fn handle(&mut self, now: UnixMillis, input: UplinkInput) {
        match input {
            UplinkInput::Server(ev) => {
                let Some(ep) = endpoint_of(&ev).map(str::to_owned) else { return };
                self.devices.entry(ep.clone()).or_default().queue.push_back(ev);
                self.advance(now, &ep);
            }
            UplinkInput::Submitted { endpoint, result } => self.on_submitted(now, &endpoint, result),
            UplinkInput::Journaled { endpoint, result: _ } => {
                // Not durable: submitted all the same (the journal only re-arms the timer after a crash).
                let Some(d) = self.devices.get_mut(&endpoint) else { return };
                if matches!(d.current, Some(Step::JournalDreq { .. })) {
                    d.current = None;
                    self.advance(now, &endpoint);
                }
            }
            UplinkInput::TimeoutSubmitted { request_id, result } => {
                self.on_timeout_submitted(now, request_id, result)
            }
            UplinkInput::Observed { endpoint, path, request_id } => {
                self.observations.insert((endpoint, path), request_id);
            }
            UplinkInput::ObserveCancelled { endpoint, path } => {
                self.observations.remove(&(endpoint, path));
            }
            UplinkInput::Answer { seq, endpoint, request_id, writes } => {
                let d = Delivery { endpoint, request_id, writes: writes.into(), failures: 0, retry_at: None };
                self.deliveries.insert(seq, d);
                self.next_write(seq);
            }
            UplinkInput::Written { seq, result } => self.on_written(now, seq, result),
            UplinkInput::Timer => {
                let due: Vec<u64> = self
                    .deliveries
                    .iter()
                    .filter(|(_, d)| d.retry_at.is_some_and(|t| t <= now))
                    .map(|(seq, _)| *seq)
                    .collect();
                for seq in due {
                    self.next_write(seq);
                }
                self.on_timer(now)
            }
        }
    }

    /// Sends the delivery's first write, or ends it when none is left: `Done` journaled, then `Delivered`.
    fn next_write(&mut self, seq: u64) {
        let Some(d) = self.deliveries.get_mut(&seq) else { return };
        d.retry_at = None;
        match d.writes.front() {
            Some((path, records)) => self.commands.push_back(UplinkCommand::WriteDevice {
                seq,
                endpoint: d.endpoint.clone(),
                path: *path,
                records: records.clone(),
            }),
            None => {
                let Some(d) = self.deliveries.remove(&seq) else { return };
                self.commands.push_back(UplinkCommand::Journal {
                    endpoint: String::new(),
                    entry: Entry::Done { id: d.request_id },
                    durable: false,
                });
                self.commands.push_back(UplinkCommand::Delivered { seq });
            }
        }
    }

    fn on_written(&mut self, now: UnixMillis, seq: u64, result: WriteResult) {
        let Some(d) = self.deliveries.get_mut(&seq) else { return };
        if d.retry_at.is_some() {
            return; // not in flight: a stale result
        }
        let next = match result {
            WriteResult::Written => true,
            WriteResult::Refused(why) => {
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: d.request_id.clone(),
                    outcome: UplinkOutcome::NotRecorded(format!("the device refused the answer: {why}")),
                });
                true
            }
            WriteResult::Unreachable(why) => {
                d.failures += 1;
                if d.failures < ANSWER_WRITE_ATTEMPTS {
                    d.retry_at = Some(now.plus_ms(retry_after_ms(ANSWER_RETRY_MS, d.failures)));
                    return;
                }
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: d.request_id.clone(),
                    outcome: UplinkOutcome::NotRecorded(format!(
                        "the answer did not reach the device in {ANSWER_WRITE_ATTEMPTS} attempts: {why}"
                    )),
                });
                true
            }
        };
        if next && let Some(d) = self.deliveries.get_mut(&seq) {
            d.writes.pop_front();
            d.failures = 0;
            self.next_write(seq);
        }
    }

    fn next_id(&mut self, kind: &str) -> String {
        let n = self.seq;
        self.seq += 1;
        format!("{}-{kind}-{}-{n}", self.name, self.boot)
    }

    /// Starts the device's next step, or its next event, unless a step is in flight.
    fn advance(&mut self, now: UnixMillis, ep: &str) {
        loop {
            let Some(d) = self.devices.get_mut(ep) else { return };
            if d.current.is_some() {
                return;
            }
            if let Some(step) = d.steps.pop_front() {
                d.current = Some(step.clone());
                let cmd = match step {
                    Step::Call { call, .. } | Step::DeviceRequest { call, .. } => {
                        UplinkCommand::Submit { endpoint: ep.to_owned(), call }
                    }
                    Step::JournalDreq { id, exp } => UplinkCommand::Journal {
                        endpoint: ep.to_owned(),
                        entry: Entry::Dreq { id, exp },
                        durable: true,
                    },
                };
                self.commands.push_back(cmd);
                return;
            }
            // The event is done; its failures took the receipt already.
            if let Some(receipt) = d.receipt.take() {
                self.commands.push_back(UplinkCommand::AnswerSend { receipt, answer: SendAnswer::Recorded });
            }
            let Some(ev) = d.queue.pop_front() else {
                self.devices.remove(ep);
                return;
            };
            let receipt = match &ev {
                ServerEvent::Send { receipt, .. } => *receipt,
                _ => None,
            };
            let steps = self.plan(now, ev);
            if let Some(d) = self.devices.get_mut(ep) {
                d.steps = steps;
                d.receipt = receipt;
            }
        }
    }

    /// The steps of an event (looked up when the event starts: the observations as they are then).
    fn plan(&mut self, now: UnixMillis, ev: ServerEvent) -> VecDeque<Step> {
        let call = |call: IpeCall| Step::Call { call, on_404: On404::Fail };
        match ev {
            ServerEvent::Registered(c) => VecDeque::from([call(register_call(&c))]),
            ServerEvent::Updated(c) => {
                let update = IpeCall::UpdateDevice(UpdateArgs {
                    endpoint: c.endpoint.clone(),
                    lifetime: Some(c.lifetime),
                    binding: Some(c.binding.clone()),
                    queue_mode: Some(c.queue_mode),
                    links: Some(lwm2m::link::format(&c.links)),
                });
                VecDeque::from([Step::Call {
                    call: update,
                    on_404: On404::Then(Box::new(register_call(&c))),
                }])
            }
            ServerEvent::Deregistered { endpoint, .. } => self.deregister(endpoint, "deregistered"),
            ServerEvent::Expired { endpoint, .. } => self.deregister(endpoint, "expired"),
            ServerEvent::Notification { endpoint, path, code, records } => {
                if !code.is_success() {
                    return VecDeque::new();
                }
                let observe = self.observations.get(&(endpoint.clone(), path)).cloned();
                let id = self.next_id("n");
                VecDeque::from([call(report_call(
                    id,
                    endpoint,
                    "notify",
                    observe,
                    path.to_string(),
                    &records,
                ))])
            }
            ServerEvent::Send { endpoint, records, .. } => {
                let (req, data): (Vec<Record>, Vec<Record>) =
                    records.into_iter().partition(|r| r.path.object() == Some(DEVICE_REQUEST_OBJECT));
                let mut steps = VecDeque::new();
                if !data.is_empty() {
                    let id = self.next_id("s");
                    steps.push_back(call(report_call(id, endpoint.clone(), "send", None, "/".into(), &data)));
                }
                if !req.is_empty() {
                    let id = self.next_id("d");
                    let exp = now.0.div_euclid(1000) + i64::from(self.device_request_timeout) + DREQ_MARGIN_S;
                    let call = device_request_call(&id, &endpoint, &req, self.device_request_timeout);
                    steps.push_back(Step::JournalDreq { id: id.clone(), exp });
                    steps.push_back(Step::DeviceRequest { id, call, exp });
                }
                steps
            }
            _ => VecDeque::new(),
        }
    }

    fn deregister(&mut self, endpoint: String, reason: &str) -> VecDeque<Step> {
        self.observations.retain(|(ep, _), _| *ep != endpoint);
        let call = IpeCall::DeregisterDevice(DeregisterArgs { endpoint, reason: Some(reason.to_owned()) });
        VecDeque::from([Step::Call { call, on_404: On404::Ignore }])
    }

    fn on_submitted(&mut self, now: UnixMillis, ep: &str, result: UplinkSubmitResult) {
        let Some(d) = self.devices.get_mut(ep) else { return };
        let Some(step) = d.current.take() else { return };
        let failure = match (step, result) {
            (Step::DeviceRequest { id, exp, .. }, UplinkSubmitResult::Committed(rec)) => {
                let real = rec
                    .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                    .and_then(|r| r.get("expires_at").and_then(Json::as_i64));
                let exp = match real {
                    Some(real) if real != exp => {
                        self.commands.push_back(UplinkCommand::Journal {
                            endpoint: ep.to_owned(),
                            entry: Entry::Dreq { id: id.clone(), exp: real },
                            durable: false,
                        });
                        real
                    }
                    _ => exp,
                };
                self.timers.insert(id, TimerState::At(timeout_due(exp)));
                None
            }
            (Step::DeviceRequest { id, exp, .. }, UplinkSubmitResult::Failed(e)) => {
                // It may have committed: its timer closes it (a 404 then means it did not).
                self.timers.insert(id, TimerState::At(timeout_due(exp)));
                Some(Failure::Failed(e.to_string()))
            }
            (Step::DeviceRequest { id, .. }, UplinkSubmitResult::Refused { status, message }) => {
                self.commands.push_back(UplinkCommand::Journal {
                    endpoint: ep.to_owned(),
                    entry: Entry::Done { id },
                    durable: false,
                });
                Some(Failure::Refused { status, message })
            }
            (_, UplinkSubmitResult::Committed(_)) => None,
            (Step::Call { on_404: On404::Ignore, .. }, UplinkSubmitResult::Refused { status: 404, .. }) => {
                None
            }
            (
                Step::Call { on_404: On404::Then(next), .. },
                UplinkSubmitResult::Refused { status: 404, .. },
            ) => {
                if let Some(d) = self.devices.get_mut(ep) {
                    d.steps.push_front(Step::Call { call: *next, on_404: On404::Fail });
                }
                self.advance(now, ep);
                return;
            }
            (_, UplinkSubmitResult::Refused { status, message }) => {
                Some(Failure::Refused { status, message })
            }
            (_, UplinkSubmitResult::Failed(e)) => Some(Failure::Failed(e.to_string())),
        };
        let Some(d) = self.devices.get_mut(ep) else { return };
        match failure {
            Some(failure) => {
                d.steps.clear();
                if let Some(receipt) = d.receipt.take() {
                    self.commands.push_back(UplinkCommand::AnswerSend { receipt, answer: failure.answer() });
                }
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: ep.to_owned(),
                    outcome: UplinkOutcome::NotRecorded(failure.to_string()),
                });
            }
            None if d.steps.is_empty() => {
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: ep.to_owned(),
                    outcome: UplinkOutcome::Recorded,
                });
            }
            None => {}
        }
        self.advance(now, ep);
    }

    fn on_timer(&mut self, now: UnixMillis) {
        let due: Vec<String> = self
            .timers
            .iter()
            .filter(|(_, t)| matches!(t, TimerState::At(t) if *t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.timers.insert(id.clone(), TimerState::Submitting);
            let call = IpeCall::AnswerDeviceRequest(AnswerArgs {
                request_id: id.clone(),
                originator: None,
                status: "timeout".into(),
                content: None,
                message: Some("no oneM2M application answered in time".into()),
            });
            self.commands.push_back(UplinkCommand::SubmitTimeout { request_id: id, call });
        }
    }

    fn on_timeout_submitted(&mut self, now: UnixMillis, id: String, result: UplinkSubmitResult) {
        if self.timers.get(&id) != Some(&TimerState::Submitting) {
            return;
        }
        match result {
            UplinkSubmitResult::Committed(_) => {
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: id.clone(),
                    outcome: UplinkOutcome::TimedOut,
                });
            }
            // Answered already (its delivery's `Done` may have been lost in a crash), or never committed (its
            // submission failed): nothing is left to time out.
            UplinkSubmitResult::Refused { status: 409 | 404, .. } => {
                self.commands.push_back(UplinkCommand::Journal {
                    endpoint: String::new(),
                    entry: Entry::Done { id: id.clone() },
                    durable: false,
                });
            }
            UplinkSubmitResult::Refused { status, message } => {
                self.commands.push_back(UplinkCommand::Outcome {
                    subject: id.clone(),
                    outcome: UplinkOutcome::NotRecorded(format!("timeout refused ({status}): {message}")),
                });
            }
            UplinkSubmitResult::Failed(_) => {
                let failures = self.timeout_failures.entry(id.clone()).or_default();
                *failures = failures.saturating_add(1);
                let wait = retry_after_ms(SUBMIT_RETRY_MS, *failures);
                self.timers.insert(id, TimerState::At(now.plus_ms(wait)));
                return;
            }
        }
        self.timers.remove(&id);
        self.timeout_failures.remove(&id);
    }
}

/// Why a step of an event failed.
#[derive(Debug)]
enum Failure {
    /// The contract refused the call.
    Refused { status: i32, message: String },
    /// Not submitted (the ledger unreachable, the SDK's retries exhausted); it may have committed.
    Failed(String),
}

impl Failure {
    /// The answer to the device's Send: a refusal is final (the same data would be refused again), a failure
    /// may pass (5.03: the device sends again later; a report that did commit is then recorded twice, which
    /// is the price of never acknowledging one that is not recorded).
    fn answer(&self) -> SendAnswer {
        match self {
            Failure::Refused { status: 403, message } => SendAnswer::Forbidden(message.clone()),
            Failure::Refused { status: 404, message } => SendAnswer::NotFound(message.clone()),
            Failure::Refused { message, .. } => SendAnswer::BadRequest(message.clone()),
            Failure::Failed(why) => SendAnswer::Unavailable(why.clone()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused { status, message } => write!(f, "refused ({status}): {message}"),
            Failure::Failed(why) => f.write_str(why),
        }
    }
}

/// When a device request expiring at `exp` (Unix seconds) is answered `timeout`: one second after.
fn timeout_due(exp: i64) -> UnixMillis {
    UnixMillis::from_secs(exp.saturating_add(1))
}

fn endpoint_of(ev: &ServerEvent) -> Option<&str> {
    Some(match ev {
        ServerEvent::Registered(c) | ServerEvent::Updated(c) => &c.endpoint,
        ServerEvent::Deregistered { endpoint, .. }
        | ServerEvent::Expired { endpoint, .. }
        | ServerEvent::Notification { endpoint, .. }
        | ServerEvent::Send { endpoint, .. } => endpoint,
        _ => return None,
    })
}

/// The writes that give a device an application's answer (scenario 2), in order: object 32769 instance 0
/// (request id, status, content), then the instances of other objects the answer's `records` name (values the
/// device takes as the answer, e.g. a setpoint), each instance one write. Records that do not translate are
/// left out.
pub fn answer_writes(
    registry: &lwm2m::Registry,
    a: &ipe::events::DeviceAnswerEvent,
) -> Vec<(LwM2mPath, Vec<Record>)> {
    let obj = DEVICE_REQUEST_OBJECT;
    let path = |ids: &[u16]| LwM2mPath::new(ids).unwrap_or_default();
    let mut records = vec![
        Record::new(path(&[obj, 0, 1]), lwm2m::Value::String(a.request_id.clone())),
        Record::new(path(&[obj, 0, 3]), lwm2m::Value::String(a.answer.status.clone())),
        Record::new(path(&[obj, 0, 4]), lwm2m::Value::String(a.answer.content.to_string())),
    ];
    let mut others: BTreeMap<LwM2mPath, Vec<Record>> = BTreeMap::new();
    if let Some(j) = &a.answer.records
        && let Ok(rs) = ipe::translate::records_from_json(registry, j)
    {
        for r in rs {
            if r.path.object() == Some(obj) {
                records.push(r);
            } else if let (Some(o), Some(i)) = (r.path.object(), r.path.instance()) {
                others.entry(path(&[o, i])).or_default().push(r);
            }
        }
    }
    let mut writes = vec![(path(&[obj, 0]), records)];
    writes.extend(others);
    writes
}

/// `register_device` for a client.
pub fn register_call(c: &ClientInfo) -> IpeCall {
    IpeCall::RegisterDevice(RegisterArgs {
        endpoint: c.endpoint.clone(),
        lwm2m_version: Some(c.version.as_str().to_owned()),
        lifetime: Some(c.lifetime),
        binding: Some(c.binding.clone()),
        queue_mode: c.queue_mode,
        links: lwm2m::link::format(&c.links),
        mode: None,
    })
}

fn report_call(
    report_id: String,
    endpoint: String,
    kind: &str,
    observe_request_id: Option<String>,
    path: String,
    records: &[Record],
) -> IpeCall {
    IpeCall::Report(ReportArgs {
        report_id,
        endpoint,
        kind: kind.to_owned(),
        observe_request_id,
        path: Some(path),
        records: Some(ipe::translate::records_to_json(records).unwrap_or_else(|_| Json::Array(Vec::new()))),
        payload: None,
        content_format: None,
    })
}

/// A device's request (scenario 2): topic `/32769/x/0`, body `/32769/x/2` (JSON text, or any text).
fn device_request_call(id: &str, endpoint: &str, records: &[Record], timeout: u32) -> IpeCall {
    let field = |res: u16| {
        records.iter().find(|r| r.path.resource() == Some(res)).and_then(|r| match &r.value {
            lwm2m::Value::String(s) => Some(s.clone()),
            _ => None,
        })
    };
    let topic = field(0).unwrap_or_else(|| "request".into());
    let body = field(2).unwrap_or_default();
    let body_json: Json = serde_json::from_str(&body).unwrap_or(Json::String(body));
    IpeCall::DeviceRequest(DeviceRequestArgs {
        request_id: id.to_owned(),
        endpoint: endpoint.to_owned(),
        target: body_json.get("target").and_then(Json::as_str).map(str::to_owned),
        topic,
        records: Some(json!([{"path": format!("/{DEVICE_REQUEST_OBJECT}/0/2"), "type": "STRING",
                              "v": body_json.to_string()}])),
        payload: None,
        content_format: None,
        timeout: Some(timeout),
    })
}

#[cfg(test)]
mod tests;
