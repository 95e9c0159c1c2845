//! Deterministic tests of the `cmd` core against a scripted world: a CSE whose `cmd` containers survive a crash,
//! a ledger that refuses a request id it has seen (409, as the contract does) and a device it does not know
//! (404), an `rsp` container where a contentInstance is stored once per name. A crash drops the core and
//! everything in flight (notifications not yet handled are lost: the CSE does not send them again); the next
//! life scans the backlog of every `cmd` container.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet, VecDeque};

use ipe::IpeCall;
use ipe::mapping::Cin;
use serde_json::{Value as Json, json};

use super::{CmdCommand, CmdCore, CmdInput, CmdOutcome, CmdSubmitResult, Known, cin_key};
use crate::core::{LedgerFailure, SUBMIT_RETRY_MS, UnixMillis};
use crate::onem2m_side::CmdRequest;

const NO_CREATOR: &str = "no creator";

fn cin(ri: &str, originator: Option<&str>, con: Json) -> CmdRequest {
    CmdRequest {
        ae_id: "Cdev1".into(),
        originator: originator.map(str::to_owned),
        con,
        rn: Some(format!("rn-{ri}")),
        ri: Some(ri.into()),
    }
}

fn read(ri: &str, id: &str) -> CmdRequest {
    cin(ri, Some("Capp1"), json!({"request_id": id, "op": "read", "path": "/3303/0/5700"}))
}

fn answer(ri: &str, id: &str) -> CmdRequest {
    cin(ri, Some("Capp1"), json!({"op": "answer", "request_id": id, "status": "ok", "content": {"sp": 21}}))
}

/// A contentInstance and how it reaches the gateway in its first life.
#[derive(Clone)]
struct Written {
    req: CmdRequest,
    /// Written while the gateway was down (found by the backlog scan), else notified.
    before_start: bool,
    /// Notified twice.
    duplicate: bool,
}

fn live(req: CmdRequest) -> Written {
    Written { req, before_start: false, duplicate: false }
}

#[derive(Default)]
struct World {
    cins: Vec<Written>,
    /// `submit_request`s committed: request id → originator.
    requests: HashMap<String, String>,
    /// What each committed request asks: request id → (device, operation).
    asks: HashMap<String, (String, ipe::Operation)>,
    /// Device requests open on the ledger, and their answers (id → answering originator).
    device_requests: HashSet<String>,
    device_answers: HashMap<String, String>,
    /// Endpoints the ledger knows.
    devices: HashSet<String>,
    /// Submissions that reached the ledger (committed or refused), per request id.
    submitted: HashMap<String, usize>,
    /// contentInstances in `rsp` by name (a second create of a name is 4105: not stored).
    rsp: HashMap<String, Cin>,
    outcomes: Vec<CmdOutcome>,
    now: i64,
    /// Faults: queries and submissions failing; failing submissions that committed all the same.
    query_failures: usize,
    submit_failures: usize,
    failures_commit: bool,
    boundaries: usize,
    lives: usize,
}

impl World {
    fn new(cins: Vec<Written>) -> World {
        let mut w = World { cins, now: 100_000, ..World::default() };
        w.devices.insert("Cdev1".into());
        w.device_requests.insert("gw1-d-1".into());
        // A request id some application used before (through the SDK).
        w.requests.insert("used-1".into(), "Cother".into());
        w.asks.insert("used-1".into(), ("Cdev1".into(), ipe::Operation::Read));
        w
    }

    fn now(&self) -> UnixMillis {
        UnixMillis(self.now)
    }

