//! The peer's ledger of one channel: block store + world state, commit pipeline, recovery, and the
//! notifications that commit status and event streams wait on.
//!
//! Commit order (crash contract, see `docs/ledger-format.md`): verify the orderer's signature and the chain
//! link → validate → append the block with its validation codes (durable) → apply the state updates with the
//! block number as savepoint (durable, atomic) → notify waiters. After a crash between the two writes the
//! state is one block behind and [`PeerLedger::open`] replays it from the stored block.

use crate::identity::Identities;
use crate::validator::{ChannelRules, Prechecked, RulesCell, Validated, finish_block};
use ledger_types::BlockExt;
use ledger_types::block::{LinkError, commit_hash};
use ledger_types::config::{ConfigError, config_from_genesis};
use ledger_types::proto::{Block, ChannelConfig, ContractEvent, Version};
use ledger_types::store::{BlockStore, StateStore, StoreError, UpdateBatch};
use ledger_types::tx::DecodedTx;
use ledger_types::{Hash32, TxId, TxValidationCode};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, oneshot, watch};

/// Why a block could not be committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The block does not extend the chain.
    #[error("block does not extend the chain: {0}")]
    Link(#[from] LinkError),
    /// No valid orderer signature.
    #[error("block {0} is not signed by a consenter of the channel")]
    Unsigned(u64),
    /// A store failed: the node must stop committing.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The genesis block or config is unusable.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
}

/// A committed block as listeners see it.
#[derive(Debug)]
pub struct CommittedBlock {
    /// Block number.
    pub number: u64,
    /// The block with its validation codes.
    pub block: Arc<Block>,
    /// Per transaction: id, code, and event (valid transactions only).
    pub txs: Vec<(String, TxValidationCode, Option<ContractEvent>)>,
}

type Waiters = HashMap<String, Vec<oneshot::Sender<(TxValidationCode, u64)>>>;

/// One channel's ledger on a peer.
pub struct PeerLedger<B: BlockStore, S: StateStore> {
    config: ChannelConfig,
    /// The genesis block's rules, which committed definitions extend.
    base_rules: ChannelRules,
    rules: Arc<RulesCell>,
    ids: Arc<dyn Identities>,
    consenters: HashSet<Vec<u8>>,
    blocks: B,
    state: S,
    commit_lock: Mutex<()>,
    last_commit_hash: Mutex<Vec<u8>>,
    height: watch::Sender<u64>,
    committed: broadcast::Sender<Arc<CommittedBlock>>,
    waiters: Mutex<Waiters>,
    threads: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B: BlockStore, S: StateStore> PeerLedger<B, S> {
    /// Opens the ledger: stores the genesis block if the store is empty (it must match otherwise), and
    /// brings the state up to the last durable block by replaying blocks (which also rebuilds a deleted
    /// state database).
    pub fn open(
        genesis: &Block,
        blocks: B,
        state: S,
        ids: Arc<dyn Identities>,
        threads: usize,
    ) -> Result<PeerLedger<B, S>, CommitError> {
        let config = config_from_genesis(genesis)?;
        let base_rules = ChannelRules::from_config(&config)?;
        let rules = Arc::new(RulesCell::new(base_rules.clone()));
        if blocks.height() == 0 {
            blocks.append(genesis)?;
        } else {
            let stored =
                blocks.block(0)?.ok_or_else(|| StoreError::Corrupt("genesis block missing".into()))?;
            if stored.header_hash() != genesis.header_hash() {
                return Err(CommitError::Config(ConfigError::NotGenesis(
                    "the block store holds a different channel's genesis block".into(),
                )));
            }
        }
        let consenters = config.consenters.iter().map(|c| c.identity.clone()).collect();
        let (height, _) = watch::channel(blocks.height());
        let (committed, _) = broadcast::channel(64);
        let ledger = PeerLedger {
            config,
            base_rules,
            rules,
            ids,
            consenters,
            blocks,
            state,
            commit_lock: Mutex::new(()),
            last_commit_hash: Mutex::new(Vec::new()),
            height,
            committed,
            waiters: Mutex::new(HashMap::new()),
            threads: threads.max(1),
        };
        ledger.recover()?;
        ledger.refresh_rules()?;
        Ok(ledger)
    }

    fn recover(&self) -> Result<(), CommitError> {
        let height = self.blocks.height();
        let next = match self.state.savepoint()? {
            Some(sp) if sp < height => sp + 1,
            Some(sp) => {
                return Err(
                    StoreError::Corrupt(format!("state savepoint {sp} is ahead of {height} blocks")).into()
                );
            }
            None => 0,
        };
        for n in next..height {
            let block =
                self.blocks.block(n)?.ok_or_else(|| StoreError::Corrupt(format!("block {n} missing")))?;
            let batch = replay_batch(&block)?;
            self.state.apply(&batch, n)?;
            self.state.persist_due()?;
        }
        if height > 0 {
            let last = self
                .blocks
                .block(height - 1)?
                .ok_or_else(|| StoreError::Corrupt("last block missing".into()))?;
            *lock(&self.last_commit_hash) = last.commit_hash().unwrap_or_default();
        }
        if next < height {
            tracing::info!(from = next, to = height - 1, "replayed state from blocks");
        }
        Ok(())
    }

    /// The channel configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The channel rules in force: the configuration's, with the chaincode definitions committed so far.
    pub fn rules(&self) -> Arc<ChannelRules> {
        self.rules.get()
    }

    /// The cell the rules live in (the endorser reads the rules in force from it).
    pub fn rules_cell(&self) -> &Arc<RulesCell> {
        &self.rules
    }

    /// Re-derives the rules from the committed definitions in state.
    fn refresh_rules(&self) -> Result<(), StoreError> {
        let snapshot = self.state.snapshot()?;
        let committed = crate::lifecycle::committed_definitions(&snapshot)?;
        drop(snapshot);
        if !committed.is_empty() {
            tracing::info!(definitions = ?committed.keys().collect::<Vec<_>>(), "chaincode definitions in force");
        }
        self.rules.set(crate::lifecycle::rules_with_definitions(&self.base_rules, committed));
        Ok(())
    }

    /// The identity service of this channel.
    pub fn identities(&self) -> &Arc<dyn Identities> {
        &self.ids
    }

    /// Number of committed blocks.
    pub fn height(&self) -> u64 {
        self.blocks.height()
    }

    /// Header hash of the last block.
    pub fn head_hash(&self) -> Hash32 {
        self.blocks.last_hash().unwrap_or(Hash32::ZERO)
    }

    /// Commit hash of the last block (equal on two peers iff they validated identically).
    pub fn commit_hash(&self) -> Vec<u8> {
        lock(&self.last_commit_hash).clone()
    }

    /// The block store.
    pub fn blocks(&self) -> &B {
        &self.blocks
    }

    /// Gives the block store back (to reopen the ledger over it).
    pub fn into_blocks(self) -> B {
        self.blocks
    }

    /// The state store.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Watches the height.
    pub fn watch_height(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }

    /// Every block committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.committed.subscribe()
    }

