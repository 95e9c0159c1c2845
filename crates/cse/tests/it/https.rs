//! Mca over HTTPS: the embedded CSE serves TLS with the network's kind of material (a CA, a server certificate
//! for 127.0.0.1), optional client certificates bind an application to its originator, and the notifier
//! verifies `https://` targets against its configured CA.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use mca_client::tls::{PemIdentity, TlsClient, TlsServer};
use mca_client::{McaClient, McaConfig, McaError, NotificationListener};
use onem2m::{Operation, Rsc};
use serde_json::{Value, json};
use test_support::pki::{Ca, Issued};

fn identity(i: &Issued) -> PemIdentity {
    PemIdentity { cert_pem: i.cert_pem.clone(), key_pem: i.key_pem.clone() }
}

fn client(port: u16, origin: &str, trust: &Ca, cert: Option<&Issued>) -> McaClient {
    let tls = TlsClient { ca_pems: vec![trust.cert_pem.clone()], identity: cert.map(identity) };
    let mut cfg =
        McaConfig::from_url(&format!("https://127.0.0.1:{port}"), origin, Some(tls.rustls_config().unwrap()))
            .unwrap();
    cfg.retry =
        mca_client::Backoff::new(Duration::from_millis(50), Duration::from_millis(50)).with_max_retries(1);
    McaClient::new(cfg)
}

async fn https_listener(cert: &Issued) -> NotificationListener {
    let tls = TlsServer { identity: identity(cert), client_ca_pems: vec![] }.rustls_config().unwrap();
    NotificationListener::bind_tls("127.0.0.1:0".parse().unwrap(), tls).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mca_over_https_with_optional_client_certificates_and_https_notifications() {
    let ca = Ca::new("ipechain test TLS CA");
    let other_ca = Ca::new("another CA");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cse = cse::Cse::open(cse::CseConfig {
        poa: vec![format!("https://127.0.0.1:{port}")],
        notify_tls: TlsClient { ca_pems: vec![ca.cert_pem.clone()], identity: None },
        ..Default::default()
    })
    .await
    .unwrap();
    let server = ca.issue("cse", &["127.0.0.1", "localhost"]);
    let tls = TlsServer { identity: identity(&server), client_ca_pems: vec![ca.cert_pem.clone()] }
        .rustls_config()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(cse::serve_tls(cse.clone(), listener, tls, async move {
        let _ = stopped.await;
    }));

    // Without a client certificate an application is served as over HTTP.
    let plain = client(port, "Cplain", &ca, None);
    plain.register_ae("cse-in", "plain", "Napp", vec![], vec![]).await.unwrap();
    assert_eq!(plain.retrieve("cse-in/plain").await.unwrap()["aei"], "Cplain");

    // With one, it is the certificate's subject: its own originator works, another is refused (4103).
    let app_cert = ca.issue("Ctls-app", &[]);
    let app = client(port, "Ctls-app", &ca, Some(&app_cert));
    app.register_ae("cse-in", "tlsapp", "Napp", vec![], vec![]).await.unwrap();
    app.create_container("cse-in/tlsapp", "c", None).await.unwrap();
    let impostor = client(port, "Cplain", &ca, Some(&app_cert));
    let r = impostor.send(&impostor.request(Operation::Retrieve, "cse-in/plain")).await.unwrap();
    assert_eq!(r.rsc, Rsc::OriginatorHasNoPrivilege, "{:?}", r.pc);
    assert!(r.debug_message().unwrap_or_default().contains("issued to \"Ctls-app\""), "{:?}", r.pc);
    let mut reg = impostor.request(Operation::Create, "cse-in");
    reg.ty = Some(2);
    reg.pc = Some(json!({"m2m:ae": {"rn": "x", "api": "Nx", "rr": false, "srv": ["3"]}}));
    assert_eq!(impostor.send(&reg).await.unwrap().rsc, Rsc::OriginatorHasNoPrivilege);

    // A certificate from a CA the CSE does not trust ends in the handshake, as does a CSE certificate the
    // client does not trust.
    let foreign = other_ca.issue("Ctls-app", &[]);
    let e = client(port, "Ctls-app", &ca, Some(&foreign)).retrieve("cse-in/tlsapp").await.unwrap_err();
    assert!(matches!(e, McaError::Transport(_)), "{e}");
    let e = client(port, "Cplain", &other_ca, None).retrieve("cse-in/plain").await.unwrap_err();
    assert!(matches!(e, McaError::Transport(_)), "{e}");
    // Plain HTTP to the HTTPS port gets no oneM2M answer.
    let mut http_cfg = McaConfig::new(format!("127.0.0.1:{port}"), "Cplain");
    http_cfg.retry = mca_client::Backoff::never();
    assert!(McaClient::new(http_cfg).retrieve("cse-in/plain").await.is_err());

    // Notifications to an https:// URL: verified and delivered over TLS, checked against notify_tls's CA.
    let mut notes = https_listener(&ca.issue("receiver", &["127.0.0.1"])).await;
    assert!(notes.url().starts_with("https://"));
    app.create_subscription("cse-in/tlsapp/c", "s", vec![notes.url()], &[3]).await.unwrap();
    app.create_cin("cse-in/tlsapp/c", json!({"v": 1}), None).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), notes.recv()).await.unwrap().unwrap();
    assert_eq!(n.representation().and_then(|c| c.get("con")), Some(&json!({"v": 1})), "{:?}", n.body);
    // An AE whose poa is https:// gets its notifications there.
    let mut ae_notes = https_listener(&ca.issue("receiver", &["127.0.0.1"])).await;
    app.update("cse-in/tlsapp", "m2m:ae", json!({"poa": [ae_notes.url()]})).await.unwrap();
    app.create_subscription("cse-in/tlsapp/c", "s2", vec!["Ctls-app".into()], &[3]).await.unwrap();
    app.create_cin("cse-in/tlsapp/c", json!({"v": 2}), None).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), ae_notes.recv()).await.unwrap().unwrap();
    assert_eq!(n.path, "/Ctls-app");
    assert_eq!(n.representation().and_then(|c| c.get("con")), Some(&json!({"v": 2})));
    // A receiver whose certificate the CSE does not trust cannot be verified: 5204, nothing created.
    let untrusted = https_listener(&other_ca.issue("receiver", &["127.0.0.1"])).await;
    let mut sub = app.request(Operation::Create, "cse-in/tlsapp/c");
    sub.ty = Some(23);
    sub.pc = Some(json!({"m2m:sub": {"rn": "s3", "nu": [untrusted.url()], "enc": {"net": [3]}}}));
    let r = app.send(&sub).await.unwrap();
    assert_eq!(r.rsc, Rsc::SubscriptionVerificationInitiationFailed, "{:?}", r.pc);
    let r = app.send(&app.request(Operation::Retrieve, "cse-in/tlsapp/c/s3")).await.unwrap();
    assert_eq!(r.rsc, Rsc::NotFound);
    let _: Value = app.retrieve("cse-in/tlsapp/c/s").await.unwrap();

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    cse.close().await;
}
