//! Test support: real identities (cryptogen material, Ed25519 or ECDSA P-256 keys) checked by the real
//! `MspIdentities`, and in-memory stores.

use ledger_types::block::BlockBuilder;
use ledger_types::config::genesis_block;
use ledger_types::hash::Hash32;
use ledger_types::proto::{
    BatchConfig, Block, ChannelConfig, Consenter, ContractDefinition, OrgConfig, Timestamp, Version,
};
use ledger_types::store::{StateSnapshot, StateStore};
use ledger_types::tx::{self, ProposalBuilder, Signer};
use ledger_types::{ChannelId, TxId};
use msp::cryptogen::{self, CryptoMaterial, NetworkSpec, OrgKind};
use msp::{Algorithm, LocalIdentity, UnixTime};
use peer::identity::MspIdentities;
use rand::SeedableRng as _;
use std::sync::{Arc, OnceLock};

/// The time of the test world: certificates were issued just before it, proposals and blocks carry it.
pub(crate) const NOW: i64 = 1_780_000_000;

/// The channel's network (seed 1) and a foreign one whose CAs no channel member trusts (seed 2), per key
/// algorithm; generated once per test binary.
pub(crate) fn material(alg: Algorithm, foreign: bool) -> &'static CryptoMaterial {
    static M: [OnceLock<CryptoMaterial>; 4] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = usize::from(alg == Algorithm::EcdsaP256) * 2 + usize::from(foreign);
    M[slot].get_or_init(|| {
        let mut spec = NetworkSpec::default_network();
        spec.key_algorithm = alg;
        // Certificates valid for one day around NOW, long expired on the machine's clock: every test
        // shows that validation judges them at the transaction's time, never the clock.
        spec.validity_days = 1;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1 + u64::from(foreign));
        cryptogen::generate(&spec, UnixTime::from_secs(NOW - 60), &mut rng).expect("cryptogen")
    })
}

/// Signs as a member of a cryptogen network.
pub(crate) struct TestSigner {
    pub(crate) id: Vec<u8>,
    identity: LocalIdentity,
}

impl TestSigner {
    /// `name` of `msp_id` (`peer0`, `User1`, `Gateway`, `Admin`, `orderer0`, ...) in the channel's network.
    pub(crate) fn new(alg: Algorithm, msp_id: &str, name: &str) -> TestSigner {
        TestSigner::of(material(alg, false), msp_id, name)
    }

    /// The same name in the foreign network: a certificate from a CA the channel does not trust.
    pub(crate) fn foreign(alg: Algorithm, msp_id: &str, name: &str) -> TestSigner {
        TestSigner::of(material(alg, true), msp_id, name)
    }

    fn of(m: &CryptoMaterial, msp_id: &str, name: &str) -> TestSigner {
        let identity = m.identity(msp_id, name).expect("member exists").expect("identity loads");
        TestSigner { id: tx::serialize_identity(msp_id, identity.cert_pem().as_bytes()), identity }
    }
}

impl TestSigner {
    /// The identity (its certificate and signing key).
    pub(crate) fn identity(&self) -> &LocalIdentity {
        &self.identity
    }
}

impl Signer for TestSigner {
    fn serialized_identity(&self) -> &[u8] {
        &self.id
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.identity.sign(msg).to_vec()
    }
}

pub(crate) type MemBlocks = ledger_store::MemBlockStore;
pub(crate) type MemState = ledger_store::MemStateStore;

/// A key's value and version in a state store.
pub(crate) fn value(state: &impl StateStore, ns: &str, key: &str) -> Option<(Vec<u8>, Version)> {
    state.snapshot().unwrap().get(ns, key).unwrap().map(|v| (v.value, v.version))
}

pub(crate) fn orderer(alg: Algorithm) -> TestSigner {
    TestSigner::new(alg, "OrdererMSP", "orderer0")
}

pub(crate) fn config(alg: Algorithm, policy: &str) -> ChannelConfig {
    let m = material(alg, false);
    let org = |o: &cryptogen::OrgMaterial| OrgConfig {
        msp_id: o.msp_id().to_owned(),
        name: o.spec.name.clone(),
        root_certs: vec![o.ca.cert_der.clone()],
        tls_root_certs: vec![o.tls_ca.cert_der.clone()],
        peer_endpoints: vec![],
    };
    ChannelConfig {
        channel_id: "iot".into(),
        orgs: m.orgs.iter().filter(|o| o.kind == OrgKind::Peer).map(org).collect(),
        orderer_orgs: m.orgs.iter().filter(|o| o.kind == OrgKind::Orderer).map(org).collect(),
        consenters: vec![Consenter { id: 1, host: "127.0.0.1".into(), port: 1, identity: orderer(alg).id }],
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

pub(crate) fn genesis(alg: Algorithm, policy: &str) -> Block {
    genesis_block(&config(alg, policy)).unwrap()
}

/// The channel's identities, checked by the real MSP adapter.
pub(crate) fn ids(alg: Algorithm) -> Arc<MspIdentities> {
    Arc::new(MspIdentities::new(material(alg, false).msp_manager().expect("msp manager")))
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A signed proposal for `kv.function(args)` by `client`, at [`NOW`] + `skew` seconds.
pub(crate) fn proposal_at(
    client: &TestSigner,
    function: &str,
    args: &[&str],
    skew: i64,
) -> (ledger_types::proto::SignedProposal, TxId) {
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ProposalBuilder::new(ChannelId::parse("iot").unwrap(), "kv", function)
        .args(args.iter().map(|a| a.as_bytes().to_vec()))
        .sign(client, n.to_be_bytes().to_vec(), Timestamp { seconds: NOW + skew, nanos: 0 })
}

/// A signed proposal for `kv.function(args)` by `client`, at [`NOW`].
pub(crate) fn proposal(
    client: &TestSigner,
    function: &str,
    args: &[&str],
) -> (ledger_types::proto::SignedProposal, TxId) {
    proposal_at(client, function, args, 0)
}

/// A block cut at `time` and signed by `orderer`.
pub(crate) fn block_at(
    orderer: &TestSigner,
    number: u64,
    prev: Hash32,
    envelopes: Vec<Vec<u8>>,
    time: i64,
) -> Block {
    let mut b = BlockBuilder::new(number, prev).envelopes(envelopes).build();
    ledger_types::block::stamp(&mut b, Some(Timestamp { seconds: time, nanos: 0 }));
    ledger_types::block::sign(&mut b, orderer);
    b
}
