//! Broadcast and Deliver refuse bad requests with clear gRPC statuses, before anything is ordered.

use crate::support::{CHANNEL, Cluster, envelope};
use ledger_rpc::messages::DeliverRequest;
use ledger_types::proto::Envelope;
use ledger_types::tx::DecodedTx;
use orderer::{Denied, EnvelopeAuthorizer};
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;

struct OnlyOrg2;

impl EnvelopeAuthorizer for OnlyOrg2 {
    fn authorize_broadcast(&self, tx: &DecodedTx) -> Result<(), Denied> {
        let creator =
            ledger_types::tx::deserialize_identity(tx.creator()).map_err(|e| Denied(e.to_string()))?;
        if creator.mspid == "Org2MSP" {
            Ok(())
        } else {
            Err(Denied(format!("{} is not a writer", creator.mspid)))
        }
    }

    fn authorize_deliver(&self, client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        Err(Denied(format!("client presenting {} certificate(s) is not a reader", client_certs.len())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_refused_with_clear_statuses() {
    // One orderer of three: structural checks need no quorum.
    let mut c = Cluster::new(3);
    c.authorizer = Some(Arc::new(OnlyOrg2));
    c.start(0).await;
    let mut client = c.broadcaster(0);

    let (big, _) = envelope(CHANNEL, &vec![7u8; 70 * 1024], 1);
    let st = client.broadcast(big).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("413"));

    let garbage = Envelope { payload: vec![0xff, 0xff, 0xff].into(), signature: vec![].into() };
    let st = client.broadcast(garbage).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");

    let (other, _) = envelope("other", b"x", 2);
    let st = client.broadcast(other).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    assert!(st.message().contains("other"));

    let (ok_shape, _) = envelope(CHANNEL, b"x", 3);
    let st = client.broadcast(ok_shape).await.unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert!(st.message().contains("Org1MSP is not a writer"));

    // Deliver asks the authorizer, with the client's TLS certificate chain.
    let st = client
        .deliver(DeliverRequest { channel_id: CHANNEL.into(), start: 0, stop: None })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert!(st.message().contains("presenting 1 certificate"), "{st:?}");

    // Nothing was ordered.
    assert_eq!(c.store(0).blocks().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_broadcast_is_unavailable() {
    let mut c = Cluster::new(3);
    c.order_timeout = Duration::from_millis(1500);
    c.start(0).await;
    let (env, _) = envelope(CHANNEL, b"x", 1);
    let st = c.broadcaster(0).broadcast(env).await.unwrap_err();
    assert_eq!(st.code(), Code::Unavailable, "{st:?}");
    assert_eq!(c.store(0).blocks().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_a_foreign_ca_cannot_connect() {
    let mut c = Cluster::new(3);
    c.start(0).await;
    // Same server trust, but the client's certificate is issued by an unknown CA.
    let foreign = crate::support::Pki::new().issue();
    let tls = ledger_rpc::tls::TlsMaterial { ca_pems: c.client_tls.ca_pems.clone(), ..foreign };
    let ch = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", c.ports[0]))
        .unwrap()
        .tls_config(tls.client_config("localhost"))
        .unwrap()
        .connect_lazy();
    let mut client = ledger_rpc::atomic_broadcast_client::AtomicBroadcastClient::new(ch);
    let (env, _) = envelope(CHANNEL, b"x", 1);
    let st = client.broadcast(env).await.unwrap_err();
    // The TLS handshake fails: the call never reaches the service (whichever transport code hyper reports).
    assert!(matches!(st.code(), Code::Unavailable | Code::Unknown | Code::Cancelled), "{st:?}");
    // A client of the right CA gets through to the (structural) checks.
    let (other, _) = envelope("other", b"x", 2);
    let st = c.broadcaster(0).broadcast(other).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    let st = c
        .broadcaster(0)
        .deliver(DeliverRequest { channel_id: "other".into(), start: 0, stop: None })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
}
