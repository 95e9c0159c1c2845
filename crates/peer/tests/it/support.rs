//! Test fakes: identities whose "signature" is SHA-256(cert || msg), and in-memory stores.

use ledger_types::block::BlockBuilder;
use ledger_types::config::genesis_block;
use ledger_types::hash::Hash32;
use ledger_types::proto::{
    BatchConfig, Block, ChannelConfig, Consenter, ContractDefinition, MetadataSignature, OrgConfig,
    SerializedIdentity, Timestamp, Version,
};
use ledger_types::store::{StateSnapshot, StateStore};
use ledger_types::tx::{self, ProposalBuilder, Signer};
use ledger_types::{ChannelId, TxId};
use peer::identity::{Identities, SigCheck, ValidatedIdentity};
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(crate) struct FakeSigner {
    pub(crate) id: Vec<u8>,
    cert: Vec<u8>,
}

impl FakeSigner {
    pub(crate) fn new(msp: &str, role: &str, name: &str) -> FakeSigner {
        let cert = format!("{role}:{name}").into_bytes();
        FakeSigner { id: tx::serialize_identity(msp, &cert), cert }
    }
}

fn fake_sig(cert: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(cert);
    h.update(msg);
    h.finalize().to_vec()
}

impl Signer for FakeSigner {
    fn serialized_identity(&self) -> &[u8] {
        &self.id
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        fake_sig(&self.cert, msg)
    }
}

/// Knows the MSP ids in `orgs`; roles come from the fake cert "role:name".
pub(crate) struct FakeIds {
    pub(crate) orgs: Vec<String>,
}

impl Identities for FakeIds {
    fn validate(&self, serialized: &[u8]) -> Result<Arc<ValidatedIdentity>, String> {
        let si = SerializedIdentity::decode(serialized).map_err(|e| e.to_string())?;
        if !self.orgs.contains(&si.msp_id) {
            return Err(format!("unknown MSP {}", si.msp_id));
        }
        let text = String::from_utf8(si.cert_der.clone()).map_err(|e| e.to_string())?;
        let (role, name) = text.split_once(':').ok_or("bad fake cert")?;
        Ok(Arc::new(ValidatedIdentity {
            msp_id: si.msp_id,
            role: role.into(),
            subject: name.into(),
            cert_der: si.cert_der.clone(),
            key: Arc::new(si.cert_der),
        }))
    }

    fn verify_batch(&self, items: &[SigCheck<'_>]) -> Vec<bool> {
        items
            .iter()
            .map(|i| {
                let cert = i.identity.key.downcast_ref::<Vec<u8>>().expect("fake key");
                fake_sig(cert, i.msg) == i.sig
            })
            .collect()
    }
}

pub(crate) type MemBlocks = ledger_store::MemBlockStore;
pub(crate) type MemState = ledger_store::MemStateStore;

/// A key's value and version in a state store.
pub(crate) fn value(state: &impl StateStore, ns: &str, key: &str) -> Option<(Vec<u8>, Version)> {
    state.snapshot().unwrap().get(ns, key).unwrap().map(|v| (v.value, v.version))
}

pub(crate) fn orderer() -> FakeSigner {
    FakeSigner::new("OrdererMSP", "orderer", "orderer1")
}

pub(crate) fn config(policy: &str) -> ChannelConfig {
    let org = |n: &str| OrgConfig {
        msp_id: format!("{n}MSP"),
        name: n.into(),
        root_certs: vec![vec![1]],
        tls_root_certs: vec![],
        peer_endpoints: vec![],
    };
    ChannelConfig {
        channel_id: "iot".into(),
        orgs: vec![org("Org1"), org("Org2")],
        orderer_orgs: vec![org("Orderer")],
        consenters: vec![Consenter {
            id: 1,
            host: "127.0.0.1".into(),
            port: 1,
            identity: orderer().id.clone(),
        }],
        batch: Some(BatchConfig {
            max_message_count: 100,
            preferred_max_bytes: 1 << 20,
            absolute_max_bytes: 1 << 22,
            batch_timeout_ms: 10,
        }),
        readers: vec!["Org1MSP".into(), "Org2MSP".into()],
        writers: vec!["Org1MSP".into(), "Org2MSP".into()],
        admins: vec!["Org1MSP".into()],
        contracts: vec![ContractDefinition {
            name: "kv".into(),
            endorsement_policy: policy.into(),
            version: "1".into(),
        }],
    }
}

pub(crate) fn genesis(policy: &str) -> Block {
    genesis_block(&config(policy)).unwrap()
}

pub(crate) fn ids() -> Arc<FakeIds> {
    Arc::new(FakeIds { orgs: vec!["Org1MSP".into(), "Org2MSP".into(), "OrdererMSP".into()] })
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A signed proposal for `kv.function(args)` by `client`.
pub(crate) fn proposal(
    client: &FakeSigner,
    function: &str,
    args: &[&str],
) -> (ledger_types::proto::SignedProposal, TxId) {
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ProposalBuilder::new(ChannelId::parse("iot").unwrap(), "kv", function)
        .args(args.iter().map(|a| a.as_bytes().to_vec()))
        .sign(client, n.to_be_bytes().to_vec(), Timestamp { seconds: 1_700_000_000, nanos: 0 })
}

/// A block cut and signed by the fake orderer.
pub(crate) fn signed_block(number: u64, prev: Hash32, envelopes: Vec<Vec<u8>>) -> Block {
    let mut b = BlockBuilder::new(number, prev).envelopes(envelopes).build();
    let o = orderer();
    let sig = o.sign(&b.header_hash().0);
    b.metadata.as_mut().unwrap().signatures.push(MetadataSignature { signer: o.id.clone(), signature: sig });
    b
}
