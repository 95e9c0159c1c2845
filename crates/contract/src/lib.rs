//! Contracts (Fabric's chaincode) and the context they run in.
//!
//! A contract is deterministic Rust: it sees the world state through a [`TxContext`] over a consistent
//! snapshot, and everything else it may depend on (caller identity, transaction id, timestamp) comes from the
//! signed proposal. It never reads the clock or a random source. The context records a read/write set that
//! the peers check again (MVCC) when the ordered block is validated.
//!
//! ```
//! use contract::{Caller, Contract, TxContext, samples::KvContract};
//! use ledger_types::store::{StateSnapshot, StoreError, VersionedValue};
//!
//! struct Empty;
//! impl StateSnapshot for Empty {
//!     fn get(&self, _: &str, _: &str) -> Result<Option<VersionedValue>, StoreError> { Ok(None) }
//!     fn range(&self, _: &str, _: &str, _: &str, _: usize) -> Result<Vec<(String, VersionedValue)>, StoreError> { Ok(vec![]) }
//! }
//! let caller = Caller { msp_id: "Org1MSP".into(), role: "client".into(), subject: "app1".into(), cert_der: vec![] };
//! let mut ctx = TxContext::new("kv", &Empty, "0".repeat(64), 1_700_000_000, &caller);
//! let out = KvContract.invoke(&mut ctx, "put", &[b"k".to_vec(), b"v".to_vec()]).unwrap();
//! assert_eq!(out, b"v");
//! let (rwset, event) = ctx.into_results();
//! assert_eq!(rwset.writes.len(), 1);
//! assert!(event.is_some());
//! ```

mod context;
pub mod samples;

pub use context::{
    Caller, Invoker, KeyModification, MAX_CALL_DEPTH, MAX_KEY_LEN, MAX_RANGE, Modifications, TxContext,
};

/// A contract's failure; mapped to the response status the endorser returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The request is malformed (status 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The caller may not do this (status 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The object does not exist (status 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the state, e.g. a repeated request id (status 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The state could not be read (status 500).
    #[error("state: {0}")]
    State(#[from] ledger_types::store::StoreError),
    /// Another failure inside the contract (status 500).
    #[error("contract failure: {0}")]
    Internal(String),
    /// An external chaincode's own response with an error status (≥ 400), as it sent it.
    #[error("{message}")]
    Chaincode {
        /// Its status.
        status: i32,
        /// Its message.
        message: String,
    },
}

impl ContractError {
    /// The HTTP-like status the endorser reports.
    pub fn status(&self) -> i32 {
        match self {
            ContractError::BadRequest(_) => 400,
            ContractError::Forbidden(_) => 403,
            ContractError::NotFound(_) => 404,
            ContractError::Conflict(_) => 409,
            ContractError::State(_) | ContractError::Internal(_) => 500,
            ContractError::Chaincode { status, .. } => *status,
        }
    }
}

/// A deterministic contract deployed on a channel under [`Contract::name`] (its state namespace).
pub trait Contract: Send + Sync + 'static {
    /// The name transactions use to call it; also its state namespace.
    fn name(&self) -> &str;

    /// Runs `function` with `args`. The returned bytes become the response payload (status 200).
    fn invoke(
        &self,
        ctx: &mut TxContext<'_>,
        function: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, ContractError>;

    /// Whether `invoke` needs the signed proposal in its context ([`TxContext::proposal`]): external
    /// chaincodes do (their shim reads it); built-in contracts do not, and the endorser then does not copy it.
    fn wants_proposal(&self) -> bool {
        false
    }

    /// Whether it runs outside the peer (a chaincode server): a peer's own configured server takes
    /// precedence over the address a chaincode definition names.
    fn is_external(&self) -> bool {
        false
    }
}
