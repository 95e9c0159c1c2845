//! Unit tests: the low-watermark tracker, the journal, names and answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::events::{Tracker, cin_name};
use crate::journal::{Entry, Journal, Open};
use ledger_client::Checkpoint;

#[test]
fn tracker_advances_only_over_a_handled_prefix() {
    let mut t = Tracker::new(Checkpoint::default());
    let a = t.push(5, "a");
    let b = t.push(5, "b");
    let c = t.push(6, "c");
    t.done(b);
    assert_eq!(t.take_dirty(), None, "a is not handled yet");
    t.done(a);
    assert_eq!(t.take_dirty(), Some(Checkpoint { block: 5, tx_id: Some("b".into()) }));
    assert_eq!(t.in_flight(), 1);
    t.done(c);
    assert_eq!(t.take_dirty(), Some(Checkpoint { block: 6, tx_id: Some("c".into()) }));
    t.done(c); // repeated: harmless
    assert_eq!(t.take_dirty(), None);
}

#[test]
fn the_tracker_knows_where_the_event_stream_stands_and_what_is_pending() {
    let start = Checkpoint { block: 3, tx_id: Some("z".into()) };
    let mut t = Tracker::new(start.clone());
    assert_eq!((t.received(), t.oldest_pending_block()), (start, None));
    let a = t.push(5, "a");
    let b = t.push(8, "b");
    assert_eq!(t.received(), Checkpoint { block: 8, tx_id: Some("b".into()) });
    assert_eq!(t.oldest_pending_block(), Some(5));
    t.done(a);
    assert_eq!(t.oldest_pending_block(), Some(8));
    t.done(b);
    assert_eq!(t.oldest_pending_block(), None);
    assert_eq!(t.received(), Checkpoint { block: 8, tx_id: Some("b".into()) });
}

#[test]
fn the_chain_lag_counts_from_the_first_unhandled_ipe_event_to_the_head() {
    use crate::head::{chain_lag, first_unreceived};
    use std::collections::BTreeMap;
    let cp = |block, tx: Option<&str>| Checkpoint { block, tx_id: tx.map(str::to_owned) };
    // IPE events in blocks 5 (last: tx e5) and 9 (last: e9b); blocks 6-8 and 10-12 hold none.
    let events: BTreeMap<u64, String> = [(5, "e5".to_owned()), (9, "e9b".to_owned())].into();
    // Nothing received yet (a fresh gateway): everything from block 5 on is to do.
    assert_eq!(first_unreceived(&events, &cp(0, None)), Some(5));
    assert_eq!(chain_lag(12, &events, &cp(0, None), None), 8, "blocks 5 to 12");
    // Block 5 received and handled: block 9 is next.
    assert_eq!(chain_lag(12, &events, &cp(5, Some("e5")), None), 4, "blocks 9 to 12");
    // Block 9's first event received but not its last one.
    assert_eq!(first_unreceived(&events, &cp(9, Some("e9a"))), Some(9));
    // Every IPE event received and handled: no lag, whatever the head (blocks without IPE events are free).
    assert_eq!(chain_lag(12, &events, &cp(9, Some("e9b")), None), 0);
    assert_eq!(chain_lag(9, &events, &cp(9, Some("e9b")), None), 0);
    // Received but still being handled: the oldest such event's block counts.
    assert_eq!(chain_lag(12, &events, &cp(9, Some("e9b")), Some(5)), 8);
    assert_eq!(chain_lag(12, &events, &cp(5, Some("e5")), Some(5)), 8, "pending 5 before unreceived 9");
    // The head stream behind the event stream (it replays from the checkpoint): not negative.
    assert_eq!(chain_lag(4, &events, &cp(0, None), None), 0);
    // No IPE event anywhere: no lag.
    assert_eq!(chain_lag(12, &BTreeMap::new(), &cp(0, None), None), 0);
    // A checkpoint at a block boundary (`block_done`: resume at 9, nothing of 9 received).
    assert_eq!(first_unreceived(&events, &cp(9, None)), Some(9));
}

#[test]
fn cin_names_have_no_colons() {
    assert_eq!(cin_name("gw1-n-1:2"), "gw1-n-1_2");
}

