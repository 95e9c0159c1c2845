//! Fetching blocks from another orderer's `Deliver`: how an orderer whose block store is behind a Raft
//! snapshot (the log before it is purged) gets the blocks the snapshot stands for.

use super::network::{MAX_RAFT_MESSAGE, Network};
use ledger_rpc::atomic_broadcast_client::AtomicBroadcastClient;
use ledger_rpc::messages::DeliverRequest;
use ledger_types::BlockExt;
use ledger_types::store::BlockStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Fetches blocks from the other consenters.
#[derive(Clone)]
pub(crate) struct BlockFetcher {
    pub(crate) network: Network,
    pub(crate) peers: BTreeMap<u64, String>,
    pub(crate) self_id: u64,
    pub(crate) channel_id: String,
    /// The orderer's data directory (names its failpoints).
    pub(crate) dir: std::path::PathBuf,
}

impl BlockFetcher {
    /// Appends blocks until the store's height is `target` and its head is `head`, trying every other
    /// orderer in turn, for at most `patience`. Each block must link to the previous one.
    #[allow(clippy::disallowed_methods)] // a deadline of the shell's catch-up loop
    pub(crate) async fn catch_up(
        &self,
        store: &Arc<dyn BlockStore>,
        target: u64,
        head: Option<[u8; 32]>,
        patience: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last_err = String::from("no other orderer");
        while store.height() < target {
            for (id, addr) in &self.peers {
                if *id == self.self_id || store.height() >= target {
                    continue;
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(
                    left.min(Duration::from_secs(10)),
                    self.fetch_from(addr, store, target),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => last_err = format!("orderer {id}: {e}"),
                    Err(_) => last_err = format!("orderer {id}: timed out"),
                }
            }
            if store.height() >= target {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("could not fetch blocks {}..{target}: {last_err}", store.height()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let actual =
            target.checked_sub(1).and_then(|n| store.block(n).ok().flatten()).map(|b| b.header_hash().0);
        if actual != head {
            return Err(format!(
                "after fetching, block {} does not have the snapshot's head hash",
                target.saturating_sub(1)
            ));
        }
        Ok(())
    }

    async fn fetch_from(&self, addr: &str, store: &Arc<dyn BlockStore>, target: u64) -> Result<(), String> {
        let start = store.height();
        if start >= target {
            return Ok(());
        }
        let channel = self.network.channel(addr).map_err(|e| e.to_string())?;
        let mut client = AtomicBroadcastClient::new(channel).max_decoding_message_size(MAX_RAFT_MESSAGE);
        let req = DeliverRequest { channel_id: self.channel_id.clone(), start, stop: Some(target - 1) };
        let mut stream = client.deliver(req).await.map_err(|s| s.message().to_owned())?.into_inner();
        while let Some(msg) = stream.message().await.map_err(|s| s.message().to_owned())? {
            let Some(block) = msg.block else { break };
            let number = block.number();
            let prev = match number.checked_sub(1) {
                Some(p) => store.block(p).map_err(|e| e.to_string())?,
                None => None,
            };
            block.check_links(prev.as_ref()).map_err(|e| e.to_string())?;
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.append(&block))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("appending fetched block {number}: {e}"))?;
        }
        Ok(())
    }
}
