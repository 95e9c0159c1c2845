//! The bootstrap server: a DTLS device (an OpenSSL client driven by this test) bootstraps with its bootstrap
//! PSK, receives its LwM2M server account (the server PSK) through Bootstrap-Delete/Discover/Write/Finish,
//! then registers with the LwM2M server over DTLS with what it received; refusals (a bootstrap identity of
//! another endpoint, a server identity at the bootstrap server, NoSec under a credentialed name, a wrong
//! bootstrap key); a NoSec device without credentials gets a NoSec account; a device that stops answering
//! fails its sequence without disturbing the others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coap::lite::{MessageClass, MessageType, Packet};
use lwm2m::{LwM2mPath, Value};
use lwm2m_server::bootstrap::bootstrap_dtls;
use lwm2m_server::{
    Binding, BootstrapEvent, BootstrapHandle, BootstrapServer, BootstrapServerConfig, BoundCredentialStore,
    Credential, CredentialProvisioner, DtlsConfig, FileCredentialStore, ServerEvent,
};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

use crate::common::{TestServer, wait_event};
use test_support::bootstrap::play;
use test_support::dtls::Device;

struct Setup {
    server: TestServer,
    bs: BootstrapHandle,
    store: Arc<BoundCredentialStore>,
    _dir: tempfile::TempDir,
}

fn psk(id: &str, key: &[u8]) -> Credential {
    Credential::Psk { identity: id.into(), key: key.to_vec() }
}

async fn setup(nosec: bool) -> Setup {
    setup_with(nosec, |_| {}).await
}

async fn setup_with(nosec: bool, f: impl FnOnce(&mut CredentialProvisioner)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BoundCredentialStore::open(dir.path()).unwrap());
    let s = store.clone();
    let server = TestServer::start_with(move |cfg| {
        let mut d = DtlsConfig::new(s);
        d.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        d.handshake_timeout = Duration::from_secs(2);
        cfg.dtls = Some(d);
        cfg.nosec = nosec;
    })
    .await;
    let dtls_uri = format!("coaps://127.0.0.1:{}", server.handle.dtls_addr().unwrap().port());
    let nosec_uri = nosec.then(|| format!("coap://127.0.0.1:{}", server.coap().port()));
    let mut provisioner = CredentialProvisioner::new(store.clone(), dtls_uri, nosec_uri);
    f(&mut provisioner);
    let mut cfg = BootstrapServerConfig::new(Arc::new(provisioner));
    cfg.nosec_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut d = bootstrap_dtls(&store, SocketAddr::from(([127, 0, 0, 1], 0)));
    d.handshake_timeout = Duration::from_secs(2);
    cfg.dtls = Some(d);
    cfg.session_timeout = Duration::from_secs(8);
    let (bs, _join) = BootstrapServer::start(cfg).await.expect("bootstrap server starts");
    Setup { server, bs, store, _dir: dir }
}

/// A confirmable NoSec POST with one Uri-Path and one Uri-Query.
fn post(mid: u16, path: &str, query: &str, payload: &[u8]) -> Packet {
    let mut req = Packet::new();
    req.header.set_type(MessageType::Confirmable);
    req.header.code = MessageClass::Request(coap::lite::RequestType::Post);
    req.header.message_id = mid;
    req.set_token(mid.to_be_bytes().to_vec());
    req.add_option(coap::lite::CoapOption::UriPath, path.as_bytes().to_vec());
    req.add_option(coap::lite::CoapOption::UriQuery, query.as_bytes().to_vec());
    req.payload = payload.to_vec();
    req
}

