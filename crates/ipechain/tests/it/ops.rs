//! The operations endpoints of `ipechain up` (docs/operations.md): after a transaction and an Mca request,
//! `/metrics` shows both peers' heights at the transaction's block, a Raft leader, the peer's gateway and
//! validation counters and the CSE's request counter; `/healthz`, `/readyz` and `/version` answer. `ipechain node`
//! processes with `ops_listen` serve their own node's metrics.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use crate::interworking::{mca, sdk, spawn_up, stop, wait_ledger_up};
use crate::processes::Net;

/// A blocking `GET` on 127.0.0.1; (HTTP status, body), status 0 when nothing listens (yet).
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// The samples of an exposition, by series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            (series.to_owned(), v.parse().unwrap_or_else(|_| panic!("not a value: {l}")))
        })
        .collect()
}

/// The samples of one metric name, by their labels.
fn family<'a>(s: &'a BTreeMap<String, f64>, name: &str) -> Vec<(&'a str, f64)> {
    s.iter()
        .filter_map(|(k, v)| {
            let labels = k.strip_prefix(name)?;
            (labels.is_empty() || labels.starts_with('{')).then_some((labels, *v))
        })
        .collect()
}

async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_metrics_health_readiness_and_version() {
    let net = Net::generate();
    let (cse, coap, ops) =
        (test_support::free_tcp_port(), test_support::free_udp_port(), test_support::free_tcp_port());
    let mut up = spawn_up(&net, cse, coap, &["--ops-addr".into(), format!("127.0.0.1:{ops}")]);
    wait_ledger_up(&net).await;
    // Ready once everything has started.
    let ready = poll("/readyz 200", || {
        let (status, body) = get(ops, "/readyz");
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(ready, r#"{"status":"OK"}"#);

    // A transaction through peer0.org1's gateway, and an Mca request.
    let committed = sdk(&net, 1, "User1")
        .contract("kv")
        .submit("put", &[b"ops-key".to_vec(), b"v".to_vec()])
        .await
        .unwrap();
    let want_height = committed.block + 1;
    poll("the CSE", || (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(()))
        .await;

    // Both peers reach the transaction's block; the orderers know a leader.
    let s = poll("both peers at the block and a Raft leader in /metrics", || {
        let (status, body) = get(ops, "/metrics");
        assert_eq!(status, 200, "{body}");
        let s = samples(&body);
        let heights = family(&s, "ipechain_peer_block_height");
        let leaders = family(&s, "ipechain_orderer_raft_is_leader");
        (heights.len() == 2
            && heights.iter().all(|(_, h)| *h >= want_height as f64)
            && leaders.iter().any(|(_, v)| *v == 1.0))
        .then_some(s)
    })
    .await;
    let heights = family(&s, "ipechain_peer_block_height");
    assert!(heights.iter().any(|(l, _)| l.contains("peer0.org1")), "{heights:?}");
    assert!(heights.iter().any(|(l, _)| l.contains("peer0.org2")), "{heights:?}");
    // Three orderers, each with a term and a leader it knows; the chain's blocks went through Raft.
    assert_eq!(family(&s, "ipechain_orderer_raft_term").len(), 3, "{s:?}");
    assert!(family(&s, "ipechain_orderer_raft_term").iter().all(|(_, t)| *t >= 1.0), "{s:?}");
    assert!(family(&s, "ipechain_orderer_raft_leader_id").iter().any(|(_, l)| *l >= 1.0), "{s:?}");
    assert!(family(&s, "ipechain_orderer_raft_commit_index").iter().any(|(_, i)| *i >= 1.0), "{s:?}");
    // The peers validated the transaction, which went through peer0.org1's gateway.
    let valid: f64 = family(&s, "ipechain_peer_validation_codes_total")
        .iter()
        .filter(|(l, _)| l.contains("peer0.org1") && l.contains(r#"code="VALID""#))
        .map(|(_, v)| v)
        .sum();
    assert!(valid >= 1.0, "{s:?}");
    let org1_ok = |name: &str| {
        family(&s, name)
            .iter()
            .filter(|(l, _)| l.contains("peer0.org1") && l.contains(r#"outcome="ok""#))
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    assert!(org1_ok("ipechain_gateway_endorse_duration_seconds_count") >= 1.0, "{s:?}");
    assert!(org1_ok("ipechain_gateway_submit_duration_seconds_count") >= 1.0, "{s:?}");
    let commits: f64 = family(&s, "ipechain_peer_commit_duration_seconds_count").iter().map(|(_, v)| v).sum();
    assert!(commits >= 2.0, "a block committed on each peer: {s:?}");
    // The CSE counted the Mca retrieve it answered with 2000.
    let retrieves = family(&s, "ipechain_cse_requests_total");
    assert!(
        retrieves
            .iter()
            .any(|(l, v)| l.contains(r#"op="retrieve""#) && l.contains(r#"rsc="2000""#) && *v >= 1.0),
        "{retrieves:?}"
    );
    // The LwM2M server's and the bridge's counters are there (no device registered in this test).
    assert_eq!(family(&s, "ipechain_lwm2m_registrations"), [("", 0.0)]);
    let handshakes = family(&s, "ipechain_lwm2m_dtls_handshakes_total");
    assert_eq!(handshakes, [(r#"{outcome="failed"}"#, 0.0), (r#"{outcome="ok"}"#, 0.0)]);
    assert_eq!(family(&s, "ipechain_bridge_errors_total"), [("", 0.0)]);
    assert!(s.contains_key("ipechain_bridge_event_lag_blocks"), "{s:?}");

    let (status, body) = get(ops, "/healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    let (status, body) = get(ops, "/version");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "ipechain", "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    stop(&mut up).await;
}

/// `ipechain node` with `ops_listen` at the top of its file: a peer's and an orderer's endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_processes_serve_their_operations_endpoints() {
    let mut net = Net::generate();
    let (orderer, peer) = ("orderer0.ipechain.local", "peer0.org1.ipechain.local");
    let mut ports = BTreeMap::new();
    for name in [orderer, peer] {
        let port = test_support::free_tcp_port();
        let path = net.dir.node_config(name);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("ops_listen = \"127.0.0.1:{port}\"\n{text}")).unwrap();
        ports.insert(name, port);
    }
    for n in net.node_names() {
        net.start(&n);
    }
    wait_ledger_up(&net).await;
    for port in ports.values() {
        poll("/readyz 200", || (get(*port, "/readyz").0 == 200).then_some(())).await;
    }
    let committed = sdk(&net, 1, "User1")
        .contract("kv")
        .submit("put", &[b"node-ops".to_vec(), b"v".to_vec()])
        .await
        .unwrap();
    let want = (committed.block + 1) as f64;
    let series = format!(r#"ipechain_peer_block_height{{peer="{peer}"}}"#);
    let s = poll("the peer's height in its /metrics", || {
        let s = samples(&get(ports[peer], "/metrics").1);
        (s.get(&series).is_some_and(|h| *h >= want)).then_some(s)
    })
    .await;
    assert_eq!(family(&s, "ipechain_peer_block_height").len(), 1, "only its own peer: {s:?}");
    assert!(family(&s, "ipechain_orderer_raft_term").is_empty(), "no orderer in a peer's process: {s:?}");
    let o = poll("the orderer's Raft gauges in its /metrics", || {
        let s = samples(&get(ports[orderer], "/metrics").1);
        let height = s.get(&format!(r#"ipechain_orderer_block_height{{orderer="{orderer}"}}"#)).copied();
        let leader = s.get(&format!(r#"ipechain_orderer_raft_leader_id{{orderer="{orderer}"}}"#)).copied();
        (height.is_some_and(|h| h >= want) && leader.is_some_and(|l| l >= 1.0)).then_some(s)
    })
    .await;
    assert!(family(&o, "ipechain_orderer_raft_term").iter().all(|(_, t)| *t >= 1.0), "{o:?}");
    assert!(family(&o, "ipechain_peer_block_height").is_empty(), "{o:?}");
    for port in ports.values() {
        let (status, body) = get(*port, "/healthz");
        assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
        assert_eq!(get(*port, "/version").0, 200);
    }
    net.stop_all();
}
