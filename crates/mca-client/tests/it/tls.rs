//! HTTPS with ACME in both directions: the client speaks HTTPS to ACME (verifying ACME's certificate against a
//! configured CA), and ACME sends its verification requests and notifications over HTTPS to our listener.

use std::time::Duration;

use mca_client::tls::{PemIdentity, TlsClient, TlsServer};
use mca_client::{McaClient, McaConfig, McaError, NotificationListener};
use serde_json::json;
use test_support::pki::Ca;

fn https_client(authority: &str, origin: &str, trust: &Ca) -> McaClient {
    let tls = TlsClient { ca_pems: vec![trust.cert_pem.clone()], identity: None }.rustls_config().unwrap();
    let mut cfg = McaConfig::from_url(&format!("https://{authority}/cse-in"), origin, Some(tls)).unwrap();
    cfg.retry =
        mca_client::Backoff::new(Duration::from_millis(50), Duration::from_millis(50)).with_max_retries(1);
    McaClient::new(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_acme_and_acme_notifies_over_https() {
    let ca = Ca::new("ipechain test TLS CA");
    let server = ca.issue("acme", &["127.0.0.1", "localhost"]);
    let acme = test_support::AcmeProcess::spawn_https(&server.cert_pem, &server.key_pem).unwrap();
    let admin = https_client(&acme.authority(), "CAdmin", &ca);
    let mut up = false;
    for _ in 0..300 {
        if admin.retrieve("cse-in").await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "ACME did not come up over HTTPS on {}", acme.authority());
    // (ACME's CSEBase still shows an http:// poa in this mode: it is built from cseHost and the port.)

    // Our listener serves HTTPS with a certificate of the same CA.
    let receiver = ca.issue("receiver", &["127.0.0.1"]);
    let tls = TlsServer {
        identity: PemIdentity { cert_pem: receiver.cert_pem.clone(), key_pem: receiver.key_pem.clone() },
        client_ca_pems: vec![],
    }
    .rustls_config()
    .unwrap();
    let mut notes = NotificationListener::bind_tls("127.0.0.1:0".parse().unwrap(), tls).await.unwrap();
    let app = admin.with_origin("Ctls-app");
    let ae = app.register_ae("cse-in", "tlsapp", "Napp", vec![notes.url()], vec![]).await.unwrap();
    assert_eq!(ae["aei"], "Ctls-app");
    app.create_container("cse-in/tlsapp", "c", Some(10)).await.unwrap();
    // ACME verifies the https:// nu (its verification request reaches our HTTPS listener) and then notifies.
    app.create_subscription("cse-in/tlsapp/c", "s", vec![notes.url()], &[3]).await.unwrap();
    let cin = app.create_cin("cse-in/tlsapp/c", json!({"v": 7}), None).await.unwrap();
    assert_eq!(cin["con"], json!({"v": 7}));
    let n = tokio::time::timeout(Duration::from_secs(15), notes.recv()).await.unwrap().unwrap();
    assert_eq!(n.representation().and_then(|c| c.get("con")), Some(&json!({"v": 7})), "{:?}", n.body);
    // And to the AE's https:// poa when the AE-ID is the nu.
    app.create_subscription("cse-in/tlsapp/c", "s2", vec!["Ctls-app".into()], &[3]).await.unwrap();
    app.create_cin("cse-in/tlsapp/c", json!({"v": 8}), None).await.unwrap();
    // Three notifications: s about s2's creation, then the new contentInstance through s and through s2.
    let mut with_cin = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(Duration::from_secs(15), notes.recv()).await.unwrap().unwrap();
        if let Some(con) = n.representation().and_then(|c| c.get("con")) {
            with_cin.push((n.sur().unwrap_or_default().to_owned(), con.clone()));
        }
    }
    assert_eq!(with_cin.len(), 2, "{with_cin:?}");
    assert!(with_cin.iter().all(|(_, con)| *con == json!({"v": 8})), "{with_cin:?}");
    assert_ne!(with_cin[0].0, with_cin[1].0, "one through each subscription: {with_cin:?}");

    // A client that does not trust ACME's CA refuses the connection; plain HTTP gets no oneM2M answer.
    let e = https_client(&acme.authority(), "CAdmin", &Ca::new("another CA"))
        .retrieve("cse-in")
        .await
        .unwrap_err();
    assert!(matches!(e, McaError::Transport(_)), "{e}");
    let mut http = McaConfig::new(acme.authority(), "CAdmin");
    http.retry = mca_client::Backoff::never();
    assert!(McaClient::new(http).retrieve("cse-in").await.is_err());
}
