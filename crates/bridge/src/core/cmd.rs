//! The `cmd` flow (a oneM2M application → the ledger) as a sans-IO state machine: a contentInstance an
//! application wrote into a device's `cmd` container, notified live or found by the start-up backlog scan,
//! becomes one typed IPE call (`submit_request`, or `answer_device_request` for `"op": "answer"`), and a refusal
//! becomes a `rejected` contentInstance in the device's `rsp`. Inputs in ([`CmdCore::handle`] with the current
//! time), [`CmdCommand`]s out ([`CmdCore::poll_command`]); the shell reads the CSE and the ledger and feeds the
//! results back.
//!
//! ```text
//!  Notified(cin) ─► first sight of the cin (by ri)? ─ no ─► dropped (a duplicate notification)
//!        │ yes                                 ▲
//!        │                  Backlog(cin) ──────┘ yes: no request id ─► dropped
//!        │                        │ QueryKnown (get_request; get_device_request: answered?)
//!        │                        ▼ Known: this request (or answered) ─► done   failed ─► asked again
//!        │                                 another request under the id ─► WriteCin rejection (409) ─► done
//!        ▼                          unknown
//!  cmd_submission ◄─────────────────┘
//!   reject (no creator, unreadable) ─► WriteCin rejection ─► done
//!   refused by the contract's parser ─► request: WriteCin rejection; answer: Outcome ─► done
//!   submit ─► Submit(call) ─► Submitted: committed ─► done
//!                                        refused 409 after a failed attempt ─► done (the attempt committed)
//!                                        refused ─► request: WriteCin rejection; answer: Outcome ─► done
//!                                        failed ─► Submit again after SUBMIT_RETRY (marked: it may have
//!                                                  committed)
//! ```
//!
//! Nothing here is persisted: the contentInstances stay in the CSE, and after a restart the backlog scan finds
//! every one whose request the ledger does not have (a request in flight at the crash is either on the
//! ledger, and skipped, or not, and submitted). The contract refuses a request id it has seen (409), so no
//! request is ever on the ledger twice. A contentInstance whose id an earlier request used (another
//! originator, device or operation than the one on the ledger) is rejected 409 by the scan, as the contract
//! would refuse it: its rejection is not lost when a crash came between the live refusal and its write.

use std::collections::{HashMap, HashSet, VecDeque};

use ipe::IpeCall;
use ipe::mapping::Cin;
use serde_json::{Value as Json, json};

use super::{LedgerFailure, QUERY_RETRY_MS, SUBMIT_RETRY_MS, UnixMillis, Wakes, retry_after_ms, take_due};
use crate::onem2m_side::CmdRequest;

/// How many contentInstances the core remembers as seen (beyond those in flight), so a duplicate notification
/// is not submitted again.
const REMEMBERED_CINS: usize = 16_384;

/// What the gateway does with a request taken from a `cmd` container.
#[derive(Debug, Clone, PartialEq)]
pub enum CmdSubmission {
    /// Submit this call: `submit_request`, or `answer_device_request` for `"op": "answer"`; its `originator`
    /// is the contentInstance's creator, as the CSE said.
    Submit(IpeCall),
    /// Answer `rejected` at once, with a contract-style status (400 → RSC 4000) and a message.
    Reject {
        /// 400.
        status: i32,
        /// Why.
        message: String,
    },
    /// The contract's own reading of the call refuses it ([`IpeCall::parse`]): what it would answer if
    /// it were submitted, with the same status and message.
    Refused {
        /// The contract's status (400).
        status: i32,
        /// Its message.
        message: String,
    },
}

