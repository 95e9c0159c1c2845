//! Test fakes: identities whose "signature" is SHA-256(cert || msg), and in-memory stores.

use ledger_types::block::BlockBuilder;
use ledger_types::config::genesis_block;
use ledger_types::hash::Hash32;
use ledger_types::proto::{
    BatchConfig, Block, ChannelConfig, Consenter, ContractDefinition, MetadataSignature, OrgConfig,
    SerializedIdentity, Timestamp, Version,
};
use ledger_types::store::{
    BlockStore, StateSnapshot, StateStore, StoreError, TxLocation, UpdateBatch, VersionedValue,
};
use ledger_types::tx::{self, ProposalBuilder, Signer};
use ledger_types::{ChannelId, TxId, TxValidationCode};
use peer::identity::{Identities, SigCheck, ValidatedIdentity};
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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

#[derive(Default)]
pub(crate) struct MemBlocks {
    blocks: Mutex<Vec<Block>>,
    index: Mutex<HashMap<String, TxLocation>>,
}

impl BlockStore for MemBlocks {
    fn height(&self) -> u64 {
        self.blocks.lock().unwrap().len() as u64
    }
    fn last_hash(&self) -> Option<Hash32> {
        self.blocks.lock().unwrap().last().map(|b| b.header_hash())
    }
    fn append(&self, block: &Block) -> Result<(), StoreError> {
        let mut blocks = self.blocks.lock().unwrap();
        if block.number() != blocks.len() as u64 {
            return Err(StoreError::NotNext(format!("{}", block.number())));
        }
        let codes = block.validation_codes();
        let mut index = self.index.lock().unwrap();
        for (i, env) in block.envelopes().iter().enumerate() {
            if let Ok(d) = ledger_types::tx::DecodedTx::decode(env)
                && !d.header.tx_id.is_empty()
            {
                index.entry(d.header.tx_id.clone()).or_insert(TxLocation {
                    block: block.number(),
                    index: i as u32,
                    code: TxValidationCode::from_u8(codes[i]).unwrap(),
                });
            }
        }
        blocks.push(block.clone());
        Ok(())
    }
    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        Ok(self.blocks.lock().unwrap().get(number as usize).cloned())
    }
    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.index.lock().unwrap().get(tx_id.as_str()).copied())
    }
}

type Kv = BTreeMap<(String, String), VersionedValue>;

#[derive(Default, Clone)]
pub(crate) struct MemState {
    inner: Arc<Mutex<(Kv, Option<u64>)>>,
}

pub(crate) struct MemSnap(Kv);

impl StateSnapshot for MemSnap {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        Ok(self.0.get(&(ns.to_owned(), key.to_owned())).cloned())
    }
    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        Ok(self
            .0
            .range((ns.to_owned(), start.to_owned())..)
            .take_while(|((n, k), _)| n == ns && (end.is_empty() || k.as_str() < end))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl StateStore for MemState {
    type Snapshot = MemSnap;
    fn snapshot(&self) -> Result<MemSnap, StoreError> {
        Ok(MemSnap(self.inner.lock().unwrap().0.clone()))
    }
    fn apply(&self, batch: &UpdateBatch, savepoint: u64) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap();
        for (k, v) in &batch.updates {
            match v {
                Some(v) => g.0.insert(k.clone(), v.clone()),
                None => g.0.remove(k),
            };
        }
        g.1 = Some(savepoint);
        Ok(())
    }
    fn savepoint(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.inner.lock().unwrap().1)
    }
    fn clear(&self) -> Result<(), StoreError> {
        *self.inner.lock().unwrap() = Default::default();
        Ok(())
    }
}

impl MemState {
    pub(crate) fn value(&self, ns: &str, key: &str) -> Option<(Vec<u8>, Version)> {
        self.inner.lock().unwrap().0.get(&(ns.into(), key.into())).map(|v| (v.value.clone(), v.version))
    }
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
