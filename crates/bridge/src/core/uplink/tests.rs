//! Deterministic tests of the uplink core: per-device ordering, the observation bookkeeping, and devices'
//! requests with their timers, against a scripted ledger and a journal that survives crashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use ipe::IpeCall;
use lwm2m::codec::Record;
use lwm2m::ops::ResponseCode;
use lwm2m::{LwM2mPath, Value};
use lwm2m_server::{ClientInfo, SendAnswer, SendReceipt, ServerEvent};
use serde_json::json;

use super::{
    ANSWER_WRITE_ATTEMPTS, DREQ_MARGIN_S, UplinkCommand, UplinkCore, UplinkInput, UplinkOutcome,
    UplinkSubmitResult, WriteResult,
};
use crate::core::{LedgerFailure, SUBMIT_RETRY_MS, UnixMillis};
use crate::journal::Entry;

fn client(ep: &str) -> Arc<ClientInfo> {
    Arc::new(ClientInfo {
        endpoint: ep.into(),
        registration_id: format!("reg-{ep}"),
        address: "127.0.0.1:5683".parse().unwrap(),
        lifetime: 300,
        version: lwm2m::registration::LwM2mVersion::V1_1,
        binding: "U".into(),
        queue_mode: false,
        root_path: "/".into(),
        links: Vec::new(),
        objects: Vec::new(),
        supported_formats: Vec::new(),
        registered_at: SystemTime::UNIX_EPOCH,
        last_update: SystemTime::UNIX_EPOCH,
        identity: None,
    })
}

fn path(s: &str) -> LwM2mPath {
    s.parse().unwrap()
}

fn notify(ep: &str, p: &str) -> ServerEvent {
    ServerEvent::Notification {
        endpoint: ep.into(),
        path: path(p),
        code: ResponseCode::from_byte(0x45),
        records: vec![Record::new(path(p), Value::Float(21.5))],
    }
}

fn ask(ep: &str) -> ServerEvent {
    ServerEvent::Send {
        endpoint: ep.into(),
        records: vec![
            Record::new(path("/32769/0/0"), Value::String("config".into())),
            Record::new(path("/32769/0/2"), Value::String("{\"ask\": \"setpoint\"}".into())),
        ],
        receipt: None,
    }
}

/// A Send of a value and a request to the application, waiting for receipt `n`.
fn send_with_receipt(ep: &str, n: u64) -> ServerEvent {
    let ServerEvent::Send { endpoint, mut records, .. } = ask(ep) else { unreachable!() };
    records.push(Record::new(path("/3303/0/5700"), Value::Float(21.5)));
    ServerEvent::Send { endpoint, records, receipt: Some(SendReceipt(n)) }
}

fn answers(cmds: &[UplinkCommand]) -> Vec<(u64, SendAnswer)> {
    cmds.iter()
        .filter_map(|c| match c {
            UplinkCommand::AnswerSend { receipt, answer } => Some((receipt.number(), answer.clone())),
            _ => None,
        })
        .collect()
}

fn core() -> UplinkCore {
    UplinkCore::new("gw1", "b0", 60, Vec::new())
}

fn drain(core: &mut UplinkCore) -> Vec<UplinkCommand> {
    std::iter::from_fn(|| core.poll_command()).collect()
}

fn submits(cmds: &[UplinkCommand]) -> Vec<(String, &'static str)> {
    cmds.iter()
        .filter_map(|c| match c {
            UplinkCommand::Submit { endpoint, call } => Some((endpoint.clone(), call.function())),
            _ => None,
        })
        .collect()
}

fn committed() -> UplinkInput {
    UplinkInput::Submitted {
        endpoint: "dev1".into(),
        result: UplinkSubmitResult::Committed(Some(b"{}".to_vec())),
    }
}