    /// Whether a transaction id is already in the ledger.
    pub fn contains_tx(&self, tx_id: &str) -> Result<bool, StoreError> {
        match TxId::parse(tx_id) {
            Ok(id) => Ok(self.blocks.tx_location(&id)?.is_some()),
            Err(_) => Ok(false),
        }
    }

    /// Waits until `tx_id` is committed; returns its code and block number.
    pub async fn wait_for_tx(&self, tx_id: &str) -> Result<(TxValidationCode, u64), StoreError> {
        let rx = {
            let id = TxId::parse(tx_id).map_err(|e| StoreError::Backend(e.to_string()))?;
            let mut waiters = lock(&self.waiters);
            // Checked under the waiters lock: commits notify (and publish their height) under it too, so
            // nothing slips between. A block that is appended but whose state updates are not applied yet
            // is not reported: a client told "committed" must read the transaction's writes.
            if let Some(loc) = self.blocks.tx_location(&id)?
                && loc.block < *self.height.borrow()
            {
                return Ok((loc.code, loc.block));
            }
            let (tx, rx) = oneshot::channel();
            waiters.entry(tx_id.to_owned()).or_default().push(tx);
            rx
        };
        rx.await.map_err(|_| StoreError::Backend("ledger closed".into()))
    }

    /// Validates and commits the next block as received from the ordering service. Blocking: run it on a
    /// blocking thread.
    pub fn commit(&self, block: Block) -> Result<Arc<CommittedBlock>, CommitError> {
        self.commit_prechecked(block, None)
    }

    /// The signature phase of validating `block` (decoding, creator and endorsement signatures) under the
    /// rules in force now, without the commit lock: a puller runs it for block N+1 while block N commits and
    /// hands it to [`PeerLedger::commit_prechecked`]. Blocking (it uses the validation threads).
    pub fn precheck(&self, block: &Block) -> Result<Prechecked, StoreError> {
        crate::validator::precheck_block(block, self.rules.get(), self.ids.as_ref(), self.threads)
    }

