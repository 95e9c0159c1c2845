//! Embedded-only tests: persistence across restarts, in-process API and notifications.

use serde_json::{Value, json};

use crate::common::Embedded;
use crate::scripts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_meet_the_spec_on_the_embedded_cse() {
    for name in scripts::ALL {
        let e = Embedded::start(None).await;
        let obs = scripts::run(name, &e.mca).await;
        e.stop().await;
        let bad: Vec<String> = obs
            .iter()
            .filter(|o| o.rsc != o.expect)
            .map(|o| format!("{name}/{}: got {} want {}", o.label, o.rsc, o.expect))
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_resource() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    let m = e.mca.clone();
    let ae = json!({"m2m:ae": {"rn": "p", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Cp"), Some(2), Some(ae)).await.rsc, 2001);
    assert_eq!(
        m.req("POST", "/cse-in/p", Some("Cp"), Some(3), Some(json!({"m2m:cnt": {"rn": "c", "mni": 2}})))
            .await
            .rsc,
        2001
    );
    for i in 0..4 {
        let a = m
            .req(
                "POST",
                "/cse-in/p/c",
                Some("Cp"),
                Some(4),
                Some(json!({"m2m:cin": {"con": format!("{i}")}})),
            )
            .await;
        assert_eq!(a.rsc, 2001);
    }
    let before = m.req("GET", "/cse-in/p/c?rcn=4", Some("Cp"), None, None).await;
    let count = e.cse.resource_count();
    e.stop().await;

    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    assert_eq!(e.cse.resource_count(), count);
    let after = e.mca.req("GET", "/cse-in/p/c?rcn=4", Some("Cp"), None, None).await;
    assert_eq!(after.pc, before.pc);
    assert_eq!(after.res()["cni"], 2);
    let la = e.mca.req("GET", "/cse-in/p/c/la", Some("Cp"), None, None).await;
    assert_eq!(la.res()["con"], "3");
    // Re-registration is still refused, and new ids do not collide with stored ones.
    let ae = json!({"m2m:ae": {"rn": "p2", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(e.mca.req("POST", "/cse-in", Some("Cp"), Some(2), Some(ae)).await.rsc, 4117);
    let a =
        e.mca.req("POST", "/cse-in/p/c", Some("Cp"), Some(4), Some(json!({"m2m:cin": {"con": "new"}}))).await;
    assert_eq!(a.rsc, 2001, "{:?}", a.pc);
    e.stop().await;
}

/// Every resource below the CSEBase (found by discovery) and its representation, as the admin sees them.
async fn whole_tree(m: &crate::common::Mca) -> Vec<(String, Value)> {
    let d = m.req("GET", "/cse-in?fu=1", Some("CAdmin"), None, None).await;
    assert_eq!(d.rsc, 2000);
    let mut uris: Vec<String> = d.pc["m2m:uril"]
        .as_array()
        .expect("uril")
        .iter()
        .map(|u| u.as_str().expect("uri").to_owned())
        .collect();
    uris.sort();
    let mut out = Vec::new();
    // The CSEBase's `poa` names the listener's port, which changes with every start.
    for u in uris.into_iter().filter(|u| u != "cse-in") {
        let a = m.req("GET", &format!("/{u}"), Some("CAdmin"), None, None).await;
        assert_eq!(a.rsc, 2000, "{u}");
        out.push((u, a.pc));
    }
    out
}

/// Concurrent creates (with `mni` deleting the oldest), updates and deletes, then a restart: the reopened store
/// holds exactly the tree that was acknowledged, resource by resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_store_has_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    let m = e.mca.clone();
    let ae = json!({"m2m:ae": {"rn": "t", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Ct"), Some(2), Some(ae)).await.rsc, 2001);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let c = json!({"m2m:cnt": {"rn": format!("c{w}"), "mni": 5}});
            assert_eq!(m.req("POST", "/cse-in/t", Some("Ct"), Some(3), Some(c)).await.rsc, 2001);
            for i in 0..40 {
                let cin = json!({"m2m:cin": {"rn": format!("i{i}"), "con": format!("{w}-{i}")}});
                let a = m.req("POST", &format!("/cse-in/t/c{w}"), Some("Ct"), Some(4), Some(cin)).await;
                assert_eq!(a.rsc, 2001);
            }
            let lbl = json!({"m2m:cnt": {"lbl": [format!("w:{w}")]}});
            assert_eq!(m.req("PUT", &format!("/cse-in/t/c{w}"), Some("Ct"), None, Some(lbl)).await.rsc, 2004);
            if w % 3 == 0 {
                assert_eq!(
                    m.req("DELETE", &format!("/cse-in/t/c{w}/i39"), Some("Ct"), None, None).await.rsc,
                    2002
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let before = whole_tree(&m).await;
    assert!(before.len() > 40, "{}", before.len());
    e.stop().await;
    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    let after = whole_tree(&e.mca).await;
    assert_eq!(after, before);
    e.stop().await;
}

fn request(
    op: onem2m::Operation,
    to: &str,
    fr: &str,
    ty: Option<u16>,
    pc: Option<Value>,
) -> onem2m::RequestPrimitive {
    let mut r = onem2m::RequestPrimitive::new(op, to, Some(fr.into()), "1");
    r.ty = ty;
    r.pc = pc;
    r
}

/// Subscriptions and access control policies are resources like the others: after a restart an ACP still grants
/// and denies, and a subscription still notifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_policies_survive_a_restart() {
    use onem2m::{Operation::*, Rsc};
    let dir = tempfile::tempdir().unwrap();
    let c = cse::Cse::open(cse::CseConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() })
        .await
        .unwrap();
    for (fr, rn, poa) in
        [("Cs", "s", Some("local://sub-rx")), ("Creader", "reader", None), ("Cother", "other", None)]
    {
        let mut ae = json!({"rn": rn, "api": "Nx", "rr": poa.is_some(), "srv": ["3"]});
        if let Some(p) = poa {
            ae["poa"] = json!([p]);
        }
        let r = c.handle(request(Create, "cse-in", fr, Some(2), Some(json!({"m2m:ae": ae})))).await;
        assert_eq!(r.rsc, Rsc::Created);
    }
    let acp = json!({"m2m:acp": {"rn": "p", "pv": {"acr": [{"acor": ["Creader"], "acop": 2}]},
        "pvs": {"acr": [{"acor": ["Cs"], "acop": 63}]}}});
    let r = c.handle(request(Create, "cse-in/s", "Cs", Some(1), Some(acp))).await;
    assert_eq!(r.rsc, Rsc::Created);
    let acp_ri = r.pc.unwrap()["m2m:acp"]["ri"].as_str().unwrap().to_owned();
    let cnt = json!({"m2m:cnt": {"rn": "c", "acpi": [acp_ri]}});
    assert_eq!(c.handle(request(Create, "cse-in/s", "Cs", Some(3), Some(cnt))).await.rsc, Rsc::Created);
    let sub = json!({"m2m:sub": {"rn": "sub", "nu": ["Cs"], "enc": {"net": [3]}}});
    assert_eq!(c.handle(request(Create, "cse-in/s/c", "Cs", Some(23), Some(sub))).await.rsc, Rsc::Created);
    let check = |c: cse::Cse| async move {
        assert_eq!(c.handle(request(Retrieve, "cse-in/s/c", "Creader", None, None)).await.rsc, Rsc::Ok);
        let denied = c.handle(request(Retrieve, "cse-in/s/c", "Cother", None, None)).await.rsc;
        assert_eq!(denied, Rsc::OriginatorHasNoPrivilege);
        let denied =
            c.handle(request(Create, "cse-in/s/c", "Creader", Some(4), Some(json!({"m2m:cin": {}})))).await;
        assert_eq!(denied.rsc, Rsc::OriginatorHasNoPrivilege, "the ACP grants Creader RETRIEVE only");
    };
    check(c.clone()).await;
    c.close().await;
    drop(c);

    let c = cse::Cse::open(cse::CseConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() })
        .await
        .unwrap();
    let mut rx = c.local_poa("sub-rx");
    check(c.clone()).await;
    let cin = json!({"m2m:cin": {"con": "after restart"}});
    assert_eq!(c.handle(request(Create, "cse-in/s/c", "Cs", Some(4), Some(cin))).await.rsc, Rsc::Created);
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(n.body.pointer("/m2m:sgn/nev/rep/m2m:cin/con"), Some(&json!("after restart")));
    let sur = n.body.pointer("/m2m:sgn/sur").and_then(Value::as_str).unwrap_or_default();
    assert!(sur.starts_with("/id-in/"), "the notification names its subscription: {sur:?}");
    c.close().await;
}

/// A CSE configured with another CSE-ID, CSEBase name and SP-ID answers to all three address forms built from them
/// (CSE-relative, SP-relative, absolute), structured and unstructured, and to nothing built from the defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_cse_id_and_name_are_used_everywhere() {
    use onem2m::{Operation::*, Rsc};
    let cfg = cse::CseConfig {
        cse_id: "mn-cse-7".into(),
        rn: "plant".into(),
        sp_id: "operator.example".into(),
        ..Default::default()
    };
    let c = cse::Cse::open(cfg).await.unwrap();
    let ae = json!({"m2m:ae": {"rn": "line1", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(c.handle(request(Create, "plant", "Cl", Some(2), Some(ae))).await.rsc, Rsc::Created);
    let r = c
        .handle(request(
            Create,
            "/mn-cse-7/plant/line1",
            "Cl",
            Some(3),
            Some(json!({"m2m:cnt": {"rn": "t"}})),
        ))
        .await;
    assert_eq!(r.rsc, Rsc::Created);
    let ri = r.pc.unwrap()["m2m:cnt"]["ri"].as_str().unwrap().to_owned();
    for to in [
        "plant/line1/t".to_owned(),
        "/mn-cse-7/plant/line1/t".to_owned(),
        "//operator.example/mn-cse-7/plant/line1/t".to_owned(),
        ri.clone(),
        format!("/mn-cse-7/{ri}"),
        format!("//operator.example/mn-cse-7/{ri}"),
    ] {
        assert_eq!(c.handle(request(Retrieve, &to, "Cl", None, None)).await.rsc, Rsc::Ok, "{to}");
    }
    for to in ["cse-in/line1/t", "/id-in/plant/line1/t", "//ipechain.example/mn-cse-7/plant/line1/t"] {
        assert_eq!(c.handle(request(Retrieve, to, "Cl", None, None)).await.rsc, Rsc::NotFound, "{to}");
    }
    let base = c.handle(request(Retrieve, "plant", "CAdmin", None, None)).await;
    assert_eq!(base.pc.as_ref().and_then(|p| p.pointer("/m2m:cb/csi")), Some(&json!("/mn-cse-7")));
    assert_eq!(base.pc.as_ref().and_then(|p| p.pointer("/m2m:cb/rn")), Some(&json!("plant")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_api_and_local_notifications() {
    let c = cse::Cse::open(cse::CseConfig::default()).await.unwrap();
    let mut rx = c.local_poa("gateway");
    use onem2m::{Operation::Create, Rsc};
    let ae =
        json!({"m2m:ae": {"rn": "gw", "api": "Nipe", "rr": true, "srv": ["3"], "poa": ["local://gateway"]}});
    assert_eq!(c.handle(request(Create, "cse-in", "Cgw", Some(2), Some(ae))).await.rsc, Rsc::Created);
    let cnt = json!({"m2m:cnt": {"rn": "cmd"}});
    assert_eq!(c.handle(request(Create, "cse-in/gw", "Cgw", Some(3), Some(cnt))).await.rsc, Rsc::Created);
    let sub = json!({"m2m:sub": {"rn": "s", "nu": ["Cgw"], "enc": {"net": [3]}}});
    assert_eq!(
        c.handle(request(Create, "cse-in/gw/cmd", "Cgw", Some(23), Some(sub))).await.rsc,
        Rsc::Created
    );
    let cin = json!({"m2m:cin": {"con": {"op": "read", "path": "/3303/0/5700"}}});
    let r = c.handle(request(Create, "/id-in/cse-in/gw/cmd", "CAdmin", Some(4), Some(cin))).await;
    assert_eq!(r.rsc, Rsc::Created);
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(n.body.pointer("/m2m:sgn/nev/net"), Some(&json!(3)));
    assert_eq!(n.body.pointer("/m2m:sgn/nev/rep/m2m:cin/con/op"), Some(&Value::from("read")));
}

/// Requests handled in order as one: written together (and durable together: the restart finds them), their
/// notifications in order, and nothing after the first answer the caller refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_order_are_written_as_one_and_stop_at_the_first_refused() {
    use onem2m::{Operation::Create, Rsc};
    let dir = tempfile::tempdir().unwrap();
    let cfg = || cse::CseConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let c = cse::Cse::open(cfg()).await.unwrap();
    let mut rx = c.local_poa("gateway");
    let ae =
        json!({"m2m:ae": {"rn": "gw", "api": "Nipe", "rr": true, "srv": ["3"], "poa": ["local://gateway"]}});
    assert_eq!(c.handle(request(Create, "cse-in", "Cgw", Some(2), Some(ae))).await.rsc, Rsc::Created);
    for cnt in ["data", "rsp"] {
        let body = json!({"m2m:cnt": {"rn": cnt}});
        assert_eq!(
            c.handle(request(Create, "cse-in/gw", "Cgw", Some(3), Some(body))).await.rsc,
            Rsc::Created
        );
        let sub = json!({"m2m:sub": {"rn": "s", "nu": ["Cgw"], "enc": {"net": [3]}}});
        let to = format!("cse-in/gw/{cnt}");
        assert_eq!(c.handle(request(Create, &to, "Cgw", Some(23), Some(sub))).await.rsc, Rsc::Created);
    }
    let cin = |to: &str, rn: &str| {
        request(Create, to, "Cgw", Some(4), Some(json!({"m2m:cin": {"rn": rn, "con": {"at": to}}})))
    };
    let written = |r: &onem2m::ResponsePrimitive| matches!(r.rsc, Rsc::Created | Rsc::Conflict);

    let rsps =
        c.handle_in_order(vec![cin("cse-in/gw/data", "r1"), cin("cse-in/gw/rsp", "r1")], written).await;
    assert_eq!(rsps.iter().map(|r| r.rsc).collect::<Vec<_>>(), [Rsc::Created, Rsc::Created]);
    for want in ["cse-in/gw/data", "cse-in/gw/rsp"] {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(n.body.pointer("/m2m:sgn/nev/rep/m2m:cin/con/at"), Some(&json!(want)));
    }
    // Again (a replayed event): 4105 each, which the caller accepts.
    let rsps =
        c.handle_in_order(vec![cin("cse-in/gw/data", "r1"), cin("cse-in/gw/rsp", "r1")], written).await;
    assert_eq!(rsps.iter().map(|r| r.rsc).collect::<Vec<_>>(), [Rsc::Conflict, Rsc::Conflict]);
    // A missing container: answered 4004, and the request after it is not performed.
    let rsps = c
        .handle_in_order(
            vec![cin("cse-in/gw/data", "r2"), cin("cse-in/gw/nope", "r2"), cin("cse-in/gw/rsp", "r2")],
            written,
        )
        .await;
    assert_eq!(rsps.iter().map(|r| r.rsc).collect::<Vec<_>>(), [Rsc::Created, Rsc::NotFound]);
    assert!(c.handle_in_order(Vec::new(), written).await.is_empty());
    c.close().await;
    drop(c);

    let c = cse::Cse::open(cfg()).await.unwrap();
    let get =
        |to: &str| onem2m::RequestPrimitive::new(onem2m::Operation::Retrieve, to, Some("Cgw".into()), "g");
    for (to, rsc) in [
        ("cse-in/gw/data/r1", Rsc::Ok),
        ("cse-in/gw/rsp/r1", Rsc::Ok),
        ("cse-in/gw/data/r2", Rsc::Ok),
        ("cse-in/gw/rsp/r2", Rsc::NotFound),
    ] {
        assert_eq!(c.handle(get(to)).await.rsc, rsc, "{to}");
    }
    let cnt = c.handle(get("cse-in/gw/data")).await;
    assert_eq!(cnt.pc.unwrap()["m2m:cnt"]["cni"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_retried_until_the_receiver_is_up() {
    let e = Embedded::start(None).await;
    let m = e.mca.clone();
    // The receiver's port is reserved but nothing listens yet.
    let port = test_support::free_tcp_port();
    let poa = format!("http://127.0.0.1:{port}");
    let ae = json!({"m2m:ae": {"rn": "r", "api": "Nx", "rr": true, "srv": ["3"], "poa": [poa]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Cr"), Some(2), Some(ae)).await.rsc, 2001);
    assert_eq!(
        m.req("POST", "/cse-in/r", Some("Cr"), Some(3), Some(json!({"m2m:cnt": {"rn": "c"}}))).await.rsc,
        2001
    );
    let sub = json!({"m2m:sub": {"rn": "s", "nu": ["Cr"], "enc": {"net": [3]}}});
    assert_eq!(m.req("POST", "/cse-in/r/c", Some("Cr"), Some(23), Some(sub)).await.rsc, 2001);
    for i in 0..3 {
        let cin = json!({"m2m:cin": {"con": format!("{i}")}});
        assert_eq!(m.req("POST", "/cse-in/r/c", Some("Cr"), Some(4), Some(cin)).await.rsc, 2001);
    }
    // The receiver comes up during the back-off: every notification arrives, in order.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let tx = tx.clone();
        async move {
            let b = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
            tx.send(serde_json::from_slice(&b).unwrap()).unwrap();
            http::Response::builder()
                .status(200)
                .header("X-M2M-RSC", "2000")
                .body(axum::body::Body::empty())
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut got = Vec::new();
    while got.len() < 3 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        got.push(n.pointer("/m2m:sgn/nev/rep/m2m:cin/con").cloned().unwrap());
    }
    assert_eq!(got, vec![json!("0"), json!("1"), json!("2")]);
    e.stop().await;
}

/// A receiver's answer decides: 5xxx is retried like a transport error, 4xxx (refused) is not retried, 2xxx is
/// delivered. One queue per target keeps the order, so the third notification arrives only after the second's
/// (absent) retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_answers_decide_what_is_retried() {
    let e = Embedded::start(None).await;
    let m = e.mca.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let answered_a = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (tx, answered_a) = (tx.clone(), answered_a.clone());
        async move {
            let b = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
            let v: Value = serde_json::from_slice(&b).unwrap();
            let con = v.pointer("/m2m:sgn/nev/rep/m2m:cin/con").and_then(Value::as_str).map(str::to_owned);
            let rsc = match con.as_deref() {
                None => "2000", // the verification request
                Some("a") if !answered_a.swap(true, std::sync::atomic::Ordering::SeqCst) => "5000",
                Some("b") => "4004",
                Some(_) => "2000",
            };
            if let Some(c) = con {
                tx.send(c).unwrap();
            }
            http::Response::builder()
                .status(200)
                .header("X-M2M-RSC", rsc)
                .body(axum::body::Body::empty())
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let poa = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let ae = json!({"m2m:ae": {"rn": "r", "api": "Nx", "rr": true, "srv": ["3"], "poa": [poa]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Cr"), Some(2), Some(ae)).await.rsc, 2001);
    let cnt = json!({"m2m:cnt": {"rn": "c"}});
    assert_eq!(m.req("POST", "/cse-in/r", Some("Cr"), Some(3), Some(cnt)).await.rsc, 2001);
    let sub = json!({"m2m:sub": {"rn": "s", "nu": ["Cr"], "enc": {"net": [3]}}});
    assert_eq!(m.req("POST", "/cse-in/r/c", Some("Cr"), Some(23), Some(sub)).await.rsc, 2001);
    for con in ["a", "b", "c"] {
        let cin = json!({"m2m:cin": {"con": con}});
        assert_eq!(m.req("POST", "/cse-in/r/c", Some("Cr"), Some(4), Some(cin)).await.rsc, 2001);
    }
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some("c") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        got.push(n);
    }
    assert_eq!(got, ["a", "a", "b", "c"], "a retried once after 5000, b (4004) not retried");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_resources_go_away_without_requests() {
    let c = cse::Cse::open(cse::CseConfig::default()).await.unwrap();
    #[allow(clippy::disallowed_methods)] // the test needs an `et` just ahead of the wall clock
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let et = onem2m::time::format(now + 1_000_000);
    let cnt = json!({"m2m:cnt": {"rn": "short", "et": et}});
    let r = c.handle(request(onem2m::Operation::Create, "cse-in", "CAdmin", Some(3), Some(cnt))).await;
    assert_eq!(r.rsc, onem2m::Rsc::Created);
    let before = c.resource_count();
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    assert_eq!(c.resource_count(), before - 1);
}

/// Nothing acknowledged is lost: a CSE process is killed (SIGKILL) right after answering a stream of CREATEs; the
/// reopened store has every acknowledged resource. The test binary re-runs itself as the CSE process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_cse_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os("CSE_CRASH_CHILD_DIR") {
        // Child: serve on an ephemeral port, write the port to a file, run until killed.
        let dir = std::path::PathBuf::from(dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = cse::CseConfig { data_dir: Some(dir.join("data")), ..Default::default() };
        let c = cse::Cse::open(cfg).await.unwrap();
        std::fs::write(dir.join("port.tmp"), port.to_string()).unwrap();
        std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
        cse::serve(c, listener, std::future::pending()).await.unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = test_support::ChildGuard::spawn(
        std::process::Command::new(exe)
            .args(["embedded::killed_cse_loses_nothing_acknowledged", "--exact", "--nocapture"])
            .env("CSE_CRASH_CHILD_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let port_file = dir.path().join("port");
    let mut port = None;
    for _ in 0..200 {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            port = p.trim().parse::<u16>().ok();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let port = port.expect("child CSE wrote its port");
    let m = crate::common::Mca::new(format!("127.0.0.1:{port}"));
    let ae = json!({"m2m:ae": {"rn": "k", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Ck"), Some(2), Some(ae)).await.rsc, 2001);
    assert_eq!(
        m.req("POST", "/cse-in/k", Some("Ck"), Some(3), Some(json!({"m2m:cnt": {"rn": "c"}}))).await.rsc,
        2001
    );
    // 8 concurrent writers; stop the child with SIGKILL while they are still writing.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let m = m.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..3000 {
                let rn = format!("w{w}-{i}");
                let body = json!({"m2m:cin": {"rn": rn, "con": "x"}});
                let Ok(a) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    m.try_req("POST", "/cse-in/k/c", Some("Ck"), Some(4), Some(body)),
                )
                .await
                else {
                    return;
                };
                match a {
                    Some(a) if a.rsc == 2001 => acked.lock().unwrap().push(rn),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "too few writes before the kill: {}", acked.len());

    let e = Embedded::start(Some(dir.path().join("data"))).await;
    for rn in &acked {
        let a = e.mca.req("GET", &format!("/cse-in/k/c/{rn}"), Some("Ck"), None, None).await;
        assert_eq!(a.rsc, 2000, "acknowledged {rn} was lost");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_writes_are_refused_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cse::CseConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let c = cse::Cse::open(cfg.clone()).await.unwrap();
    let cnt = |rn: &str| {
        request(onem2m::Operation::Create, "cse-in", "CAdmin", Some(3), Some(json!({"m2m:cnt": {"rn": rn}})))
    };
    assert_eq!(c.handle(cnt("kept")).await.rsc, onem2m::Rsc::Created);
    c.close().await;
    let r = c.handle(cnt("refused")).await;
    assert_eq!(r.rsc, onem2m::Rsc::InternalServerError);
    // The CSE now refuses everything (its memory may be ahead of its disk).
    let get = request(onem2m::Operation::Retrieve, "cse-in/kept", "CAdmin", None, None);
    assert_eq!(c.handle(get.clone()).await.rsc, onem2m::Rsc::InternalServerError);
    drop(c);
    let c = cse::Cse::open(cfg).await.unwrap();
    assert_eq!(c.handle(get).await.rsc, onem2m::Rsc::Ok);
    let gone = request(onem2m::Operation::Retrieve, "cse-in/refused", "CAdmin", None, None);
    assert_eq!(c.handle(gone).await.rsc, onem2m::Rsc::NotFound);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_load_generator_runs_against_the_embedded_cse() {
    let e = Embedded::start(None).await;
    let auth = e.mca.authority.clone();
    cse::bench::prepare(&auth).await.unwrap();
    let d = std::time::Duration::from_millis(300);
    let creates = cse::bench::measure(&auth, cse::bench::BenchOp::CreateCin, 4, d, "t").await.unwrap();
    let reads = cse::bench::measure(&auth, cse::bench::BenchOp::RetrieveLatest, 2, d, "u").await.unwrap();
    assert!(creates > 0.0 && reads > 0.0, "{creates} {reads}");
    // Every container keeps at most mni=100 contentInstances, and each got the seed plus the measured creates.
    let c = e.mca.req("GET", "/cse-in/bench/t0", Some("CAdmin"), None, None).await;
    assert!(c.res()["cni"].as_u64().is_some_and(|n| (1..=100).contains(&n)));
    e.stop().await;
}