#[test]
fn a_device_s_events_are_submitted_one_at_a_time_in_order_and_devices_in_parallel() {
    let mut c = core();
    let now = UnixMillis(0);
    c.handle(now, UplinkInput::Server(ServerEvent::Registered(client("dev1"))));
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5700")));
    c.handle(now, UplinkInput::Server(ServerEvent::Registered(client("dev2"))));
    c.handle(
        now,
        UplinkInput::Server(ServerEvent::Deregistered {
            endpoint: "dev1".into(),
            registration_id: "r".into(),
        }),
    );
    let first = drain(&mut c);
    assert_eq!(
        submits(&first),
        vec![("dev1".into(), "register_device"), ("dev2".into(), "register_device")],
        "dev1's report waits for its registration; dev2 does not wait for dev1"
    );
    assert_eq!(c.events_pending(), 4);
    c.handle(now, committed());
    let second = drain(&mut c);
    assert_eq!(
        second[0],
        UplinkCommand::Outcome { subject: "dev1".into(), outcome: UplinkOutcome::Recorded }
    );
    assert_eq!(submits(&second), vec![("dev1".into(), "report")]);
    c.handle(now, committed());
    let third = drain(&mut c);
    assert_eq!(submits(&third), vec![("dev1".into(), "deregister_device")]);
    // A 404 for the de-registration is fine (the ledger never had it).
    c.handle(
        now,
        UplinkInput::Submitted {
            endpoint: "dev1".into(),
            result: UplinkSubmitResult::Refused { status: 404, message: "no device".into() },
        },
    );
    assert_eq!(
        drain(&mut c),
        vec![UplinkCommand::Outcome { subject: "dev1".into(), outcome: UplinkOutcome::Recorded }]
    );
    assert_eq!(c.events_pending(), 1, "dev2's registration");
}

#[test]
fn an_update_of_a_device_the_ledger_does_not_know_registers_it() {
    let mut c = core();
    let now = UnixMillis(0);
    c.handle(now, UplinkInput::Server(ServerEvent::Updated(client("dev1"))));
    assert_eq!(submits(&drain(&mut c)), vec![("dev1".into(), "update_device")]);
    c.handle(
        now,
        UplinkInput::Submitted {
            endpoint: "dev1".into(),
            result: UplinkSubmitResult::Refused { status: 404, message: "no device".into() },
        },
    );
    assert_eq!(submits(&drain(&mut c)), vec![("dev1".into(), "register_device")]);
    c.handle(now, committed());
    assert_eq!(
        drain(&mut c),
        vec![UplinkCommand::Outcome { subject: "dev1".into(), outcome: UplinkOutcome::Recorded }]
    );
}

#[test]
fn a_failed_event_is_reported_and_the_device_s_next_event_goes_on() {
    let mut c = core();
    let now = UnixMillis(0);
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5700")));
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5701")));
    drain(&mut c);
    c.handle(
        now,
        UplinkInput::Submitted {
            endpoint: "dev1".into(),
            result: UplinkSubmitResult::Failed(LedgerFailure("down".into())),
        },
    );
    let cmds = drain(&mut c);
    assert!(
        matches!(&cmds[0], UplinkCommand::Outcome { outcome: UplinkOutcome::NotRecorded(_), .. }),
        "{cmds:?}"
    );
    assert_eq!(submits(&cmds), vec![("dev1".into(), "report")]);
}

fn report_of(cmds: &[UplinkCommand]) -> ipe::model::ReportArgs {
    cmds.iter()
        .find_map(|c| match c {
            UplinkCommand::Submit { call: IpeCall::Report(r), .. } => Some(r.clone()),
            _ => None,
        })
        .expect("a report")
}

#[test]
fn a_notification_names_its_observe_request_until_cancelled_or_deregistered() {
    let mut c = core();
    let now = UnixMillis(0);
    let p = path("/3303/0/5700");
    c.handle(now, UplinkInput::Observed { endpoint: "dev1".into(), path: p, request_id: "obs-1".into() });
    c.handle(now, UplinkInput::Observed { endpoint: "dev2".into(), path: p, request_id: "obs-2".into() });
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5700")));
    let r = report_of(&drain(&mut c));
    assert_eq!((r.kind.as_str(), r.observe_request_id.as_deref()), ("notify", Some("obs-1")));
    assert_eq!(r.report_id, "gw1-n-b0-0");
    c.handle(now, committed());
    drain(&mut c);
    // Another path of the same device: no observe request.
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5701")));
    assert_eq!(report_of(&drain(&mut c)).observe_request_id, None);
    c.handle(now, committed());
    drain(&mut c);
    // De-registered: forgotten (dev2's observation stays).
    c.handle(
        now,
        UplinkInput::Server(ServerEvent::Deregistered {
            endpoint: "dev1".into(),
            registration_id: "r".into(),
        }),
    );
    drain(&mut c);
    assert_eq!(c.observation("dev1", p), None, "forgotten when the de-registration is handled");
    assert_eq!(c.observation("dev2", p), Some("obs-2"));
    c.handle(now, committed());
    drain(&mut c);
    c.handle(now, UplinkInput::Server(notify("dev1", "/3303/0/5700")));
    assert_eq!(report_of(&drain(&mut c)).observe_request_id, None);
    c.handle(now, UplinkInput::ObserveCancelled { endpoint: "dev2".into(), path: p });
    assert_eq!(c.observation("dev2", p), None);
}

