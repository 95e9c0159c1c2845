//! `ipechain verify`: audits every peer's chain offline and says where the first damage is.

use anyhow::{Context, Result, bail};
use ledger_store::{MemStateStore, RedbStateStore};
use ledger_types::store::StateStore;
use network::DataDir;
use network::layout::{NodeConfig, NodeRole, read_genesis};
use peer::audit::audit_chain;

/// Audits every peer's chain; `threads` signature-checking threads (None: the machine's cores). The codes and
/// the state it derives do not depend on the thread count (docs/msp.md), so two runs with different counts
/// print the same commit and state hashes.
pub(crate) fn run(dir: DataDir, threads: Option<usize>) -> Result<()> {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |t| t.get()));
    let (_, nodes, _) = crate::status::admin_tls(&dir)?;
    let mut failed = false;
    let mut heads = Vec::new();
    for n in nodes.iter().filter(|n| n.role == NodeRole::Peer) {
        match audit_peer(n, threads) {
            Ok(r) => {
                println!(
                    "{}: OK  height {}  head {}  {} transactions ({} valid)  commit {}  state {}  threads {threads}",
                    n.name,
                    r.height,
                    r.head_hash,
                    r.transactions,
                    r.valid,
                    hex::encode(&r.commit_hash),
                    r.state_hash
                );
                heads.push((n.name.clone(), r.height, r.head_hash));
            }
            Err(e) => {
                println!("{}: DAMAGED  {e:#}", n.name);
                failed = true;
            }
        }
    }
    if failed {
        bail!("the chain of at least one peer is damaged (see above)");
    }
    if let Some((first, rest)) = heads.split_first()
        && let Some(other) = rest.iter().find(|h| (h.1, h.2) != (first.1, first.2))
    {
        println!(
            "note: {} is at height {} and {} at height {} (a peer that is behind catches up from the orderers)",
            first.0, first.1, other.0, other.1
        );
    }
    Ok(())
}

fn audit_peer(n: &NodeConfig, threads: usize) -> Result<peer::audit::AuditReport> {
    let (_, channel) = read_genesis(&n.genesis)?;
    let ids = network::layout::channel_identities(&channel).map_err(anyhow::Error::msg)?;
    let blocks_dir = n.data_dir.join("blocks");
    let scan =
        ledger_store::file::scan(&blocks_dir).with_context(|| format!("reading {}", blocks_dir.display()))?;
    let blocks = scan.map(|r| r.map(|s| s.block).map_err(|e| (e.block, e.to_string())));
    let state_path = n.data_dir.join("state.redb");
    match RedbStateStore::open(&state_path) {
        Ok(state) => {
            let snapshot = state.snapshot()?;
            Ok(audit_chain(blocks, &ids, &MemStateStore::new(), Some(&snapshot), threads)?)
        }
        Err(e) => {
            // A running peer holds its state database; the chain itself can still be audited.
            println!(
                "{}: note: state database not compared ({e}); stop the node to compare it with the blocks",
                n.name
            );
            Ok(audit_chain(blocks, &ids, &MemStateStore::new(), None::<&ledger_store::MemSnapshot>, threads)?)
        }
    }
}
