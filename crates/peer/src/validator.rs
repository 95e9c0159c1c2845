//! Block validation: what every peer does, independently, to each ordered block.
//!
//! ```text
//!  block ──► split into chunks ──► [thread] decode, header checks, identities, batch-verify signatures
//!                                  [thread] ...same for the next chunk...
//!        ──► in order: endorsement policy, duplicate tx id, MVCC reads and range re-reads against
//!            state + the writes of earlier valid transactions of this block ──► codes + update batch
//! ```
//!
//! Pure apart from the [`Identities`] and [`StateSnapshot`] it is handed: no I/O of its own, no clock.
//! Certificates are judged at each transaction's own timestamp, which must lie within
//! [`TX_TIME_WINDOW_SECS`](ledger_types::block::TX_TIME_WINDOW_SECS) of the block's time (signed by the
//! orderer); the orderer's certificate at the block's time.
//! A store failure aborts the validation (the node stops committing); anything wrong with a transaction
//! only marks that transaction invalid.

use crate::identity::{Identities, SigCheck, ValidatedIdentity};
use crate::lifecycle;
use bytes::Bytes;
use fabric_protos::lifecycle::query_chaincode_definitions_result::ChaincodeDefinition;
use ledger_types::block::within_tx_window;
use ledger_types::config::ConfigError;
use ledger_types::fabric_protos::hash::{BlockSigner, block_signatures};
use ledger_types::hash::Hash32;
use ledger_types::policy::{Endorser, Policy};
use ledger_types::proto::{
    Block, ChannelConfig, ContractEvent, HeaderType, KvRead, NsRwSet, RangeQueryInfo, Version,
};
use ledger_types::store::{StateSnapshot, StoreError, UpdateBatch, VersionedValue};
use ledger_types::tx::{DecodedTx, TxError};
use ledger_types::{BlockExt, TxId, TxValidationCode};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// What validation needs to know about the channel: the genesis block's configuration and the chaincode
/// definitions in force (the genesis block's, replaced or extended by those committed through the
/// [`lifecycle`](crate::lifecycle)). A pure function of the chain up to the block being validated.
#[derive(Debug, Clone)]
pub struct ChannelRules {
    /// The channel name every transaction must carry.
    pub channel_id: String,
    /// MSP ids allowed to submit transactions.
    pub writers: HashSet<String>,
    /// MSP ids allowed to read blocks and events.
    pub readers: HashSet<String>,
    /// The application organizations (MSP ids), for `ANY`/`MAJORITY` and the lifecycle policy.
    pub members: Vec<String>,
    /// Each defined contract's resolved endorsement policy (and `_lifecycle`'s, for choosing endorsers:
    /// its transactions are validated by [`ChannelRules::required_policy`]).
    pub policies: HashMap<String, Policy>,
    /// Each defined contract's version (endorsers put it in `ChaincodeAction.chaincode_id`).
    pub versions: HashMap<String, String>,
    /// The definitions in force, by name.
    pub definitions: BTreeMap<String, ChaincodeDefinition>,
}

impl ChannelRules {
    /// Derives the rules from a channel configuration (its genesis definitions at sequence 1).
    pub fn from_config(config: &ChannelConfig) -> Result<ChannelRules, ConfigError> {
        config.validate()?;
        let mut policies = HashMap::new();
        for c in &config.contracts {
            let p = config
                .endorsement_policy(&c.name)
                .ok_or_else(|| ConfigError::Invalid(format!("contract {}: bad policy", c.name)))?;
            policies.insert(c.name.clone(), p);
        }
        let members = config.member_msp_ids();
        policies.insert(lifecycle::NAMESPACE.to_owned(), lifecycle::lifecycle_policy(&members));
        Ok(ChannelRules {
            channel_id: config.channel_id.clone(),
            writers: config.writers.iter().cloned().collect(),
            readers: config.readers.iter().cloned().collect(),
            members,
            policies,
            versions: config.contracts.iter().map(|c| (c.name.clone(), c.version.clone())).collect(),
            definitions: lifecycle::genesis_definitions(config),
        })
    }