#[tokio::test(flavor = "current_thread")]
async fn journal_keeps_only_open_entries_across_reopen_and_ignores_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("journal.log");
    {
        let (j, open) = Journal::open(&p).unwrap();
        assert_eq!(open, Open::default());
        j.append_durable(Entry::Op { id: "r1".into() }).await.unwrap();
        j.append_durable(Entry::Op { id: "r2".into() }).await.unwrap();
        j.append_durable(Entry::Dreq { id: "d1".into(), exp: 99 }).await.unwrap();
        j.append_durable(Entry::Done { id: "r1".into() }).await.unwrap();
    }
    // A crash in the middle of an append leaves a torn line.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"k\":\"done\",\"id\":\"r").unwrap();
    }
    let (j, open) = Journal::open(&p).unwrap();
    assert_eq!(open.ops, vec!["r2".to_owned()]);
    assert_eq!(open.dreqs, vec![("d1".to_owned(), 99)]);
    j.append_durable(Entry::Done { id: "d1".into() }).await.unwrap();
    drop(j);
    let (_j, open) = Journal::open(&p).unwrap();
    assert_eq!(open.ops, vec!["r2".to_owned()]);
    assert!(open.dreqs.is_empty());
}

#[tokio::test]
async fn a_journal_sync_makes_the_appends_before_it_durable_and_writes_nothing_itself() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("journal.log");
    let (j, _) = Journal::open(&p).unwrap();
    j.append_durable(Entry::Op { id: "w1".into() }).await.unwrap();
    j.append(Entry::Done { id: "w1".into() });
    j.sync().await.unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    drop(j);
    let (_j, open) = Journal::open(&p).unwrap();
    assert_eq!(open, Open::default());
}

#[test]
fn a_responses_answer_is_written_after_its_values() {
    use ipe::mapping::Cin;
    let cin = |c: &str| Cin { container: c.into(), con: serde_json::json!({}) };
    let cins = vec![cin("Cdev/rsp"), cin("Cdev/obj3303_0/res5700"), cin("Cdev/obj3303_0/res5701")];
    let order: Vec<String> = crate::events::answer_last(cins).into_iter().map(|c| c.container).collect();
    assert_eq!(order, ["Cdev/obj3303_0/res5700", "Cdev/obj3303_0/res5701", "Cdev/rsp"]);
}

#[test]
fn device_answers_become_response_args() {
    use lwm2m_server::OpResponse;
    let rsp = OpResponse {
        code: lwm2m::ops::ResponseCode::from_byte(0x45),
        format: None,
        records: vec![lwm2m::Record::new("/3303/0/5700".parse().unwrap(), lwm2m::Value::Float(21.5))],
        links: Vec::new(),
        location: None,
        payload: Vec::new(),
    };
    let a = crate::events::response_args("r1", ipe::model::Operation::Read, &rsp);
    assert_eq!(a.status, "ok");
    assert_eq!(a.code.as_deref(), Some("2.05"));
    let records = a.records.unwrap_or_default();
    assert_eq!(records[0]["path"], "/3303/0/5700");
    assert_eq!(records[0]["v"], 21.5);
    let nf = OpResponse { code: lwm2m::ops::ResponseCode::from_byte(0x84), ..rsp };
    let a = crate::events::response_args("r2", ipe::model::Operation::Read, &nf);
    assert_eq!(a.status, "error");
    assert_eq!(a.code.as_deref(), Some("4.04"));
    assert_eq!(a.records, None);
}

#[test]
fn contract_refusals_are_read_from_the_sdks_refused_error() {
    use crate::ledger::contract_status;
    use ledger_client::ClientError;
    let refused = ClientError::Refused { status: 409, message: "id used".into(), address: "p:1".into() };
    assert_eq!(contract_status(&refused), Some((409, "id used".to_owned())));
    let other = ClientError::Status(tonic::Status::unavailable("peer down (status 500)"));
    assert_eq!(contract_status(&other), None);
}

