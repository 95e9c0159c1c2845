//! Deterministic tests of the oneM2M side's queues: order per AE, AEs in parallel, retries of transient
//! failures, every event handled exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipe::mapping::Cin;
use serde_json::json;

use super::{ONEM2M_RETRY, Onem2mCommand, Onem2mCore, Onem2mFailure, Onem2mInput, Onem2mJob, answer_last};
use crate::core::UnixMillis;

fn cins(ae: &str, rn: &str) -> Onem2mJob {
    Onem2mJob::Cins(vec![Cin { container: format!("{ae}/rsp"), con: json!({"rn": rn}) }], rn.into())
}

fn drain(core: &mut Onem2mCore) -> Vec<Onem2mCommand> {
    std::iter::from_fn(|| core.poll_command()).collect()
}

fn ok(ae: &str) -> Onem2mInput {
    Onem2mInput::Done { ae: ae.into(), result: Ok(()), random: 0 }
}

fn fail(ae: &str, transient: bool) -> Onem2mInput {
    Onem2mInput::Done {
        ae: ae.into(),
        result: Err(Onem2mFailure { transient, message: "5000".into() }),
        random: u64::MAX, // the longest wait
    }
}

#[test]
fn an_ae_s_jobs_run_one_at_a_time_in_order_and_aes_in_parallel() {
    let mut c = Onem2mCore::new();
    let now = UnixMillis(0);
    c.handle(now, Onem2mInput::Job { seq: 1, ae: "Ca".into(), job: Onem2mJob::Delete("Ca".into()) });
    c.handle(now, Onem2mInput::Job { seq: 2, ae: "Ca".into(), job: cins("Ca", "r1") });
    c.handle(now, Onem2mInput::Job { seq: 3, ae: "Cb".into(), job: cins("Cb", "r2") });
    assert_eq!(
        drain(&mut c),
        vec![
            Onem2mCommand::Perform { ae: "Ca".into(), job: Onem2mJob::Delete("Ca".into()) },
            Onem2mCommand::Perform { ae: "Cb".into(), job: cins("Cb", "r2") },
        ],
        "Ca's second job waits for its first"
    );
    c.handle(now, ok("Cb"));
    assert_eq!(drain(&mut c), vec![Onem2mCommand::EventHandled { seq: 3 }]);
    c.handle(now, ok("Ca"));
    assert_eq!(
        drain(&mut c),
        vec![
            Onem2mCommand::EventHandled { seq: 1 },
            Onem2mCommand::Perform { ae: "Ca".into(), job: cins("Ca", "r1") }
        ]
    );
    c.handle(now, ok("Ca"));
    assert_eq!(drain(&mut c), vec![Onem2mCommand::EventHandled { seq: 2 }]);
    assert_eq!(c.jobs(), 0);
}

#[test]
fn a_transient_failure_is_retried_four_times_with_growing_waits_then_given_up() {
    let mut c = Onem2mCore::new();
    let mut now = UnixMillis(0);
    c.handle(now, Onem2mInput::Job { seq: 7, ae: "Ca".into(), job: cins("Ca", "r1") });
    c.handle(now, Onem2mInput::Job { seq: 8, ae: "Ca".into(), job: cins("Ca", "r2") });
    assert_eq!(drain(&mut c).len(), 1);
    let mut waits = Vec::new();
    for retry in 0..4 {
        c.handle(now, fail("Ca", true));
        assert_eq!(drain(&mut c), vec![], "retry {retry}: waiting, not handled");
        let at = c.poll_timeout().expect("a retry is due");
        waits.push(at.0 - now.0);
        c.handle(UnixMillis(at.0 - 1), Onem2mInput::Timer);
        assert_eq!(drain(&mut c), vec![], "not before its time");
        now = at;
        c.handle(now, Onem2mInput::Timer);
        assert_eq!(drain(&mut c), vec![Onem2mCommand::Perform { ae: "Ca".into(), job: cins("Ca", "r1") }]);
    }
    let ceilings: Vec<i64> =
        (0..4).map(|r| i64::try_from(ONEM2M_RETRY.ceiling(r).as_millis()).unwrap()).collect();
    assert_eq!(waits, ceilings, "150, 300, 600, 1000 ms at most");
    c.handle(now, fail("Ca", true));
    let cmds = drain(&mut c);
    assert!(matches!(&cmds[0], Onem2mCommand::Failed { ae, .. } if ae == "Ca"), "{cmds:?}");
    assert_eq!(cmds[1], Onem2mCommand::EventHandled { seq: 7 });
    assert_eq!(
        cmds[2],
        Onem2mCommand::Perform { ae: "Ca".into(), job: cins("Ca", "r2") },
        "the next job goes on"
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_lasting_failure_is_not_retried_and_a_result_out_of_turn_is_ignored() {
    let mut c = Onem2mCore::new();
    let now = UnixMillis(0);
    c.handle(now, Onem2mInput::Job { seq: 1, ae: "Ca".into(), job: cins("Ca", "r1") });
    drain(&mut c);
    c.handle(now, fail("Ca", false));
    let cmds = drain(&mut c);
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[1], Onem2mCommand::EventHandled { seq: 1 });
    c.handle(now, ok("Ca"));
    c.handle(now, ok("Cz"));
    assert_eq!(drain(&mut c), vec![], "handled once");
}

#[test]
fn a_response_s_answer_is_written_after_its_values() {
    let cin = |c: &str| Cin { container: c.into(), con: json!(null) };
    let order: Vec<String> =
        answer_last(vec![cin("Cd/rsp"), cin("Cd/obj3303_0/res5700"), cin("Cd/obj3_0/res0")])
            .into_iter()
            .map(|c| c.container)
            .collect();
    assert_eq!(order, ["Cd/obj3303_0/res5700", "Cd/obj3_0/res0", "Cd/rsp"]);
}