/// Decides what a request from a `cmd` container becomes. The originator is the creator the CSE reported
/// ([`CmdRequest::originator`]); an `originator` the content names is overwritten, and a request whose creator
/// the CSE cannot tell is rejected with `no_creator` as the message.
pub fn cmd_submission(req: &CmdRequest, no_creator: &str) -> CmdSubmission {
    let Some(originator) = req.originator.as_deref() else {
        return CmdSubmission::Reject { status: 400, message: no_creator.to_owned() };
    };
    let (function, args) = if is_answer(req) {
        let mut a = req.con.clone();
        if let Some(o) = a.as_object_mut() {
            o.remove("op");
            o.insert("originator".into(), json!(originator));
        }
        ("answer_device_request", a)
    } else {
        match ipe::mapping::request_from_cmd(&req.con, originator, &req.ae_id) {
            Ok(args) => ("submit_request", args),
            Err(e) => return CmdSubmission::Reject { status: 400, message: e.to_string() },
        }
    };
    // The bytes the contract would have been given; its parser judges them.
    let bytes = match serde_json::to_vec(&args) {
        Ok(b) => b,
        Err(e) => return CmdSubmission::Reject { status: 400, message: e.to_string() },
    };
    match IpeCall::parse(function, &[bytes]) {
        Ok(call) => CmdSubmission::Submit(call),
        Err(e) => CmdSubmission::Refused { status: e.status(), message: e.to_string() },
    }
}

/// A contentInstance name from an id (ids are `A-Z a-z 0-9 - . _ : ~`; CSEs refuse `:` in names).
pub fn cin_name(id: &str) -> String {
    id.replace(':', "_")
}

/// True for an application's answer to a device's request (`"op": "answer"`).
fn is_answer(req: &CmdRequest) -> bool {
    req.con.get("op").and_then(Json::as_str) == Some("answer")
}

/// The request id the content names (empty when it names none).
fn request_id(req: &CmdRequest) -> String {
    req.con.get("request_id").and_then(Json::as_str).unwrap_or_default().to_owned()
}

/// The identity of a contentInstance: its `ri`, else `<AE-ID>/<rn>`.
pub fn cin_key(req: &CmdRequest) -> String {
    req.ri.clone().unwrap_or_else(|| format!("{}/{}", req.ae_id, req.rn.as_deref().unwrap_or("")))
}

/// The outcome of a submission from the `cmd` flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdSubmitResult {
    /// Committed (or a 409 on the SDK's own retry: an earlier attempt committed).
    Committed,
    /// The contract refused it.
    Refused {
        /// Its status (400, 403, 404, 409).
        status: i32,
        /// Its message.
        message: String,
    },
    /// Not submitted (transport, the SDK's retries exhausted); it may have committed all the same.
    Failed(LedgerFailure),
}

/// What the ledger has under a backlog contentInstance's id ([`CmdCommand::QueryKnown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Nothing the contentInstance asks for: no request under the id (404), or its device request is not
    /// answered yet.
    No,
    /// The ledger has what the contentInstance asks for (for an answer: the device request is answered).
    Done,
    /// A request under the id, made by `originator`, of `op` on the device `endpoint` (AE-ID `ae_id`): the
    /// contentInstance's own request when these are what it asks for, else an earlier request that used the id.
    Request {
        /// Its originator.
        originator: String,
        /// The device's endpoint name.
        endpoint: String,
        /// The device's AE-ID.
        ae_id: String,
        /// Its operation.
        op: ipe::Operation,
    },
}

/// Inputs of the `cmd` flow.
#[derive(Debug, Clone, PartialEq)]
pub enum CmdInput {
    /// A live notification's contentInstance (the shell read who created it from the CSE).
    Notified(Box<CmdRequest>),
    /// A contentInstance found in a `cmd` container by the start-up scan.
    Backlog(Box<CmdRequest>),
    /// The result of [`CmdCommand::QueryKnown`]: what the ledger has under the id.
    Known {
        /// The contentInstance ([`cin_key`]).
        key: String,
        /// What it has, or why the ledger did not say.
        result: Result<Known, LedgerFailure>,
    },
    /// The result of [`CmdCommand::Submit`].
    Submitted {
        /// The contentInstance ([`cin_key`]).
        key: String,
        /// Outcome.
        result: CmdSubmitResult,
    },
    /// The time of [`CmdCore::poll_timeout`] has passed.
    Timer,
}