/// Runs a device request's steps: the durable journal entry first, then the submission.
#[test]
fn a_device_request_is_journaled_before_it_is_submitted_and_times_out_exactly_once() {
    let mut c = core();
    let now = UnixMillis(1_000_000);
    c.handle(now, UplinkInput::Server(ask("dev1")));
    let est = 1000 + 60 + DREQ_MARGIN_S;
    assert_eq!(
        drain(&mut c),
        vec![UplinkCommand::Journal {
            endpoint: "dev1".into(),
            entry: Entry::Dreq { id: "gw1-d-b0-0".into(), exp: est },
            durable: true
        }],
        "journaled first"
    );
    c.handle(now, UplinkInput::Journaled { endpoint: "dev1".into(), result: Ok(()) });
    let cmds = drain(&mut c);
    let Some(UplinkCommand::Submit { call: IpeCall::DeviceRequest(a), .. }) = cmds.first() else {
        panic!("{cmds:?}")
    };
    assert_eq!((a.topic.as_str(), a.timeout), ("config", Some(60)));
    // The contract's expiry replaces the estimate.
    let rec = serde_json::to_vec(&json!({"request_id": a.request_id, "expires_at": 1062})).unwrap();
    c.handle(
        now,
        UplinkInput::Submitted { endpoint: "dev1".into(), result: UplinkSubmitResult::Committed(Some(rec)) },
    );
    let cmds = drain(&mut c);
    assert!(cmds.contains(&UplinkCommand::Journal {
        endpoint: "dev1".into(),
        entry: Entry::Dreq { id: "gw1-d-b0-0".into(), exp: 1062 },
        durable: false
    }));
    assert_eq!(c.poll_timeout(), Some(UnixMillis(1_063_000)));
    c.handle(UnixMillis(1_062_999), UplinkInput::Timer);
    assert_eq!(drain(&mut c), vec![], "not before its time");
    c.handle(UnixMillis(1_063_000), UplinkInput::Timer);
    let cmds = drain(&mut c);
    let [UplinkCommand::SubmitTimeout { request_id, call: IpeCall::AnswerDeviceRequest(t) }] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!((request_id.as_str(), t.status.as_str()), ("gw1-d-b0-0", "timeout"));
    c.handle(UnixMillis(1_063_001), UplinkInput::Timer);
    assert_eq!(drain(&mut c), vec![], "in flight: not submitted twice");
    // The ledger is slow: submitted again after a while, then committed once.
    c.handle(
        UnixMillis(1_063_010),
        UplinkInput::TimeoutSubmitted {
            request_id: request_id.clone(),
            result: UplinkSubmitResult::Failed(LedgerFailure("down".into())),
        },
    );
    assert_eq!(c.poll_timeout(), Some(UnixMillis(1_063_010 + SUBMIT_RETRY_MS)));
    c.handle(UnixMillis(1_063_010 + SUBMIT_RETRY_MS), UplinkInput::Timer);
    assert_eq!(drain(&mut c).len(), 1);
    c.handle(
        UnixMillis(1_063_600),
        UplinkInput::TimeoutSubmitted {
            request_id: request_id.clone(),
            result: UplinkSubmitResult::Committed(None),
        },
    );
    assert_eq!(
        drain(&mut c),
        vec![UplinkCommand::Outcome { subject: request_id.clone(), outcome: UplinkOutcome::TimedOut }]
    );
    assert_eq!((c.poll_timeout(), c.device_requests_open()), (None, 0));
    c.handle(UnixMillis(2_000_000), UplinkInput::Timer);
    assert_eq!(drain(&mut c), vec![], "once");
}

