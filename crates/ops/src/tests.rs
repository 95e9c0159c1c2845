use super::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Parses the text exposition: every line is a `# HELP`/`# TYPE`/`# UNIT`/`# EOF` comment or a sample
/// `name{labels} value`. Returns the samples by their name with labels.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "a line after # EOF: {line}");
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap_or_default();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "unknown comment {line}");
            if kind == "TYPE" {
                let t = comment.split(' ').nth(2).unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
            }
            saw_eof |= kind == "EOF";
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(name.starts_with("ipechain_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{series}");
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(series.to_owned(), v);
    }
    assert!(saw_eof, "no # EOF");
    samples
}

#[test]
fn the_exposition_parses_and_carries_every_family_with_units_in_names() {
    let m = Metrics::new();
    let p = m.peer.for_peer("peer0.org1");
    p.set_height(7);
    p.delivered(6);
    p.committed(0.003, ["VALID", "VALID", "MVCC_READ_CONFLICT"]);
    p.endorsed(0.001, true);
    p.submitted(0.2, false);
    p.broadcast_sent(40);
    p.broadcast_sent(1);
    p.broadcast_done();
    p.state_durable_commit(0.12);
    m.orderer.set("orderer1", 3, Some(2), 1, 9, 7);
    let o = m.orderer.for_orderer("orderer1");
    o.proposed(300, 0.05, 1, false);
    o.proposed(20, 0.051, 2, true);
    o.applied(Some(0.08), 1);
    o.applied(None, 0);
    m.cse.request("create", 2001, 0.002);
    m.gauge_fn("ipechain_lwm2m_registrations", "registrations", || 2);
    m.counter_fn("ipechain_lwm2m_notifications", "notifications", || 1);
    m.counters_fn(
        "ipechain_lwm2m_dtls_handshakes",
        "handshakes",
        "outcome",
        vec![("ok", Box::new(|| 1)), ("failed", Box::new(|| 1))],
    );
    m.bridge.answered("2000", 0.5);
    m.bridge.set_chain_lag(1);
    m.bridge.set_chain_height(12);
    m.bridge.set_events_in_flight(2);
    m.bridge.set_peer_up("lwm2m", "10.0.0.12:9051", true);
    m.bridge.set_peer_up("onem2m", "10.0.0.11:7051", false);
    m.bridge.set_event_stream_up(true);
    m.counter_fn("ipechain_bridge_uplink_transactions", "uplink", || 5);
    let text = m.encode().expect("encodes");
    let s = parse(&text);
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("{k} missing in\n{text}"));
    assert_eq!(get(r#"ipechain_peer_block_height{peer="peer0.org1"}"#), 7.0);
    assert_eq!(get(r#"ipechain_peer_delivered_block_height{peer="peer0.org1"}"#), 7.0);
    assert_eq!(get(r#"ipechain_peer_validation_codes_total{peer="peer0.org1",code="VALID"}"#), 2.0);
    assert_eq!(
        get(r#"ipechain_peer_validation_codes_total{peer="peer0.org1",code="MVCC_READ_CONFLICT"}"#),
        1.0
    );
    assert_eq!(get(r#"ipechain_peer_commit_duration_seconds_count{peer="peer0.org1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_commit_duration_seconds_bucket{le="0.005",peer="peer0.org1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_commit_duration_seconds_bucket{le="0.001",peer="peer0.org1"}"#), 0.0);
    assert_eq!(
        get(r#"ipechain_gateway_endorse_duration_seconds_count{peer="peer0.org1",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        get(r#"ipechain_gateway_endorse_duration_seconds_count{peer="peer0.org1",outcome="error"}"#),
        0.0
    );
    assert_eq!(
        get(r#"ipechain_gateway_submit_duration_seconds_count{peer="peer0.org1",outcome="error"}"#),
        1.0
    );
    assert_eq!(get(r#"ipechain_orderer_raft_term{orderer="orderer1"}"#), 3.0);
    assert_eq!(get(r#"ipechain_orderer_raft_leader_id{orderer="orderer1"}"#), 2.0);
    assert_eq!(get(r#"ipechain_orderer_raft_is_leader{orderer="orderer1"}"#), 0.0);
    assert_eq!(get(r#"ipechain_orderer_raft_commit_index{orderer="orderer1"}"#), 9.0);
    assert_eq!(get(r#"ipechain_orderer_block_height{orderer="orderer1"}"#), 7.0);
    assert_eq!(get(r#"ipechain_orderer_batch_wait_duration_seconds_count{orderer="orderer1"}"#), 2.0);
    assert_eq!(
        get(r#"ipechain_orderer_batch_wait_duration_seconds_bucket{le="0.05",orderer="orderer1"}"#),
        1.0
    );
    assert_eq!(get(r#"ipechain_orderer_consensus_duration_seconds_count{orderer="orderer1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_orderer_block_transactions_count{orderer="orderer1"}"#), 2.0);
    assert_eq!(get(r#"ipechain_orderer_block_transactions_sum{orderer="orderer1"}"#), 320.0);
    assert_eq!(get(r#"ipechain_orderer_blocks_in_flight{orderer="orderer1"}"#), 0.0);
    assert_eq!(get(r#"ipechain_orderer_early_cuts_total{orderer="orderer1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_broadcast_batch_envelopes_count{peer="peer0.org1"}"#), 2.0);
    assert_eq!(get(r#"ipechain_peer_broadcast_batch_envelopes_bucket{le="1.0",peer="peer0.org1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_broadcast_batches_in_flight{peer="peer0.org1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_state_durable_commit_duration_seconds_count{peer="peer0.org1"}"#), 1.0);
    assert_eq!(get(r#"ipechain_peer_state_durable_commit_duration_seconds_sum{peer="peer0.org1"}"#), 0.12);
    assert_eq!(get(r#"ipechain_cse_requests_total{op="create",rsc="2001"}"#), 1.0);
    assert_eq!(get(r#"ipechain_cse_request_duration_seconds_count{op="create"}"#), 1.0);
    assert_eq!(get("ipechain_lwm2m_registrations"), 2.0);
    assert_eq!(get("ipechain_lwm2m_notifications_total"), 1.0);
    assert_eq!(get(r#"ipechain_lwm2m_dtls_handshakes_total{outcome="ok"}"#), 1.0);
    assert_eq!(get(r#"ipechain_lwm2m_dtls_handshakes_total{outcome="failed"}"#), 1.0);
    assert_eq!(get(r#"ipechain_interworking_requests_total{status="2000"}"#), 1.0);
    assert_eq!(get(r#"ipechain_interworking_request_duration_seconds_count{status="2000"}"#), 1.0);
    assert_eq!(get("ipechain_bridge_chain_lag_blocks"), 1.0);
    assert_eq!(get("ipechain_bridge_chain_height_blocks"), 12.0);
    assert_eq!(get("ipechain_bridge_events_in_flight"), 2.0);
    assert_eq!(get(r#"ipechain_bridge_ledger_peer_up{side="lwm2m",peer="10.0.0.12:9051"}"#), 1.0);
    assert_eq!(get(r#"ipechain_bridge_ledger_peer_up{side="onem2m",peer="10.0.0.11:7051"}"#), 0.0);
    assert_eq!(get("ipechain_bridge_event_stream_up"), 1.0);
    assert_eq!(get("ipechain_bridge_uplink_transactions_total"), 5.0);
    assert!(text.contains("# TYPE ipechain_lwm2m_registrations gauge"), "{text}");
    assert!(text.contains("# UNIT ipechain_peer_commit_duration_seconds seconds"), "{text}");
    assert!(text.contains("# TYPE ipechain_peer_validation_codes counter"), "{text}");
}

#[test]
fn a_private_default_set_counts_into_nothing_registered() {
    let m = Metrics::new();
    PeerHandle::default().set_height(5);
    CseMetrics::default().request("retrieve", 2000, 0.0);
    let s = parse(&m.encode().expect("encodes"));
    // Only the unlabelled families show (at zero); the private sets' samples do not.
    assert!(s.keys().all(|k| !k.contains('{')), "{s:?}");
    assert!(s.values().all(|v| *v == 0.0), "{s:?}");
}

#[test]
fn healthz_is_fabrics_json() {
    let h = Health::default();
    h.add_fn("peer0.org1", || Ok(()));
    let r = h.report();
    assert!(r.ok());
    assert_eq!(serde_json::to_string(&r).expect("json"), r#"{"status":"OK"}"#);
    h.add_fn("orderer1", || Err("no Raft leader known for 31s".to_owned()));
    let r = h.report();
    assert!(!r.ok());
    assert_eq!(
        serde_json::to_string(&r).expect("json"),
        r#"{"status":"Service Unavailable","failed_checks":[{"component":"orderer1","reason":"no Raft leader known for 31s"}]}"#
    );
}

const GRACE: Duration = Duration::from_secs(30);

#[test]
fn a_peer_that_stopped_committing_while_blocks_wait_is_not_healthy() {
    let t0 = Stopwatch::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // Blocks wait from the start; the height stays.
    let (p, v) = peer_progress(None, 5, 8, at(0), GRACE);
    assert_eq!(v, Ok(()));
    let (p, v) = peer_progress(Some(p), 5, 8, at(29), GRACE);
    assert_eq!(v, Ok(()));
    let (p, v) = peer_progress(Some(p), 5, 8, at(30), GRACE);
    assert_eq!(v, Err("not committing: at height 5 for 30s while blocks up to height 8 wait".to_owned()));
    // It moves: healthy again, and the clock restarts at the new height.
    let (p, v) = peer_progress(Some(p), 6, 8, at(31), GRACE);
    assert_eq!(v, Ok(()));
    assert_eq!(p, Progress { height: 6, since: at(31) });
    let (_, v) = peer_progress(Some(p), 6, 8, at(60), GRACE);
    assert_eq!(v, Ok(()));
}

#[test]
fn an_idle_peer_with_nothing_waiting_is_healthy_however_long() {
    let t0 = Stopwatch::now();
    let (p, _) = peer_progress(None, 5, 5, t0, GRACE);
    let (_, v) = peer_progress(Some(p), 5, 5, t0 + Duration::from_secs(3600), GRACE);
    assert_eq!(v, Ok(()));
    // A peer ahead of what it knows of the orderers (orderer height not known yet) is healthy too.
    let (_, v) = peer_progress(Some(p), 5, 0, t0 + Duration::from_secs(3600), GRACE);
    assert_eq!(v, Ok(()));
}

#[test]
fn an_orderer_without_a_leader_for_a_while_is_not_healthy() {
    let t0 = Stopwatch::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let (s, v) = leader_known(None, None, at(0), GRACE);
    assert_eq!((s, v), (Some(at(0)), Ok(())));
    let (s, v) = leader_known(s, None, at(29), GRACE);
    assert_eq!(v, Ok(()));
    let (s, v) = leader_known(s, None, at(31), GRACE);
    assert_eq!(v, Err("no Raft leader known for 31s".to_owned()));
    let (s, v) = leader_known(s, Some(2), at(32), GRACE);
    assert_eq!((s, v), (None, Ok(())));
    let w = LeaderWatch::default();
    assert_eq!(w.check(None, at(0), GRACE), Ok(()));
    assert!(w.check(None, at(40), GRACE).is_err());
    assert_eq!(w.check(Some(1), at(41), GRACE), Ok(()));
    let pw = ProgressWatch::default();
    assert_eq!(pw.check(3, 4, at(0), GRACE), Ok(()));
    assert!(pw.check(3, 4, at(30), GRACE).is_err());
}

#[test]
fn a_condition_is_unhealthy_once_it_held_for_the_grace_period() {
    let t0 = Stopwatch::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let bad = || Some("peer 10.0.0.12:9051 unreachable".to_owned());
    let (s, v) = sustained(None, bad(), at(0), GRACE);
    assert_eq!((s, v), (Some(at(0)), Ok(())));
    let (s, v) = sustained(s, bad(), at(29), GRACE);
    assert_eq!((s, v), (Some(at(0)), Ok(())));
    let (s, v) = sustained(s, bad(), at(30), GRACE);
    assert_eq!(v, Err("peer 10.0.0.12:9051 unreachable for 30s".to_owned()));
    // It stops holding: healthy at once, and the clock starts over when it holds again.
    let (s, v) = sustained(s, None, at(31), GRACE);
    assert_eq!((s, v), (None, Ok(())));
    let (s, v) = sustained(s, bad(), at(40), GRACE);
    assert_eq!((s, v), (Some(at(40)), Ok(())));
    let w = SustainedWatch::default();
    assert_eq!(w.check(bad(), at(0), GRACE), Ok(()));
    assert!(w.check(bad(), at(35), GRACE).is_err());
    assert_eq!(w.check(None, at(36), GRACE), Ok(()));
    assert_eq!(w.check(bad(), at(37), GRACE), Ok(()));
}

#[cfg(feature = "server")]
mod server {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(ops: &Ops, path: &str) -> (StatusCode, String, String) {
        let res = router(ops.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        let status = res.status();
        let ct =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn the_four_endpoints_answer() {
        let ops = Ops::new(VersionInfo::new("ipechain", "0.1.0"));
        ops.metrics.peer.for_peer("p").set_height(3);
        let (s, ct, body) = get(&ops, "/metrics").await;
        assert_eq!(s, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert_eq!(parse(&body).get(r#"ipechain_peer_block_height{peer="p"}"#), Some(&3.0));
        let (s, _, body) = get(&ops, "/readyz").await;
        assert_eq!(
            (s, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"Service Unavailable"}"#)
        );
        ops.set_ready();
        let (s, _, body) = get(&ops, "/readyz").await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"status":"OK"}"#));
        // A readiness condition that fails: 503 naming it, and 200 again once it holds.
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let u = up.clone();
        ops.readiness.add_fn("bridge event stream", move || {
            if u.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not connected".to_owned())
            }
        });
        let (s, _, body) = get(&ops, "/readyz").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains(r#""component":"bridge event stream","reason":"not connected""#), "{body}");
        up.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(get(&ops, "/readyz").await.0, StatusCode::OK);
        let (s, ct, body) = get(&ops, "/healthz").await;
        assert_eq!(
            (s, ct.as_str(), body.as_str()),
            (StatusCode::OK, "application/json", r#"{"status":"OK"}"#)
        );
        ops.health.add_fn("peer0.org1", || Err("stuck".to_owned()));
        let (s, _, body) = get(&ops, "/healthz").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains(r#""component":"peer0.org1","reason":"stuck""#), "{body}");
        let (s, _, body) = get(&ops, "/version").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["name"], "ipechain");
        assert_eq!(v["version"], "0.1.0");
        assert!(v["profile"] == "debug" || v["profile"] == "release", "{v}");
        let (s, _, _) = get(&ops, "/nothing").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

#[cfg(feature = "server")]
mod tls {
    use crate::{OpsError, OpsTls};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    /// A CA, and a server certificate with its key issued by it.
    fn material() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = p.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(p, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        (ca.pem().into_bytes(), cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }

    fn what(e: OpsError) -> &'static str {
        match e {
            OpsError::Tls { what, .. } => what,
            e => panic!("not a TLS error: {e}"),
        }
    }

    #[test]
    fn a_certificate_and_key_make_a_config_with_or_without_required_client_certificates() {
        let (ca, cert_pem, key_pem) = material();
        let tls = OpsTls { cert_pem: cert_pem.clone(), key_pem: key_pem.clone(), client_ca_pem: None };
        let cfg = tls.rustls_config().unwrap();
        assert_eq!(cfg.alpn_protocols, [b"http/1.1".to_vec()]);
        let tls = OpsTls { cert_pem, key_pem, client_ca_pem: Some(ca) };
        tls.rustls_config().unwrap();
    }

    #[test]
    fn unusable_material_is_named() {
        let (ca, cert_pem, key_pem) = material();
        let (_, _, other_key) = material();
        let ok = OpsTls { cert_pem, key_pem, client_ca_pem: None };
        // A key of another certificate.
        let e = OpsTls { key_pem: other_key, ..ok.clone() }.rustls_config().unwrap_err();
        assert!(e.to_string().contains("does not belong to the certificate"), "{e}");
        assert_eq!(what(e), "private key");
        // Not PEM at all, or no certificate in it.
        let e = OpsTls { cert_pem: b"hello".to_vec(), ..ok.clone() }.rustls_config().unwrap_err();
        assert_eq!(what(e), "certificate");
        let e = OpsTls { key_pem: ca.clone(), ..ok.clone() }.rustls_config().unwrap_err();
        assert_eq!(what(e), "private key");
        let e = OpsTls { client_ca_pem: Some(b"".to_vec()), ..ok.clone() }.rustls_config().unwrap_err();
        assert_eq!(what(e), "client CA");
        // A client CA file holding a key instead of certificates.
        let e = OpsTls { client_ca_pem: Some(ok.key_pem.clone()), ..ok }.rustls_config().unwrap_err();
        assert_eq!(what(e), "client CA");
    }
}
