//! libcoap's `coap-client-notls` as a raw CoAP peer: registration, update (from another port), block-wise
//! registration payload, bad parameters and options, de-registration.

use std::process::Command;
use std::time::Duration;

use lwm2m_server::ServerEvent;

use crate::common::{TestServer, wait_event};

/// Runs coap-client with `args`; returns stdout + stderr.
async fn coap_client(args: Vec<String>) -> String {
    let bin = test_support::coap_client();
    let out = tokio::task::spawn_blocking(move || Command::new(bin).args(["-B", "5"]).args(&args).output())
        .await
        .unwrap()
        .expect("coap-client runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coap_client_registration_and_bad_requests() {
    let server = TestServer::start_with(|c| c.coap.max_body = 8192).await;
    let base = format!("coap://127.0.0.1:{}", server.coap().port());
    let mut events = server.handle.subscribe_events();

    coap_client(s(&[
        "-m",
        "post",
        "-t",
        "40",
        "-e",
        "</3/0>,</3/0/0>,</31024/0>",
        &format!("{base}/rd?ep=cli-ep&lt=60&lwm2m=1.1&b=U"),
    ]))
    .await;
    let c = wait_event(&mut events, 10, |e| match e {
        ServerEvent::Registered(c) if c.endpoint == "cli-ep" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!((c.lifetime, c.version.as_str()), (60, "1.1"));
    let loc = format!("{base}/rd/{}", c.registration_id);

    // Update from another process (another port) by location.
    coap_client(s(&["-m", "post", &format!("{loc}?lt=300")])).await;
    let c2 = wait_event(&mut events, 10, |e| match e {
        ServerEvent::Updated(c) if c.endpoint == "cli-ep" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c2.lifetime, 300);
    assert_ne!(c2.address, c.address, "a new coap-client process uses a new port");

    // Bad registrations and options get their codes.
    let out = coap_client(s(&["-m", "post", &format!("{base}/rd?ep=v12&lwm2m=1.2")])).await;
    assert!(out.contains("4.12"), "{out}");
    let out = coap_client(s(&["-m", "post", &format!("{base}/rd?ep=bad&lt=abc")])).await;
    assert!(out.contains("4.00"), "{out}");
    let out = coap_client(s(&["-m", "post", &format!("{base}/rd?lt=60")])).await;
    assert!(out.contains("4.00"), "{out}");
    let out = coap_client(s(&["-m", "post", "-t", "50", "-e", "{}", &format!("{base}/rd?ep=json")])).await;
    assert!(out.contains("4.15"), "{out}");
    let out = coap_client(s(&["-m", "post", "-O", "65001,x", &format!("{base}/rd?ep=opt")])).await;
    assert!(out.contains("4.02"), "{out}");
    let out = coap_client(s(&["-m", "get", &format!("{base}/rd")])).await;
    assert!(out.contains("4.05"), "{out}");
    let out = coap_client(s(&["-m", "post", &format!("{base}/rd/unknown")])).await;
    assert!(out.contains("4.04"), "{out}");
    let big = "x".repeat(9000);
    let out = coap_client(s(&["-m", "post", "-e", &big, &format!("{base}/rd?ep=huge")])).await;
    assert!(out.contains("4.13"), "{out}");

    // A large link-format payload, sent block-wise (Block1, 64-byte blocks).
    let links: Vec<String> = (0..60).map(|i| format!("</3303/{i}>")).collect();
    coap_client(s(&[
        "-m",
        "post",
        "-b",
        "64",
        "-t",
        "40",
        "-e",
        &links.join(","),
        &format!("{base}/rd?ep=blocks&lt=60"),
    ]))
    .await;
    let c3 = wait_event(&mut events, 10, |e| match e {
        ServerEvent::Registered(c) if c.endpoint == "blocks" => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c3.objects.len(), 60);

    // The first client is undisturbed; then it de-registers.
    assert!(server.handle.client("cli-ep").await.is_some());
    coap_client(s(&["-m", "delete", &loc])).await;
    wait_event(&mut events, 10, |e| {
        matches!(e, ServerEvent::Deregistered { endpoint, .. } if endpoint == "cli-ep").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.handle.client("cli-ep").await.is_none());
    server.stop().await;
}