/// The scripted world of the crash tests: a ledger of device requests and their answers, a journal whose
/// unsynced appends a crash loses.
#[derive(Default)]
struct World {
    now: i64,
    dreqs: HashMap<String, Option<String>>,
    journal: Vec<Entry>,
    unsynced: Vec<Entry>,
    boundaries: usize,
    timeouts_committed: usize,
    /// An application answers the device request before it expires.
    app_answers: bool,
    /// Reports committed.
    reports: usize,
    /// Sends the device heard 2.04 for (it stops sending once it has one).
    acked: usize,
    /// The application's answers on the ledger whose events the gateway has not reported delivered (a
    /// restart replays them from its checkpoint): (event position, device request).
    answer_events: Vec<(u64, String)>,
    /// Inputs the world produced besides a command's result (an answer event).
    fresh: Vec<UplinkInput>,
    /// Writes of answers to the device.
    writes: usize,
}

impl World {
    fn open_dreqs(&self) -> Vec<(String, i64)> {
        let mut open: Vec<(String, i64)> = Vec::new();
        for e in self.journal.iter().chain(&self.unsynced) {
            match e {
                Entry::Dreq { id, exp } => {
                    open.retain(|(o, _)| o != id);
                    open.push((id.clone(), *exp));
                }
                Entry::Done { id } => open.retain(|(o, _)| o != id),
                Entry::Op { .. } => {}
            }
        }
        open
    }

    fn execute(&mut self, cmd: UplinkCommand) -> Option<UplinkInput> {
        match cmd {
            UplinkCommand::Submit { endpoint, call: IpeCall::DeviceRequest(a) } => {
                let exp = self.now / 1000 + 60;
                self.dreqs.insert(a.request_id.clone(), None);
                if self.app_answers {
                    self.dreqs.insert(a.request_id.clone(), Some("ok".into()));
                    // Its answer's event reaches the gateway, which writes it to the device.
                    let seq = 100 + self.answer_events.len() as u64;
                    self.answer_events.push((seq, a.request_id.clone()));
                    self.fresh.push(answer_event(seq, &a.request_id));
                }
                let rec = serde_json::to_vec(&json!({"expires_at": exp})).unwrap();
                Some(UplinkInput::Submitted { endpoint, result: UplinkSubmitResult::Committed(Some(rec)) })
            }
            UplinkCommand::Submit { endpoint, call } => {
                if call.function() == "report" {
                    self.reports += 1;
                }
                Some(UplinkInput::Submitted { endpoint, result: UplinkSubmitResult::Committed(None) })
            }
            UplinkCommand::Journal { endpoint, entry, durable } => {
                if durable {
                    self.journal.append(&mut self.unsynced);
                    self.journal.push(entry);
                    Some(UplinkInput::Journaled { endpoint, result: Ok(()) })
                } else {
                    self.unsynced.push(entry);
                    None
                }
            }
            UplinkCommand::SubmitTimeout { request_id, .. } => {
                let result = match self.dreqs.get_mut(&request_id) {
                    None => UplinkSubmitResult::Refused { status: 404, message: "no device request".into() },
                    Some(Some(_)) => UplinkSubmitResult::Refused { status: 409, message: "answered".into() },
                    Some(a @ None) => {
                        *a = Some("timeout".into());
                        self.timeouts_committed += 1;
                        self.unsynced.push(Entry::Done { id: request_id.clone() }); // delivered
                        UplinkSubmitResult::Committed(None)
                    }
                };
                Some(UplinkInput::TimeoutSubmitted { request_id, result })
            }
            UplinkCommand::AnswerSend { answer, .. } => {
                assert_eq!(answer, SendAnswer::Recorded, "nothing fails in this world");
                // Acknowledged only with everything it carried on the ledger.
                assert!(self.reports > self.acked && self.dreqs.len() > self.acked, "acknowledged too early");
                self.acked += 1;
                None
            }
            UplinkCommand::WriteDevice { seq, .. } => {
                self.writes += 1;
                Some(UplinkInput::Written { seq, result: WriteResult::Written })
            }
            UplinkCommand::Delivered { seq } => {
                self.answer_events.retain(|(s, _)| *s != seq);
                None
            }
            UplinkCommand::Outcome { .. } => None,
        }
    }

