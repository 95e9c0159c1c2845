//! The Solo chain behind the same [`Chain`] seam as the Raft cluster.

use crate::support::{CHANNEL, FakeSigner, MemStore, batch, envelope, tx_counts};
use ledger_types::BlockExt;
use ledger_types::hash::Hash32;
use ledger_types::proto::Block;
use ledger_types::store::{BlockStore, StoreError, TxLocation};
use ledger_types::{TxId, block::BlockBuilder};
use orderer::solo::SoloChain;
use orderer::{Chain, CutterConfig, OrderError};
use prost::Message;
use std::sync::Arc;

fn solo(store: Arc<dyn BlockStore>) -> Arc<dyn Chain> {
    store.append(&BlockBuilder::new(0, Hash32::ZERO).build()).unwrap();
    Arc::new(SoloChain::start(
        store,
        Arc::new(FakeSigner::new("OrdererMSP", "solo")),
        CutterConfig::from(batch()),
    ))
}

#[tokio::test]
async fn solo_orders_through_the_seam() {
    let store = Arc::new(MemStore::default());
    let chain = solo(store.clone());
    chain.wait_ready().await.unwrap();
    let mut futs = Vec::new();
    for k in 0..120u64 {
        let (env, id) = envelope(CHANNEL, format!("k{k}").as_bytes(), k);
        let chain = chain.clone();
        futs.push(tokio::spawn(async move { chain.order(env.encode_to_vec().into(), id).await }));
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    let blocks = store.blocks();
    let counts = tx_counts(&blocks);
    assert_eq!(counts.len(), 120);
    assert!(counts.values().all(|n| *n == 1));
    assert!(blocks.len() >= 4, "max 50 per block: {} blocks", blocks.len());
    for (i, b) in blocks.iter().enumerate().skip(1) {
        b.check_links(Some(&blocks[i - 1])).unwrap();
    }

    // Ordering the same tx again is refused, naming its block; nothing new is ordered.
    let (env, id) = envelope(CHANNEL, b"k7", 7);
    let again = chain.order(env.encode_to_vec().into(), id).await;
    assert!(matches!(again, Err(OrderError::AlreadyOrdered { block }) if block >= 1), "{again:?}");
    assert_eq!(store.blocks().len(), blocks.len());
    assert_eq!(chain.errored(), None);

    let (big, id) = envelope(CHANNEL, &vec![1u8; 70 * 1024], 1000);
    assert!(matches!(chain.order(big.encode_to_vec().into(), id).await, Err(OrderError::TooLarge { .. })));
}

/// A store whose disk is full after the genesis block.
struct FullDisk(MemStore);

impl BlockStore for FullDisk {
    fn height(&self) -> u64 {
        self.0.height()
    }
    fn last_hash(&self) -> Option<Hash32> {
        self.0.last_hash()
    }
    fn append(&self, block: &Block) -> Result<(), StoreError> {
        if block.number() == 0 {
            return self.0.append(block);
        }
        Err(StoreError::Io(std::io::Error::other("no space left on device")))
    }
    fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        self.0.block(number)
    }
    fn tx_location(&self, tx_id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        self.0.tx_location(tx_id)
    }
}

#[tokio::test]
async fn solo_halts_on_storage_failure() {
    let chain = solo(Arc::new(FullDisk(MemStore::default())));
    let (env, id) = envelope(CHANNEL, b"x", 1);
    let err = chain.order(env.encode_to_vec().into(), id).await.unwrap_err();
    assert!(matches!(err, OrderError::Halted(_)), "{err:?}");
    assert!(chain.errored().unwrap().contains("no space left"));
    assert!(chain.wait_ready().await.is_err());
}
