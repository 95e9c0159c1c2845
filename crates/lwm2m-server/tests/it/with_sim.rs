//! The server against simulated devices: registration, every device-management operation, observe and
//! notify, Send, de-registration and expiry, through the programmatic handle.

use std::time::Duration;

use lwm2m::ops::{Attributes, WriteMode};
use lwm2m::{ContentFormat, LwM2mPath, Record, Value};
use lwm2m_server::{OpError, ServerEvent};
use lwm2m_sim::{SimConfig, Simulator};

use crate::common::{TestServer, wait_event};

fn p(s: &str) -> LwM2mPath {
    s.parse().expect("path")
}

async fn sim(server: &TestServer, clients: usize, per_socket: usize, prefix: &str) -> Simulator {
    let sim = Simulator::start(SimConfig {
        server: server.coap(),
        clients,
        clients_per_socket: per_socket,
        endpoint_prefix: prefix.into(),
        notify_interval: Some(Duration::from_millis(200)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    assert_eq!(sim.wait_registered(clients as u64, Duration::from_secs(20)).await, clients as u64);
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_management_against_simulated_devices() {
    let server = TestServer::start().await;
    let h = server.handle.clone();
    let sim = sim(&server, 20, 5, "dm-").await;
    assert_eq!(h.clients().await.len(), 20);
    let c = h.client("dm-7").await.expect("registered");
    assert_eq!(c.root_path, "/d7/");
    assert!(c.objects.contains(&p("/3303/0")));

    // Read in every format the device advertises, and in the server's choice.
    for f in [
        None,
        Some(ContentFormat::TLV),
        Some(ContentFormat::SENML_JSON),
        Some(ContentFormat::SENML_CBOR),
        Some(ContentFormat::JSON),
        Some(ContentFormat::LWM2M_CBOR),
    ] {
        let r = h.read("dm-7", p("/3303/0"), f, None).await.expect("read");
        assert_eq!(r.code.to_string(), "2.05", "{f:?}");
        let temp = r.records.iter().find(|r| r.path == p("/3303/0/5700")).expect("temperature");
        assert!(matches!(temp.value, Value::Float(t) if (-20.0..=50.0).contains(&t)), "{f:?}: {temp:?}");
    }
    let r = h.read("dm-7", p("/3/0/2"), Some(ContentFormat::TEXT), None).await.unwrap();
    assert_eq!(r.records, vec![Record::new(p("/3/0/2"), Value::String("SIM00000007".into()))]);
    // An explicit format the device cannot produce: its 4.06 comes back as is (no silent fallback).
    let r = h.read("dm-7", p("/3303/0"), Some(ContentFormat::TEXT), None).await.unwrap();
    assert_eq!(r.code.to_string(), "4.06");
    // Not found
    let r = h.read("dm-7", p("/3/0/99"), None, None).await.unwrap();
    assert_eq!(r.code.to_string(), "4.04");

    // Write (replace a resource, partial update of an instance) then read back.
    let w = h
        .write(
            "dm-7",
            p("/3311/0/5850"),
            WriteMode::Replace,
            vec![Record::new(p("/3311/0/5850"), Value::Boolean(true))],
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.code.to_string(), "2.04");
    let w = h
        .write(
            "dm-7",
            p("/3311/0"),
            WriteMode::Update,
            vec![Record::new(p("/3311/0/5851"), Value::Integer(80))],
            Some(ContentFormat::TLV),
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.code.to_string(), "2.04");
    let r = h.read("dm-7", p("/3311/0"), Some(ContentFormat::SENML_JSON), None).await.unwrap();
    assert!(r.records.contains(&Record::new(p("/3311/0/5850"), Value::Boolean(true))));
    assert!(r.records.contains(&Record::new(p("/3311/0/5851"), Value::Integer(80))));
    // Read-only resource
    let w = h
        .write(
            "dm-7",
            p("/3303/0/5700"),
            WriteMode::Replace,
            vec![Record::new(p("/3303/0/5700"), Value::Float(1.0))],
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.code.to_string(), "4.05");

    // Execute with and without arguments; invalid arguments never leave the server.
    assert_eq!(h.execute("dm-7", p("/3/0/4"), "", None).await.unwrap().code.to_string(), "2.04");
    assert_eq!(h.execute("dm-7", p("/3/0/4"), "0='now',1", None).await.unwrap().code.to_string(), "2.04");
    assert!(matches!(h.execute("dm-7", p("/3/0/4"), "garbage", None).await, Err(OpError::Invalid(_))));
    assert!(matches!(h.execute("dm-7", p("/3/0"), "", None).await, Err(OpError::Invalid(_))));

    // Discover and Write-Attributes
    let d = h.discover("dm-7", p("/3303/0"), None).await.unwrap();
    assert!(d.links.iter().any(|l| l.target == "/3303/0/5700"), "{:?}", d.links);
    let a = Attributes::parse([("pmin", "1"), ("pmax", "10")]).unwrap();
    assert_eq!(
        h.write_attributes("dm-7", p("/3303/0/5700"), a, None).await.unwrap().code.to_string(),
        "2.04"
    );

    // Create and Delete are refused by this device model with 4.05.
    assert_eq!(h.delete("dm-7", p("/3303/0"), None).await.unwrap().code.to_string(), "4.05");

    // Unknown endpoint
    assert!(matches!(h.read("nobody", p("/3/0"), None, None).await, Err(OpError::UnknownEndpoint(_))));

    // Observe: first value, then notifications; cancel stops them.
    let mut events = h.subscribe_events();
    let o = h.observe("dm-3", p("/3303/0/5700"), None, None).await.unwrap();
    assert_eq!(o.code.to_string(), "2.05");
    assert_eq!(o.records.len(), 1);
    for _ in 0..3 {
        wait_event(&mut events, 5, |e| match e {
            ServerEvent::Notification { endpoint, path, records, .. } if endpoint == "dm-3" => {
                assert_eq!(*path, p("/3303/0/5700"));
                assert!(matches!(records[..], [Record { value: Value::Float(_), .. }]));
                Some(())
            }
            _ => None,
        })
        .await;
    }
    assert_eq!(h.cancel_observe("dm-3", p("/3303/0/5700")).await, 1);
    // After the cancel the device gets a Reset for its next notification and stops.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = sim.stats().notifications.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = sim.stats().notifications.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(before, after, "device kept notifying after cancel");

    // De-register
    let mut events = h.subscribe_events();
    sim.deregister_all().await;
    wait_event(&mut events, 10, |e| {
        matches!(e, ServerEvent::Deregistered { endpoint, .. } if endpoint == "dm-19").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.clients().await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_operation_and_one_socket_per_device() {
    let server = TestServer::start().await;
    let h = server.handle.clone();
    let mut events = h.subscribe_events();
    let sim = sim(&server, 3, 1, "send-").await;
    assert_eq!(h.client("send-1").await.unwrap().root_path, "/");
    sim.send_all().await;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        let (ep, recs) = wait_event(&mut events, 10, |e| match e {
            ServerEvent::Send { endpoint, records, .. } => Some((endpoint.clone(), records.clone())),
            _ => None,
        })
        .await;
        assert!(recs.iter().any(|r| r.path == p("/3303/0/5700")), "{recs:?}");
        seen.insert(ep);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_expire_after_their_lifetime() {
    let server = TestServer::start().await;
    let mut events = server.handle.subscribe_events();
    let sim = Simulator::start(SimConfig {
        server: server.coap(),
        clients: 1,
        lifetime: 1,
        endpoint_prefix: "exp-".into(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.wait_registered(1, Duration::from_secs(10)).await, 1);
    sim.stop(); // no more Updates
    wait_event(&mut events, 10, |e| {
        matches!(e, ServerEvent::Expired { endpoint, .. } if endpoint == "exp-0").then_some(())
    })
    .await;
    assert!(server.handle.client("exp-0").await.is_none());
    server.stop().await;
}