    /// One life: the device Sends its value and its request (`send`), then time passes until every timer
    /// fired. Crashes at boundary `crash_at`.
    fn life(&mut self, send: bool, crash_at: Option<usize>) -> bool {
        let mut core = UplinkCore::new("gw1", "b0", 60, self.open_dreqs());
        let mut inputs: VecDeque<UplinkInput> = VecDeque::new();
        if send {
            inputs.push_back(UplinkInput::Server(send_with_receipt("dev1", 1)));
        }
        // The answers not reported delivered are replayed from the checkpoint.
        inputs.extend(self.answer_events.iter().map(|(seq, id)| answer_event(*seq, id)));
        loop {
            let input = match inputs.pop_front() {
                Some(i) => i,
                None => match core.poll_timeout() {
                    Some(t) => {
                        self.now = self.now.max(t.0);
                        UplinkInput::Timer
                    }
                    None => break,
                },
            };
            core.handle(UnixMillis(self.now), input);
            while let Some(cmd) = core.poll_command() {
                let here = self.boundaries;
                self.boundaries += 2;
                if crash_at == Some(here) {
                    self.unsynced.clear();
                    return true;
                }
                let r = self.execute(cmd);
                if crash_at == Some(here + 1) {
                    self.unsynced.clear();
                    self.fresh.clear();
                    return true;
                }
                inputs.extend(r);
                inputs.extend(self.fresh.drain(..));
            }
        }
        false
    }
}

/// A crash at every command boundary of a device's Send (a value and a request to the application): the
/// device hears 2.04 only with both on the ledger, and a Send it did not hear 2.04 for it sends again after the
/// restart, so nothing it sent is lost; every device request on the ledger is answered exactly once (by the
/// application or by its timer), and the journal ends closed.
#[test]
fn a_device_s_send_is_on_the_ledger_and_its_request_answered_exactly_once_whatever_the_crash() {
    for app_answers in [false, true] {
        let mut clean = World { now: 1_000_000, app_answers, ..World::default() };
        assert!(!clean.life(true, None));
        assert_eq!((clean.acked, clean.reports), (1, 1));
        assert_eq!(clean.timeouts_committed, usize::from(!app_answers));
        let n = clean.boundaries;
        assert!(n >= 8, "{n}");
        for k in 0..n {
            let mut w = World { now: 1_000_000, app_answers, ..World::default() };
            let crashed = w.life(true, Some(k));
            assert!(crashed);
            // The device sends again what it did not hear 2.04 for.
            let resend = w.acked == 0;
            assert!(!w.life(resend, None));
            assert_eq!(w.acked, 1, "crash at {k}: the device's Send is acknowledged once");
            assert!(w.reports >= 1 && !w.dreqs.is_empty(), "crash at {k}: what it sent is on the ledger");
            for (id, answer) in &w.dreqs {
                assert!(answer.is_some(), "crash at {k}: {id} left unanswered");
            }
            // One timeout per device request nobody answered (a resent Send is a second request).
            assert_eq!(w.timeouts_committed, if app_answers { 0 } else { w.dreqs.len() }, "crash at {k}");
            assert!(w.dreqs.len() <= 2, "crash at {k}");
            assert_eq!(w.answer_events, Vec::new(), "crash at {k}: every answer delivered");
            assert_eq!(w.writes >= w.dreqs.len(), app_answers, "crash at {k}: each answer written");
            assert_eq!(w.open_dreqs(), Vec::new(), "crash at {k}: the journal is closed");
        }
    }
}

#[test]
fn a_device_request_whose_submission_failed_is_closed_by_its_journaled_expiry() {
    for committed_anyway in [false, true] {
        let mut c = core();
        let now = UnixMillis(1_000_000);
        c.handle(now, UplinkInput::Server(ask("dev1")));
        drain(&mut c);
        c.handle(now, UplinkInput::Journaled { endpoint: "dev1".into(), result: Ok(()) });
        drain(&mut c);
        c.handle(
            now,
            UplinkInput::Submitted {
                endpoint: "dev1".into(),
                result: UplinkSubmitResult::Failed(LedgerFailure("timed out".into())),
            },
        );
        let cmds = drain(&mut c);
        assert!(matches!(&cmds[..], [UplinkCommand::Outcome { outcome: UplinkOutcome::NotRecorded(_), .. }]));
        // The estimate's timer stays: it may have committed.
        let due = UnixMillis::from_secs(1000 + 60 + DREQ_MARGIN_S + 1);
        assert_eq!(c.poll_timeout(), Some(due));
        c.handle(due, UplinkInput::Timer);
        let [UplinkCommand::SubmitTimeout { request_id, .. }] = &drain(&mut c)[..] else {
            panic!("no timeout")
        };
        let result = if committed_anyway {
            UplinkSubmitResult::Committed(None)
        } else {
            UplinkSubmitResult::Refused { status: 404, message: "no device request".into() }
        };
        c.handle(due, UplinkInput::TimeoutSubmitted { request_id: request_id.clone(), result });
        let expected = if committed_anyway {
            UplinkCommand::Outcome { subject: request_id.clone(), outcome: UplinkOutcome::TimedOut }
        } else {
            UplinkCommand::Journal {
                endpoint: String::new(),
                entry: Entry::Done { id: request_id.clone() },
                durable: false,
            }
        };
        assert_eq!(drain(&mut c), vec![expected]);
        assert_eq!((c.poll_timeout(), c.device_requests_open()), (None, 0));
    }
}

