//! The transaction context: state access recording a read/write set.

use crate::{Contract, ContractError};
use ledger_types::proto::{KvRead, KvWrite, NsRwSet, RangeQueryInfo, SignedProposal};
use ledger_types::store::StateSnapshot;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest key a contract may write, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// The most keys one range query returns.
pub const MAX_RANGE: usize = 10_000;

/// Who submitted the transaction, from the proposal's validated creator certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The creator's organization.
    pub msp_id: String,
    /// `client`, `peer`, `admin`, `orderer` or `member` (from the certificate's OU).
    pub role: String,
    /// The certificate subject's common name.
    pub subject: String,
    /// The DER certificate.
    pub cert_der: Vec<u8>,
}

/// The contracts a transaction may call into (Fabric's chaincode-to-chaincode invocation on one channel):
/// the endorser resolves names as it resolves the invoked contract.
pub trait Invoker: Sync {
    /// The contract `name` runs as, if the channel defines it.
    fn contract(&self, name: &str) -> Option<Arc<dyn Contract>>;
}

/// One write or delete of a key, as a history query returns it (Fabric's `queryresult.KeyModification`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyModification {
    /// The transaction that made it.
    pub tx_id: String,
    /// The value written (empty for a delete).
    pub value: Vec<u8>,
    /// The transaction's timestamp: seconds since the Unix epoch, and nanoseconds.
    pub timestamp: (i64, i32),
    /// Whether the key was deleted.
    pub is_delete: bool,
}

/// What committed transactions wrote (the peer's block store), for key history queries.
pub trait Modifications: Sync {
    /// What the transaction at `version` (block, index) did to `key` of namespace `ns`; None when it did
    /// not touch it.
    fn modification(
        &self,
        ns: &str,
        key: &str,
        version: ledger_types::proto::Version,
    ) -> Result<Option<KeyModification>, ContractError>;
}

/// How deep calls between contracts may nest.
pub const MAX_CALL_DEPTH: usize = 8;

/// The reads and writes one called contract made so far in this transaction.
#[derive(Default)]
struct Recorded {
    reads: BTreeMap<String, KvRead>,
    range_queries: Vec<RangeQueryInfo>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
}

/// What a contract sees while it runs: a snapshot of its namespace, the caller, the tx id and timestamp.
///
/// Reads see this transaction's own earlier writes (unlike Fabric, whose users often trip over that);
/// a key first written and then read adds no read dependency. Range queries read the committed snapshot and
/// are re-executed at validation to detect phantoms.
pub struct TxContext<'a> {
    namespace: String,
    snapshot: &'a dyn StateSnapshot,
    tx_id: String,
    timestamp: i64,
    caller: &'a Caller,
    reads: BTreeMap<String, KvRead>,
    range_queries: Vec<RangeQueryInfo>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
    event: Option<(String, Vec<u8>)>,
    proposal: Option<(&'a str, &'a SignedProposal)>,
    invoker: Option<&'a dyn Invoker>,
    modifications: Option<&'a dyn Modifications>,
    is_init: bool,
    /// The namespaces of the contracts this transaction called into, with what they read and wrote.
    called: BTreeMap<String, Recorded>,
    /// The contracts running now, outermost first (this one last).
    stack: Vec<String>,
}

/// A key is 1..=[`MAX_KEY_LEN`] bytes of UTF-8. NUL bytes are allowed: Fabric's composite keys are
/// `\0objectType\0attribute\0…` (the state store separates namespace and key by the first NUL, and
/// namespaces have none).
fn check_key(key: &str) -> Result<(), ContractError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ContractError::BadRequest(format!(
            "state keys must be 1..={MAX_KEY_LEN} bytes, got {} bytes",
            key.len()
        )));
    }
    Ok(())
}