    /// The ledger's side of a submission (the contract's checks, in its order).
    fn commit(&mut self, call: &IpeCall) -> CmdSubmitResult {
        match call {
            IpeCall::SubmitRequest(a) => {
                *self.submitted.entry(a.request_id.clone()).or_default() += 1;
                if self.requests.contains_key(&a.request_id) {
                    return CmdSubmitResult::Refused {
                        status: 409,
                        message: ipe::request_id_used(&a.request_id),
                    };
                }
                if !self.devices.contains(&a.endpoint) {
                    return CmdSubmitResult::Refused { status: 404, message: "no such device".into() };
                }
                self.requests.insert(a.request_id.clone(), a.originator.clone());
                self.asks.insert(a.request_id.clone(), (a.endpoint.clone(), a.op));
                CmdSubmitResult::Committed
            }
            IpeCall::AnswerDeviceRequest(a) => {
                *self.submitted.entry(a.request_id.clone()).or_default() += 1;
                if !self.device_requests.contains(&a.request_id) {
                    return CmdSubmitResult::Refused {
                        status: 404,
                        message: "no such device request".into(),
                    };
                }
                if self.device_answers.contains_key(&a.request_id) {
                    return CmdSubmitResult::Refused { status: 409, message: "answered already".into() };
                }
                self.device_answers.insert(a.request_id.clone(), a.originator.clone().unwrap_or_default());
                CmdSubmitResult::Committed
            }
            other => panic!("unexpected submission {other:?}"),
        }
    }

    fn execute(&mut self, cmd: CmdCommand) -> Option<CmdInput> {
        match cmd {
            CmdCommand::QueryKnown { key, call } => {
                let result = if self.query_failures > 0 {
                    self.query_failures -= 1;
                    Err(LedgerFailure("unavailable".into()))
                } else {
                    match call {
                        IpeCall::GetRequest { request_id } => Ok(match self.requests.get(&request_id) {
                            None => Known::No,
                            Some(originator) => {
                                let (endpoint, op) = self.asks[&request_id].clone();
                                let ae_id = endpoint.clone();
                                Known::Request { originator: originator.clone(), endpoint, ae_id, op }
                            }
                        }),
                        // An answer is known once the device request is answered (it exists before).
                        IpeCall::GetDeviceRequest { request_id } => {
                            Ok(if self.device_answers.contains_key(&request_id) {
                                Known::Done
                            } else {
                                Known::No
                            })
                        }
                        other => panic!("unexpected query {other:?}"),
                    }
                };
                Some(CmdInput::Known { key, result })
            }
            CmdCommand::Submit { key, call } => {
                let result = if self.submit_failures > 0 {
                    self.submit_failures -= 1;
                    if self.failures_commit {
                        self.commit(&call);
                    }
                    CmdSubmitResult::Failed(LedgerFailure("unavailable".into()))
                } else {
                    self.commit(&call)
                };
                Some(CmdInput::Submitted { key, result })
            }
            CmdCommand::WriteCin { ae_id, cin, rn } => {
                assert_eq!(cin.container, format!("{ae_id}/rsp"));
                self.rsp.entry(rn).or_insert(cin);
                None
            }
            CmdCommand::Outcome { outcome, .. } => {
                self.outcomes.push(outcome);
                None
            }
        }
    }

    /// One life: the backlog scan (every contentInstance in the CSE after a crash; those written before the
    /// start in the first life) and, in the first life, the live notifications. Runs until nothing is left,
    /// or crashes at the boundary numbered `crash_at` (counted across lives).
    fn life(&mut self, crash_at: Option<usize>) -> bool {
        let first = self.lives == 0;
        self.lives += 1;
        let mut core = CmdCore::new(NO_CREATOR);
        let mut inputs: VecDeque<CmdInput> = VecDeque::new();
        for w in &self.cins {
            if !first || w.before_start {
                inputs.push_back(CmdInput::Backlog(Box::new(w.req.clone())));
            }
        }
        if first {
            for w in self.cins.iter().filter(|w| !w.before_start) {
                inputs.push_back(CmdInput::Notified(Box::new(w.req.clone())));
                if w.duplicate {
                    inputs.push_back(CmdInput::Notified(Box::new(w.req.clone())));
                }
            }
        }
        loop {
            let input = match inputs.pop_front() {
                Some(i) => i,
                None => match core.poll_timeout() {
                    Some(t) => {
                        self.now = self.now.max(t.0);
                        CmdInput::Timer
                    }
                    None => break,
                },
            };
            core.handle(self.now(), input);
            assert_eq!(core.poll_timeout(), core.scanned_timeout(), "the wake-up index is every flight's");
            while let Some(cmd) = core.poll_command() {
                if self.boundary(crash_at) {
                    return true;
                }
                let result = self.execute(cmd);
                if self.boundary(crash_at) {
                    return true;
                }
                inputs.extend(result);
            }
        }
        assert_eq!(core.in_flight(), 0);
        false
    }