#[test]
fn cmd_contents_the_contract_cannot_read_are_its_400_with_its_message() {
    use crate::events::{CmdSubmission, cmd_submission};
    use crate::onem2m_side::CmdRequest;
    use contract::{Caller, Contract, TxContext};
    let req = |con: serde_json::Value| CmdRequest {
        ae_id: "Cimei-1".into(),
        originator: Some("Capp".into()),
        con,
        rn: None,
        ri: Some("cin1".into()),
    };
    let bad = req(serde_json::json!({"request_id": "a1", "op": "read", "path": "/3/0/0", "colour": "red"}));
    let CmdSubmission::Refused { status, message } = cmd_submission(&bad, "") else { panic!("submitted") };
    // What the contract itself answers for the same content.
    let args =
        serde_json::to_vec(&ipe::mapping::request_from_cmd(&bad.con, "Capp", "Cimei-1").unwrap()).unwrap();
    let caller =
        Caller { msp_id: "Org1MSP".into(), role: "client".into(), subject: "gw".into(), cert_der: vec![] };
    let mut ctx = TxContext::new("ipe", &Empty, "0".repeat(64), 1_700_000_000, &caller);
    let e = ipe::IpeContract::default().invoke(&mut ctx, "submit_request", &[args]).unwrap_err();
    assert_eq!((status, message), (e.status(), e.to_string()));
    assert_eq!(ipe::Refusal::from_status(status), Some(ipe::Refusal::BadRequest));
    // A readable request is submitted as the call the contract reads.
    let good = req(serde_json::json!({"request_id": "a2", "op": "read", "path": "/3/0/0"}));
    let CmdSubmission::Submit(ipe::IpeCall::SubmitRequest(a)) = cmd_submission(&good, "") else { panic!() };
    assert_eq!((a.originator.as_str(), a.endpoint.as_str()), ("Capp", "Cimei-1"));
}

struct Empty;

impl ledger_types::store::StateSnapshot for Empty {
    fn get(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<ledger_types::store::VersionedValue>, ledger_types::store::StoreError> {
        Ok(None)
    }
    fn range(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: usize,
    ) -> Result<Vec<(String, ledger_types::store::VersionedValue)>, ledger_types::store::StoreError> {
        Ok(vec![])
    }
}

/// A CSE for [`crate::Onem2mSide`]'s own logic: answers by target, records what it was sent.
struct ScriptedCse {
    answers: std::collections::HashMap<String, onem2m::Rsc>,
    sent: std::sync::Mutex<Vec<onem2m::RequestPrimitive>>,
}

impl crate::Mca for ScriptedCse {
    fn send(&self, req: onem2m::RequestPrimitive) -> crate::McaFuture<'_, onem2m::ResponsePrimitive> {
        let rsc = self.answers.get(&req.to).copied().unwrap_or(onem2m::Rsc::NotFound);
        let rsp = onem2m::ResponsePrimitive::error(rsc, req.rqi.clone(), format!("scripted {rsc}"));
        self.sent.lock().unwrap().push(req);
        Box::pin(async move { rsp })
    }

    fn provenance(&self) -> crate::Provenance {
        crate::Provenance::Answers
    }
}

