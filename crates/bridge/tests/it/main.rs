//! The oneM2M side against a remote CSE (ACME) over Mca: who wrote a request into `cmd`. The same against the
//! embedded CSE in-process is tested where the two are assembled (`crates/ipechain/src/embedded_cse`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bridge::events::{CmdSubmission, cmd_submission};
use bridge::{Notified, Onem2mSide};
use ipe::IpeCall;
use onem2m::{Operation, Rsc};
use serde_json::{Value, json};

fn tree() -> ipe::ResourceTree {
    let device: ipe::Device = serde_json::from_value(json!({
        "endpoint": "imei:1", "ae_id": "Cimei-1", "lwm2m_version": "1.1", "lifetime": 300, "binding": "U",
        "queue_mode": false, "objects": ["/3303/0"], "formats": [112], "links": "</3303/0>", "mode": "full",
        "gateway": {"org": "Org2MSP", "id": "gw"}, "registered_at": 1, "updated_at": 1}))
    .unwrap();
    ipe::resource_tree(&device, &lwm2m::Registry::builtin())
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

/// ACME as the CSE of the embedded CSE's test (`crates/ipechain/src/embedded_cse/tests.rs`). Its notifications are only a trigger: the gateway retrieves the
/// contentInstance and takes `cr` from ACME's answer. A request written without `cr` gets a `rejected` answer
/// (4000, "create the request with cr"); with `"cr": null` it is submitted as its creator, whatever the content
/// claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_cannot_name_another_originator_on_acme() {
    let acme = test_support::AcmeProcess::spawn(false).unwrap();
    let admin = mca_client::McaClient::new(mca_client::McaConfig::new(acme.authority(), "CAdmin"));
    let mut up = false;
    for _ in 0..300 {
        if admin.retrieve("cse-in").await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "ACME did not come up");
    let mut listener = mca_client::NotificationListener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let ipe = admin.with_origin("Cipechain-ipe");
    let side = Onem2mSide::new(std::sync::Arc::new(ipe), "cse-in", "Cipechain-ipe", listener.url());
    side.register_ipe().await.unwrap();
    side.ensure_tree(&tree()).await.unwrap();
    let denied = admin.with_origin("Cdenied");
    denied.register_ae("cse-in", "denied", "Napp", vec![], vec![]).await.unwrap();

    let write = |cin: Value| {
        let mut r = denied.request(Operation::Create, "cse-in/Cimei-1/cmd");
        r.ty = Some(4);
        r.pc = Some(json!({"m2m:cin": cin}));
        let d = denied.clone();
        async move { d.send(&r).await.unwrap() }
    };
    // ACME refuses a cr that names someone (only null may be sent).
    let forged = write(json!({"cr": "Callowed", "con": impersonating("a0")})).await;
    assert_eq!(forged.rsc, Rsc::BadRequest, "{:?}", forged.pc);

    let mut next_request = async || loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification in time")
            .unwrap();
        if let Some(r) = side.cmd_request(&Notified { body: n.body, creator: None }).await.unwrap() {
            return r;
        }
    };
    let w = write(json!({"con": impersonating("a1")})).await;
    assert_eq!(w.rsc, Rsc::Created, "{:?}", w.pc);
    let r = next_request().await;
    assert_eq!(r.originator, None, "no cr on ACME: {r:?}");
    let s = cmd_submission(&r, side.no_creator_reason());
    let CmdSubmission::Reject { status, message } = &s else { panic!("submitted: {s:?}") };
    assert_eq!(ipe::mapping::rsc_for_contract_status(*status), 4000);
    assert!(message.contains("create the request with cr"), "{message}");

    let w = write(json!({"cr": null, "con": impersonating("a2")})).await;
    assert_eq!(w.rsc, Rsc::Created, "{:?}", w.pc);
    let r = next_request().await;
    assert_eq!(r.originator.as_deref(), Some("Cdenied"), "{r:?}");
    assert_eq!(submitted_originator(&cmd_submission(&r, "")), Some("Cdenied"));
    assert_eq!(r.con["request_id"], "a2");

    // A forged notification (the listener is not authenticated) naming a contentInstance that does not exist
    // is dropped; one naming a real contentInstance yields that one, with its real creator.
    let mut fake = json!({"m2m:sgn": {"nev": {"net": 3, "rep": {"m2m:cin": {
        "rn": "nonexistent", "pi": "", "cr": "Callowed", "con": impersonating("a3")}}}}});
    let cmd_ri = {
        let cmd = admin.retrieve("cse-in/Cimei-1/cmd").await.unwrap();
        cmd["ri"].as_str().unwrap().to_owned()
    };
    fake["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["pi"] = json!(cmd_ri);
    let notified = |body: &Value| Notified { body: body.clone(), creator: None };
    assert_eq!(
        side.cmd_request(&notified(&fake)).await.unwrap(),
        None,
        "a notification of a contentInstance ACME does not have"
    );
    fake["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["rn"] = json!(r.rn.clone().unwrap());
    let again = side.cmd_request(&notified(&fake)).await.unwrap().expect("the real contentInstance");
    assert_eq!(again.originator.as_deref(), Some("Cdenied"));
    assert_eq!(again.con["request_id"], "a2", "the content is ACME's, not the notification's");

    // The backlog reads ACME's `cr` too: one request without a creator, one as Cdenied.
    let backlog = side.cmd_backlog("Cimei-1").await.unwrap();
    let mut seen: Vec<(String, Option<String>)> = backlog
        .iter()
        .map(|b| (b.con["request_id"].as_str().unwrap().to_owned(), b.originator.clone()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("a1".to_owned(), None), ("a2".to_owned(), Some("Cdenied".to_owned()))]);
}
