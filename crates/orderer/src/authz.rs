//! Authorization hooks, injected by the node: the orderer itself checks structure and sizes only; who may
//! write (creator signature, channel writer policy) and who may read blocks is decided by an
//! [`EnvelopeAuthorizer`] the node builds from its MSP.

use ledger_types::tx::DecodedTx;

/// A refusal by the authorizer (mapped to gRPC `PermissionDenied`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Decides whether a client may broadcast an envelope or read blocks.
pub trait EnvelopeAuthorizer: Send + Sync + 'static {
    /// Checks the envelope's creator signature and that the creator is a channel writer.
    fn authorize_broadcast(&self, tx: &DecodedTx) -> Result<(), Denied>;

    /// [`authorize_broadcast`](Self::authorize_broadcast) for many envelopes, one verdict each, in order.
    /// Override it to verify the signatures in one batch.
    fn authorize_broadcast_batch(&self, txs: &[DecodedTx]) -> Vec<Result<(), Denied>> {
        txs.iter().map(|tx| self.authorize_broadcast(tx)).collect()
    }

    /// Checks a Fabric seek request (`orderer.AtomicBroadcast/Deliver`): `creator` (the encoded
    /// `msp.SerializedIdentity` of its `SignatureHeader`) must be a channel reader whose `signature` over
    /// `signed` (the envelope's payload) verifies. Default: refuse.
    fn authorize_seek(&self, creator: &[u8], signed: &[u8], signature: &[u8]) -> Result<(), Denied> {
        let _ = (creator, signed, signature);
        Err(Denied("this orderer admits no Fabric deliver clients".into()))
    }

    /// Checks that the client presenting these TLS certificates (DER, leaf first; empty when none) is a
    /// channel reader. Default: anyone with a valid mutual-TLS certificate may read.
    fn authorize_deliver(&self, client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        let _ = client_certs;
        Ok(())
    }

    /// Checks that the client presenting these TLS certificates is an orderer of the channel: only orderers
    /// may send Raft messages and forward envelopes (the `Cluster` service). Called before the request is
    /// decoded. Default: refuse (an authorizer must say who the orderers are).
    fn authorize_cluster(&self, client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        let _ = client_certs;
        Err(Denied("this orderer admits no cluster peers".into()))
    }

    /// Checks that the client is an admin (the `Admin` service). Default: refuse.
    fn authorize_admin(&self, client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        let _ = client_certs;
        Err(Denied("this orderer admits no admins".into()))
    }
}

/// Accepts everything (tests, and nodes that delegate checks to peers' validation).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl EnvelopeAuthorizer for AcceptAll {
    fn authorize_broadcast(&self, _tx: &DecodedTx) -> Result<(), Denied> {
        Ok(())
    }

    fn authorize_seek(&self, _creator: &[u8], _signed: &[u8], _signature: &[u8]) -> Result<(), Denied> {
        Ok(())
    }

    fn authorize_cluster(&self, _client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        Ok(())
    }

    fn authorize_admin(&self, _client_certs: &[Vec<u8>]) -> Result<(), Denied> {
        Ok(())
    }
}