    /// The policies a transaction of `contract` with this read/write set must satisfy, each on its own
    /// (None: it cannot be valid). A contract's definition names one policy; each other contract it called
    /// and that wrote adds its own (Fabric validates every written namespace); a namespace that is not a
    /// defined contract, a system namespace written by a contract, or the same namespace twice makes the
    /// transaction invalid. `_lifecycle` needs, per key it writes, a peer of the approving organization or
    /// the lifecycle policy ([`lifecycle::required_policy`]).
    pub fn required_policies(&self, contract: &str, rwset: &[NsRwSet]) -> Option<Vec<Cow<'_, Policy>>> {
        // Most transactions touch one namespace: no set to build for them.
        if rwset.len() > 1 {
            let mut seen = HashSet::new();
            if !rwset.iter().all(|ns| seen.insert(ns.namespace.as_str())) {
                return None;
            }
        }
        if contract == lifecycle::NAMESPACE {
            if rwset.iter().any(|ns| ns.namespace != lifecycle::NAMESPACE) {
                return None;
            }
            return lifecycle::required_policy(rwset, &self.members).map(|p| vec![Cow::Owned(p)]);
        }
        let mut out = vec![Cow::Borrowed(self.policies.get(contract)?)];
        for ns in rwset.iter().filter(|ns| ns.namespace != contract) {
            if ns.namespace.starts_with('_') {
                return None;
            }
            let p = self.policies.get(&ns.namespace)?;
            if !ns.writes.is_empty() && !out.iter().any(|o| o.as_ref() == p) {
                out.push(Cow::Borrowed(p));
            }
        }
        Some(out)
    }
}

/// The rules in force, shared by the ledger (which replaces them after a block that commits a definition)
/// and the endorser.
#[derive(Debug)]
pub struct RulesCell(std::sync::RwLock<Arc<ChannelRules>>);

impl RulesCell {
    /// A cell holding `rules`.
    pub fn new(rules: ChannelRules) -> RulesCell {
        RulesCell(std::sync::RwLock::new(Arc::new(rules)))
    }

    /// The rules now.
    pub fn get(&self) -> Arc<ChannelRules> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the rules.
    pub fn set(&self, rules: ChannelRules) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }
}

/// The outcome of validating a block.
#[derive(Debug, Default)]
pub struct Validated {
    /// One code per transaction.
    pub codes: Vec<TxValidationCode>,
    /// The writes of the valid transactions, versioned (block, tx index).
    pub batch: UpdateBatch,
    /// Per transaction: its id (empty if undecodable) and its event (for valid transactions only).
    pub txs: Vec<(String, Option<ContractEvent>)>,
}

/// A transaction after the parallel phase.
struct Checked {
    tx_id: String,
    /// Set when the transaction is already known to be invalid.
    code: Option<TxValidationCode>,
    contract: String,
    rwset: Vec<NsRwSet>,
    event: Option<ContractEvent>,
    /// Validated endorsers whose signatures verified (deduplicated by certificate).
    endorsers: Vec<Endorser>,
}

impl Checked {
    fn invalid(tx_id: String, code: TxValidationCode) -> Checked {
        Checked {
            tx_id,
            code: Some(code),
            contract: String::new(),
            rwset: Vec::new(),
            event: None,
            endorsers: Vec::new(),
        }
    }
}

/// The most endorsements a transaction may carry.
const MAX_ENDORSEMENTS: usize = 16;

/// A signature to verify: who, what was signed, the signature.
type PendingSig = (Arc<ValidatedIdentity>, Bytes, Bytes);

/// The code of a transaction that does not decode, by what failed (Fabric's codes for the same failures).
fn decode_failure(e: &TxError) -> TxValidationCode {
    use TxValidationCode as C;
    match e {
        TxError::Decode { what: "Envelope" | "Payload", .. } | TxError::Missing("envelope payload") => {
            C::BadPayload
        }
        TxError::Decode { what: "ChannelHeader" | "SignatureHeader", .. }
        | TxError::Missing("payload header") => C::BadCommonHeader,
        TxError::Decode { what: "TxReadWriteSet" | "KVRWSet", .. }
        | TxError::DataModel(_)
        | TxError::Unsupported { .. } => C::BadRwset,
        _ => C::InvalidEndorserTransaction,
    }
}

