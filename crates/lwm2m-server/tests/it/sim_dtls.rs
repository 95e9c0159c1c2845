//! The simulator over DTLS 1.2 PSK against a real server with a key file: devices handshake, register under
//! their identities and notify through their sessions; a device with a wrong key never registers; the
//! benchmark's handshake loop makes full handshakes and frees each session with close_notify; a device whose
//! Finished is lost retransmits its flight and registers; a device offering only GCM gets GCM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lwm2m::{LwM2mPath, Record, Value};
use lwm2m_server::{Identity, ServerEvent};
use lwm2m_sim::{DtlsPsk, HandshakeLoadConfig, Psk, SimConfig, Simulator, derive_key, handshake_load};

use crate::common::wait_event;
use crate::dtls::DtlsServer;

const SECRET: &[u8] = b"sim-dtls test secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_register_and_notify_over_dtls_psk_and_a_wrong_key_is_refused() {
    let s = DtlsServer::start(true).await;
    let n = 12;
    for i in 0..n {
        let ep = format!("sd-{i}");
        s.psk(&ep, &ep, &derive_key(SECRET, &ep));
    }
    s.psk("sd-bad-0", "sd-bad-0", &derive_key(SECRET, "sd-bad-0"));
    let dtls = s.server.handle.dtls_addr().unwrap();
    let h = s.server.handle.clone();

    let sim = Simulator::start(SimConfig {
        server: dtls,
        clients: n,
        clients_per_socket: 4, // ignored over DTLS: one socket and session per device
        endpoint_prefix: "sd-".into(),
        notify_interval: Some(Duration::from_millis(100)),
        dtls: Some(DtlsPsk::derived(SECRET)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    assert_eq!(sim.wait_registered(n as u64, Duration::from_secs(20)).await, n as u64);
    assert_eq!(sim.stats().handshakes.load(Ordering::Relaxed), n as u64);
    assert_eq!(sim.stats().handshakes_failed.load(Ordering::Relaxed), 0);
    assert!(s.stat(|s| &s.dtls_handshakes) >= n as u64);
    let clients = h.clients().await;
    assert_eq!(clients.len(), n);
    for c in &clients {
        // Each registration carries the PSK identity of its own endpoint, and its own source address.
        assert_eq!(c.identity, Some(Identity::Psk(c.endpoint.clone())), "{}", c.endpoint);
        assert_eq!(c.root_path, "/");
    }
    let mut addrs: Vec<_> = clients.iter().map(|c| c.address).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "one socket per DTLS device");

    // A read and an observation through the session; notifications arrive decrypted.
    let path: LwM2mPath = "/3303/0/5700".parse().unwrap();
    let r = h.read("sd-5", "/3/0/2".parse().unwrap(), None, None).await.expect("read over DTLS");
    assert_eq!(r.code.to_string(), "2.05");
    assert_eq!(r.records[0].value, Value::String("SIM00000005".into()));
    let mut events = h.subscribe_events();
    let o = h.observe("sd-5", path, None, None).await.expect("observe over DTLS");
    assert_eq!(o.code.to_string(), "2.05");
    let before = s.stat(|s| &s.notifications);
    for _ in 0..3 {
        wait_event(&mut events, 5, |e| match e {
            ServerEvent::Notification { endpoint, path: p, records, .. } if endpoint == "sd-5" => {
                assert_eq!(*p, path);
                assert!(matches!(records[..], [Record { value: Value::Float(_), .. }]));
                Some(())
            }
            _ => None,
        })
        .await;
    }
    assert!(s.stat(|s| &s.notifications) >= before + 3);
    assert_eq!(s.stat(|s| &s.nosec_dropped), 0);

    // A device whose key is not the one in the key file: its handshake never finishes (the server cannot
    // decrypt its Finished), it is counted as failed on both sides and it never registers.
    let bad = Simulator::start(SimConfig {
        server: dtls,
        clients: 1,
        endpoint_prefix: "sd-bad-".into(),
        dtls: Some(DtlsPsk {
            handshake_timeout: Duration::from_millis(2500),
            ..DtlsPsk::with(|ep| Psk { identity: ep.to_owned(), key: b"not the right key".to_vec() })
        }),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    for _ in 0..60 {
        if bad.stats().handshakes_failed.load(Ordering::Relaxed) >= 1
            && s.stat(|s| &s.dtls_handshakes_failed) >= 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bad.stats().handshakes_failed.load(Ordering::Relaxed) >= 1, "the client gave up its handshake");
    assert!(s.stat(|s| &s.dtls_handshakes_failed) >= 1, "the server dropped the handshake");
    assert_eq!(bad.stats().handshakes.load(Ordering::Relaxed), 0);
    assert_eq!(bad.registered(), 0);
    assert!(h.client("sd-bad-0").await.is_none());
    assert_eq!(h.clients().await.len(), n);

    bad.stop();
    sim.stop();
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_load_makes_full_handshakes_and_frees_each_session() {
    let s = DtlsServer::start(true).await;
    for i in 0..4 {
        let ep = format!("hs-{i}");
        s.psk(&ep, &ep, &derive_key(SECRET, &ep));
    }
    let mut events = s.server.handle.subscribe_events();
    let load = handshake_load(HandshakeLoadConfig {
        server: s.server.handle.dtls_addr().unwrap(),
        clients: 4,
        endpoint_prefix: "hs-".into(),
        dtls: DtlsPsk::derived(SECRET),
    })
    .await
    .expect("load starts");
    for _ in 0..100 {
        if load.stats().completed.load(Ordering::Relaxed) >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load.stop();
    let done = load.stats().completed.load(Ordering::Relaxed);
    assert!(done >= 40, "{done} handshakes");
    assert_eq!(load.stats().failed.load(Ordering::Relaxed), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every one was a full handshake with a cookie exchange, and close_notify freed its session.
    assert!(s.stat(|s| &s.dtls_handshakes) >= done);
    assert!(s.stat(|s| &s.dtls_hello_verify) >= done);
    assert!(s.stat(|s| &s.dtls_sessions) <= 4, "sessions freed: {}", s.stat(|s| &s.dtls_sessions));
    assert_eq!(s.stat(|s| &s.dtls_handshakes_failed), 0);
    let (mut full, mut resumed) = (0, 0);
    while let Ok(e) = events.try_recv() {
        if let ServerEvent::DtlsSession { resumed: r, cipher, .. } = e {
            assert_eq!(cipher, "TLS_PSK_WITH_AES_128_CCM_8");
            if r { resumed += 1 } else { full += 1 }
        }
    }
    assert_eq!((full >= done, resumed), (true, 0), "{full} full handshakes");
    s.server.stop().await;
}

/// Whether a datagram holds a handshake record of epoch 1 (a Finished), walking its records.
fn carries_encrypted_handshake(mut d: &[u8]) -> bool {
    while d.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([d[11], d[12]]));
        if d[0] == 22 && d[3..5] == [0, 1] {
            return true;
        }
        d = d.get(13 + len..).unwrap_or_default();
    }
    false
}

/// A relay between one client and the server that drops the first datagram the client sends with a
/// handshake record of epoch 1: the flight that carries its Finished.
async fn lossy_relay(server: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(server).await.unwrap();
    let addr = front.local_addr().unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
        let mut client = None;
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    let finished = carries_encrypted_handshake(&a[..n]);
                    if finished && d.load(Ordering::Relaxed) == 0 {
                        d.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let _ = back.send(&a[..n]).await;
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    if let Some(c) = client {
                        let _ = front.send_to(&b[..n], c).await;
                    }
                }
            }
        }
    });
    (addr, dropped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_finished_is_lost_retransmits_and_registers() {
    let s = DtlsServer::start(true).await;
    s.psk("loss-0", "loss-0", &derive_key(SECRET, "loss-0"));
    let (relay, dropped) = lossy_relay(s.server.handle.dtls_addr().unwrap()).await;
    let sim = Simulator::start(SimConfig {
        server: relay,
        clients: 1,
        endpoint_prefix: "loss-".into(),
        dtls: Some(DtlsPsk::derived(SECRET)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    assert_eq!(sim.wait_registered(1, Duration::from_secs(10)).await, 1);
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the relay dropped the client's Finished");
    // One handshake, completed by retransmission, not by starting over.
    assert_eq!(sim.stats().handshakes.load(Ordering::Relaxed), 1);
    assert_eq!(sim.stats().handshakes_failed.load(Ordering::Relaxed), 0);
    assert_eq!(s.stat(|s| &s.dtls_handshakes), 1);
    let c = s.server.handle.client("loss-0").await.expect("registered");
    assert_eq!(c.identity, Some(Identity::Psk("loss-0".into())));
    sim.stop();
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offering_only_gcm_gets_gcm() {
    let s = DtlsServer::start(true).await;
    s.psk("gcm-0", "gcm-0", &derive_key(SECRET, "gcm-0"));
    let mut events = s.server.handle.subscribe_events();
    let sim = Simulator::start(SimConfig {
        server: s.server.handle.dtls_addr().unwrap(),
        clients: 1,
        endpoint_prefix: "gcm-".into(),
        dtls: Some(DtlsPsk { ciphers: "PSK-AES128-GCM-SHA256".into(), ..DtlsPsk::derived(SECRET) }),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let cipher = wait_event(&mut events, 5, |e| match e {
        ServerEvent::DtlsSession { identity, cipher, resumed, .. } => {
            assert_eq!((identity, *resumed), (&Identity::Psk("gcm-0".into()), false));
            Some(cipher.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(cipher, "TLS_PSK_WITH_AES_128_GCM_SHA256");
    assert_eq!(sim.wait_registered(1, Duration::from_secs(5)).await, 1);
    sim.stop();
    s.server.stop().await;
}
