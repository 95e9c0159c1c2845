//! Offline audit of a peer's chain (`ipechain verify`): every hash link, every data hash, every orderer
//! and transaction signature, every validation code re-derived by validating the chain again from genesis
//! into a fresh state, the commit-hash chain, and finally the peer's state database compared with the
//! rebuilt state. Stops at the first bad block and says what is wrong.

use crate::identity::Identities;
use crate::validator::{ChannelRules, orderer_signed, validate_block};
use ledger_types::BlockExt;
use ledger_types::block::commit_hash;
use ledger_types::config::config_from_genesis;
use ledger_types::proto::Block;
use ledger_types::store::{StateSnapshot, StateStore, StoreError, VersionedValue};
use ledger_types::{Hash32, TxId, TxValidationCode};
use std::collections::HashSet;

/// The first problem found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A block is damaged or inconsistent; `block` is its number (or position when unreadable).
    #[error("block {block}: {what}")]
    BadBlock { block: u64, what: String },
    /// The state database disagrees with the state rebuilt from the blocks.
    #[error("state database differs from the blocks: {0}")]
    State(String),
    /// Reading failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a successful audit saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Number of blocks.
    pub height: u64,
    /// Header hash of the last block.
    pub head_hash: Hash32,
    /// Commit hash of the last block, chained over the re-derived validation codes of every block: equal on
    /// two audits iff they derived the same code for every transaction.
    pub commit_hash: Vec<u8>,
    /// SHA-256 over the whole rebuilt state (every contract namespace and the identity registrations: each
    /// namespace, key, value and version in order).
    pub state_hash: Hash32,
    /// Transactions seen, and how many of them valid.
    pub transactions: u64,
    /// Valid transactions.
    pub valid: u64,
}

fn bad(block: u64, what: impl Into<String>) -> AuditError {
    AuditError::BadBlock { block, what: what.into() }
}

/// Audits the blocks yielded in order by `blocks` (an `Err((position, message))` item is reported as
/// damage at that position), rebuilding the state into `scratch` (an empty store) and, when given,
/// comparing the peer's `state` with it over every contract namespace.
pub fn audit_chain<I, SS, P>(
    blocks: I,
    ids: &dyn Identities,
    scratch: &SS,
    state: Option<&P>,
    threads: usize,
) -> Result<AuditReport, AuditError>
where
    I: IntoIterator<Item = Result<Block, (u64, String)>>,
    SS: StateStore,
    P: StateSnapshot,
{
    let mut iter = blocks.into_iter();
    let genesis = match iter.next() {
        Some(Ok(b)) => b,
        Some(Err((pos, e))) => return Err(bad(pos, e)),
        None => return Err(bad(0, "the chain is empty")),
    };
    let config = config_from_genesis(&genesis).map_err(|e| bad(0, e.to_string()))?;
    let base_rules = ChannelRules::from_config(&config).map_err(|e| bad(0, e.to_string()))?;
    let mut rules = base_rules.clone();
    let consenters: HashSet<Vec<u8>> = config.consenters.iter().map(|c| c.identity.clone()).collect();
    let mut seen_tx: HashSet<String> = HashSet::new();
    let mut prev = (0u64, genesis.header_hash());
    let mut chash = Vec::new();
    let mut report = AuditReport {
        height: 1,
        head_hash: prev.1,
        commit_hash: Vec::new(),
        state_hash: Hash32::ZERO,
        transactions: 0,
        valid: 0,
    };
    for item in iter {
        let block = item.map_err(|(pos, e)| bad(pos, e))?;
        let number = block.number();
        let expected = prev.0 + 1;
        if number != expected {
            return Err(bad(expected, format!("found block number {number} where {expected} belongs")));
        }
        block.check_extends(Some(prev)).map_err(|e| bad(number, e.to_string()))?;
        let hash = block.header_hash();
        if !orderer_signed(&block, &consenters, ids) {
            return Err(bad(number, "no valid orderer signature"));
        }
        let snapshot = scratch.snapshot()?;
        let v = validate_block(&block, &rules, ids, &snapshot, &|id| Ok(seen_tx.contains(id)), threads)?;
        drop(snapshot);
        let stored = block.validation_codes();
        for (i, code) in v.codes.iter().enumerate() {
            if stored.get(i).copied() != Some(code.as_u8()) {
                let stored_name = stored
                    .get(i)
                    .and_then(|c| TxValidationCode::from_u8(*c))
                    .map_or_else(|| format!("{:?}", stored.get(i)), |c| c.name().to_owned());
                return Err(bad(
                    number,
                    format!("transaction {i}: stored code {stored_name}, re-derived {code}"),
                ));
            }
        }
        let code_bytes: Vec<u8> = v.codes.iter().map(|c| c.as_u8()).collect();
        chash = commit_hash(&chash, &hash, &code_bytes).0.to_vec();
        if block.commit_hash().as_deref() != Some(chash.as_slice()) {
            return Err(bad(number, "commit hash does not match the chain of validation results"));
        }
        for (id, _) in &v.txs {
            if TxId::parse(id).is_ok() {
                seen_tx.insert(id.clone());
            }
        }
        report.transactions += v.codes.len() as u64;
        report.valid += v.codes.iter().filter(|c| c.is_valid()).count() as u64;
        scratch.apply(&v.batch, number)?;
        // Definitions committed in this block are in force from the next one, as on the peers.
        if crate::lifecycle::defines_contracts(&v.batch) {
            let committed = crate::lifecycle::committed_definitions(&scratch.snapshot()?)?;
            rules = crate::lifecycle::rules_with_definitions(&base_rules, committed);
        }
        prev = (number, hash);
        report.height = number + 1;
        report.head_hash = hash;
    }
    report.commit_hash = chash;
    let rebuilt = scratch.snapshot()?;
    let mut namespaces: Vec<&str> = rules.definitions.keys().map(String::as_str).collect();
    namespaces.push(crate::lifecycle::NAMESPACE);
    report.state_hash = state_hash(&rebuilt, &namespaces)?;
    if let Some(state) = state {
        for ns in &namespaces {
            compare_namespace(ns, &rebuilt, state)?;
        }
    }
    Ok(report)
}