/// Phase 1 for one transaction: decode and check everything that does not need the state, and collect the
/// signatures it needs (verified by the caller in one batch).
fn precheck(
    bytes: &Bytes,
    rules: &ChannelRules,
    ids: &dyn Identities,
    block_time: Option<i64>,
) -> (Checked, Vec<PendingSig>) {
    use TxValidationCode as C;
    if bytes.is_empty() {
        return (Checked::invalid(String::new(), C::NilEnvelope), Vec::new());
    }
    let d = match DecodedTx::decode_bytes(bytes.clone()) {
        Ok(d) => d,
        Err(e) => return (Checked::invalid(String::new(), decode_failure(&e)), Vec::new()),
    };
    let tx_id = d.tx_id().to_owned();
    let fail = |code| (Checked::invalid(tx_id.clone(), code), Vec::new());
    if d.header_type() == HeaderType::Config as i32 {
        return fail(C::InvalidConfigTransaction);
    }
    let Some(action) = d.action.as_ref() else { return fail(C::UnknownTxType) };
    if d.channel_id() != rules.channel_id {
        return fail(C::TargetChainNotFound);
    }
    if d.creator().is_empty() || d.signature_header.nonce.is_empty() {
        return fail(C::BadCommonHeader);
    }
    if TxId::parse(&tx_id).is_err() || !d.tx_id_matches() {
        return fail(C::BadProposalTxId);
    }
    let contract = action.chaincode_name.clone();
    if !rules.policies.contains_key(&contract) {
        return fail(C::InvalidChaincode);
    }
    // Certificates are judged at the transaction's own time, which the block's time bounds: no clock.
    let Some(at) = d.timestamp().map(|t| t.seconds) else { return fail(C::BadChannelHeader) };
    if block_time.is_some_and(|bt| !within_tx_window(at, bt)) {
        return fail(C::BadChannelHeader);
    }
    let creator = match ids.validate(d.creator(), at) {
        Ok(c) => c,
        Err(_) => return fail(C::BadCreatorSignature),
    };
    if !rules.writers.contains(&creator.msp_id) {
        return fail(C::BadCreatorSignature);
    }
    if !d.proposal_hash_matches() {
        return fail(C::InvalidEndorserTransaction);
    }
    // Fabric's gateway never submits a failed simulation; only a crafted transaction carries one.
    if action.response.as_ref().is_none_or(|r| !(200..400).contains(&r.status)) {
        return fail(C::InvalidOtherReason);
    }
    let rwset = action.results.ns_rwsets.clone();
    if rules.required_policies(&contract, &rwset).is_none() {
        return fail(C::IllegalWriteset);
    }
    if action.endorsements.is_empty() || action.endorsements.len() > MAX_ENDORSEMENTS {
        return fail(C::EndorsementPolicyFailure);
    }
    let mut sigs = Vec::with_capacity(1 + action.endorsements.len());
    sigs.push((creator, d.envelope.payload.clone(), d.envelope.signature.clone()));
    // Endorsers by certificate, so that one certificate named twice (in two encodings) counts once.
    let mut seen = HashSet::new();
    let mut endorser_certs: HashSet<Vec<u8>> = HashSet::new();
    for e in &action.endorsements {
        if !seen.insert(e.endorser.as_ref()) {
            continue;
        }
        if let Ok(id) = ids.validate(&e.endorser, at)
            && endorser_certs.insert(id.cert_der.clone())
        {
            sigs.push((id, e.signed_bytes.clone().into(), e.signature.clone()));
        }
    }
    let event = action.event.clone().map(|mut ev| {
        ev.tx_id = tx_id.clone();
        ev.contract = contract.clone();
        ev
    });
    let checked = Checked { tx_id, code: None, contract, rwset, event, endorsers: Vec::new() };
    (checked, sigs)
}

