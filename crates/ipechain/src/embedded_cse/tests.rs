//! The oneM2M side against the embedded CSE in-process: device trees, idempotent contentInstances, requests
//! read back from `cmd` notifications and from the backlog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bridge::Onem2mSide;
use bridge::events::{CmdSubmission, cmd_submission};
use ipe::IpeCall;
use ipe::mapping::Cin;
use onem2m::{Operation, RequestPrimitive, Rsc};
use serde_json::{Value, json};

use super::{EmbeddedCse, notifications};

fn tree() -> ipe::ResourceTree {
    let device: ipe::Device = serde_json::from_value(json!({
        "endpoint": "imei:1", "ae_id": "Cimei-1", "lwm2m_version": "1.1", "lifetime": 300, "binding": "U",
        "queue_mode": false, "objects": ["/3303/0"], "formats": [112], "links": "</3303/0>", "mode": "full",
        "gateway": {"org": "Org2MSP", "id": "gw"}, "registered_at": 1, "updated_at": 1}))
    .unwrap();
    ipe::resource_tree(&device, &lwm2m::Registry::builtin())
}

async fn cse() -> cse::Cse {
    cse::Cse::open(cse::CseConfig::default()).await.unwrap()
}

async fn req(
    cse: &cse::Cse,
    op: Operation,
    to: &str,
    fr: &str,
    ty: Option<u16>,
    pc: Option<Value>,
) -> onem2m::ResponsePrimitive {
    let mut r = RequestPrimitive::new(op, to, Some(fr.to_owned()), "t");
    r.ty = ty;
    r.pc = pc;
    cse.handle(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trees_cins_and_cmd_requests_on_the_embedded_cse() {
    let cse = cse().await;
    let mut rx = notifications(cse.local_poa("ipe-bridge"));
    let side = Onem2mSide::new(
        Arc::new(EmbeddedCse(cse.clone())),
        "cse-in",
        "Cipechain-ipe",
        "local://ipe-bridge".into(),
    );
    side.register_ipe().await.unwrap();
    side.register_ipe().await.unwrap(); // a restart: registered already, poa updated
    let t = tree();
    side.ensure_tree(&t).await.unwrap();
    side.ensure_tree(&t).await.unwrap(); // repeated (device.updated, replay): no error, nothing doubled
    for c in &t.containers {
        let r = req(&cse, Operation::Retrieve, &format!("cse-in/{}", c.path), "CAdmin", None, None).await;
        assert_eq!(r.rsc, Rsc::Ok, "{}", c.path);
    }

    // A contentInstance named by its id: written twice (a replayed event), stored once.
    let cin = Cin { container: "Cimei-1/rsp".into(), con: json!({"request_id": "r1", "status": "ok"}) };
    side.write_cin("Cimei-1", &cin, "r1").await.unwrap();
    side.write_cin("Cimei-1", &cin, "r1").await.unwrap();
    let r = req(&cse, Operation::Retrieve, "cse-in/Cimei-1/rsp", "CAdmin", None, None).await;
    assert_eq!(r.pc.unwrap()["m2m:cnt"]["cni"], 1);

    // An event's contentInstances (a value, then the answer) in one batch of the embedded CSE; again (a
    // replayed event) all 4105, counted as written.
    let data =
        t.containers.iter().map(|c| c.path.clone()).find(|p| !p.ends_with("/rsp") && !p.ends_with("/cmd"));
    let data = Cin { container: data.unwrap(), con: json!(21.5) };
    let answer = Cin { container: "Cimei-1/rsp".into(), con: json!({"request_id": "r2", "status": "ok"}) };
    for _ in 0..2 {
        let (n, r) = side.write_cins("Cimei-1", &[data.clone(), answer.clone()], "r2").await;
        assert_eq!(n, 2);
        r.unwrap();
    }
    let r = req(&cse, Operation::Retrieve, "cse-in/Cimei-1/rsp", "CAdmin", None, None).await;
    assert_eq!(r.pc.unwrap()["m2m:cnt"]["cni"], 2);
    let r =
        req(&cse, Operation::Retrieve, &format!("cse-in/{}/r2", data.container), "CAdmin", None, None).await;
    assert_eq!(r.pc.unwrap()["m2m:cin"]["con"], json!(21.5));

    // An application (any originator may write into cmd and read rsp) writes a request; the notification
    // becomes a request with the contentInstance's creator as originator.
    let app = req(
        &cse,
        Operation::Create,
        "cse-in",
        "Capp1",
        Some(2),
        Some(json!({"m2m:ae": {"rn": "app1", "api": "Napp", "rr": false, "srv": ["3"]}})),
    )
    .await;
    assert_eq!(app.rsc, Rsc::Created);
    let w = req(&cse, Operation::Create, "cse-in/Cimei-1/cmd", "Capp1", Some(4),
        Some(json!({"m2m:cin": {"cr": null, "con": {"request_id": "a1", "op": "read", "path": "/3303/0/5700"}}}))).await;
    assert_eq!(w.rsc, Rsc::Created, "{:?}", w.pc);
    let la = req(&cse, Operation::Retrieve, "cse-in/Cimei-1/rsp/la", "Capp1", None, None).await;
    assert_eq!(la.rsc, Rsc::Ok, "applications read answers");
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let b = rx.recv().await.unwrap();
            if b.body.pointer("/m2m:sgn/nev/rep/m2m:cin").is_some() {
                return b;
            }
        }
    })
    .await
    .unwrap();
    let r = side.cmd_request(&body).await.unwrap().expect("a cmd request");
    assert_eq!(r.ae_id, "Cimei-1");
    assert_eq!(r.originator.as_deref(), Some("Capp1"));
    assert_eq!(r.con["request_id"], "a1");

    // The same request is found in the backlog (after a restart, when no notification came).
    let backlog = side.cmd_backlog("Cimei-1").await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].con["op"], "read");
    assert_eq!(backlog[0].originator.as_deref(), Some("Capp1"));

    // Applications may subscribe to answers and data, but only the gateway writes them.
    let forged = req(
        &cse,
        Operation::Create,
        "cse-in/Cimei-1/rsp",
        "Capp1",
        Some(4),
        Some(json!({"m2m:cin": {"con": {"request_id": "a1", "status": "ok"}}})),
    )
    .await;
    assert_eq!(forged.rsc, Rsc::OriginatorHasNoPrivilege, "a forged answer in rsp: {:?}", forged.pc);
    let data = t.containers.iter().find(|c| c.rn != "cmd" && c.rn != "rsp").expect("a data container");
    let forged = req(
        &cse,
        Operation::Create,
        &format!("cse-in/{}", data.path),
        "Capp1",
        Some(4),
        Some(json!({"m2m:cin": {"con": "1"}})),
    )
    .await;
    assert_eq!(forged.rsc, Rsc::OriginatorHasNoPrivilege, "a forged value in {}", data.path);
    let sub = req(
        &cse,
        Operation::Create,
        "cse-in/Cimei-1/rsp",
        "Capp1",
        Some(23),
        Some(json!({"m2m:sub": {"rn": "subApp1", "nu": ["Capp1"], "enc": {"net": [3]}}})),
    )
    .await;
    assert_eq!(sub.rsc, Rsc::Created, "applications subscribe to answers: {:?}", sub.pc);

    // A stranger may not delete the device's containers; deregistration removes the AE.
    let d = req(&cse, Operation::Delete, "cse-in/Cimei-1/cmd", "Capp1", None, None).await;
    assert_eq!(d.rsc, Rsc::OriginatorHasNoPrivilege);
    side.delete_ae("Cimei-1").await.unwrap();
    side.delete_ae("Cimei-1").await.unwrap(); // gone already: fine
    let r = req(&cse, Operation::Retrieve, "cse-in/Cimei-1", "CAdmin", None, None).await;
    assert_eq!(r.rsc, Rsc::NotFound);
}