    /// [`PeerLedger::commit`] with the signature phase done ahead ([`PeerLedger::precheck`]); it is used only
    /// if the rules did not change since (a committed contract definition changes them), and run again
    /// otherwise, so the codes are the same as [`PeerLedger::commit`]'s.
    pub fn commit_prechecked(
        &self,
        mut block: Block,
        pre: Option<Prechecked>,
    ) -> Result<Arc<CommittedBlock>, CommitError> {
        let _guard = lock(&self.commit_lock);
        let number = block.number();
        let height = self.blocks.height();
        let last = self.blocks.last_hash().ok_or_else(|| StoreError::Corrupt("no genesis block".into()))?;
        // Orderer blocks carry NOT_VALIDATED codes; links are checked before anything else.
        block.check_extends(Some((height - 1, last)))?;
        self.check_orderer_signature(&block)?;
        let snapshot = self.state.snapshot()?;
        let rules = self.rules.get();
        let Validated { codes, batch, txs } = finish_block(
            &block,
            &rules,
            pre,
            self.ids.as_ref(),
            &snapshot,
            &|id| self.contains_tx(id),
            self.threads,
        )?;
        drop(snapshot);
        let code_bytes: Vec<u8> = codes.iter().map(|c| c.as_u8()).collect();
        let chash = commit_hash(&lock(&self.last_commit_hash), &block.header_hash(), &code_bytes);
        block.set_validation_codes(code_bytes);
        block.set_commit_hash(&chash);
        self.blocks.append(&block)?;
        self.state.apply(&batch, number)?;
        // A committed definition is in force from the next block on (every peer switches at the same block).
        if crate::lifecycle::defines_contracts(&batch) {
            self.refresh_rules()?;
        }
        *lock(&self.last_commit_hash) = chash.0.to_vec();
        let committed = Arc::new(CommittedBlock {
            number,
            block: Arc::new(block),
            txs: txs.into_iter().zip(codes).map(|((id, ev), code)| (id, code, ev)).collect(),
        });
        {
            let mut waiters = lock(&self.waiters);
            for (id, code, _) in &committed.txs {
                if let Some(ws) = waiters.remove(id) {
                    for w in ws {
                        let _ = w.send((*code, number));
                    }
                }
            }
            self.height.send_replace(number + 1);
        }
        let _ = self.committed.send(committed.clone());
        // The state is durable every few blocks, after the commit is published, so its clients do not wait
        // for the fsync; the store runs it beside the next commits (ledger-store's redb_state). The block is
        // committed whatever happens here: it is durable, and the state is replayed from the blocks above its
        // durable savepoint when the peer opens. A store that cannot persist fails the next `apply` too, which
        // halts commits.
        if let Err(e) = self.state.persist_due() {
            tracing::error!(block = number, error = %e, "making the world state durable failed");
        }
        Ok(committed)
    }

    fn check_orderer_signature(&self, block: &Block) -> Result<(), CommitError> {
        if crate::validator::orderer_signed(block, &self.consenters, self.ids.as_ref()) {
            Ok(())
        } else {
            Err(CommitError::Unsigned(block.number()))
        }
    }
}

impl<B: BlockStore, S: StateStore> contract::Modifications for PeerLedger<B, S> {
    fn modification(
        &self,
        ns: &str,
        key: &str,
        version: Version,
    ) -> Result<Option<contract::KeyModification>, contract::ContractError> {
        let Some(block) = self.blocks.block(version.block_num)? else { return Ok(None) };
        let Some(env) = usize::try_from(version.tx_num).ok().and_then(|i| block.envelopes().get(i)) else {
            return Ok(None);
        };
        let Ok(d) = DecodedTx::decode_bytes(env.clone()) else { return Ok(None) };
        let timestamp = d.timestamp().map_or((0, 0), |t| (t.seconds, t.nanos));
        let tx_id = d.tx_id().to_owned();
        let found = d
            .action
            .into_iter()
            .flat_map(|a| a.results.ns_rwsets)
            .filter(|n| n.namespace == ns)
            .flat_map(|n| n.writes)
            .find(|w| w.key == key);
        Ok(found.map(|w| contract::KeyModification {
            tx_id,
            value: w.value,
            timestamp,
            is_delete: w.is_delete,
        }))
    }
}

/// The state updates of a committed block, from its stored validation codes (replay and rebuild).
pub fn replay_batch(block: &Block) -> Result<UpdateBatch, StoreError> {
    let mut batch = UpdateBatch::default();
    let number = block.number();
    let codes = block.validation_codes();
    for (i, env) in block.envelopes().iter().enumerate() {
        if codes.get(i).copied() != Some(TxValidationCode::Valid.as_u8()) || number == 0 {
            continue;
        }
        let d = DecodedTx::decode_bytes(env.clone())
            .map_err(|e| StoreError::Corrupt(format!("block {number} tx {i} marked valid but: {e}")))?;
        let version = Version { block_num: number, tx_num: i as u64 };
        for ns in d.action.map(|a| a.results.ns_rwsets).unwrap_or_default() {
            for w in ns.writes {
                batch.touched(&ns.namespace, &w.key, version);
                if w.is_delete {
                    batch.delete(&ns.namespace, &w.key);
                } else {
                    batch.put(&ns.namespace, &w.key, w.value, version);
                }
            }
        }
    }
    Ok(batch)
}