async fn finished(events: &mut broadcast::Receiver<BootstrapEvent>, ep: &str) -> BootstrapEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(e) => match &e {
                    BootstrapEvent::Finished { endpoint, .. } | BootstrapEvent::Failed { endpoint, .. }
                        if endpoint == ep =>
                    {
                        return e;
                    }
                    _ => {}
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the sequence ends in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtls_device_bootstraps_then_registers_with_the_psk_it_received() {
    let s = setup(true).await;
    // dev-1: both credentials in the key files (the gateway operator's own provisioning).
    FileCredentialStore::open(s._dir.path())
        .unwrap()
        .set("dev-1", psk("srv-dev-1", b"server-secret-1"))
        .unwrap();
    FileCredentialStore::open_bootstrap(s._dir.path())
        .unwrap()
        .set("dev-1", psk("bs-dev-1", b"bs-1"))
        .unwrap();
    // dev-2: bound on chain (fingerprints), secrets in the key files.
    FileCredentialStore::open(s._dir.path())
        .unwrap()
        .set("dev-2", psk("srv-dev-2", b"server-secret-2"))
        .unwrap();
    FileCredentialStore::open_bootstrap(s._dir.path())
        .unwrap()
        .set("dev-2", psk("bs-dev-2", b"bs-2"))
        .unwrap();
    let sha = |k: &[u8]| openssl::sha::sha256(k);
    let report = s
        .store
        .refresh(&[
            Binding::Psk {
                endpoint: "dev-2".into(),
                identity: "srv-dev-2".into(),
                key_sha256: sha(b"server-secret-2"),
            },
            Binding::BootstrapPsk {
                endpoint: "dev-2".into(),
                identity: "bs-dev-2".into(),
                key_sha256: sha(b"bs-2"),
            },
        ])
        .unwrap();
    assert!(report.missing_bootstrap_key.is_empty() && report.wrong_bootstrap_key.is_empty(), "{report:?}");
    let bs_addr = s.bs.dtls_addr().unwrap();
    let mut bs_events = s.bs.subscribe();
    let mut events = s.server.handle.subscribe_events();

    for (ep, bs_id, bs_key, srv_id, srv_key) in [
        ("dev-1", "bs-dev-1", &b"bs-1"[..], "srv-dev-1", &b"server-secret-1"[..]),
        ("dev-2", "bs-dev-2", &b"bs-2"[..], "srv-dev-2", &b"server-secret-2"[..]),
    ] {
        let ep_q = format!("ep={ep}");
        let (bs_id2, bs_key2) = (bs_id.to_owned(), bs_key.to_vec());
        let got = tokio::task::spawn_blocking(move || {
            let d = std::cell::RefCell::new(Device::connect(bs_addr, &bs_id2, &bs_key2));
            let req = d.borrow_mut().request(0x02, &["bs"], &[&ep_q], b"");
            d.borrow_mut().send(&req);
            play(|b| d.borrow_mut().send(b), || d.borrow_mut().recv(5000))
        })
        .await
        .unwrap();
        assert_eq!(
            got.steps,
            ["DELETE /0", "DELETE /1", "GET /0", "PUT /0/1", "PUT /1/0", "POST /bs"],
            "the sequence for {ep}"
        );
        let dtls_port = s.server.handle.dtls_addr().unwrap().port();
        assert_eq!(got.uri, format!("coaps://127.0.0.1:{dtls_port}"));
        assert_eq!((got.mode, got.ssid, got.lifetime), (0, 1, 300), "PSK, short server id 1, 300 s");
        assert_eq!(got.identity, srv_id.as_bytes(), "the server identity, not the bootstrap one");
        assert_eq!(got.key, srv_key);
        match finished(&mut bs_events, ep).await {
            BootstrapEvent::Finished { identity, .. } => {
                assert_eq!(identity.map(|i| i.to_string()), Some(format!("psk:{bs_id}")));
            }
            other => panic!("{other:?}"),
        }

        // The device now registers with the LwM2M server using what it was given.
        let server = s.server.handle.dtls_addr().unwrap();
        let (id, key, ep2) = (String::from_utf8(got.identity).unwrap(), got.key, ep.to_owned());
        let answer = tokio::task::spawn_blocking(move || {
            let mut d = Device::connect(server, &id, &key);
            let ep_q = format!("ep={ep2}");
            let req = d.request(0x02, &["rd"], &[&ep_q, "lt=60", "b=U"], b"</3/0>");
            d.send(&req);
            d.recv(3000).expect("an answer to Register")
        })
        .await
        .unwrap();
        assert_eq!(coap::decode(&answer).unwrap().header.code.to_string(), "2.01");
        let info = wait_event(&mut events, 5, |e| match e {
            ServerEvent::Registered(c) if c.endpoint == ep => Some(c.clone()),
            _ => None,
        })
        .await;
        assert_eq!(info.identity.as_ref().map(|i| i.to_string()), Some(format!("psk:{srv_id}")));
    }
    assert_eq!(s.bs.stats().finished.load(Ordering::Relaxed), 2);
    assert_eq!(s.bs.stats().refused.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_4_03_with_a_reason_and_counted() {
    let s = setup(true).await;
    let dir = s._dir.path();
    FileCredentialStore::open(dir).unwrap().set("dev-1", psk("srv-dev-1", b"server-secret-1")).unwrap();
    FileCredentialStore::open_bootstrap(dir).unwrap().set("dev-1", psk("bs-dev-1", b"bs-1")).unwrap();
    FileCredentialStore::open_bootstrap(dir).unwrap().set("dev-9", psk("bs-dev-9", b"bs-9")).unwrap();
    s.store.refresh(&[]).unwrap();
    let bs_addr = s.bs.dtls_addr().unwrap();

    // A bootstrap identity asking for another endpoint; a server identity at the bootstrap server is not
    // even admitted to a session (unknown identity there).
    let answer = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(bs_addr, "bs-dev-9", b"bs-9");
        let req = d.request(0x02, &["bs"], &["ep=dev-1"], b"");
        d.send(&req);
        d.recv(3000).expect("an answer")
    })
    .await
    .unwrap();
    let p = coap::decode(&answer).unwrap();
    assert_eq!(p.header.code.to_string(), "4.03");
    assert_eq!(
        String::from_utf8_lossy(&p.payload),
        "psk:bs-dev-9 is not a bootstrap credential of endpoint dev-1"
    );
    let server_identity = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| Device::connect(bs_addr, "srv-dev-1", b"server-secret-1")).is_err()
    });
    assert!(server_identity.await.unwrap(), "a server PSK does not open a bootstrap session");
    let wrong_key = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| Device::connect(bs_addr, "bs-dev-1", b"not-the-key")).is_err()
    });
    assert!(wrong_key.await.unwrap(), "a wrong bootstrap key does not open a session");

    // NoSec: a credentialed endpoint is refused (its PSK never goes out in the clear).
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let nosec = s.bs.nosec_addr().unwrap();
    let req = post(7, "bs", "ep=dev-1", b"");
    sock.send_to(&coap::encode(&req).unwrap(), nosec).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await.unwrap().unwrap();
    let p = coap::decode(&buf[..n]).unwrap();
    assert_eq!(p.header.code.to_string(), "4.03");
    assert_eq!(String::from_utf8_lossy(&p.payload), "endpoint dev-1 has credentials: bootstrap over DTLS");
    // A malformed request (no ep) is 4.00.
    let mut bad = req.clone();
    bad.header.message_id = 8;
    bad.clear_option(coap::lite::CoapOption::UriQuery);
    sock.send_to(&coap::encode(&bad).unwrap(), nosec).await.unwrap();
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(coap::decode(&buf[..n]).unwrap().header.code.to_string(), "4.00");
    assert_eq!(s.bs.stats().refused.load(Ordering::Relaxed), 3);
    assert_eq!(s.bs.stats().requests.load(Ordering::Relaxed), 0);
    assert!(s.bs.dtls_stats().dtls_handshakes_failed.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nosec_device_without_credentials_gets_a_nosec_account_and_a_silent_one_fails_alone() {
    let s = setup(true).await;
    let nosec = s.bs.nosec_addr().unwrap();
    let mut bs_events = s.bs.subscribe();

    // A device that asks and then never answers the server's requests.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = post(1, "bs", "ep=mute", b"");
    silent.send_to(&coap::encode(&req).unwrap(), nosec).await.unwrap();

    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let r2 = post(2, "bs", "ep=plain-1", b"");
    sock.send_to(&coap::encode(&r2).unwrap(), nosec).await.unwrap();
    let rt = tokio::runtime::Handle::current();
    let (a, b) = (sock.clone(), sock.clone());
    let got = tokio::task::spawn_blocking(move || {
        play(
            |bytes| {
                rt.block_on(a.send_to(bytes, nosec)).unwrap();
            },
            || {
                let mut buf = [0u8; 1500];
                let r = rt.block_on(tokio::time::timeout(Duration::from_secs(5), b.recv_from(&mut buf)));
                r.ok().and_then(|r| r.ok()).map(|(n, _)| buf[..n].to_vec())
            },
        )
    })
    .await
    .unwrap();
    assert_eq!(got.uri, format!("coap://127.0.0.1:{}", s.server.coap().port()));
    assert_eq!(got.mode, 3, "NoSec");
    assert!(got.key.is_empty() && got.identity.is_empty());
    assert!(matches!(
        finished(&mut bs_events, "plain-1").await,
        BootstrapEvent::Finished { identity: None, .. }
    ));
    // The silent one: the session timeout (8 s here) ends it; CoAP's retransmissions alone would take a minute.
    let BootstrapEvent::Failed { reason, .. } =
        tokio::time::timeout(Duration::from_secs(40), finished(&mut bs_events, "mute"))
            .await
            .unwrap_or_else(|_| panic!("the silent device's sequence ends"))
    else {
        panic!("the silent device cannot finish")
    };
    assert!(reason.contains("too long") || reason.contains("no answer"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nosec_off_a_device_without_server_credentials_is_refused() {
    let s = setup(false).await;
    FileCredentialStore::open_bootstrap(s._dir.path())
        .unwrap()
        .set("dev-5", psk("bs-dev-5", b"bs-5"))
        .unwrap();
    s.store.refresh(&[]).unwrap();
    let bs_addr = s.bs.dtls_addr().unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(bs_addr, "bs-dev-5", b"bs-5");
        let req = d.request(0x02, &["bs"], &["ep=dev-5"], b"");
        d.send(&req);
        d.recv(3000).expect("an answer")
    })
    .await
    .unwrap();
    let p = coap::decode(&answer).unwrap();
    assert_eq!(p.header.code.to_string(), "4.03");
    assert_eq!(
        String::from_utf8_lossy(&p.payload),
        "NoSec is off and endpoint dev-5 has no server credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coap_node_bootstraps_over_nosec_then_registers_where_it_was_sent() {
    // coap-node 0.2.5 cannot delete an object path (its process dies on `DELETE /0`): delete `/`.
    let s = setup_with(true, |p| p.delete = vec![LwM2mPath::ROOT]).await;
    let mut bs_events = s.bs.subscribe();
    let mut events = s.server.handle.subscribe_events();
    let script =
        test_support::workspace_root().join("crates/lwm2m-server/tests/it/scripts/coap_node_bootstrap.js");
    let port = s.bs.nosec_addr().unwrap().port().to_string();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&script)
        .args([port.as_str(), "cnode-bs-1"])
        .env("NODE_PATH", test_support::node_modules())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("node runs coap-node");
    match finished(&mut bs_events, "cnode-bs-1").await {
        BootstrapEvent::Finished { identity: None, .. } => {}
        other => {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "{other:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // coap-node registers with the server account it was given.
    let registered = tokio::time::timeout(
        Duration::from_secs(20),
        wait_event(&mut events, 25, |e| match e {
            ServerEvent::Registered(c) if c.endpoint == "cnode-bs-1" => Some(c.clone()),
            _ => None,
        }),
    )
    .await;
    let Ok(info) = registered else {
        let _ = child.start_kill();
        let out = child.wait_with_output().await.unwrap();
        panic!(
            "no registration: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(info.identity.is_none(), "NoSec account");
    assert!(info.objects.iter().any(|p| p.to_string().starts_with("/3303")), "{:?}", info.objects);
    // And it is a live device: the server reads its temperature.
    let r = s.server.handle.read("cnode-bs-1", "/3303/0/5700".parse().unwrap(), None, None).await.unwrap();
    assert_eq!(r.records.first().map(|r| r.value.clone()), Some(Value::Float(21.5)), "{r:?}");
    let _ = child.start_kill();
}

/// Not bootstrap proper, but the same store: when the credentials change (a refresh from the chain), what is
/// no longer admitted ends at once instead of standing until its lifetime runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_credentials_end_registrations_and_sessions() {
    let s = setup(true).await;
    let keys = FileCredentialStore::open(s._dir.path()).unwrap();
    keys.set("dev-1", psk("srv-dev-1", b"server-secret-1")).unwrap();
    s.store.refresh(&[]).unwrap();
    let mut events = s.server.handle.subscribe_events();
    let server = s.server.handle.dtls_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // The device keeps its session open until the end of the test.
    let device = tokio::task::spawn_blocking(move || {
        let mut d = Device::connect(server, "srv-dev-1", b"server-secret-1");
        let answer = d.register("dev-1");
        let _ = rx.recv_timeout(Duration::from_secs(20));
        answer
    });
    wait_event(&mut events, 5, |e| {
        matches!(e, ServerEvent::Registered(c) if c.endpoint == "dev-1").then_some(())
    })
    .await;
    // A NoSec registration of an endpoint without credentials, yet.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = post(3, "rd", "ep=plain-2", b"</3/0>");
    sock.send_to(&coap::encode(&req).unwrap(), s.server.coap()).await.unwrap();
    wait_event(&mut events, 5, |e| {
        matches!(e, ServerEvent::Registered(c) if c.endpoint == "plain-2").then_some(())
    })
    .await;
    assert_eq!(s.server.handle.registration_count(), 2);
    assert_eq!(s.server.handle.stats().dtls_sessions.load(Ordering::Relaxed), 1);

    // dev-1's key is withdrawn; plain-2 gets credentials.
    keys.remove("dev-1").unwrap();
    keys.set("plain-2", psk("srv-plain-2", b"secret-2")).unwrap();
    s.store.refresh(&[]).unwrap();
    let mut ended = Vec::new();
    while ended.len() < 2 {
        ended.push(
            wait_event(&mut events, 5, |e| match e {
                ServerEvent::Deregistered { endpoint, .. } => Some(endpoint.clone()),
                _ => None,
            })
            .await,
        );
    }
    ended.sort();
    assert_eq!(ended, ["dev-1", "plain-2"]);
    assert_eq!(s.server.handle.registration_count(), 0);
    // The session count is updated right after the events: wait for it.
    let mut sessions = 1;
    for _ in 0..40 {
        sessions = s.server.handle.stats().dtls_sessions.load(Ordering::Relaxed);
        if sessions == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sessions, 0, "dev-1's session ended too");
    assert_eq!(s.server.handle.stats().refused.load(Ordering::Relaxed), 2);
    let _ = tx.send(());
    assert_eq!(coap::decode(&device.await.unwrap()).unwrap().header.code.to_string(), "2.01");
}

/// A device whose bootstrap credential is a raw public key (bound on chain) bootstraps over DTLS and gets its
/// server PSK; one whose server credential is a raw public key is refused (its private key is its own), and a
/// server raw public key opens no session at the bootstrap server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_public_key_bootstraps_and_an_rpk_server_account_is_not_provisioned() {
    let s = setup(true).await;
    let keys = tempfile::tempdir().unwrap();
    let (_, bs_key, bs_fp) = crate::dtls::rpk_key(keys.path(), "bs-rpk");
    let (_, srv_key, srv_fp) = crate::dtls::rpk_key(keys.path(), "srv-rpk");
    let (_, bs2_key, bs2_fp) = crate::dtls::rpk_key(keys.path(), "bs2-rpk");
    FileCredentialStore::open(s._dir.path())
        .unwrap()
        .set("rpk-1", psk("srv-rpk-1", b"server-secret-r"))
        .unwrap();
    s.store
        .refresh(&[
            Binding::Psk {
                endpoint: "rpk-1".into(),
                identity: "srv-rpk-1".into(),
                key_sha256: openssl::sha::sha256(b"server-secret-r"),
            },
            Binding::BootstrapRpk { endpoint: "rpk-1".into(), sha256: bs_fp },
            Binding::Rpk { endpoint: "rpk-2".into(), sha256: srv_fp },
            Binding::BootstrapRpk { endpoint: "rpk-2".into(), sha256: bs2_fp },
        ])
        .unwrap();
    let bs_addr = s.bs.dtls_addr().unwrap();
    let mut bs_events = s.bs.subscribe();

    let ctx = crate::dtls::rpk_context(&bs_key, "ECDHE-ECDSA-AES128-CCM8");
    let got = tokio::task::spawn_blocking(move || {
        let d = std::cell::RefCell::new(Device::handshake(ctx, bs_addr, None));
        let req = d.borrow_mut().request(0x02, &["bs"], &["ep=rpk-1"], b"");
        d.borrow_mut().send(&req);
        play(|b| d.borrow_mut().send(b), || d.borrow_mut().recv(5000))
    })
    .await
    .unwrap();
    assert_eq!(
        (got.mode, got.identity.as_slice(), got.key.as_slice()),
        (0, &b"srv-rpk-1"[..], &b"server-secret-r"[..])
    );
    match finished(&mut bs_events, "rpk-1").await {
        BootstrapEvent::Finished { identity, .. } => {
            assert_eq!(identity.map(|i| i.to_string()), Some(format!("rpk:{}", hex::encode(bs_fp))));
        }
        other => panic!("{other:?}"),
    }

    // rpk-2 authenticates to the server with its own key pair: nothing to provision, 4.03 with the reason.
    let ctx = crate::dtls::rpk_context(&bs2_key, "ECDHE-ECDSA-AES128-CCM8");
    let answer = tokio::task::spawn_blocking(move || {
        let mut d = Device::handshake(ctx, bs_addr, None);
        let req = d.request(0x02, &["bs"], &["ep=rpk-2"], b"");
        d.send(&req);
        d.recv(3000).expect("an answer")
    })
    .await
    .unwrap();
    let p = coap::decode(&answer).unwrap();
    assert_eq!(p.header.code.to_string(), "4.03");
    assert!(String::from_utf8_lossy(&p.payload).contains("a certificate or a raw public key"), "{p:?}");

    // The server key of rpk-2 is not a bootstrap credential: no session.
    let ctx = crate::dtls::rpk_context(&srv_key, "ECDHE-ECDSA-AES128-CCM8");
    let refused = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| Device::handshake(ctx, bs_addr, None)).is_err()
    });
    assert!(refused.await.unwrap(), "a server raw public key does not open a bootstrap session");
    assert_eq!(s.bs.stats().finished.load(Ordering::Relaxed), 1);
    assert_eq!(s.bs.stats().refused.load(Ordering::Relaxed), 1);
}
