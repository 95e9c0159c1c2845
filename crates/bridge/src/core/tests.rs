//! Deterministic tests of the downlink core against a scripted world: a fake ledger (request status and
//! committed answers), a fake journal and checkpoint that survive "crashes", a fake device that counts
//! operations. A crash drops the core and everything in flight, rebuilds the core from the persisted journal
//! and checkpoint, and replays the ledger's events after the checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet, VecDeque};

use ipe::IpeCall;
use ipe::events::RequestEvent;
use ipe::model::{Address, Downlink, GatewayRef, Operation, ResponseArgs};
use ledger_client::Checkpoint;
use lwm2m::ops::ResponseCode;
use lwm2m_server::{OpError, OpResponse};

use super::{
    Command, DownlinkCore, EventWork, Input, LedgerFailure, RequestStatus, SubmitResult, UnixMillis,
};
use crate::journal::Entry;

fn me() -> GatewayRef {
    GatewayRef { org: "Org2MSP".into(), id: "Gateway@org2.ipechain.local".into() }
}

fn request(id: &str, op: Operation, to_me: bool) -> RequestEvent {
    let g = me();
    RequestEvent {
        to: Address::Gateway { org: g.org, id: if to_me { g.id } else { "Gateway@other".into() } },
        request_id: id.into(),
        originator: "Capp1".into(),
        endpoint: "dev1".into(),
        ae_id: "Cdev1".into(),
        downlink: Downlink {
            op,
            path: "/3303/0/5700".into(),
            partial: false,
            records: None,
            payload: None,
            content_format: None,
            args: None,
            observe_request_id: None,
            attributes: None,
        },
        submitted_at: 90,
        expires_at: 1000,
    }
}

/// One event on the chain.
#[derive(Clone)]
struct Ev {
    block: u64,
    tx: String,
    work: EventWork,
}

fn req_ev(block: u64, tx: &str, id: &str, op: Operation) -> Ev {
    Ev { block, tx: tx.into(), work: EventWork::Request(Box::new(request(id, op, true))) }
}

/// Everything outside the core, and what survives a crash.
#[derive(Default)]
struct World {
    chain: Vec<Ev>,
    /// Answers committed on the ledger, per request.
    answers: HashMap<String, Vec<ResponseArgs>>,
    /// Journal lines on disk (fsynced).
    journal: Vec<Entry>,
    /// Appended without fsync: lost by a crash unless a later durable append synced them.
    journal_unsynced: Vec<Entry>,
    checkpoint: Checkpoint,
    /// Device operations performed, per request.
    performed: HashMap<String, usize>,
    now: i64,
    /// Faults: get_request and submit failures still to come, devices offline, a device error, a journal
    /// that cannot sync.
    query_failures: usize,
    submit_failures: usize,
    offline: HashSet<String>,
    device_error: Option<OpError>,
    journal_broken: bool,
    /// The device is offline for this many more operations, then registers.
    offline_for: usize,
    /// Inputs the world produces on its own (a registration).
    extra: Vec<Input>,
    /// Command boundaries passed (counted across lives).
    boundaries: usize,
}

impl World {
    fn new(chain: Vec<Ev>) -> World {
        World { chain, now: 100_000, ..World::default() }
    }

    fn now(&self) -> UnixMillis {
        UnixMillis(self.now)
    }