/// Why a request from a `cmd` container ended without a transaction (for the shell's logs and counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdOutcome {
    /// Committed.
    Submitted,
    /// The answer to a device's request was refused (no rejection is written for answers).
    AnswerRefused {
        /// Status.
        status: i32,
        /// Message.
        message: String,
    },
}

/// What the shell must do for the `cmd` flow.
#[derive(Debug, Clone, PartialEq)]
pub enum CmdCommand {
    /// Ask the ledger what it has under the contentInstance's id: the request (`get_request`: who made it,
    /// what it asks; 404 = [`Known::No`]), or for an answer whether the device request is answered
    /// (`get_device_request`: its status is not `pending`; 404 = [`Known::No`]); feed [`CmdInput::Known`].
    QueryKnown {
        /// The contentInstance.
        key: String,
        /// The query.
        call: IpeCall,
    },
    /// Submit the call with the oneM2M side's identity; feed [`CmdInput::Submitted`].
    Submit {
        /// The contentInstance.
        key: String,
        /// `submit_request` or `answer_device_request`.
        call: IpeCall,
    },
    /// Write a contentInstance named `rn` (a `rejected` answer into the device's `rsp`; written again it is a
    /// harmless 4105) as the device AE `ae_id`. No result is fed back.
    WriteCin {
        /// The device AE.
        ae_id: String,
        /// The contentInstance.
        cin: Cin,
        /// Its name.
        rn: String,
    },
    /// For the logs and counters: how a request ended.
    Outcome {
        /// The device AE.
        ae_id: String,
        /// The request id.
        request_id: String,
        /// What happened.
        outcome: CmdOutcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmdStep {
    /// `QueryKnown` sent (a backlog contentInstance).
    Checking,
    /// The query failed; asked again at the time.
    CheckAgainAt(UnixMillis),
    /// `Submit` sent.
    Submitting,
    /// The submission failed; submitted again at the time.
    SubmitAgainAt(UnixMillis),
}

#[derive(Debug)]
struct CmdFlight {
    req: Box<CmdRequest>,
    step: CmdStep,
    call: Option<IpeCall>,
    /// A submission failed: it may have committed, so a 409 later means it did.
    uncertain: bool,
    /// Failed lookups and submissions so far (they space the retries: [`retry_after_ms`]).
    failures: u32,
}

/// The `cmd` flow (see the module docs).
#[derive(Debug)]
pub struct CmdCore {
    /// The rejection message for a request whose creator the CSE cannot tell.
    no_creator: String,
    /// contentInstances seen (in flight or done; the last [`REMEMBERED_CINS`] done).
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    flights: HashMap<String, CmdFlight>,
    /// The flights waiting for a retry.
    wakes: Wakes,
    commands: VecDeque<CmdCommand>,
}

impl CmdCore {
    /// A core that rejects requests without a known creator with the message `no_creator`.
    pub fn new(no_creator: impl Into<String>) -> Self {
        CmdCore {
            no_creator: no_creator.into(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            flights: HashMap::new(),
            wakes: Wakes::new(),
            commands: VecDeque::new(),
        }
    }

    /// The next command to perform.
    pub fn poll_command(&mut self) -> Option<CmdCommand> {
        self.commands.pop_front()
    }

    /// When the shell must feed [`CmdInput::Timer`]: the earliest retry.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.wakes.first().map(|(t, _)| *t)
    }

    /// [`CmdCore::poll_timeout`] the slow way, from every flight (tests check the index against it).
    #[cfg(test)]
    fn scanned_timeout(&self) -> Option<UnixMillis> {
        self.flights
            .values()
            .filter_map(|f| match f.step {
                CmdStep::CheckAgainAt(t) | CmdStep::SubmitAgainAt(t) => Some(t),
                _ => None,
            })
            .min()
    }

    /// Requests being handled.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Processes one input.
    pub fn handle(&mut self, now: UnixMillis, input: CmdInput) {
        match input {
            CmdInput::Notified(req) => {
                if let Some(key) = self.first_sight(&req) {
                    self.decide(key, req);
                }
            }
            CmdInput::Backlog(req) => {
                if request_id(&req).is_empty() {
                    return; // nothing to look up: not taken from a backlog (as before the core)
                }
                if let Some(key) = self.first_sight(&req) {
                    self.flights.insert(
                        key.clone(),
                        CmdFlight { req, step: CmdStep::Checking, call: None, uncertain: false, failures: 0 },
                    );
                    self.query(&key);
                }
            }
            CmdInput::Known { key, result } => self.on_known(now, key, result),
            CmdInput::Submitted { key, result } => self.on_submitted(now, &key, result),
            CmdInput::Timer => self.on_timer(now),
        }
    }

    /// The contentInstance's key the first time it is seen.
    fn first_sight(&mut self, req: &CmdRequest) -> Option<String> {
        let key = cin_key(req);
        if self.seen.contains(&key) {
            return None;
        }
        self.seen.insert(key.clone());
        Some(key)
    }

    fn query(&mut self, key: &str) {
        let Some(f) = self.flights.get_mut(key) else { return };
        f.step = CmdStep::Checking;
        let request_id = request_id(&f.req);
        let call = if is_answer(&f.req) {
            IpeCall::GetDeviceRequest { request_id }
        } else {
            IpeCall::GetRequest { request_id }
        };
        self.commands.push_back(CmdCommand::QueryKnown { key: key.to_owned(), call });
    }

    fn on_known(&mut self, now: UnixMillis, key: String, result: Result<Known, LedgerFailure>) {
        let Some(f) = self.flights.get_mut(&key) else { return };
        if f.step != CmdStep::Checking {
            return;
        }
        match result {
            Err(_) => {
                f.failures = f.failures.saturating_add(1);
                let t = now.plus_ms(retry_after_ms(QUERY_RETRY_MS, f.failures));
                f.step = CmdStep::CheckAgainAt(t);
                self.wakes.insert((t, key));
            }
            Ok(Known::Done) => self.done(&key),
            Ok(Known::No) => {
                if let Some(f) = self.flights.remove(&key) {
                    self.decide(key, f.req);
                }
            }
            Ok(Known::Request { originator, endpoint, ae_id, op }) => {
                let Some(f) = self.flights.remove(&key) else { return };
                match cmd_submission(&f.req, &self.no_creator) {
                    CmdSubmission::Submit(IpeCall::SubmitRequest(a))
                        if a.originator != originator
                            || a.op != op
                            || (a.endpoint != endpoint && a.endpoint != ae_id) =>
                    {
                        // Another request used the id first: refused as the contract refuses it.
                        self.reject(&f.req, 409, &ipe::request_id_used(&a.request_id));
                        self.remember(key);
                    }
                    // This contentInstance's own request, submitted in an earlier life.
                    CmdSubmission::Submit(_) => self.remember(key),
                    // Never submittable (no creator, unreadable): rejected, whoever used the id.
                    CmdSubmission::Reject { .. } | CmdSubmission::Refused { .. } => self.decide(key, f.req),
                }
            }
        }
    }

    /// The validity check: submit, or answer `rejected`.
    fn decide(&mut self, key: String, req: Box<CmdRequest>) {
        match cmd_submission(&req, &self.no_creator) {
            CmdSubmission::Reject { status, message } => {
                self.reject(&req, status, &message);
                self.remember(key);
            }
            CmdSubmission::Refused { status, message } => {
                self.refused(&req, status, message);
                self.remember(key);
            }
            CmdSubmission::Submit(call) => {
                self.commands.push_back(CmdCommand::Submit { key: key.clone(), call: call.clone() });
                self.flights.insert(
                    key,
                    CmdFlight {
                        req,
                        step: CmdStep::Submitting,
                        call: Some(call),
                        uncertain: false,
                        failures: 0,
                    },
                );
            }
        }
    }

    fn on_submitted(&mut self, now: UnixMillis, key: &str, result: CmdSubmitResult) {
        let Some(f) = self.flights.get_mut(key) else { return };
        if f.step != CmdStep::Submitting {
            return;
        }
        match result {
            CmdSubmitResult::Committed => {
                let (ae_id, request_id) = (f.req.ae_id.clone(), request_id(&f.req));
                self.commands.push_back(CmdCommand::Outcome {
                    ae_id,
                    request_id,
                    outcome: CmdOutcome::Submitted,
                });
                self.done(key);
            }
            // An earlier attempt that "failed" committed after all: this is not a second request.
            CmdSubmitResult::Refused { status: 409, .. } if f.uncertain => {
                let (ae_id, request_id) = (f.req.ae_id.clone(), request_id(&f.req));
                self.commands.push_back(CmdCommand::Outcome {
                    ae_id,
                    request_id,
                    outcome: CmdOutcome::Submitted,
                });
                self.done(key);
            }
            CmdSubmitResult::Refused { status, message } => {
                let req = f.req.clone();
                self.refused(&req, status, message);
                self.done(key);
            }
            CmdSubmitResult::Failed(_) => {
                f.uncertain = true;
                f.failures = f.failures.saturating_add(1);
                let t = now.plus_ms(retry_after_ms(SUBMIT_RETRY_MS, f.failures));
                f.step = CmdStep::SubmitAgainAt(t);
                self.wakes.insert((t, key.to_owned()));
            }
        }
    }

    fn on_timer(&mut self, now: UnixMillis) {
        // A flight leaves a retry step only here (or is not in one when it ends), so the index pops exactly the
        // flights that are due.
        let mut due: Vec<(String, CmdStep)> = take_due(&mut self.wakes, now)
            .into_iter()
            .filter_map(|key| self.flights.get(&key).map(|f| (key, f.step)))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0)); // deterministic order
        for (key, step) in due {
            match step {
                CmdStep::CheckAgainAt(_) => self.query(&key),
                CmdStep::SubmitAgainAt(_) => {
                    if let Some(f) = self.flights.get_mut(&key)
                        && let Some(call) = f.call.clone()
                    {
                        f.step = CmdStep::Submitting;
                        self.commands.push_back(CmdCommand::Submit { key: key.clone(), call });
                    }
                }
                _ => {}
            }
        }
    }