/// A Send is answered once everything it carried is on the ledger (its data, then its request to the
/// application), after the device's earlier events, and exactly once.
#[test]
fn a_send_is_answered_recorded_once_all_of_it_is_on_the_ledger() {
    let mut c = core();
    let now = UnixMillis(0);
    c.handle(now, UplinkInput::Server(ServerEvent::Registered(client("dev1"))));
    c.handle(now, UplinkInput::Server(send_with_receipt("dev1", 7)));
    let mut seen = drain(&mut c);
    assert_eq!(submits(&seen), vec![("dev1".into(), "register_device")]);
    // Registration, the report, the request's journal entry, the request: no answer until all are done.
    for step in 0..4 {
        assert!(answers(&seen).is_empty(), "answered before step {step}: {seen:?}");
        let input = match seen.iter().find(|c| matches!(c, UplinkCommand::Journal { durable: true, .. })) {
            Some(_) => UplinkInput::Journaled { endpoint: "dev1".into(), result: Ok(()) },
            None => committed(),
        };
        c.handle(now, input);
        seen = drain(&mut c);
        if step == 0 {
            assert_eq!(submits(&seen), vec![("dev1".into(), "report")]);
        }
    }
    assert_eq!(answers(&seen), vec![(7, SendAnswer::Recorded)]);
    assert_eq!(c.events_pending(), 0);
    // Nothing answers it again.
    c.handle(now, committed());
    assert!(answers(&drain(&mut c)).is_empty());
}

/// A Send that is not recorded is answered with why: the contract's refusal as the matching CoAP error, a
/// ledger that failed as 5.03 (send again later); the steps after the failure are not submitted. A Send
/// answered already (no receipt) gets no answer from the bridge.
#[test]
fn a_send_that_is_not_recorded_is_answered_with_why() {
    let refused = |status: i32| UplinkSubmitResult::Refused { status, message: format!("no ({status})") };
    let cases = [
        (refused(403), SendAnswer::Forbidden("no (403)".into())),
        (refused(404), SendAnswer::NotFound("no (404)".into())),
        (refused(400), SendAnswer::BadRequest("no (400)".into())),
        (
            UplinkSubmitResult::Failed(LedgerFailure("down".into())),
            SendAnswer::Unavailable("ledger unavailable: down".into()),
        ),
    ];
    for (result, answer) in cases {
        let mut c = core();
        let now = UnixMillis(0);
        c.handle(now, UplinkInput::Server(send_with_receipt("dev1", 3)));
        assert_eq!(submits(&drain(&mut c)), vec![("dev1".into(), "report")]);
        c.handle(now, UplinkInput::Submitted { endpoint: "dev1".into(), result });
        let cmds = drain(&mut c);
        assert_eq!(answers(&cmds), vec![(3, answer)]);
        assert!(submits(&cmds).is_empty() && c.events_pending() == 0, "{cmds:?}");
    }
    let mut c = core();
    c.handle(UnixMillis(0), UplinkInput::Server(ask("dev1")));
    let mut all = drain(&mut c);
    c.handle(UnixMillis(0), UplinkInput::Journaled { endpoint: "dev1".into(), result: Ok(()) });
    all.extend(drain(&mut c));
    c.handle(UnixMillis(0), committed());
    all.extend(drain(&mut c));
    assert!(answers(&all).is_empty(), "{all:?}");
    assert_eq!(submits(&all), vec![("dev1".into(), "device_request")]);
}

