//! Bad input: every malformed request gets the right RSC and an error message, never a panic, and nothing stored
//! changes.

use serde_json::json;

use crate::common::Embedded;

async fn snapshot(e: &Embedded) -> serde_json::Value {
    let a = e.mca.req("GET", "/cse-in/b?rcn=4", Some("CAdmin"), None, None).await;
    assert_eq!(a.rsc, 2000);
    a.pc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    let m = e.mca.clone();
    let ae = json!({"m2m:ae": {"rn": "b", "api": "Nx", "rr": false, "srv": ["3"]}});
    assert_eq!(m.req("POST", "/cse-in", Some("Cb"), Some(2), Some(ae)).await.rsc, 2001);
    assert_eq!(
        m.req("POST", "/cse-in/b", Some("Cb"), Some(3), Some(json!({"m2m:cnt": {"rn": "c", "mbs": 100}})))
            .await
            .rsc,
        2001
    );
    assert_eq!(
        m.req("POST", "/cse-in/b/c", Some("Cb"), Some(4), Some(json!({"m2m:cin": {"con": "ok"}}))).await.rsc,
        2001
    );
    let count = e.cse.resource_count();
    let before = snapshot(&e).await;

    let h = |o: &str, ri: &str, rvi: &str, ct: &str| -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !o.is_empty() {
            v.push(("X-M2M-Origin", o.to_owned()));
        }
        if !ri.is_empty() {
            v.push(("X-M2M-RI", ri.to_owned()));
        }
        if !rvi.is_empty() {
            v.push(("X-M2M-RVI", rvi.to_owned()));
        }
        if !ct.is_empty() {
            v.push(("Content-Type", ct.to_owned()));
        }
        v
    };
    let cin_ct = "application/json;ty=4";
    let big = format!("{{\"m2m:cin\": {{\"con\": \"{}\"}}}}", "x".repeat(2 << 20));
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, String)>, Vec<u8>, u16);
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", cin_ct),
            b"{\"m2m:cin\": ".to_vec(),
            4000,
        ),
        ("JSON not an object", "POST", "/cse-in/b/c", h("Cb", "1", "3", cin_ct), b"[1,2]".to_vec(), 4000),
        (
            "missing ty (POST = NOTIFY)",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "wrong ty",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=3"),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "non-numeric ty",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=cin"),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "unknown ty",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=77"),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "missing RI",
            "POST",
            "/cse-in/b/c",
            h("Cb", "", "3", cin_ct),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "missing RVI",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "", cin_ct),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4001,
        ),
        (
            "unsupported RVI",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "1", cin_ct),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4001,
        ),
        (
            "missing originator",
            "POST",
            "/cse-in/b/c",
            h("", "1", "3", cin_ct),
            b"{\"m2m:cin\":{\"con\":\"x\"}}".to_vec(),
            4000,
        ),
        (
            "unknown attribute",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", cin_ct),
            b"{\"m2m:cin\":{\"con\":\"x\",\"zz\":1}}".to_vec(),
            4000,
        ),
        (
            "content over mbs",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", cin_ct),
            format!("{{\"m2m:cin\":{{\"con\":\"{}\"}}}}", "y".repeat(101)).into_bytes(),
            5207,
        ),
        (
            "body over the size limit",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", cin_ct),
            big.into_bytes(),
            4000,
        ),
        (
            "bad rn",
            "POST",
            "/cse-in/b",
            h("Cb", "1", "3", "application/json;ty=3"),
            b"{\"m2m:cnt\":{\"rn\":\"a b\"}}".to_vec(),
            4000,
        ),
        (
            "subscription with rateLimit (not supported)",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=23"),
            b"{\"m2m:sub\":{\"rn\":\"s\",\"nu\":[\"Cb\"],\"rl\":{\"mnn\":1,\"tww\":\"PT1S\"}}}".to_vec(),
            5001,
        ),
        (
            "subscription with pendingNotification (not supported)",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=23"),
            b"{\"m2m:sub\":{\"rn\":\"s\",\"nu\":[\"Cb\"],\"pn\":1}}".to_vec(),
            5001,
        ),
        (
            "subscription with a bn duration under 1 s",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json;ty=23"),
            b"{\"m2m:sub\":{\"rn\":\"s\",\"nu\":[\"Cb\"],\"bn\":{\"num\":2,\"dur\":\"PT0.5S\"}}}".to_vec(),
            4000,
        ),
        ("bad target id", "GET", "/cse-in/b//c", h("Cb", "1", "3", ""), Vec::new(), 4000),
        ("unknown target", "GET", "/cse-in/b/nope", h("Cb", "1", "3", ""), Vec::new(), 4004),
        ("unknown CSE-ID", "GET", "/~/id-other/cse-in", h("Cb", "1", "3", ""), Vec::new(), 4004),
        ("bad query", "GET", "/cse-in/b?rcn=99", h("Cb", "1", "3", ""), Vec::new(), 4000),
        ("unknown query parameter", "GET", "/cse-in/b?xyz=1", h("Cb", "1", "3", ""), Vec::new(), 4000),
        ("no privilege", "DELETE", "/cse-in/b/c", h("Cother", "1", "3", ""), Vec::new(), 4103),
        (
            "re-registration",
            "POST",
            "/cse-in",
            h("Cb", "1", "3", "application/json;ty=2"),
            b"{\"m2m:ae\":{\"rn\":\"b2\",\"api\":\"Nx\",\"rr\":false,\"srv\":[\"3\"]}}".to_vec(),
            4117,
        ),
        (
            "AE originator not C/S",
            "POST",
            "/cse-in",
            h("Xb", "1", "3", "application/json;ty=2"),
            b"{\"m2m:ae\":{\"rn\":\"b3\",\"api\":\"Nx\",\"rr\":false,\"srv\":[\"3\"]}}".to_vec(),
            4107,
        ),
        (
            "duplicate name",
            "POST",
            "/cse-in/b",
            h("Cb", "1", "3", "application/json;ty=3"),
            b"{\"m2m:cnt\":{\"rn\":\"c\"}}".to_vec(),
            4105,
        ),
        (
            "update cin",
            "PUT",
            "/cse-in/b/c/la",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cin\":{\"con\":\"z\"}}".to_vec(),
            4005,
        ),
        (
            "update read-only",
            "PUT",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cnt\":{\"ri\":\"z\"}}".to_vec(),
            4000,
        ),
        (
            "update malformed",
            "PUT",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cnt\":".to_vec(),
            4000,
        ),
        (
            "et in the past",
            "PUT",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cnt\":{\"et\":\"20000101T000000\"}}".to_vec(),
            4000,
        ),
        (
            "et not a timestamp",
            "PUT",
            "/cse-in/b/c",
            h("Cb", "1", "3", "application/json"),
            b"{\"m2m:cnt\":{\"et\":\"tomorrow\"}}".to_vec(),
            4000,
        ),
        ("delete CSEBase", "DELETE", "/cse-in", h("CAdmin", "1", "3", ""), Vec::new(), 4005),
        ("PATCH", "PATCH", "/cse-in/b", h("Cb", "1", "3", ""), Vec::new(), 4005),
        ("CBOR content", "POST", "/cse-in/b/c", h("Cb", "1", "3", "application/cbor;ty=4"), vec![0xa0], 4015),
        (
            "invalid UTF-8 JSON",
            "POST",
            "/cse-in/b/c",
            h("Cb", "1", "3", cin_ct),
            vec![b'"', 0xff, b'"'],
            4000,
        ),
    ];
    for (label, method, path, headers, body, want) in cases {
        let a = m.raw(method, path, &headers, body).await;
        assert_eq!(a.rsc, want, "{label}: {:?}", a.pc);
        assert!(a.http >= 400, "{label}: HTTP {}", a.http);
        let msg = a.pc.get("m2m:dbg").and_then(|v| v.as_str()).unwrap_or("");
        assert!(!msg.is_empty(), "{label}: no error message");
    }
    assert_eq!(e.cse.resource_count(), count, "resource count changed");
    assert_eq!(snapshot(&e).await, before, "state changed");
    e.stop().await;
    // And on disk: a restart finds exactly what was there before the bad requests.
    let e = Embedded::start(Some(dir.path().to_path_buf())).await;
    assert_eq!(e.cse.resource_count(), count, "resource count changed on disk");
    assert_eq!(snapshot(&e).await, before, "stored state changed");
    e.stop().await;
}