/// SHA-256 over the state of `namespaces`, in order: each row as its namespace, key, value (each
/// length-prefixed) and version.
fn state_hash(state: &dyn StateSnapshot, namespaces: &[&str]) -> Result<Hash32, AuditError> {
    const PAGE: usize = 10_000;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut h = Hash32::ZERO;
    for ns in namespaces {
        let mut start = String::new();
        loop {
            let rows = state.range(ns, &start, "", PAGE)?;
            for (k, v) in &rows {
                parts.clear();
                for field in [ns.as_bytes(), k.as_bytes(), v.value.as_slice()] {
                    parts.push((field.len() as u64).to_be_bytes().to_vec());
                    parts.push(field.to_vec());
                }
                parts.push(v.version.block_num.to_be_bytes().to_vec());
                parts.push(v.version.tx_num.to_be_bytes().to_vec());
                h = Hash32::of_parts(std::iter::once(&h.0[..]).chain(parts.iter().map(Vec::as_slice)));
            }
            let Some((last, _)) = rows.last() else { break };
            if rows.len() < PAGE {
                break;
            }
            start = format!("{last}\u{0}");
        }
    }
    Ok(h)
}

fn compare_namespace(
    ns: &str,
    rebuilt: &dyn StateSnapshot,
    state: &dyn StateSnapshot,
) -> Result<(), AuditError> {
    const PAGE: usize = 10_000;
    let mut start = String::new();
    loop {
        let a = rebuilt.range(ns, &start, "", PAGE)?;
        let b = state.range(ns, &start, "", PAGE)?;
        if a != b {
            let diff = a
                .iter()
                .zip(&b)
                .find(|(x, y)| x != y)
                .map(|(x, y)| describe(ns, x, y))
                .unwrap_or_else(|| {
                    format!("namespace {ns}: {} keys from the blocks, {} in the database", a.len(), b.len())
                });
            return Err(AuditError::State(diff));
        }
        if a.len() < PAGE {
            return Ok(());
        }
        let Some((last, _)) = a.last() else { return Ok(()) };
        start = format!("{last}\u{0}");
    }
}

fn describe(ns: &str, x: &(String, VersionedValue), y: &(String, VersionedValue)) -> String {
    if x.0 != y.0 {
        format!("namespace {ns}: key {:?} from the blocks vs {:?} in the database", x.0, y.0)
    } else {
        format!(
            "namespace {ns}, key {:?}: version {}:{} from the blocks vs {}:{} in the database",
            x.0, x.1.version.block_num, x.1.version.tx_num, y.1.version.block_num, y.1.version.tx_num
        )
    }
}