/// Phase 1 over a chunk of transactions, with one batch verification for the whole chunk.
fn precheck_chunk(
    envelopes: &[Bytes],
    rules: &ChannelRules,
    ids: &dyn Identities,
    block_time: Option<i64>,
) -> Vec<Checked> {
    let mut checked = Vec::with_capacity(envelopes.len());
    let mut owners = Vec::new();
    let mut all_sigs = Vec::new();
    for (i, env) in envelopes.iter().enumerate() {
        let (c, sigs) = precheck(env, rules, ids, block_time);
        for (k, s) in sigs.into_iter().enumerate() {
            owners.push((i, k == 0));
            all_sigs.push(s);
        }
        checked.push(c);
    }
    let items: Vec<SigCheck<'_>> =
        all_sigs.iter().map(|(id, msg, sig)| SigCheck { identity: id, msg, sig }).collect();
    let ok = ids.verify_batch(&items);
    let mut creator_ok = vec![true; checked.len()];
    for (((i, is_creator), good), (id, _, _)) in owners.iter().zip(ok).zip(&all_sigs) {
        if *is_creator {
            creator_ok[*i] = good;
        } else if good {
            checked[*i].endorsers.push(Endorser::new(id.msp_id.clone(), id.role.clone()));
        }
    }
    for (c, ok) in checked.iter_mut().zip(creator_ok) {
        if c.code.is_none() && !ok {
            c.code = Some(TxValidationCode::BadCreatorSignature);
        }
    }
    checked
}

/// Current version of a key: this block's earlier valid writes first, then the committed state.
fn current_version(
    snapshot: &dyn StateSnapshot,
    batch: &UpdateBatch,
    ns: &str,
    key: &str,
) -> Result<Option<Version>, StoreError> {
    match batch.get(ns, key) {
        Some(pending) => Ok(pending.map(|v| v.version)),
        None => Ok(snapshot.get(ns, key)?.map(|v| v.version)),
    }
}