    fn boundary(&mut self, crash_at: Option<usize>) -> bool {
        let here = self.boundaries;
        self.boundaries += 1;
        crash_at == Some(here)
    }

    fn run(&mut self, crashes: &[usize]) {
        for &k in crashes {
            self.life(Some(k));
        }
        assert!(!self.life(None));
    }

    fn rejection(&self, id: &str) -> Option<&Cin> {
        self.rsp.get(&format!("rej-{id}"))
    }
}

/// The scenario of the crash tests: requests notified (one twice), one written while the gateway was down, an
/// answer to a device's request, a request without a creator, unreadable content, an unknown device, and a
/// request under an id another application used before.
fn scenario() -> Vec<Written> {
    vec![
        live(read("ri1", "a1")),
        Written { req: read("ri2", "a2"), before_start: false, duplicate: true },
        Written { req: read("ri3", "a3"), before_start: true, duplicate: false },
        live(answer("ri4", "gw1-d-1")),
        live(cin("ri5", None, json!({"request_id": "a5", "op": "read", "path": "/3303/0/5700"}))),
        live(cin("ri6", Some("Capp1"), json!({"request_id": "a6", "op": "fly", "path": "/3303/0/5700"}))),
        live(CmdRequest {
            ae_id: "Cgone".into(),
            ..cin("ri7", Some("Capp1"), json!({"request_id": "a7", "op": "read", "path": "/3/0/0"}))
        }),
        live(read("ri8", "used-1")),
    ]
}

/// What must hold at the end, crashes or not: each valid request is on the ledger once, as its creator, with no
/// rejection; the answer is on the ledger once; each invalid one has its rejection and nothing on the ledger.
fn check(w: &World, what: &str) {
    for id in ["a1", "a2", "a3"] {
        assert_eq!(w.requests.get(id).map(String::as_str), Some("Capp1"), "{what}: {id} on the ledger");
        assert!(w.rejection(id).is_none(), "{what}: {id} was rejected");
    }
    assert_eq!(w.device_answers.get("gw1-d-1").map(String::as_str), Some("Capp1"), "{what}: the answer");
    assert!(w.rejection("gw1-d-1").is_none(), "{what}: an answer is never rejected");
    let rej =
        |id: &str| -> &Json { &w.rejection(id).unwrap_or_else(|| panic!("{what}: {id} not rejected")).con };
    assert_eq!((rej("a5")["rsc"].as_u64(), rej("a5")["message"].as_str()), (Some(4000), Some(NO_CREATOR)));
    assert_eq!(rej("a6")["rsc"].as_u64(), Some(4000), "{what}: unreadable");
    assert_eq!(rej("a7")["rsc"].as_u64(), Some(4004), "{what}: unknown device");
    for id in ["a5", "a6", "a7"] {
        assert!(!w.requests.contains_key(id), "{what}: {id} committed");
    }
    let used = rej("used-1");
    assert_eq!(used["rsc"].as_u64(), Some(4105), "{what}: an id used before");
    assert_eq!(used["message"].as_str(), Some(ipe::request_id_used("used-1").as_str()), "{what}");
    assert_eq!(w.requests["used-1"], "Cother", "{what}: the earlier request stays");
    assert_eq!(w.rsp.len(), 4, "{what}: only the four rejections: {:?}", w.rsp.keys());
}