    fn open_ops(&self) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        for e in self.journal.iter().chain(&self.journal_unsynced) {
            match e {
                Entry::Op { id } => open.push(id.clone()),
                Entry::Done { id } => open.retain(|o| o != id),
                Entry::Dreq { .. } => {}
            }
        }
        open
    }

    /// The events after the checkpoint, as the event stream resumes there.
    fn events_after_checkpoint(&self) -> Vec<Ev> {
        let cp = &self.checkpoint;
        let start = match &cp.tx_id {
            Some(tx) => {
                self.chain.iter().position(|e| e.block == cp.block && e.tx == *tx).map_or(0, |i| i + 1)
            }
            None => self.chain.iter().position(|e| e.block >= cp.block).unwrap_or(self.chain.len()),
        };
        self.chain[start..].to_vec()
    }

    fn crash(&mut self) {
        self.journal_unsynced.clear();
        self.extra.clear();
    }

    /// The core as the shell builds it at start.
    fn boot(&self) -> DownlinkCore {
        DownlinkCore::new(me(), self.checkpoint.clone(), self.open_ops())
    }

    /// Performs a command; returns the input it produces.
    fn execute(&mut self, cmd: Command) -> Option<Input> {
        match cmd {
            Command::QueryRequest { call: IpeCall::GetRequest { request_id } } => {
                let result = if self.query_failures > 0 {
                    self.query_failures -= 1;
                    Err(LedgerFailure("unavailable".into()))
                } else if self.answers.get(&request_id).is_some_and(|a| !a.is_empty()) {
                    Ok(RequestStatus::Answered)
                } else if self
                    .chain
                    .iter()
                    .any(|e| matches!(&e.work, EventWork::Request(r) if r.request_id == request_id))
                {
                    Ok(RequestStatus::Pending)
                } else {
                    Ok(RequestStatus::Unknown)
                };
                Some(Input::RequestStatus { request_id, result })
            }
            Command::QueryRequest { call } => panic!("unexpected query {call:?}"),
            Command::Journal { entry, durable } => {
                let id = match &entry {
                    Entry::Op { id } | Entry::Done { id } | Entry::Dreq { id, .. } => id.clone(),
                };
                if !durable {
                    self.journal_unsynced.push(entry);
                    return None;
                }
                if self.journal_broken {
                    return Some(Input::JournalDurable {
                        request_id: id,
                        result: Err(super::JournalFailure("EIO".into())),
                    });
                }
                self.journal.append(&mut self.journal_unsynced);
                self.journal.push(entry);
                Some(Input::JournalDurable { request_id: id, result: Ok(()) })
            }
            Command::PerformDeviceOp { request, deadline } => {
                assert!(deadline > self.now(), "performed after its deadline");
                let id = request.request_id.clone();
                let result = if self.offline_for > 0 {
                    self.offline_for -= 1;
                    if self.offline_for == 0 {
                        self.extra.push(Input::DeviceRegistered { endpoint: request.endpoint.clone() });
                    }
                    Err(OpError::UnknownEndpoint(request.endpoint.clone()))
                } else if self.offline.contains(&request.endpoint) {
                    Err(OpError::UnknownEndpoint(request.endpoint.clone()))
                } else if let Some(e) = self.device_error.clone() {
                    *self.performed.entry(id.clone()).or_default() += 1;
                    Err(e)
                } else {
                    *self.performed.entry(id.clone()).or_default() += 1;
                    let code = if request.downlink.op == Operation::Read { 0x45 } else { 0x44 };
                    Ok(OpResponse {
                        code: ResponseCode::from_byte(code),
                        format: None,
                        records: Vec::new(),
                        links: Vec::new(),
                        location: None,
                        payload: Vec::new(),
                    })
                };
                Some(Input::DeviceResult { request_id: id, result })
            }
            Command::SubmitAnswer { call: IpeCall::SubmitResponse(args), .. } => {
                let id = args.request_id.clone();
                let result = if self.submit_failures > 0 {
                    self.submit_failures -= 1;
                    SubmitResult::Failed(LedgerFailure("unavailable".into()))
                } else {
                    let answers = self.answers.entry(id.clone()).or_default();
                    if answers.is_empty() {
                        answers.push(args);
                        SubmitResult::Committed
                    } else {
                        SubmitResult::Refused(409)
                    }
                };
                Some(Input::Submitted { request_id: id, result })
            }
            Command::SubmitAnswer { call, .. } => panic!("unexpected submission {call:?}"),
            Command::HandleElsewhere { seq } => Some(Input::EventHandled { seq }),
            Command::SaveCheckpoint(cp) => {
                // The journal first (the command's contract): a `Done` lost with the checkpoint past its event
                // would leave the entry open forever.
                self.journal.append(&mut self.journal_unsynced);
                self.checkpoint = cp;
                None
            }
        }
    }

    /// One life of the gateway: boots a core, replays the events after the checkpoint and runs until nothing
    /// is left to do, or until the boundary numbered `crash_at` (counted across lives), where it crashes.
    /// Returns true when it crashed.
    fn life(&mut self, crash_at: Option<usize>) -> bool {
        let mut core = self.boot();
        let mut inputs: VecDeque<Input> = self
            .events_after_checkpoint()
            .into_iter()
            .map(|e| Input::Event { block: e.block, tx_id: e.tx, work: e.work })
            .collect();
        loop {
            let input = match inputs.pop_front() {
                Some(i) => i,
                None => match core.poll_timeout() {
                    Some(t) => {
                        self.now = self.now.max(t.0);
                        Input::Timer
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
                inputs.extend(self.extra.drain(..));
            }
        }
        assert_eq!(core.requests_in_flight(), 0);
        false
    }

    fn boundary(&mut self, crash_at: Option<usize>) -> bool {
        let here = self.boundaries;
        self.boundaries += 1;
        if crash_at == Some(here) {
            self.crash();
            return true;
        }
        false
    }

    /// Runs lives until one ends without crashing (crashing at the given boundaries).
    fn run(&mut self, crashes: &[usize]) {
        for &k in crashes {
            self.life(Some(k));
        }
        assert!(!self.life(None));
    }

    fn answer(&self, id: &str) -> &ResponseArgs {
        let a = &self.answers[id];
        assert_eq!(a.len(), 1, "{id}: exactly one answer");
        &a[0]
    }
}

fn unsafe_op(op: Operation) -> bool {
    !super::safe_to_repeat(op)
}

/// Every request for this gateway has exactly one answer; none that is not safe to repeat was performed
/// twice; the journal has nothing open; the checkpoint is after the last event.
fn check(w: &World, what: &str) {
    for e in &w.chain {
        let EventWork::Request(r) = &e.work else { continue };
        if !matches!(&r.to, Address::Gateway { id, .. } if *id == me().id) {
            assert!(!w.answers.contains_key(&r.request_id), "{what}: another gateway's request was answered");
            continue;
        }
        let n = w.answers.get(&r.request_id).map_or(0, Vec::len);
        assert_eq!(n, 1, "{what}: {} has {n} answers", r.request_id);
        let performed = w.performed.get(&r.request_id).copied().unwrap_or(0);
        if unsafe_op(r.downlink.op) {
            assert!(
                performed <= 1,
                "{what}: {} ({:?}) performed {performed} times",
                r.request_id,
                r.downlink.op
            );
        }
        // An answer ok means the device performed it (in some life).
        if w.answers[&r.request_id][0].status == "ok" {
            assert!(performed >= 1, "{what}: {} answered ok without being performed", r.request_id);
        }
    }
    assert_eq!(w.open_ops(), Vec::<String>::new(), "{what}: journal left open");
    let last = w.chain.last().map(|e| Checkpoint { block: e.block, tx_id: Some(e.tx.clone()) });
    assert_eq!(Some(w.checkpoint.clone()), last, "{what}: checkpoint");
}

/// Crashes at every boundary of the first life, and (for `twice`) at every boundary of the second life too.
fn crash_everywhere(chain: &[Ev], twice: bool) -> usize {
    let mut clean = World::new(chain.to_vec());
    clean.run(&[]);
    check(&clean, "no crash");
    for e in chain {
        if let EventWork::Request(r) = &e.work
            && matches!(&r.to, Address::Gateway { id, .. } if *id == me().id)
        {
            assert_eq!(clean.answer(&r.request_id).status, "ok");
            assert_eq!(clean.performed[&r.request_id], 1);
        }
    }
    let n = clean.boundaries;
    assert!(n > 4, "the flow has boundaries");
    let mut runs = 0;
    for k in 0..n {
        let mut w = World::new(chain.to_vec());
        w.run(&[k]);
        check(&w, &format!("crash at boundary {k}"));
        runs += 1;
        if twice {
            let first = k + 1;
            let mut probe = World::new(chain.to_vec());
            probe.life(Some(k));
            probe.life(None);
            for k2 in first..probe.boundaries {
                let mut w = World::new(chain.to_vec());
                w.run(&[k, k2]);
                check(&w, &format!("crash at boundaries {k} and {k2}"));
                runs += 1;
            }
        }
    }
    runs
}

#[test]
fn a_read_survives_a_crash_at_every_command_boundary() {
    let runs = crash_everywhere(&[req_ev(1, "t1", "r1", Operation::Read)], true);
    assert!(runs > 10);
}

#[test]
fn a_write_survives_a_crash_at_every_command_boundary_and_is_never_performed_twice() {
    crash_everywhere(&[req_ev(1, "t1", "w1", Operation::Write)], true);
}

#[test]
fn an_execute_survives_a_crash_at_every_command_boundary_and_is_never_performed_twice() {
    crash_everywhere(&[req_ev(1, "t1", "x1", Operation::Execute)], true);
}

#[test]
fn a_mix_of_requests_and_other_events_survives_crashes_at_every_pair_of_boundaries() {
    let chain = vec![
        req_ev(1, "t1", "r1", Operation::Read),
        Ev { block: 1, tx: "t2".into(), work: EventWork::Elsewhere },
        req_ev(2, "t3", "w1", Operation::Write),
        Ev {
            block: 2,
            tx: "t4".into(),
            work: EventWork::Request(Box::new(request("o1", Operation::Write, false))),
        },
        Ev { block: 2, tx: "t5".into(), work: EventWork::Nothing },
        req_ev(3, "t6", "x1", Operation::Execute),
        req_ev(3, "t7", "d1", Operation::Discover),
    ];
    let runs = crash_everywhere(&chain, true);
    assert!(runs > 100, "{runs}");
}

#[test]
fn a_write_interrupted_after_its_journal_entry_is_answered_outcome_unknown_and_not_repeated() {
    let chain = [req_ev(1, "t1", "w1", Operation::Write)];
    // Find the boundary right after the device performed the write, in a clean run: crash there.
    let mut w = World::new(chain.to_vec());
    let mut core = w.boot();
    core.handle(w.now(), Input::Event { block: 1, tx_id: "t1".into(), work: chain[0].work.clone() });
    let mut pending: VecDeque<Input> = VecDeque::new();
    loop {
        let Some(cmd) = core.poll_command() else {
            match pending.pop_front() {
                Some(i) => {
                    core.handle(w.now(), i);
                    continue;
                }
                None => panic!("the write was never performed"),
            }
        };
        let performing = matches!(cmd, Command::PerformDeviceOp { .. });
        pending.extend(w.execute(cmd));
        if performing {
            break; // crash: the device did it, the answer was never submitted
        }
    }
    w.crash();
    assert_eq!(w.open_ops(), vec!["w1".to_owned()]);
    assert!(!w.life(None));
    let a = w.answer("w1");
    assert_eq!(a.status, "error");
    assert!(a.message.as_deref().unwrap_or_default().starts_with("outcome unknown"), "{a:?}");
    assert_eq!(w.performed["w1"], 1);
    check(&w, "interrupted write");
}

#[test]
fn a_device_offline_is_performed_when_it_registers() {
    let mut w = World::new(vec![req_ev(1, "t1", "w1", Operation::Write)]);
    w.offline.insert("dev1".into());
    let mut core = w.boot();
    let drive = |w: &mut World, core: &mut DownlinkCore, input: Input| {
        let mut inputs = VecDeque::from([input]);
        while let Some(i) = inputs.pop_front() {
            core.handle(w.now(), i);
            while let Some(c) = core.poll_command() {
                inputs.extend(w.execute(c));
            }
        }
    };
    let first = w.chain[0].work.clone();
    drive(&mut w, &mut core, Input::Event { block: 1, tx_id: "t1".into(), work: first });
    assert_eq!(core.requests_in_flight(), 1, "waiting for the device");
    assert_eq!(core.poll_timeout(), Some(UnixMillis::from_secs(1000)), "until the request expires");
    assert!(w.answers.is_empty());
    w.offline.clear();
    w.now += 5_000;
    drive(&mut w, &mut core, Input::DeviceRegistered { endpoint: "dev2".into() });
    assert_eq!(core.requests_in_flight(), 1, "another device registered");
    drive(&mut w, &mut core, Input::DeviceRegistered { endpoint: "dev1".into() });
    assert_eq!(w.answer("w1").status, "ok");
    assert_eq!(w.performed["w1"], 1);
    assert_eq!(core.poll_timeout(), None);
    check(&w, "offline, then registered");
}

#[test]
fn a_device_that_registers_while_its_offline_result_is_on_the_way_is_not_waited_for() {
    let mut w = World::new(vec![req_ev(1, "t1", "r1", Operation::Read)]);
    w.offline.insert("dev1".into());
    let mut core = w.boot();
    core.handle(w.now(), Input::Event { block: 1, tx_id: "t1".into(), work: w.chain[0].work.clone() });
    let Some(cmd @ Command::PerformDeviceOp { .. }) = core.poll_command() else { panic!("not performed") };
    let offline = w.execute(cmd).unwrap();
    // The device registers; the core hears of it before the operation's result.
    w.offline.clear();
    core.handle(w.now(), Input::DeviceRegistered { endpoint: "dev1".into() });
    assert_eq!(core.poll_command(), None);
    core.handle(w.now(), offline);
    let Some(cmd @ Command::PerformDeviceOp { .. }) = core.poll_command() else { panic!("not sent again") };
    let mut inputs = VecDeque::from(w.execute(cmd).into_iter().collect::<Vec<_>>());
    while let Some(i) = inputs.pop_front() {
        core.handle(w.now(), i);
        while let Some(c) = core.poll_command() {
            inputs.extend(w.execute(c));
        }
    }
    assert_eq!(w.answer("r1").status, "ok");
    check(&w, "registered in between");
}

#[test]
fn a_device_offline_for_a_while_survives_a_crash_at_every_boundary() {
    let chain = [req_ev(1, "t1", "w1", Operation::Write), req_ev(1, "t2", "x1", Operation::Execute)];
    let mut probe = World::new(chain.to_vec());
    probe.offline_for = 1;
    probe.run(&[]);
    assert_eq!((probe.answer("w1").status.as_str(), probe.answer("x1").status.as_str()), ("ok", "ok"));
    for k in 0..probe.boundaries {
        let mut w = World::new(chain.to_vec());
        w.offline_for = 1;
        w.run(&[k]);
        check(&w, &format!("offline, crash at {k}"));
    }
}

#[test]
fn a_write_waiting_for_its_device_when_the_gateway_crashes_is_performed_after_the_restart() {
    let mut w = World::new(vec![req_ev(1, "t1", "w1", Operation::Write)]);
    w.offline.insert("dev1".into());
    let mut core = w.boot();
    let mut inputs =
        VecDeque::from([Input::Event { block: 1, tx_id: "t1".into(), work: w.chain[0].work.clone() }]);
    while let Some(i) = inputs.pop_front() {
        core.handle(w.now(), i);
        while let Some(c) = core.poll_command() {
            inputs.extend(w.execute(c));
        }
    }
    assert_eq!(core.requests_in_flight(), 1, "waiting for the device");
    assert_eq!(w.open_ops(), Vec::<String>::new(), "not started: its Op entry is closed");
    // The process dies (its unsynced appends are in the page cache: kept); the device comes back.
    w.journal.append(&mut w.journal_unsynced);
    drop(core);
    w.offline.clear();
    w.run(&[]);
    assert_eq!(w.answer("w1").status, "ok", "performed, not 'outcome unknown'");
    assert_eq!(w.performed["w1"], 1);
    check(&w, "crash while offline");
}

#[test]
fn a_device_offline_until_the_request_expires_is_answered_timeout() {
    let mut w =
        World::new(vec![req_ev(1, "t1", "r1", Operation::Read), req_ev(1, "t2", "w1", Operation::Write)]);
    w.offline.insert("dev1".into());
    w.run(&[]);
    assert_eq!(w.now, 1_000_000, "the timer fired at the expiry");
    for id in ["r1", "w1"] {
        assert_eq!(w.answer(id).status, "timeout");
        assert!(!w.performed.contains_key(id));
    }
    check(&w, "offline until expiry");
}

#[test]
fn a_device_error_becomes_an_error_answer_and_a_device_timeout_a_timeout_answer() {
    let mut w = World::new(vec![req_ev(1, "t1", "w1", Operation::Write)]);
    w.device_error = Some(OpError::Reset);
    w.run(&[]);
    let a = w.answer("w1");
    assert_eq!(
        (a.status.as_str(), a.message.as_deref()),
        ("error", Some("the device rejected the message (CoAP Reset)"))
    );
    check(&w, "reset");

    let mut w = World::new(vec![req_ev(1, "t1", "r1", Operation::Read)]);
    w.device_error = Some(OpError::Timeout);
    w.run(&[]);
    assert_eq!(w.answer("r1").status, "timeout");
    check(&w, "device timeout");
}

#[test]
fn an_expired_request_is_answered_timeout_without_touching_the_device() {
    let mut w = World::new(vec![req_ev(1, "t1", "x1", Operation::Execute)]);
    w.now = 2_000_000;
    w.run(&[]);
    assert_eq!(w.answer("x1").status, "timeout");
    assert!(w.performed.is_empty());
    check(&w, "expired");
}

#[test]
fn a_slow_ledger_is_asked_and_submitted_to_again_until_it_answers() {
    let mut w =
        World::new(vec![req_ev(1, "t1", "w1", Operation::Write), req_ev(2, "t2", "r1", Operation::Read)]);
    w.query_failures = 3;
    w.submit_failures = 4;
    let start = w.now;
    w.run(&[]);
    assert_eq!(w.answer("w1").status, "ok");
    assert_eq!(w.answer("r1").status, "ok");
    assert_eq!((w.performed["w1"], w.performed["r1"]), (1, 1));
    assert!(w.now >= start + 3 * super::QUERY_RETRY_MS, "waited between attempts");
    check(&w, "slow ledger");
}

#[test]
fn retries_wait_twice_as_long_each_time_up_to_the_cap() {
    let waits: Vec<i64> = (1..=7).map(|n| super::retry_after_ms(super::QUERY_RETRY_MS, n)).collect();
    assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    assert_eq!(super::retry_after_ms(super::SUBMIT_RETRY_MS, u32::MAX), super::RETRY_CAP_MS);
}

#[test]
fn a_ledger_that_stays_unreachable_is_asked_less_and_less_often() {
    // One unsafe request; its `get_request` fails 6 times, then its answer's submission 3 times.
    let mut w = World::new(vec![req_ev(1, "t1", "w1", Operation::Write)]);
    w.query_failures = 6;
    w.submit_failures = 3;
    let start = w.now;
    w.run(&[]);
    assert_eq!(w.answer("w1").status, "ok");
    assert_eq!(w.performed["w1"], 1);
    // Queries wait 0.5 + 1 + 2 + 4 + 8 + 8 s; the submissions go on counting the same request's failures.
    let least = 500 + 1_000 + 2_000 + 4_000 + 8_000 + 8_000 + 3 * super::RETRY_CAP_MS;
    assert!(w.now >= start + least, "waited {} ms, at least {least} expected", w.now - start);
    check(&w, "unreachable ledger");
}

#[test]
fn a_slow_ledger_with_crashes_at_every_boundary_still_answers_once() {
    let chain = [req_ev(1, "t1", "w1", Operation::Write), req_ev(1, "t2", "r1", Operation::Read)];
    let mut probe = World::new(chain.to_vec());
    probe.query_failures = 2;
    probe.submit_failures = 3;
    probe.run(&[]);
    for k in 0..probe.boundaries {
        let mut w = World::new(chain.to_vec());
        w.query_failures = 2;
        w.submit_failures = 3;
        w.run(&[k]);
        check(&w, &format!("slow ledger, crash at {k}"));
    }
}

#[test]
fn a_journal_that_cannot_sync_means_the_operation_is_not_performed() {
    let mut w =
        World::new(vec![req_ev(1, "w1", "w1", Operation::Write), req_ev(1, "r1", "r1", Operation::Read)]);
    w.journal_broken = true;
    w.run(&[]);
    let a = w.answer("w1");
    assert_eq!(a.status, "error");
    assert!(!w.performed.contains_key("w1"));
    assert_eq!(w.answer("r1").status, "ok", "a read needs no journal");
}

#[test]
fn a_duplicate_event_delivery_performs_and_answers_once() {
    let chain = vec![req_ev(1, "t1", "w1", Operation::Write), req_ev(1, "t2", "r1", Operation::Read)];
    let mut w = World::new(chain.clone());
    let mut core = w.boot();
    // Each event twice while in flight, then once more after the answers.
    let mut inputs: VecDeque<Input> = chain
        .iter()
        .flat_map(|e| {
            let i = Input::Event { block: e.block, tx_id: e.tx.clone(), work: e.work.clone() };
            [i.clone(), i]
        })
        .collect();
    let mut rounds = 0;
    while let Some(i) = inputs.pop_front() {
        core.handle(w.now(), i);
        while let Some(c) = core.poll_command() {
            inputs.extend(w.execute(c));
        }
        rounds += 1;
        if inputs.is_empty() && rounds < 100 {
            rounds = 100;
            inputs.extend(chain.iter().map(|e| Input::Event {
                block: e.block,
                tx_id: e.tx.clone(),
                work: e.work.clone(),
            }));
        }
    }
    assert_eq!((w.performed["w1"], w.performed["r1"]), (1, 1));
    assert_eq!(w.answer("w1").status, "ok");
    assert_eq!(w.answer("r1").status, "ok");
    assert_eq!(core.tracker().in_flight(), 0, "every delivery is handled");
    assert_eq!(w.checkpoint, Checkpoint { block: 1, tx_id: Some("t2".into()) });
    assert_eq!(w.open_ops(), Vec::<String>::new());
}

#[test]
fn the_watermark_waits_for_work_done_elsewhere() {
    let mut core = DownlinkCore::new(me(), Checkpoint::default(), Vec::new());
    let now = UnixMillis(0);
    core.handle(now, Input::Event { block: 4, tx_id: "a".into(), work: EventWork::Elsewhere });
    let Some(Command::HandleElsewhere { seq: a }) = core.poll_command() else { panic!("not handed out") };
    core.handle(now, Input::Event { block: 4, tx_id: "b".into(), work: EventWork::Nothing });
    assert_eq!(core.poll_command(), None, "b is done, but a is not");
    core.handle(now, Input::EventHandled { seq: a });
    assert_eq!(
        core.poll_command(),
        Some(Command::SaveCheckpoint(Checkpoint { block: 4, tx_id: Some("b".into()) }))
    );
    assert_eq!(core.poll_command(), None);
}