fn reads_hold(
    snapshot: &dyn StateSnapshot,
    batch: &UpdateBatch,
    ns: &str,
    reads: &[KvRead],
) -> Result<bool, StoreError> {
    for r in reads {
        if current_version(snapshot, batch, ns, &r.key)? != r.version {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Re-executes a range query against state + pending writes; true when it returns what the contract saw.
fn range_holds(
    snapshot: &dyn StateSnapshot,
    batch: &UpdateBatch,
    ns: &str,
    q: &RangeQueryInfo,
) -> Result<bool, StoreError> {
    let limit = if q.itr_exhausted { usize::MAX } else { q.reads.len() };
    // Enough committed rows to cover deletions of pending writes within the range.
    let pending_in_range: Vec<(&String, Option<&VersionedValue>)> = batch
        .updates
        .range((ns.to_owned(), q.start_key.clone())..)
        .take_while(|((n, k), _)| n == ns && (q.end_key.is_empty() || *k < q.end_key))
        .map(|((_, k), v)| (k, v.as_ref()))
        .collect();
    let want = if q.itr_exhausted { usize::MAX } else { q.reads.len() + pending_in_range.len() + 1 };
    let committed = snapshot.range(ns, &q.start_key, &q.end_key, want)?;
    let mut merged: BTreeMap<&str, Version> =
        committed.iter().map(|(k, v)| (k.as_str(), v.version)).collect();
    for (k, v) in pending_in_range {
        match v {
            Some(v) => {
                merged.insert(k.as_str(), v.version);
            }
            None => {
                merged.remove(k.as_str());
            }
        }
    }
    let now: Vec<(&str, Version)> = merged.into_iter().take(limit).collect();
    let then: Vec<(&str, Version)> =
        q.reads.iter().map(|r| (r.key.as_str(), r.version.unwrap_or_default())).collect();
    Ok(now == then)
}

/// Validates a block. `already_committed(tx_id)` answers whether the ledger already holds a transaction
/// with that id. `threads` (≥ 1) bounds the parallel signature phase.
pub fn validate_block(
    block: &Block,
    rules: &ChannelRules,
    ids: &dyn Identities,
    snapshot: &dyn StateSnapshot,
    already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
    threads: usize,
) -> Result<Validated, StoreError> {
    let checked = check_signatures(block, rules, ids, threads)?;
    decide(block, rules, &checked, snapshot, already_committed)
}

/// A block's signature phase, done ahead of its turn to commit ([`precheck_block`]): decoding, creator and
/// endorsement signatures, checked against the rules in force when it ran. It depends only on the block's
/// bytes, the identities and those rules, never on the state, so a peer computes it for block N+1 while block
/// N commits; [`finish_block`] uses it only if the rules are still the same (a block that defines a contract
/// changes them: the phase is then run again), so a block's codes are those [`validate_block`] gives.
pub struct Prechecked {
    rules: Arc<ChannelRules>,
    /// The block's header hash (it binds the number and, through the data hash, the transactions).
    header: Hash32,
    checked: Vec<Checked>,
}

/// The signature phase of [`validate_block`] for `block` under `rules` (see [`Prechecked`]).
pub fn precheck_block(
    block: &Block,
    rules: Arc<ChannelRules>,
    ids: &dyn Identities,
    threads: usize,
) -> Result<Prechecked, StoreError> {
    let checked = check_signatures(block, &rules, ids, threads)?;
    Ok(Prechecked { rules, header: block.header_hash(), checked })
}

/// [`validate_block`] with its signature phase taken from `pre` when `pre` was computed for this block under
/// these very rules, and run again otherwise.
pub fn finish_block(
    block: &Block,
    rules: &Arc<ChannelRules>,
    pre: Option<Prechecked>,
    ids: &dyn Identities,
    snapshot: &dyn StateSnapshot,
    already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
    threads: usize,
) -> Result<Validated, StoreError> {
    let fits = |p: &Prechecked| Arc::ptr_eq(&p.rules, rules) && p.header == block.header_hash();
    match pre {
        Some(p) if fits(&p) => decide(block, rules, &p.checked, snapshot, already_committed),
        _ => validate_block(block, rules, ids, snapshot, already_committed, threads),
    }
}

/// Decodes every transaction of `block` and checks its signatures, in up to `threads` parallel pieces.
fn check_signatures(
    block: &Block,
    rules: &ChannelRules,
    ids: &dyn Identities,
    threads: usize,
) -> Result<Vec<Checked>, StoreError> {
    let envelopes = block.envelopes();
    let threads = threads.clamp(1, 16);
    let chunk = envelopes.len().div_ceil(threads).max(1);
    let block_time = block.time_secs();
    let checked: Vec<Checked> = if threads == 1 || envelopes.len() < 64 {
        precheck_chunk(envelopes, rules, ids, block_time)
    } else {
        // Each thread checks its piece's signatures as one batch; verdicts equal single verification's
        // whatever the pieces (docs/msp.md), so the codes do not depend on the thread count.
        std::thread::scope(|s| {
            let handles: Vec<_> = envelopes
                .chunks(chunk)
                .map(|part| s.spawn(move || precheck_chunk(part, rules, ids, block_time)))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        })
    };
    if checked.len() != envelopes.len() {
        // A validation thread panicked: treat as a node failure rather than mark transactions.
        return Err(StoreError::Backend("a validation thread failed".into()));
    }
    Ok(checked)
}

/// The state-dependent phase: endorsement policies, duplicate ids, MVCC and phantom reads, in block order.
fn decide(
    block: &Block,
    rules: &ChannelRules,
    checked: &[Checked],
    snapshot: &dyn StateSnapshot,
    already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
) -> Result<Validated, StoreError> {
    use TxValidationCode as C;
    let number = block.number();
    let mut out = Validated { codes: Vec::with_capacity(checked.len()), ..Default::default() };
    let mut in_block: HashSet<&str> = HashSet::new();
    for (i, c) in checked.iter().enumerate() {
        let code = match c.code {
            Some(code) => code,
            None => {
                let policy_ok = rules
                    .required_policies(&c.contract, &c.rwset)
                    .is_some_and(|ps| ps.iter().all(|p| p.is_satisfied_by(&c.endorsers)));
                if !policy_ok {
                    C::EndorsementPolicyFailure
                } else if in_block.contains(c.tx_id.as_str()) || already_committed(&c.tx_id)? {
                    C::DuplicateTxId
                } else {
                    let mut code = C::Valid;
                    for ns in &c.rwset {
                        if !reads_hold(snapshot, &out.batch, &ns.namespace, &ns.reads)? {
                            code = C::MvccReadConflict;
                            break;
                        }
                        for q in &ns.range_queries {
                            if !range_holds(snapshot, &out.batch, &ns.namespace, q)? {
                                code = C::PhantomReadConflict;
                                break;
                            }
                        }
                        if code != C::Valid {
                            break;
                        }
                    }
                    code
                }
            }
        };
        if !c.tx_id.is_empty() && code != C::DuplicateTxId {
            in_block.insert(c.tx_id.as_str());
        }
        if code == C::Valid {
            let version = Version { block_num: number, tx_num: i as u64 };
            for ns in &c.rwset {
                for w in &ns.writes {
                    if w.is_delete {
                        out.batch.delete(&ns.namespace, &w.key);
                    } else {
                        out.batch.put(&ns.namespace, &w.key, w.value.clone(), version);
                    }
                    out.batch.touched(&ns.namespace, &w.key, version);
                }
            }
        }
        out.codes.push(code);
        out.txs.push((c.tx_id.clone(), if code == C::Valid { c.event.clone() } else { None }));
    }
    Ok(out)
}

/// The time a block's orderer signature is judged at: the block's own time, or for a block without one,
/// the newest timestamp of its transactions (None when it has neither).
pub fn block_reference_time(block: &Block) -> Option<i64> {
    block.time_secs().or_else(|| {
        block
            .envelopes()
            .iter()
            .filter_map(|e| DecodedTx::decode_bytes(e.clone()).ok()?.timestamp().map(|t| t.seconds))
            .max()
    })
}

/// Whether one of the `consenters` (encoded identities from the channel config) signed `block`: its
/// identity valid at [`block_reference_time`], its signature over Fabric's signed bytes (`metadata[SIGNATURES]`
/// value ‖ signature header ‖ header DER) verifying.
pub fn orderer_signed(block: &Block, consenters: &HashSet<Vec<u8>>, ids: &dyn Identities) -> bool {
    let Some(at) = block_reference_time(block) else { return false };
    let Ok(signatures) = block_signatures(block) else { return false };
    signatures.iter().any(|s| match &s.signer {
        BlockSigner::Creator(creator) => {
            consenters.contains(creator)
                && ids.validate(creator, at).is_ok_and(|id| ids.verify(&id, &s.signed_bytes, &s.signature))
        }
        BlockSigner::ConsenterId(_) => false,
    })
}

#[cfg(test)]
mod rules_tests {
    use super::*;
    use ledger_types::proto::KvWrite;

    fn ns(name: &str, writes: bool) -> NsRwSet {
        NsRwSet {
            namespace: name.into(),
            writes: if writes {
                vec![KvWrite { key: "k".into(), is_delete: false, value: vec![1] }]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    #[test]
    fn every_written_namespace_brings_its_own_policy() {
        let members = vec!["Org1MSP".to_owned(), "Org2MSP".to_owned()];
        let one = |m: &str| Policy::SignedBy { msp_id: m.into(), role: ledger_types::policy::Role::Member };
        let rules = ChannelRules {
            channel_id: "iot".into(),
            writers: HashSet::new(),
            readers: HashSet::new(),
            members: members.clone(),
            policies: HashMap::from([
                ("a".to_owned(), one("Org1MSP")),
                ("b".to_owned(), one("Org2MSP")),
                (lifecycle::NAMESPACE.to_owned(), lifecycle::lifecycle_policy(&members)),
            ]),
            versions: HashMap::new(),
            definitions: BTreeMap::new(),
        };
        let req = |c: &str, sets: Vec<NsRwSet>| {
            rules
                .required_policies(c, &sets)
                .map(|ps| ps.into_iter().map(Cow::into_owned).collect::<Vec<_>>())
        };
        assert_eq!(req("a", vec![ns("a", true), ns("b", true)]), Some(vec![one("Org1MSP"), one("Org2MSP")]));
        // A called contract that only read needs nothing of its own.
        assert_eq!(req("a", vec![ns("a", true), ns("b", false)]), Some(vec![one("Org1MSP")]));
        // Undefined or system namespaces, and a namespace twice, cannot be valid.
        assert_eq!(req("a", vec![ns("a", true), ns("nosuch", true)]), None);
        assert_eq!(req("a", vec![ns("a", true), ns(lifecycle::NAMESPACE, true)]), None);
        assert_eq!(req("a", vec![ns("a", true), ns("a", true)]), None);
        assert_eq!(req(lifecycle::NAMESPACE, vec![ns(lifecycle::NAMESPACE, false), ns("a", true)]), None);
        assert_eq!(req("nosuch", vec![ns("nosuch", true)]), None);
    }
}
