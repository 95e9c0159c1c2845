//! The transaction context: state access recording a read/write set.

use crate::ContractError;
use ledger_types::proto::{KvRead, KvWrite, NsRwSet, RangeQueryInfo, SignedProposal};
use ledger_types::store::StateSnapshot;
use std::collections::BTreeMap;

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
        }
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

    /// The read/write set and the event, once the contract has returned.
    pub fn into_results(self) -> (NsRwSet, Option<(String, Vec<u8>)>) {
        let writes = self
            .writes
            .into_iter()
            .map(|(key, v)| match v {
                Some(value) => KvWrite { key, is_delete: false, value },
                None => KvWrite { key, is_delete: true, value: Vec::new() },
            })
            .collect();
        let rwset = NsRwSet {
            namespace: self.namespace,
            reads: self.reads.into_values().collect(),
            range_queries: self.range_queries,
            writes,
        };
        (rwset, self.event)
    }
}
