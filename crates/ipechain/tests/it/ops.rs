//! The operations endpoints of `ipechain up` (docs/operations.md): after a transaction and an Mca request,
//! `/metrics` shows both peers' heights at the transaction's block, a Raft leader, the peer's gateway and
//! validation counters and the CSE's request counter; `/healthz`, `/readyz` and `/version` answer. `ipechain node`
//! processes with `ops_listen` serve their own node's metrics. The listener over TLS (with required client
//! certificates), and `ipechain gateway`'s health: a stopped ledger peer turns `/healthz` 503, and it
//! recovers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use crate::interworking::{ledger_link, mca, policy, sdk, spawn_gateway, spawn_up, stop, wait_ledger_up};
use crate::processes::Net;

/// A blocking `GET` on 127.0.0.1; (HTTP status, body), status 0 when nothing listens (yet) or nothing
/// answers in HTTP (a TLS listener resets the connection).
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// A blocking `GET` over TLS (OpenSSL, another stack than the server's rustls) on 127.0.0.1, trusting
/// `ca` and presenting `client` (certificate and key, PEM) when given: (HTTP status, body), or why the
/// connection failed (a refused handshake shows at connect or, in TLS 1.3, at the first read).
fn https_get(
    port: u16,
    path: &str,
    ca: &[u8],
    client: Option<(&[u8], &[u8])>,
) -> Result<(u16, String), String> {
    use openssl::pkey::PKey;
    use openssl::ssl::{SslConnector, SslMethod};
    use openssl::x509::X509;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|x| e(&x))?;
    b.cert_store_mut().add_cert(X509::from_pem(ca).map_err(|x| e(&x))?).map_err(|x| e(&x))?;
    if let Some((cert, key)) = client {
        let cert = X509::from_pem(cert).map_err(|x| e(&x))?;
        let key = PKey::private_key_from_pem(key).map_err(|x| e(&x))?;
        b.set_certificate(&cert).map_err(|x| e(&x))?;
        b.set_private_key(&key).map_err(|x| e(&x))?;
    }
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|x| e(&x))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).map_err(|x| e(&x))?;
    let mut s = b.build().connect("127.0.0.1", tcp).map_err(|x| e(&x))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map_err(|x| e(&x))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|x| e(&x))?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {out}"))?;
    Ok((status, body.to_owned()))
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
        // The leader counts a block's consensus when its sequencer hears of the entry applied, a moment
        // after the block is in its store (where the peers may already have fetched it).
        let consensus = family(&s, "ipechain_orderer_consensus_duration_seconds_count");
        (heights.len() == 2
            && heights.iter().all(|(_, h)| *h >= want_height as f64)
            && leaders.iter().any(|(_, v)| *v == 1.0)
            && consensus.iter().any(|(_, v)| *v >= 1.0))
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
    // Each orderer that knows a leader has counted it among its leader changes.
    let changes = family(&s, "ipechain_orderer_raft_leader_changes_total");
    assert!(!changes.is_empty() && changes.iter().any(|(_, n)| *n >= 1.0), "{s:?}");
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
    // The submission left peer0.org1 in a BroadcastBatch; the leader proposed its block and saw it applied.
    let sum = |name: &str| family(&s, name).iter().map(|(_, v)| *v).sum::<f64>();
    assert!(
        family(&s, "ipechain_peer_broadcast_batch_envelopes_count")
            .iter()
            .any(|(l, v)| l.contains("peer0.org1") && *v >= 1.0),
        "{s:?}"
    );
    assert!(sum("ipechain_orderer_block_transactions_count") >= 1.0, "{s:?}");
    assert!(sum("ipechain_orderer_batch_wait_duration_seconds_count") >= 1.0, "{s:?}");
    assert!(sum("ipechain_orderer_consensus_duration_seconds_count") >= 1.0, "{s:?}");
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
    // The bridge follows both its peers and its event stream, and has handled every IPE event (the starter
    // policy's) up to the chain's head, which is past the kv transaction's block.
    let s = poll("the bridge caught up with the chain in /metrics", || {
        let s = samples(&get(ops, "/metrics").1);
        let peers_up = family(&s, "ipechain_bridge_ledger_peer_up");
        (peers_up.len() == 2
            && peers_up.iter().all(|(_, v)| *v == 1.0)
            && s.get("ipechain_bridge_event_stream_up") == Some(&1.0)
            && s.get("ipechain_bridge_chain_height_blocks").is_some_and(|h| *h >= want_height as f64)
            && s.get("ipechain_bridge_chain_lag_blocks") == Some(&0.0))
        .then_some(s)
    })
    .await;
    let peers_up = family(&s, "ipechain_bridge_ledger_peer_up");
    assert!(peers_up.iter().any(|(l, _)| l.contains(r#"side="lwm2m""#)), "{peers_up:?}");
    assert!(peers_up.iter().any(|(l, _)| l.contains(r#"side="onem2m""#)), "{peers_up:?}");
    assert_eq!(s.get("ipechain_bridge_events_in_flight"), Some(&0.0), "{s:?}");

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
    // The orderer serves its endpoints over TLS (no client certificate asked), with paths relative to its
    // node file.
    let ca = test_support::pki::Ca::new("ops CA");
    let server = ca.issue("orderer0 ops", &["127.0.0.1"]);
    let nodes_dir = net.dir.node_config(orderer).parent().unwrap().to_path_buf();
    std::fs::write(nodes_dir.join("ops.crt"), &server.cert_pem).unwrap();
    std::fs::write(nodes_dir.join("ops.key"), &server.key_pem).unwrap();
    for name in [orderer, peer] {
        let port = test_support::free_tcp_port();
        let path = net.dir.node_config(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let tls =
            if name == orderer { "ops_tls_cert = \"ops.crt\"\nops_tls_key = \"ops.key\"\n" } else { "" };
        std::fs::write(&path, format!("ops_listen = \"127.0.0.1:{port}\"\n{tls}{text}")).unwrap();
        ports.insert(name, port);
    }
    let scrape = |name: &str, path: &str| {
        if name == orderer {
            https_get(ports[name], path, &ca.cert_pem, None).unwrap_or((0, String::new()))
        } else {
            get(ports[name], path)
        }
    };
    for n in net.node_names() {
        net.start(&n);
    }
    wait_ledger_up(&net).await;
    for name in ports.keys() {
        poll("/readyz 200", || (scrape(name, "/readyz").0 == 200).then_some(())).await;
    }
    // Plain HTTP gets no answer from the TLS listener.
    assert_eq!(get(ports[orderer], "/readyz").0, 0);
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
        let s = samples(&scrape(orderer, "/metrics").1);
        let height = s.get(&format!(r#"ipechain_orderer_block_height{{orderer="{orderer}"}}"#)).copied();
        let leader = s.get(&format!(r#"ipechain_orderer_raft_leader_id{{orderer="{orderer}"}}"#)).copied();
        (height.is_some_and(|h| h >= want) && leader.is_some_and(|l| l >= 1.0)).then_some(s)
    })
    .await;
    assert!(family(&o, "ipechain_orderer_raft_term").iter().all(|(_, t)| *t >= 1.0), "{o:?}");
    assert!(family(&o, "ipechain_peer_block_height").is_empty(), "{o:?}");
    for name in ports.keys() {
        let (status, body) = scrape(name, "/healthz");
        assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
        assert_eq!(scrape(name, "/version").0, 200);
    }
    net.stop_all();
}

/// `up` with `--ops-tls-cert`, `--ops-tls-key` and `--ops-client-ca`: a scraper with a certificate of the
/// client CA reads `/metrics` over HTTPS; one without a certificate, or with one of another CA, is refused
/// in the handshake; plain HTTP gets no answer. A key that is not the certificate's stops `up` at once,
/// naming the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_its_operations_endpoints_over_tls_to_clients_with_certificates() {
    let net = Net::generate();
    let files = tempfile::tempdir().unwrap();
    let ca = test_support::pki::Ca::new("ops CA");
    let server = ca.issue("ipechain ops", &["127.0.0.1"]);
    let clients = test_support::pki::Ca::new("ops clients CA");
    let prometheus = clients.issue("prometheus", &[]);
    let stranger = test_support::pki::Ca::new("another CA").issue("stranger", &[]);
    let path = |n: &str| files.path().join(n).display().to_string();
    std::fs::write(path("server.crt"), &server.cert_pem).unwrap();
    std::fs::write(path("server.key"), &server.key_pem).unwrap();
    std::fs::write(path("clients.crt"), &clients.cert_pem).unwrap();
    std::fs::write(path("other.key"), &prometheus.key_pem).unwrap();

    // A key of another certificate: `up` refuses to start and says which files.
    let out = std::process::Command::new(crate::processes::bin())
        .args(["up", "--data-dir"])
        .arg(files.path().join("never"))
        .args(["--ops-addr", "127.0.0.1:0", "--ops-tls-cert", &path("server.crt"), "--ops-tls-key"])
        .arg(path("other.key"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("does not belong to the certificate") && err.contains("other.key"), "{err}");
    assert!(!files.path().join("never").exists(), "nothing started: {err}");

    let ops = test_support::free_tcp_port();
    let args: Vec<String> = [
        "--ops-addr",
        &format!("127.0.0.1:{ops}"),
        "--ops-tls-cert",
        &path("server.crt"),
        "--ops-tls-key",
        &path("server.key"),
        "--ops-client-ca",
        &path("clients.crt"),
    ]
    .map(str::to_owned)
    .into();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, &args);
    wait_ledger_up(&net).await;
    let with_cert = Some((prometheus.cert_pem.as_slice(), prometheus.key_pem.as_slice()));
    poll("/readyz 200 over HTTPS", || {
        https_get(ops, "/readyz", &ca.cert_pem, with_cert).ok().filter(|(s, _)| *s == 200)
    })
    .await;
    let (status, body) = https_get(ops, "/metrics", &ca.cert_pem, with_cert).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(family(&samples(&body), "ipechain_peer_block_height").len(), 2, "{body}");
    let (status, body) = https_get(ops, "/healthz", &ca.cert_pem, with_cert).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    // No client certificate, or one of a CA the listener does not trust: refused.
    let e = https_get(ops, "/metrics", &ca.cert_pem, None).unwrap_err();
    assert!(!e.is_empty());
    let e =
        https_get(ops, "/metrics", &ca.cert_pem, Some((&stranger.cert_pem, &stranger.key_pem))).unwrap_err();
    assert!(!e.is_empty());
    // A client that does not trust the listener's CA refuses it.
    assert!(https_get(ops, "/metrics", &clients.cert_pem, with_cert).is_err());
    // Plain HTTP: no answer.
    let (status, body) = get(ops, "/metrics");
    assert_eq!(status, 0, "{body}");
    assert!(!body.contains("ipechain_"), "{body}");
    stop(&mut up).await;
}

/// `ipechain gateway` against five `ipechain node` processes: it catches up with the chain (its lag 0 while
/// the head is past the last IPE event), is healthy and ready; its LwM2M side's peer stopped, `/healthz`
/// turns 503 naming that peer and `/readyz` 503 naming the event stream; the peer back, both recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_ledger_peer_stops_turns_unhealthy_and_recovers() {
    let mut net = Net::generate();
    for n in net.node_names() {
        net.start(&n);
    }
    wait_ledger_up(&net).await;
    // An IPE event (the policy changes), then blocks without any.
    policy(&net, "grant", &["--id", "apps", "--originators", "Capp*"]);
    let kv = sdk(&net, 1, "User1").contract("kv");
    let mut last = 0;
    for i in 0..3 {
        last = kv.submit("put", &[format!("k{i}").into_bytes(), b"v".to_vec()]).await.unwrap().block;
    }

    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nhealth_grace_secs = 2\nmax_lag_blocks = 100\n[ledger]\nchannel = \"iot\"\n{}{}",
            ledger_link(&net, "lwm2m", 2),
            ledger_link(&net, "onem2m", 1)
        ),
    )
    .unwrap();
    let ops = test_support::free_tcp_port();
    let mut gw = spawn_gateway(
        &net.logs,
        &config,
        &state.path().join("state"),
        &["--ops-addr".into(), format!("127.0.0.1:{ops}")],
    );
    poll("/readyz 200", || (get(ops, "/readyz").0 == 200).then_some(())).await;
    let s = poll("the gateway caught up: lag 0 at the chain's head", || {
        let s = samples(&get(ops, "/metrics").1);
        (s.get("ipechain_bridge_chain_height_blocks").is_some_and(|h| *h >= (last + 1) as f64)
            && s.get("ipechain_bridge_chain_lag_blocks") == Some(&0.0)
            && s.get("ipechain_bridge_events_total").is_some_and(|n| *n >= 1.0))
        .then_some(s)
    })
    .await;
    assert_eq!(s.get("ipechain_bridge_event_stream_up"), Some(&1.0), "{s:?}");
    let (status, body) = get(ops, "/healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    // The LwM2M side's peer stops: after the grace period the gateway is neither healthy nor ready.
    let lwm2m_peer = "peer0.org2.ipechain.local";
    let endpoint = net.endpoint(lwm2m_peer);
    net.stop(lwm2m_peer);
    let body = poll("/healthz 503", || {
        let (status, body) = get(ops, "/healthz");
        (status == 503).then_some(body)
    })
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "Service Unavailable", "{v}");
    let failed = v["failed_checks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "only the stopped peer fails: {v}");
    assert_eq!(failed[0]["component"], format!("ledger peer {endpoint} (lwm2m side)"), "{v}");
    assert!(failed[0]["reason"].as_str().unwrap().starts_with("unreachable"), "{v}");
    let (status, body) = get(ops, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bridge event stream"), "{body}");
    let s = samples(&get(ops, "/metrics").1);
    assert_eq!(
        s.get(&format!(r#"ipechain_bridge_ledger_peer_up{{side="lwm2m",peer="{endpoint}"}}"#)),
        Some(&0.0),
        "{s:?}"
    );
    assert_eq!(s.get("ipechain_bridge_event_stream_up"), Some(&0.0), "{s:?}");

    // Meanwhile the chain grows with an IPE event; the peer is back: healthy and ready again, caught up.
    policy(&net, "grant", &["--id", "more", "--originators", "Cmore*"]);
    let more = kv.submit("put", &[b"after".to_vec(), b"v".to_vec()]).await.unwrap().block;
    net.start(lwm2m_peer);
    poll("/healthz 200 again", || (get(ops, "/healthz").0 == 200).then_some(())).await;
    poll("/readyz 200 again", || (get(ops, "/readyz").0 == 200).then_some(())).await;
    poll("lag 0 at the new head", || {
        let s = samples(&get(ops, "/metrics").1);
        (s.get("ipechain_bridge_chain_height_blocks").is_some_and(|h| *h >= (more + 1) as f64)
            && s.get("ipechain_bridge_chain_lag_blocks") == Some(&0.0))
        .then_some(())
    })
    .await;
    stop(&mut gw).await;
    net.stop_all();
}