#[test]
fn the_cmd_flow_submits_valid_requests_once_and_rejects_the_others() {
    let mut w = World::new(scenario());
    w.run(&[]);
    check(&w, "no crash");
    // The duplicate notification and the scan reached the ledger once each, and nothing was refused 409.
    for id in ["a1", "a2", "a3", "gw1-d-1"] {
        assert_eq!(w.submitted[id], 1, "{id} submitted once");
    }
    assert!(!w.submitted.contains_key("a5"), "no creator: never submitted");
    assert!(!w.submitted.contains_key("a6"), "unreadable: never submitted");
    assert_eq!(w.outcomes.iter().filter(|o| **o == CmdOutcome::Submitted).count(), 4);
}

#[test]
fn a_duplicate_cmd_notification_submits_once() {
    let r = read("ri1", "a1");
    let mut core = CmdCore::new(NO_CREATOR);
    let mut w = World::new(Vec::new());
    let now = w.now();
    core.handle(now, CmdInput::Notified(Box::new(r.clone())));
    let Some(CmdCommand::Submit { key, call }) = core.poll_command() else { panic!("not submitted") };
    assert_eq!(key, cin_key(&r));
    // Again while the first is in flight, and again after it committed.
    core.handle(now, CmdInput::Notified(Box::new(r.clone())));
    assert_eq!(core.poll_command(), None, "in flight: not submitted again");
    let result = w.commit(&call);
    core.handle(now, CmdInput::Submitted { key, result });
    assert!(matches!(core.poll_command(), Some(CmdCommand::Outcome { outcome: CmdOutcome::Submitted, .. })));
    core.handle(now, CmdInput::Notified(Box::new(r.clone())));
    core.handle(now, CmdInput::Backlog(Box::new(r)));
    assert_eq!(core.poll_command(), None, "done: neither the notification nor the scan submits it again");
    assert_eq!(w.submitted["a1"], 1);
    assert!(w.rsp.is_empty(), "no rejection (a second submission would have been refused 409 and rejected)");
}

#[test]
fn a_cin_notified_while_the_scan_asks_about_it_is_submitted_once() {
    let r = read("ri1", "a1");
    let mut core = CmdCore::new(NO_CREATOR);
    core.handle(UnixMillis(0), CmdInput::Backlog(Box::new(r.clone())));
    let Some(CmdCommand::QueryKnown { key, call: IpeCall::GetRequest { request_id } }) = core.poll_command()
    else {
        panic!("not looked up")
    };
    assert_eq!(request_id, "a1");
    core.handle(UnixMillis(0), CmdInput::Notified(Box::new(r)));
    assert_eq!(core.poll_command(), None);
    core.handle(UnixMillis(0), CmdInput::Known { key: key.clone(), result: Ok(Known::No) });
    assert!(matches!(core.poll_command(), Some(CmdCommand::Submit { key: k, .. }) if k == key));
    assert_eq!(core.poll_command(), None);
}

#[test]
fn a_request_id_used_before_is_rejected_409_and_a_backlog_cin_the_ledger_knows_is_skipped() {
    let mut w = World::new(vec![
        live(read("ri1", "used-1")),
        Written { req: read("ri2", "a2"), before_start: true, duplicate: false },
    ]);
    w.requests.insert("a2".into(), "Capp1".into()); // submitted in an earlier life
    w.asks.insert("a2".into(), ("Cdev1".into(), ipe::Operation::Read));
    w.run(&[]);
    let rej = &w.rejection("used-1").expect("rejected").con;
    assert_eq!(rej["rsc"].as_u64(), Some(4105));
    assert_eq!(w.requests["used-1"], "Cother", "the earlier request stays");
    assert!(!w.submitted.contains_key("a2"), "known: not submitted again");
    assert!(w.rejection("a2").is_none());
}

#[test]
fn the_cmd_flow_survives_a_crash_at_every_command_boundary() {
    let mut clean = World::new(scenario());
    clean.run(&[]);
    let n = clean.boundaries;
    assert!(n > 10, "{n}");
    let mut runs = 0;
    for k in 0..n {
        let mut w = World::new(scenario());
        w.run(&[k]);
        check(&w, &format!("crash at boundary {k}"));
        // And a second crash anywhere in the next life.
        let mut probe = World::new(scenario());
        probe.life(Some(k));
        probe.life(None);
        for k2 in k + 1..probe.boundaries {
            let mut w = World::new(scenario());
            w.run(&[k, k2]);
            check(&w, &format!("crash at boundaries {k} and {k2}"));
            runs += 1;
        }
    }
    assert!(runs > 100, "{runs}");
}

