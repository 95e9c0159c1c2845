use crate::generated;
use crate::installed_contracts;
use ledger_client::{Gateway, node_status};
use ledger_rpc::tls::channel;
use network::IdentitySigner;
use network::layout::{NodeConfig, load_identity, tls_material};
use network::run::start_peer;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn peer_serves_mutual_tls_and_refuses_strangers() {
    let (_tmp, dir, net) = generated(10);
    let node = NodeConfig::load(&dir.node_config("peer0.org1.ipechain.local")).unwrap();
    let channel_cfg = node.channel.clone();
    let stop = CancellationToken::new();
    let peer = start_peer(node, installed_contracts(), stop.clone()).await.unwrap();
    let endpoint = net.peers[0].endpoint();

    // An admin reaches the Admin service over mutual TLS.
    let user_dir =
        dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let user = load_identity("Org1MSP", &user_dir).unwrap();
    let tls = tls_material(&user, &channel_cfg).unwrap();
    let user = load_identity("Org1MSP", &user_dir).unwrap();
    let admin_dir =
        dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/Admin@org1.ipechain.local");
    let admin_tls = tls_material(&load_identity("Org1MSP", &admin_dir).unwrap(), &channel_cfg).unwrap();
    let status = node_status(channel(&endpoint, &admin_tls).unwrap()).await.unwrap();
    assert_eq!((status.role.as_str(), status.height, status.msp_id.as_str()), ("peer", 1, "Org1MSP"));
    // A member that is not an admin reaches the peer but not its Admin service.
    let e = node_status(channel(&endpoint, &tls).unwrap()).await.unwrap_err();
    assert!(e.to_string().contains("admin"), "{e}");

    // A client of another network (foreign CAs) cannot even complete the TLS handshake.
    let (_tmp2, other, _) = generated(11);
    let other_node = NodeConfig::load(&other.node_config("peer0.org1.ipechain.local")).unwrap();
    let stranger_dir =
        other.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let stranger = load_identity("Org1MSP", &stranger_dir).unwrap();
    let mut stranger_tls = tls_material(&stranger, &other_node.channel).unwrap();
    // Even trusting our CAs, its certificate does not chain to any of them.
    stranger_tls.ca_pems.extend(tls.ca_pems.clone());
    let refused = node_status(channel(&endpoint, &stranger_tls).unwrap()).await;
    assert!(refused.is_err(), "a foreign client certificate must be refused");

    // A client without a certificate is refused (client authentication is required by default).
    let anonymous = node_status(anonymous_channel(&endpoint, &tls.ca_pems)).await;
    assert!(anonymous.is_err(), "a client without a TLS certificate must be refused");
    let kv = Gateway::with_channel(
        anonymous_channel(&endpoint, &tls.ca_pems),
        Arc::new(IdentitySigner::new(user)),
        "iot",
    )
    .unwrap()
    .contract("kv");
    let e = kv.evaluate("get", &[b"k".to_vec()]).await.unwrap_err();
    assert!(matches!(e, ledger_client::ClientError::Status(_)), "{e}");

    // A member connection, but a request signed by a foreign identity: PermissionDenied.
    let gw = Gateway::with_channel(
        channel(&endpoint, &tls).unwrap(),
        Arc::new(IdentitySigner::new(stranger)),
        "iot",
    )
    .unwrap();
    let err = gw.commit_status(&"0".repeat(64)).await.unwrap_err();
    assert!(err.to_string().contains("PermissionDenied") || err.to_string().contains("permission"), "{err}");

    stop.cancel();
    peer.stopped().await.unwrap();
}

/// A TLS channel that trusts the network's CAs but presents no client certificate (as Caliper's gateway
/// connector connects).
fn anonymous_channel(endpoint: &str, cas: &[Vec<u8>]) -> tonic::transport::Channel {
    let tls = tonic::transport::ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificates(cas.iter().map(tonic::transport::Certificate::from_pem));
    tonic::transport::Endpoint::from_shared(format!("https://{endpoint}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

#[tokio::test]
async fn a_peer_with_optional_client_auth_serves_signed_requests_without_a_tls_certificate() {
    let (_tmp, dir, net) = generated(12);
    let mut node = NodeConfig::load(&dir.node_config("peer0.org1.ipechain.local")).unwrap();
    node.config.client_auth = network::ClientAuth::Optional;
    let cas = node.tls.ca_pems.clone();
    let stop = CancellationToken::new();
    let peer = start_peer(node, installed_contracts(), stop.clone()).await.unwrap();
    let endpoint = net.peers[0].endpoint();
    let user_dir =
        dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let user = Arc::new(IdentitySigner::new(load_identity("Org1MSP", &user_dir).unwrap()));
    // Served: the request is authenticated by its signature (the contract answers: no such key).
    let gw = Gateway::with_channel(anonymous_channel(&endpoint, &cas), user, "iot").unwrap();
    let e = gw.contract("kv").evaluate("get", &[b"k".to_vec()]).await.unwrap_err();
    assert_eq!(e.contract_status(), Some(404), "{e}");
    // A foreign signer is still refused, and the Admin service still wants an admin's certificate.
    let (_tmp2, other, _) = generated(13);
    let stranger_dir =
        other.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let stranger = Arc::new(IdentitySigner::new(load_identity("Org1MSP", &stranger_dir).unwrap()));
    let gw = Gateway::with_channel(anonymous_channel(&endpoint, &cas), stranger, "iot").unwrap();
    let e = gw.contract("kv").evaluate("get", &[b"k".to_vec()]).await.unwrap_err();
    assert!(e.details().iter().any(|d| d.message.contains("access denied")), "{e}");
    let e = node_status(anonymous_channel(&endpoint, &cas)).await.unwrap_err();
    assert!(e.to_string().contains("no client certificate"), "{e}");
    stop.cancel();
    peer.stopped().await.unwrap();
}

#[tokio::test]
async fn a_peer_whose_endorsers_name_a_stranger_organization_does_not_start() {
    let (_tmp, dir, _net) = generated(14);
    let path = dir.node_config("peer0.org1.ipechain.local");
    // A top-level key written after the [endorsers] table becomes an endorser entry.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}client_auth = \"optional\"\n")).unwrap();
    let node = NodeConfig::load(&path).unwrap();
    let Err(e) = start_peer(node, installed_contracts(), CancellationToken::new()).await else {
        panic!("the peer started");
    };
    let msg = e.to_string();
    assert!(msg.contains("\"client_auth\"") && msg.contains("before the [endorsers] table"), "{msg}");
}