/// `write_cins` through a CSE without a batch of its own (the trait's default, as for a remote CSE): in order,
/// without content in the answers, counting a repeated write (4105) as written, and nothing after a failure.
#[tokio::test(flavor = "current_thread")]
async fn contentinstances_are_written_in_order_and_stop_at_the_first_failure() {
    use onem2m::{ResultContent, Rsc};
    let cse = std::sync::Arc::new(ScriptedCse {
        answers: [
            ("cse-in/Cd/a", Rsc::Created),
            ("cse-in/Cd/b", Rsc::Conflict),
            ("cse-in/Cd/x", Rsc::Created),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        sent: Default::default(),
    });
    let side = crate::Onem2mSide::new(cse.clone(), "cse-in", "Cipe", "http://127.0.0.1:1/n".into());
    let cin = |c: &str| ipe::mapping::Cin { container: format!("Cd/{c}"), con: serde_json::json!({"c": c}) };

    let (n, r) = side.write_cins("Cd", &[cin("a"), cin("b")], "r1").await;
    assert_eq!(n, 2);
    r.unwrap();
    let (n, r) = side.write_cins("Cd", &[cin("a"), cin("missing"), cin("x")], "r2").await;
    assert_eq!(n, 1);
    let e = r.unwrap_err();
    assert_eq!((e.rsc, e.target.as_str()), (Rsc::NotFound, "cse-in/Cd/missing"));
    assert_eq!(side.write_cins("Cd", &[], "r3").await.0, 0);

    let sent = cse.sent.lock().unwrap();
    let to: Vec<_> = sent.iter().map(|r| r.to.as_str()).collect();
    assert_eq!(to, ["cse-in/Cd/a", "cse-in/Cd/b", "cse-in/Cd/a", "cse-in/Cd/missing"], "x is never sent");
    for r in sent.iter() {
        assert_eq!((r.fr.as_deref(), r.ty, r.rcn), (Some("Cd"), Some(4), Some(ResultContent::Nothing)));
    }
    let rns: Vec<_> = sent.iter().filter_map(|r| r.pc.as_ref()?.pointer("/m2m:cin/rn")?.as_str()).collect();
    assert_eq!(rns, ["r1", "r1", "r2", "r2"]);
}

/// A remote CSE whose answers are content by target, and that fails the first `fail` reads of `flaky`.
struct ContentCse {
    content: std::collections::HashMap<String, serde_json::Value>,
    flaky: String,
    fail: std::sync::atomic::AtomicU32,
}

impl crate::Mca for ContentCse {
    fn send(&self, req: onem2m::RequestPrimitive) -> crate::McaFuture<'_, onem2m::ResponsePrimitive> {
        use std::sync::atomic::Ordering;
        let rsp = if req.to == self.flaky
            && self.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            onem2m::ResponsePrimitive::error(onem2m::Rsc::TargetNotReachable, req.rqi.clone(), "down")
        } else {
            match self.content.get(&req.to) {
                Some(pc) => {
                    onem2m::ResponsePrimitive::new(onem2m::Rsc::Ok, req.rqi.clone(), Some(pc.clone()))
                }
                None => onem2m::ResponsePrimitive::error(onem2m::Rsc::NotFound, req.rqi.clone(), "no such"),
            }
        };
        Box::pin(async move { rsp })
    }

    fn provenance(&self) -> crate::Provenance {
        crate::Provenance::Answers
    }
}

/// A `cmd` notification from a remote CSE is read back from the CSE: a CSE failing for a moment is an error
/// that says so (the shell reads again), and the read that succeeds gives the request with the creator the
/// CSE answered; a contentInstance gone from the CSE, or one not in a `cmd` container, is no request.
#[tokio::test(flavor = "current_thread")]
async fn a_notified_cmd_request_is_read_back_and_a_transient_failure_says_so() {
    use serde_json::json;
    let cin_path = "cse-in/Cdev/cmd/req-1";
    let cse = std::sync::Arc::new(ContentCse {
        content: [
            ("cnt1", json!({"m2m:cnt": {"rn": "cmd", "pi": "ae1"}})),
            ("cnt2", json!({"m2m:cnt": {"rn": "data", "pi": "ae1"}})),
            ("ae1", json!({"m2m:ae": {"rn": "Cdev"}})),
            (
                cin_path,
                json!({"m2m:cin": {"rn": "req-1", "ri": "cin1", "cr": "Capp", "con": "{\"op\":\"read\"}"}}),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        flaky: cin_path.into(),
        fail: 2.into(),
    });
    let side = crate::Onem2mSide::new(cse.clone(), "cse-in", "Cipe", "http://127.0.0.1:1/n".into());
    let notified = |pi: &str, rn: &str| crate::mca::Notified {
        body: json!({"m2m:sgn": {"nev": {"rep": {"m2m:cin": {"pi": pi, "rn": rn, "cr": "Cforged", "con": "x"}}}}}),
        creator: None,
    };
    for _ in 0..2 {
        let e = side.cmd_request(&notified("cnt1", "req-1")).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
    let req = side.cmd_request(&notified("cnt1", "req-1")).await.unwrap().expect("a request");
    assert_eq!(req.ae_id, "Cdev");
    assert_eq!(
        req.originator.as_deref(),
        Some("Capp"),
        "the creator the CSE answered, not the notification's"
    );
    assert_eq!(req.con, json!({"op": "read"}));
    assert!(side.cmd_request(&notified("cnt1", "gone")).await.unwrap().is_none(), "gone from the CSE");
    assert!(side.cmd_request(&notified("cnt2", "req-1")).await.unwrap().is_none(), "not a cmd container");
    assert!(side.cmd_request(&notified("nowhere", "req-1")).await.unwrap().is_none(), "no such container");
}