    /// A refusal: a request is answered `rejected`; an answer is only reported.
    fn refused(&mut self, req: &CmdRequest, status: i32, message: String) {
        if is_answer(req) {
            self.commands.push_back(CmdCommand::Outcome {
                ae_id: req.ae_id.clone(),
                request_id: request_id(req),
                outcome: CmdOutcome::AnswerRefused { status, message },
            });
        } else {
            self.reject(req, status, &message);
        }
    }

    fn reject(&mut self, req: &CmdRequest, status: i32, message: &str) {
        let id = request_id(req);
        let originator = req.originator.clone().unwrap_or_default();
        let cin = ipe::mapping::rejection_cin(&req.ae_id, &id, &originator, status, message);
        let rn = format!("rej-{}", cin_name(if id.is_empty() { "none" } else { &id }));
        self.commands.push_back(CmdCommand::WriteCin { ae_id: req.ae_id.clone(), cin, rn });
    }

    fn done(&mut self, key: &str) {
        self.flights.remove(key);
        self.remember(key.to_owned());
    }

    /// Keeps the key of a finished contentInstance among the last [`REMEMBERED_CINS`].
    fn remember(&mut self, key: String) {
        self.seen.insert(key.clone());
        self.seen_order.push_back(key);
        while self.seen_order.len() > REMEMBERED_CINS {
            if let Some(old) = self.seen_order.pop_front()
                && !self.flights.contains_key(&old)
            {
                self.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests;