#[test]
fn a_slow_ledger_is_submitted_to_again_and_a_409_after_a_failure_that_committed_is_no_rejection() {
    for failures_commit in [false, true] {
        let mut w = World::new(scenario());
        w.submit_failures = 3;
        w.query_failures = 2;
        w.failures_commit = failures_commit;
        let start = w.now;
        w.run(&[]);
        check(&w, &format!("slow ledger (failures commit: {failures_commit})"));
        assert!(w.now >= start + SUBMIT_RETRY_MS, "waited before submitting again");
        if failures_commit {
            assert!(w.submitted.values().any(|&n| n > 1), "a request was submitted again after it committed");
        }
    }
}

#[test]
fn a_slow_ledger_with_a_crash_at_every_boundary_still_submits_each_request_once() {
    let world = || {
        let mut w = World::new(scenario());
        w.submit_failures = 2;
        w.query_failures = 1;
        w.failures_commit = true;
        w
    };
    let mut probe = world();
    probe.run(&[]);
    for k in 0..probe.boundaries {
        let mut w = world();
        w.run(&[k]);
        check(&w, &format!("slow ledger, crash at {k}"));
    }
}

#[test]
fn a_refused_answer_is_reported_not_rejected() {
    let mut w = World::new(vec![live(answer("ri1", "gw1-d-404"))]);
    w.run(&[]);
    assert!(w.rsp.is_empty());
    assert!(matches!(&w.outcomes[..], [CmdOutcome::AnswerRefused { status: 404, .. }]), "{:?}", w.outcomes);
}

/// After a restart the scan tells a contentInstance's own request on the ledger from an earlier request that used
/// its id: another originator, another operation or another device is a second request (rejected 409, as the
/// contract refuses it); the same ones are its own, submitted before the crash (nothing to do).
#[test]
fn the_scan_rejects_a_second_request_under_a_used_id_and_skips_its_own() {
    let write = |ri: &str, id: &str| {
        cin(
            ri,
            Some("Capp1"),
            json!({"request_id": id, "op": "write", "path": "/3303/0/5750", "content": {"v": "x"}}),
        )
    };
    // What the contentInstance asks, and who used its id first for what (none: its own request).
    let cases = vec![
        ("its own", read("ri1", "b1"), None::<(&str, &str, ipe::Operation)>),
        ("another originator", read("ri2", "b2"), Some(("b2", "Cother", ipe::Operation::Read))),
        ("another operation", write("ri3", "b3"), Some(("b3", "Capp1", ipe::Operation::Read))),
    ];
    for (what, req, earlier) in cases {
        let mut w = World::new(vec![Written { req: req.clone(), before_start: true, duplicate: false }]);
        let id = req.con["request_id"].as_str().unwrap().to_owned();
        match earlier {
            Some((id, originator, op)) => {
                w.requests.insert(id.into(), originator.into());
                w.asks.insert(id.into(), ("Cdev1".into(), op));
            }
            None => {
                w.requests.insert(id.clone(), "Capp1".into());
                w.asks.insert(id.clone(), ("Cdev1".into(), ipe::Operation::Read));
            }
        }
        w.run(&[]);
        assert!(!w.submitted.contains_key(&id), "{what}: the scan does not submit a known id");
        match earlier {
            Some((_, originator, _)) => {
                let rej = &w.rejection(&id).unwrap_or_else(|| panic!("{what}: not rejected")).con;
                assert_eq!(rej["rsc"].as_u64(), Some(4105), "{what}");
                assert_eq!(w.requests[&id], originator, "{what}: the earlier request stays");
            }
            None => assert!(w.rsp.is_empty(), "{what}: its own request is not rejected"),
        }
    }
}
