//! A single-node [`Chain`] without consensus (Fabric's `solo`): the same block cutter, blocks appended
//! straight to the [`BlockStore`]. For tests of the peer and gateway that need ordering but no cluster.

use crate::chain::{Chain, OrderError, Ordered};
use crate::cutter::{BlockCutter, CutterConfig};
use bytes::Bytes;
use futures::future::BoxFuture;
use ledger_types::block::BlockBuilder;
use ledger_types::store::BlockStore;
use ledger_types::tx::Signer;
use ledger_types::{Hash32, TxId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

type Reply = oneshot::Sender<Result<Ordered, OrderError>>;

struct Order {
    tx_id: String,
    envelope: Bytes,
    reply: Reply,
}

/// The single-node chain. Dropping it (or cancelling its token) stops its task.
pub struct SoloChain {
    tx: mpsc::UnboundedSender<Order>,
    errored: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
}

impl SoloChain {
    /// Starts the chain's task on the current tokio runtime. The store must already hold the genesis block.
    pub fn start(store: Arc<dyn BlockStore>, signer: Arc<dyn Signer>, cutter: CutterConfig) -> SoloChain {
        let (tx, rx) = mpsc::unbounded_channel();
        let errored = Arc::new(Mutex::new(None));
        let cancel = CancellationToken::new();
        let task = Solo {
            store,
            signer,
            cutter: BlockCutter::new(cutter),
            waiters: HashMap::new(),
            errored: errored.clone(),
        };
        tokio::spawn(task.run(rx, cancel.clone()));
        SoloChain { tx, errored, cancel }
    }
}

impl Drop for SoloChain {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Solo {
    store: Arc<dyn BlockStore>,
    signer: Arc<dyn Signer>,
    cutter: BlockCutter<(String, Bytes)>,
    waiters: HashMap<String, Vec<Reply>>,
    errored: Arc<Mutex<Option<String>>>,
}

/// The one clock of the solo chain (tokio's, so paused-time tests work).
#[allow(clippy::disallowed_methods)] // the shell's single clock read
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Solo {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Order>, cancel: CancellationToken) {
        loop {
            let deadline = self.cutter.poll_timeout().map(tokio::time::Instant::from_std);
            let batches = tokio::select! {
                () = cancel.cancelled() => break,
                o = rx.recv() => match o {
                    Some(o) => self.on_order(o),
                    None => break,
                },
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.cutter.handle_timeout(now()).into_iter().collect(),
            };
            for batch in batches {
                if let Err(reason) = self.commit(batch).await {
                    if let Ok(mut g) = self.errored.lock() {
                        g.get_or_insert(reason);
                    }
                    break;
                }
            }
            if self.errored.lock().map(|g| g.is_some()).unwrap_or(true) {
                break;
            }
        }
        let reason = self.errored.lock().ok().and_then(|g| g.clone()).unwrap_or_else(|| "stopped".into());
        for (_, ws) in self.waiters.drain() {
            for w in ws {
                let _ = w.send(Err(OrderError::Halted(reason.clone())));
            }
        }
    }

    fn on_order(&mut self, o: Order) -> Vec<Vec<(String, Bytes)>> {
        if let Some(ws) = self.waiters.get_mut(&o.tx_id) {
            ws.push(o.reply);
            return Vec::new();
        }
        let stored = TxId::parse(&o.tx_id).ok().and_then(|id| self.store.tx_location(&id).ok().flatten());
        if let Some(loc) = stored {
            let _ = o.reply.send(Err(OrderError::AlreadyOrdered { block: loc.block }));
            return Vec::new();
        }
        let size = o.envelope.len();
        match self.cutter.ordered(now(), (o.tx_id.clone(), o.envelope), size) {
            Ok(batches) => {
                self.waiters.insert(o.tx_id, vec![o.reply]);
                batches
            }
            Err(e) => {
                let _ = o.reply.send(Err(OrderError::TooLarge { size: e.size, max: e.max }));
                Vec::new()
            }
        }
    }

    async fn commit(&mut self, batch: Vec<(String, Bytes)>) -> Result<(), String> {
        let number = self.store.height();
        let prev = self.store.last_hash().unwrap_or(Hash32::ZERO);
        let mut block =
            BlockBuilder::new(number, prev).envelopes(batch.iter().map(|(_, e)| e.clone())).build();
        crate::chain::stamp_and_sign(
            &mut block,
            crate::chain::last_block_time(self.store.as_ref()),
            self.signer.as_ref(),
        );
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.append(&block))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("block store: {e}"))?;
        for (tx_id, _) in batch {
            for w in self.waiters.remove(&tx_id).unwrap_or_default() {
                let _ = w.send(Ok(Ordered { block: number }));
            }
        }
        Ok(())
    }
}

impl Chain for SoloChain {
    fn order(&self, envelope: Bytes, tx_id: String) -> BoxFuture<'_, Result<Ordered, OrderError>> {
        Box::pin(async move {
            if let Some(reason) = self.errored() {
                return Err(OrderError::Halted(reason));
            }
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Order { tx_id, envelope, reply })
                .map_err(|_| OrderError::Halted("solo chain stopped".into()))?;
            rx.await.map_err(|_| OrderError::Halted("solo chain stopped".into()))?
        })
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), OrderError>> {
        Box::pin(async move {
            match self.errored() {
                Some(reason) => Err(OrderError::Halted(reason)),
                None => Ok(()),
            }
        })
    }

    fn errored(&self) -> Option<String> {
        self.errored.lock().ok().and_then(|g| g.clone())
    }
}
