//! The gateway's flows: register an IPE AE, create containers, subscribe (answering the verification request),
//! receive notifications, and write to one container from many tasks without losing counts.

use std::time::Duration;

use mca_client::{McaClient, McaConfig, McaError, NotificationListener};
use onem2m::Rsc;
use serde_json::json;

async fn gateway_flow(authority: &str) {
    let mut listener = NotificationListener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let ipe = McaClient::new(McaConfig::new(authority, "Cipechain-ipe"));
    let ae = ipe
        .register_ae("cse-in", "ipe", "Nipechain.ipe", vec![listener.url()], vec!["ipechain".into()])
        .await
        .unwrap();
    assert_eq!(ae["aei"], "Cipechain-ipe");
    // Registering again (a restarted gateway) gives back the same AE.
    let again =
        ipe.register_ae("cse-in", "ipe", "Nipechain.ipe", vec![listener.url()], vec![]).await.unwrap();
    assert_eq!(again["ri"], ae["ri"]);

    let cmd = ipe.create_container("cse-in/ipe", "cmd", Some(100)).await.unwrap();
    // Exists (4105): fine, and the answer is that container, not the CSE's error message.
    let again = ipe.create_container("cse-in/ipe", "cmd", Some(100)).await.unwrap();
    assert_eq!((again["ri"].as_str(), again["rn"].as_str()), (cmd["ri"].as_str(), Some("cmd")));
    // URL target: the CSE sends a verification request, the listener answers 2000.
    let sub = ipe.create_subscription("cse-in/ipe/cmd", "sub-url", vec![listener.url()], &[3]).await.unwrap();
    let again =
        ipe.create_subscription("cse-in/ipe/cmd", "sub-url", vec![listener.url()], &[3]).await.unwrap();
    assert_eq!((again["ri"].as_str(), again["ty"].as_u64()), (sub["ri"].as_str(), Some(23)));
    // AE-ID target: delivered to poa.
    ipe.create_subscription("cse-in/ipe/cmd", "sub-ae", vec!["Cipechain-ipe".into()], &[3]).await.unwrap();

    // An application writes a command (the admin here); both subscriptions notify.
    let app = McaClient::new(McaConfig::new(authority, "CAdmin"));
    app.create_cin(
        "cse-in/ipe/cmd",
        json!({"op": "read", "target": "/3303/0/5700"}),
        Some("application/json:0"),
    )
    .await
    .unwrap();
    // sub-url was also told that sub-ae was created (net 3, a child subscription): skip non-cin notices.
    let mut got = Vec::new();
    while got.len() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
        assert_eq!(n.body.pointer("/m2m:sgn/nev/net"), Some(&json!(3)));
        if n.body.pointer("/m2m:sgn/nev/rep/m2m:cin").is_some() {
            got.push(n.representation().unwrap()["con"]["op"].clone());
        }
    }
    assert_eq!(got, vec![json!("read"), json!("read")]);

    // One container, many concurrent writers through one client: every write is counted.
    ipe.create_container("cse-in/ipe", "data", None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = ipe.clone();
        tasks.push(tokio::spawn(async move { c.create_cin("cse-in/ipe/data", json!({"v": i}), None).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let cnt = ipe.retrieve("cse-in/ipe/data").await.unwrap();
    assert_eq!(cnt["cni"], 20);

    // A device AE registered through the same client with its own originator, and an update.
    let dev = ipe.with_origin("Cimei-356938035643809");
    let ae = dev
        .register_ae(
            "cse-in",
            "imei-356938035643809",
            "Nipechain.dev",
            vec![],
            vec!["urn:imei:356938035643809".into()],
        )
        .await
        .unwrap();
    assert_eq!(ae["aei"], "Cimei-356938035643809");
    let cnt = dev.create_container("cse-in/imei-356938035643809", "3303-0", Some(10)).await.unwrap();
    assert_eq!(cnt["mni"], 10);
    let cnt = dev.update("cse-in/imei-356938035643809/3303-0", "m2m:cnt", json!({"mni": 5})).await.unwrap();
    assert_eq!(cnt["mni"], 5);

    // Errors come back typed.
    match ipe.retrieve("cse-in/ipe/nothing").await {
        Err(McaError::Status { rsc: Rsc::NotFound, .. }) => {}
        other => panic!("expected 4004, got {other:?}"),
    }
    let stranger = McaClient::new(McaConfig::new(authority, "Cstranger"));
    match stranger.retrieve("cse-in/ipe/data").await {
        Err(McaError::Status { rsc: Rsc::OriginatorHasNoPrivilege, .. }) => {}
        other => panic!("expected 4103, got {other:?}"),
    }
    // Deleting the subscription with the listener as nu: the CSE may send a deletion notice only with su set;
    // the delete itself must succeed.
    ipe.delete("cse-in/ipe/cmd/sub-url").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_flow_against_acme() {
    let acme = crate::acme::start().await;
    gateway_flow(&acme.authority).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_flow_against_the_embedded_cse() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let c = cse::Cse::open(cse::CseConfig::default()).await.unwrap();
    tokio::spawn(cse::serve(c, listener, std::future::pending()));
    gateway_flow(&authority).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_the_cse_comes_up() {
    let port = test_support::free_tcp_port();
    let authority = format!("127.0.0.1:{port}");
    let client = McaClient::new(McaConfig::new(authority.clone(), "CAdmin"));
    // Nothing listens yet: the first attempts fail to connect; the CSE starts during the back-off.
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let c = cse::Cse::open(cse::CseConfig::default()).await.unwrap();
        tokio::spawn(cse::serve(c, listener, std::future::pending()));
    });
    let cb = client.retrieve("cse-in").await.unwrap();
    assert_eq!(cb["ty"], 5);
    starter.await.unwrap();
    // Unreachable for good: a typed transport error after the retries.
    let mut cfg = McaConfig::new(format!("127.0.0.1:{}", test_support::free_tcp_port()), "CAdmin");
    cfg.retry =
        mca_client::Backoff::new(Duration::from_millis(10), Duration::from_millis(10)).with_max_retries(2);
    match McaClient::new(cfg).retrieve("cse-in").await {
        Err(McaError::Transport(_)) => {}
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_cse_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::free_tcp_port();
    let start = |dir: std::path::PathBuf| async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let cfg = cse::CseConfig { data_dir: Some(dir), ..Default::default() };
        let c = cse::Cse::open(cfg).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(cse::serve(c.clone(), listener, async move {
            let _ = rx.await;
        }));
        (c, tx, task)
    };
    let (c, stop, task) = start(dir.path().to_path_buf()).await;
    let ipe = McaClient::new(McaConfig::new(format!("127.0.0.1:{port}"), "Cipe"));
    ipe.register_ae("cse-in", "ipe", "Nipe", vec![], vec![]).await.unwrap();
    ipe.create_container("cse-in/ipe", "data", None).await.unwrap();
    ipe.create_cin("cse-in/ipe/data", json!(1), None).await.unwrap();
    // Restart the CSE on the same port; the client's pooled connection is gone.
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    c.close().await;
    drop(c);
    let (c, _stop, _task) = start(dir.path().to_path_buf()).await;
    ipe.create_cin("cse-in/ipe/data", json!(2), None).await.unwrap();
    let cnt = ipe.retrieve("cse-in/ipe/data").await.unwrap();
    assert_eq!(cnt["cni"], 2);
    // A restarted gateway registering again gets its AE back.
    let ae = ipe.register_ae("cse-in", "ipe", "Nipe", vec![], vec![]).await.unwrap();
    assert_eq!(ae["aei"], "Cipe");
    c.close().await;
}