/// The request an application writes into `cmd`, naming another application as its originator.
fn impersonating(request_id: &str) -> Value {
    json!({"request_id": request_id, "op": "read", "path": "/3303/0/5700", "originator": "Callowed"})
}

fn submitted_originator(s: &CmdSubmission) -> Option<&str> {
    match s {
        CmdSubmission::Submit(IpeCall::SubmitRequest(a)) => Some(&a.originator),
        CmdSubmission::Submit(IpeCall::AnswerDeviceRequest(a)) => a.originator.as_deref(),
        _ => None,
    }
}

/// The issue's impersonation on the embedded CSE: an application the policy denies (`Cdenied`) writes a request
/// without asking for `cr` and names an allowed one (`Callowed`) in the content. The gateway submits it as
/// `Cdenied`, the creator the CSE recorded, from the notification and from the backlog alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_cannot_name_another_originator_on_the_embedded_cse() {
    let cse = cse().await;
    let mut rx = notifications(cse.local_poa("ipe-bridge"));
    let side = Onem2mSide::new(
        Arc::new(EmbeddedCse(cse.clone())),
        "cse-in",
        "Cipechain-ipe",
        "local://ipe-bridge".into(),
    );
    side.register_ipe().await.unwrap();
    side.ensure_tree(&tree()).await.unwrap();
    for (origin, rn) in [("Cdenied", "denied"), ("Callowed", "allowed")] {
        let ae = json!({"m2m:ae": {"rn": rn, "api": "Napp", "rr": false, "srv": ["3"]}});
        assert_eq!(req(&cse, Operation::Create, "cse-in", origin, Some(2), Some(ae)).await.rsc, Rsc::Created);
    }
    // No `cr` asked for: the contentInstance does not show its creator, the CSE still knows it.
    let w = req(
        &cse,
        Operation::Create,
        "cse-in/Cimei-1/cmd",
        "Cdenied",
        Some(4),
        Some(json!({"m2m:cin": {"con": impersonating("d1")}})),
    )
    .await;
    assert_eq!(w.rsc, Rsc::Created, "{:?}", w.pc);
    assert!(w.pc.as_ref().unwrap()["m2m:cin"].get("cr").is_none(), "cr only when asked for: {:?}", w.pc);
    // Nor can the application claim a creator in `cr` itself.
    let forged = req(
        &cse,
        Operation::Create,
        "cse-in/Cimei-1/cmd",
        "Cdenied",
        Some(4),
        Some(json!({"m2m:cin": {"cr": "Callowed", "con": impersonating("d2")}})),
    )
    .await;
    assert_eq!(forged.rsc, Rsc::BadRequest, "a cr naming someone else: {:?}", forged.pc);

    let body = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let b = rx.recv().await.unwrap();
            if b.body.pointer("/m2m:sgn/nev/rep/m2m:cin").is_some() {
                return b;
            }
        }
    })
    .await
    .unwrap();
    let r = side.cmd_request(&body).await.unwrap().expect("a cmd request");
    assert_eq!(r.originator.as_deref(), Some("Cdenied"), "{r:?}");
    let s = cmd_submission(&r, side.no_creator_reason());
    assert_eq!(submitted_originator(&s), Some("Cdenied"), "{s:?}");
    assert!(matches!(&s, CmdSubmission::Submit(IpeCall::SubmitRequest(_))), "{s:?}");
    let backlog = side.cmd_backlog("Cimei-1").await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(submitted_originator(&cmd_submission(&backlog[0], "")), Some("Cdenied"));
    // An answer to a device request is submitted as its creator too.
    let mut answer = r.clone();
    answer.con = json!({"op": "answer", "request_id": "gw1-d-1", "status": "ok", "originator": "Callowed"});
    assert_eq!(submitted_originator(&cmd_submission(&answer, "")), Some("Cdenied"));
    // A creator the CSE cannot tell is a rejection, never a guess.
    let unknown = bridge::onem2m_side::CmdRequest { originator: None, ..r.clone() };
    assert_eq!(
        cmd_submission(&unknown, side.no_creator_reason()),
        CmdSubmission::Reject { status: 400, message: side.no_creator_reason().to_owned() }
    );
    assert_eq!(cse.creator_of("no-such-ri"), None);
    // The creator travels with the in-process notification, so it is known even when the contentInstance is
    // gone by the time the gateway handles it (e.g. pushed out of `cmd` by `mni`).
    assert_eq!(body.creator.as_deref(), Some("Cdenied"));
    let rn = r.rn.clone().unwrap();
    let d = req(&cse, Operation::Delete, &format!("cse-in/Cimei-1/cmd/{rn}"), "CAdmin", None, None).await;
    assert_eq!(d.rsc, Rsc::Deleted);
    let late = side.cmd_request(&body).await.unwrap().expect("a cmd request");
    assert_eq!(late.originator.as_deref(), Some("Cdenied"));
}