/// The answer of device request `id` as the gateway's event stream gives it.
fn answer_event(seq: u64, id: &str) -> UplinkInput {
    UplinkInput::Answer {
        seq,
        endpoint: "dev1".into(),
        request_id: id.into(),
        writes: vec![(path("/32769/0"), vec![Record::new(path("/32769/0/3"), Value::String("ok".into()))])],
    }
}

fn answer(seq: u64, writes: &[&str]) -> UplinkInput {
    UplinkInput::Answer {
        seq,
        endpoint: "dev1".into(),
        request_id: "gw1-d-b0-0".into(),
        writes: writes.iter().map(|p| (path(p), vec![Record::new(path(p), Value::Integer(1))])).collect(),
    }
}

fn written(seq: u64, result: WriteResult) -> UplinkInput {
    UplinkInput::Written { seq, result }
}

fn write_paths(cmds: &[UplinkCommand]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            UplinkCommand::WriteDevice { path, .. } => Some(path.to_string()),
            _ => None,
        })
        .collect()
}

/// An application's answer is written to the device one write at a time, in order; then its `Done` is
/// journaled, and only after that is the event reported delivered (the checkpoint may pass it).
#[test]
fn an_answer_is_written_in_order_then_journaled_done_then_delivered() {
    let mut c = core();
    let now = UnixMillis(0);
    c.handle(now, answer(5, &["/32769/0", "/3308/0"]));
    assert_eq!(write_paths(&drain(&mut c)), vec!["/32769/0"]);
    c.handle(now, written(5, WriteResult::Written));
    assert_eq!(write_paths(&drain(&mut c)), vec!["/3308/0"]);
    c.handle(now, written(5, WriteResult::Written));
    assert_eq!(
        drain(&mut c),
        vec![
            UplinkCommand::Journal {
                endpoint: String::new(),
                entry: Entry::Done { id: "gw1-d-b0-0".into() },
                durable: false
            },
            UplinkCommand::Delivered { seq: 5 },
        ]
    );
    assert_eq!((c.deliveries_open(), c.poll_timeout()), (0, None));
}

/// A write that finds the device unreachable is tried again after growing waits, up to
/// `ANSWER_WRITE_ATTEMPTS` attempts, then given up (reported) and the answer goes on; a write the device
/// refuses is not repeated; a result that comes while the write waits for its retry changes nothing.
#[test]
fn an_answer_to_an_unreachable_device_is_tried_again_then_given_up() {
    let mut c = core();
    let mut now = UnixMillis(1_000);
    c.handle(now, answer(9, &["/32769/0", "/3308/0"]));
    drain(&mut c);
    let mut waits = Vec::new();
    for attempt in 1..ANSWER_WRITE_ATTEMPTS {
        c.handle(now, written(9, WriteResult::Unreachable("timeout".into())));
        assert!(drain(&mut c).is_empty(), "attempt {attempt}");
        let due = c.poll_timeout().expect("a retry is due");
        waits.push(due.0 - now.0);
        c.handle(due, written(9, WriteResult::Written)); // stale: not in flight
        assert!(drain(&mut c).is_empty());
        c.handle(UnixMillis(due.0 - 1), UplinkInput::Timer);
        assert!(drain(&mut c).is_empty(), "not before it is due");
        now = due;
        c.handle(now, UplinkInput::Timer);
        assert_eq!(write_paths(&drain(&mut c)), vec!["/32769/0"], "attempt {}", attempt + 1);
    }
    assert_eq!(waits, vec![2_000, 4_000, 8_000, 8_000]);
    c.handle(now, written(9, WriteResult::Unreachable("timeout".into())));
    let cmds = drain(&mut c);
    assert!(
        matches!(&cmds[0], UplinkCommand::Outcome { outcome: UplinkOutcome::NotRecorded(w), .. } if w.contains("5 attempts")),
        "{cmds:?}"
    );
    assert_eq!(write_paths(&cmds), vec!["/3308/0"], "the answer goes on");
    c.handle(now, written(9, WriteResult::Refused("4.05".into())));
    let cmds = drain(&mut c);
    assert!(matches!(&cmds[0], UplinkCommand::Outcome { outcome: UplinkOutcome::NotRecorded(_), .. }));
    assert!(matches!(cmds.last(), Some(UplinkCommand::Delivered { seq: 9 })), "{cmds:?}");
    assert_eq!(c.deliveries_open(), 0);
}