impl<'a> TxContext<'a> {
    /// A context for one invocation of the contract owning `namespace`. `timestamp` is the proposal's
    /// (seconds since the epoch).
    pub fn new(
        namespace: &str,
        snapshot: &'a dyn StateSnapshot,
        tx_id: String,
        timestamp: i64,
        caller: &'a Caller,
    ) -> TxContext<'a> {
        TxContext {
            namespace: namespace.to_owned(),
            snapshot,
            tx_id,
            timestamp,
            caller,
            reads: BTreeMap::new(),
            range_queries: Vec::new(),
            writes: BTreeMap::new(),
            event: None,
            proposal: None,
            invoker: None,
            modifications: None,
            is_init: false,
            called: BTreeMap::new(),
            stack: vec![namespace.to_owned()],
        }
    }

    /// Marks the invocation as the chaincode's initialization (Fabric's `is_init`: an external chaincode
    /// receives INIT instead of TRANSACTION).
    pub fn set_init(&mut self, is_init: bool) {
        self.is_init = is_init;
    }

    /// Whether the invocation is the chaincode's initialization.
    pub fn is_init(&self) -> bool {
        self.is_init
    }

    /// Lets the contract read key histories ([`TxContext::get_history`]) from `source`.
    pub fn set_modifications(&mut self, source: &'a dyn Modifications) {
        self.modifications = Some(source);
    }

    /// Every committed write and delete of `key` in this contract's namespace, newest first (Fabric's
    /// `GetHistoryForKey`), at most [`MAX_RANGE`]. As in Fabric, a history query is not part of the read set:
    /// validation does not re-check it, so a transaction should not decide its writes on it.
    pub fn get_history(&mut self, key: &str) -> Result<Vec<KeyModification>, ContractError> {
        check_key(key)?;
        let source = self
            .modifications
            .ok_or_else(|| ContractError::BadRequest("key history is not available here".into()))?;
        let versions = self.snapshot.history(&self.namespace, key, MAX_RANGE)?;
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            if let Some(m) = source.modification(&self.namespace, key, v)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Lets the contract call other contracts of the channel through `invoker`
    /// ([`TxContext::invoke_contract`]).
    pub fn set_invoker(&mut self, invoker: &'a dyn Invoker) {
        self.invoker = Some(invoker);
    }

    /// Calls `function` of contract `name` within this transaction, as Fabric's `InvokeChaincode` on the
    /// same channel: it sees the same snapshot, caller, tx id and proposal, its reads and writes join the
    /// transaction's read/write set under its own namespace (so validation requires its endorsement policy
    /// too when it writes), and its event is dropped (a transaction carries its invoked contract's event
    /// only). What it wrote before failing stays recorded, as in Fabric's shared simulator. A contract
    /// already running in this transaction (a cycle), a system contract (`_…`) and nesting deeper than
    /// [`MAX_CALL_DEPTH`] are refused.
    pub fn invoke_contract(
        &mut self,
        name: &str,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError> {
        let invoker = self.invoker.ok_or_else(|| {
            ContractError::BadRequest("calls into other contracts are not available here".into())
        })?;
        if name.starts_with('_') {
            return Err(ContractError::Forbidden(format!(
                "system contract {name} cannot be called by a contract"
            )));
        }
        if self.stack.iter().any(|n| n == name) {
            return Err(ContractError::BadRequest(format!(
                "contract {name} is already running in this transaction (calls: {})",
                self.stack.join(" -> ")
            )));
        }
        if self.stack.len() >= MAX_CALL_DEPTH {
            return Err(ContractError::BadRequest(format!(
                "calls between contracts nest at most {MAX_CALL_DEPTH} deep"
            )));
        }
        let contract = invoker.contract(name).ok_or_else(|| {
            ContractError::NotFound(format!("contract {name} is not defined on this channel"))
        })?;
        let recorded = self.called.remove(name).unwrap_or_default();
        let mut stack = self.stack.clone();
        stack.push(name.to_owned());
        let mut callee = TxContext {
            namespace: name.to_owned(),
            snapshot: self.snapshot,
            tx_id: self.tx_id.clone(),
            timestamp: self.timestamp,
            caller: self.caller,
            reads: recorded.reads,
            range_queries: recorded.range_queries,
            writes: recorded.writes,
            event: None,
            proposal: self.proposal,
            invoker: self.invoker,
            modifications: self.modifications,
            is_init: false,
            called: std::mem::take(&mut self.called),
            stack,
        };
        let result = contract.invoke(&mut callee, function, args);
        self.called = std::mem::take(&mut callee.called);
        self.called.insert(
            name.to_owned(),
            Recorded { reads: callee.reads, range_queries: callee.range_queries, writes: callee.writes },
        );
        result
    }

    /// Attaches the signed proposal being run and its channel (an external chaincode receives them, as a
    /// Fabric chaincode does: its shim reads the creator, the timestamp and the transient map from them).
    pub fn set_proposal(&mut self, channel_id: &'a str, proposal: &'a SignedProposal) {
        self.proposal = Some((channel_id, proposal));
    }

    /// The channel and signed proposal, when attached.
    pub fn proposal(&self) -> Option<(&'a str, &'a SignedProposal)> {
        self.proposal
    }

    /// The transaction id.
    pub fn tx_id(&self) -> &str {
        &self.tx_id
    }

    /// The proposal's timestamp in seconds since the Unix epoch (chosen by the client, the same on every peer).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The submitting identity.
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// Reads a key (this transaction's own writes first).
    pub fn get_state(&mut self, key: &str) -> Result<Option<Vec<u8>>, ContractError> {
        check_key(key)?;
        if let Some(w) = self.writes.get(key) {
            return Ok(w.clone());
        }
        let found = self.snapshot.get(&self.namespace, key)?;
        self.reads
            .entry(key.to_owned())
            .or_insert_with(|| KvRead { key: key.to_owned(), version: found.as_ref().map(|v| v.version) });
        Ok(found.map(|v| v.value))
    }

    /// Writes a key.
    pub fn put_state(&mut self, key: &str, value: Vec<u8>) -> Result<(), ContractError> {
        check_key(key)?;
        self.writes.insert(key.to_owned(), Some(value));
        Ok(())
    }

    /// Deletes a key.
    pub fn delete_state(&mut self, key: &str) -> Result<(), ContractError> {
        check_key(key)?;
        self.writes.insert(key.to_owned(), None);
        Ok(())
    }

    /// Committed keys in `[start, end)` (`end == ""`: to the end of the namespace), at most `limit`
    /// (capped at [`MAX_RANGE`]). Recorded for phantom-read validation.
    pub fn get_range(
        &mut self,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, ContractError> {
        let limit = limit.min(MAX_RANGE);
        let found = self.snapshot.range(&self.namespace, start, end, limit + 1)?;
        let exhausted = found.len() <= limit;
        let found: Vec<_> = found.into_iter().take(limit).collect();
        self.range_queries.push(RangeQueryInfo {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            itr_exhausted: exhausted,
            reads: found.iter().map(|(k, v)| KvRead { key: k.clone(), version: Some(v.version) }).collect(),
        });
        Ok(found.into_iter().map(|(k, v)| (k, v.value)).collect())
    }

    /// Sets the transaction's event (a later call replaces an earlier one, as in Fabric).
    pub fn set_event(&mut self, name: &str, payload: Vec<u8>) {
        self.event = Some((name.to_owned(), payload));
    }

    /// The read/write set of this contract's namespace and the event, once the contract has returned.
    pub fn into_results(self) -> (NsRwSet, Option<(String, Vec<u8>)>) {
        let (mut all, event) = self.into_all_results();
        (all.remove(0), event)
    }

    /// The read/write sets of every namespace the transaction touched (this contract's first, then those of
    /// the contracts it called, by name) and the event.
    pub fn into_all_results(self) -> (Vec<NsRwSet>, Option<(String, Vec<u8>)>) {
        let own = Recorded { reads: self.reads, range_queries: self.range_queries, writes: self.writes };
        let mut all = vec![ns_rwset(self.namespace, own)];
        all.extend(self.called.into_iter().map(|(ns, r)| ns_rwset(ns, r)));
        (all, self.event)
    }
}

fn ns_rwset(namespace: String, r: Recorded) -> NsRwSet {
    let writes = r
        .writes
        .into_iter()
        .map(|(key, v)| match v {
            Some(value) => KvWrite { key, is_delete: false, value },
            None => KvWrite { key, is_delete: true, value: Vec::new() },
        })
        .collect();
    NsRwSet { namespace, reads: r.reads.into_values().collect(), range_queries: r.range_queries, writes }
}

#[cfg(test)]
mod invoke_tests {
    use super::*;
    use ledger_types::store::{StoreError, VersionedValue};

    struct Empty;
    impl StateSnapshot for Empty {
        fn get(&self, _: &str, _: &str) -> Result<Option<VersionedValue>, StoreError> {
            Ok(None)
        }
        fn range(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: usize,
        ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
            Ok(Vec::new())
        }
    }

    /// `call <name>` calls contract `name`'s `call` with the rest; anything else writes its function name.
    struct Caller2(&'static str);
    impl Contract for Caller2 {
        fn name(&self) -> &str {
            self.0
        }
        fn invoke(
            &self,
            ctx: &mut TxContext<'_>,
            function: &str,
            args: &[Vec<u8>],
        ) -> Result<Vec<u8>, ContractError> {
            ctx.set_event("ignored-when-called", Vec::new());
            if function == "call" {
                let target = String::from_utf8_lossy(&args[0]).into_owned();
                return ctx.invoke_contract(&target, "call", &args[1..]);
            }
            ctx.put_state(function, b"x".to_vec())?;
            Ok(self.0.as_bytes().to_vec())
        }
    }

    struct Three;
    impl Invoker for Three {
        fn contract(&self, name: &str) -> Option<Arc<dyn Contract>> {
            match name {
                "a" => Some(Arc::new(Caller2("a"))),
                "b" => Some(Arc::new(Caller2("b"))),
                "c" => Some(Arc::new(Caller2("c"))),
                _ => None,
            }
        }
    }

    #[test]
    fn calls_record_each_namespace_and_refuse_cycles() {
        let who = Caller {
            msp_id: "Org1MSP".into(),
            role: "client".into(),
            subject: "u".into(),
            cert_der: Vec::new(),
        };
        let mut ctx = TxContext::new("a", &Empty, "0".repeat(64), 1, &who);
        ctx.set_invoker(&Three);
        ctx.put_state("own", b"1".to_vec()).unwrap();
        assert_eq!(ctx.invoke_contract("b", "w1", &[]).unwrap(), b"b");
        assert_eq!(ctx.invoke_contract("c", "w2", &[]).unwrap(), b"c");
        assert_eq!(ctx.invoke_contract("b", "w3", &[]).unwrap(), b"b");
        // b → c → a: a is running.
        let e = ctx.invoke_contract("b", "call", &[b"c".to_vec(), b"a".to_vec()]).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        assert!(e.to_string().contains("a -> b -> c"), "{e}");
        assert_eq!(ctx.invoke_contract("nosuch", "x", &[]).unwrap_err().status(), 404);
        assert_eq!(ctx.invoke_contract("_lifecycle", "x", &[]).unwrap_err().status(), 403);
        let (sets, event) = ctx.into_all_results();
        let names: Vec<(&str, Vec<&str>)> = sets
            .iter()
            .map(|s| (s.namespace.as_str(), s.writes.iter().map(|w| w.key.as_str()).collect()))
            .collect();
        assert_eq!(names, [("a", vec!["own"]), ("b", vec!["w1", "w3"]), ("c", vec!["w2"])]);
        assert!(event.is_none(), "a called contract's event is not the transaction's");
    }
}
