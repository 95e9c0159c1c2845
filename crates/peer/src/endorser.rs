//! The endorser: checks a signed proposal, runs the contract against a state snapshot and signs the result.

use crate::identity::Identities;
use crate::registry::IdentityRegistry;
use crate::validator::ChannelRules;
use contract::{Caller, Contract, TxContext};
use ledger_types::TxId;
use ledger_types::proto::{
    ContractEvent, Proposal, ProposalResponse, ProposalResponsePayload, Response, SignedProposal, TxRwSet,
};
use ledger_types::store::{StateSnapshot, StoreError};
use ledger_types::tx::{Signer, endorse_as, proposal_hash};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a proposal was refused before the contract ran (the contract's own failures are responses).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseError {
    /// The proposal is malformed.
    #[error("bad proposal: {0}")]
    BadProposal(String),
    /// The creator is not allowed (unknown CA, not a writer, bad signature).
    #[error("access denied: {0}")]
    Denied(String),
    /// The creator is a reference to an identity this peer has not registered (yet): send it in full.
    #[error("{0}")]
    UnknownIdentity(String),
    /// The transaction id is already in the ledger (a replay).
    #[error("transaction {0} already committed")]
    Duplicate(String),
    /// The contract is not defined on this channel or not installed on this peer.
    #[error("contract {0:?} is not available on this channel")]
    UnknownContract(String),
    /// The state could not be read.
    #[error("state: {0}")]
    Store(#[from] StoreError),
}

/// A proposal that passed [`Endorser::check`].
#[derive(Debug)]
pub struct CheckedProposal {
    /// Its header.
    pub header: ledger_types::proto::Header,
    /// The invocation.
    pub input: ledger_types::proto::Invocation,
    /// Its transaction id.
    pub tx_id: TxId,
    /// The validated creator.
    pub creator: Arc<crate::identity::ValidatedIdentity>,
    /// Whether the creator is registered (a reference, or a full identity a committed block registered):
    /// the client may name it by reference from now on.
    pub creator_registered: bool,
}

/// The simulation of a proposal, before signing.
#[derive(Debug)]
pub struct Simulation {
    /// The transaction id.
    pub tx_id: String,
    /// The contract's response.
    pub response: Response,
    /// The response payload to endorse (None when the contract failed).
    pub payload: Option<ProposalResponsePayload>,
}

/// Runs proposals against the installed contracts.
pub struct Endorser {
    rules: Arc<ChannelRules>,
    ids: Arc<dyn Identities>,
    contracts: HashMap<String, Arc<dyn Contract>>,
    signer: Arc<dyn Signer>,
    registry: Arc<IdentityRegistry>,
    /// The signer's identity as a reference, and the hash it carries.
    own_ref: Option<(Vec<u8>, ledger_types::Hash32)>,
}

impl Endorser {
    /// An endorser signing as `signer`, with the given contracts installed.
    pub fn new(
        rules: Arc<ChannelRules>,
        ids: Arc<dyn Identities>,
        contracts: Vec<Arc<dyn Contract>>,
        signer: Arc<dyn Signer>,
    ) -> Endorser {
        let contracts = contracts.into_iter().map(|c| (c.name().to_owned(), c)).collect();
        let full = signer.serialized_identity();
        let own_ref =
            ledger_types::identity::reference(full).map(|r| (r, ledger_types::identity::hash_of(full)));
        Endorser { rules, ids, contracts, signer, registry: Arc::new(IdentityRegistry::new()), own_ref }
    }

    /// Resolves identity references against `registry` (the ledger's); without it, only full identities
    /// are accepted and the endorser always names itself in full.
    pub fn with_registry(mut self, registry: Arc<IdentityRegistry>) -> Endorser {
        self.registry = registry;
        self
    }

    /// Decodes and checks a proposal (channel, tx id, timestamp within
    /// [`TX_TIME_WINDOW_SECS`](ledger_types::block::TX_TIME_WINDOW_SECS) of `now`, creator membership at the
    /// proposal's time and writer right) without verifying its signature; see [`Endorser::run`]. `now` is
    /// the peer's clock (Unix seconds): a proposal the orderers would cut far from its own time would only
    /// be invalid at validation, so it is refused here with a message about the client's clock.
    pub fn check(&self, sp: &SignedProposal, now: i64) -> Result<CheckedProposal, EndorseError> {
        let proposal = Proposal::decode(sp.proposal_bytes.as_slice())
            .map_err(|e| EndorseError::BadProposal(format!("undecodable proposal: {e}")))?;
        let header = proposal.header.ok_or_else(|| EndorseError::BadProposal("missing header".into()))?;
        let input = proposal.input.unwrap_or_default();
        if header.channel_id != self.rules.channel_id {
            return Err(EndorseError::BadProposal(format!("unknown channel {:?}", header.channel_id)));
        }
        let tx_id = TxId::parse(&header.tx_id).map_err(|e| EndorseError::BadProposal(e.to_string()))?;
        if TxId::compute(&header.nonce, &header.creator) != tx_id {
            return Err(EndorseError::BadProposal("tx id is not the hash of nonce and creator".into()));
        }
        let at = header
            .timestamp
            .map(|t| t.seconds)
            .ok_or_else(|| EndorseError::BadProposal("proposal has no timestamp".into()))?;
        if !ledger_types::block::within_tx_window(at, now) {
            return Err(EndorseError::BadProposal(format!(
                "proposal timestamp {at} is {} s from this peer's clock (at most {} s): check the client's clock",
                at.abs_diff(now),
                ledger_types::block::TX_TIME_WINDOW_SECS
            )));
        }
        let full = self.registry.resolve(&header.creator).map_err(EndorseError::UnknownIdentity)?;
        let creator = self.ids.validate(&full, at).map_err(EndorseError::Denied)?;
        let creator_registered = match full {
            crate::registry::Resolved::Registered(_) => true,
            crate::registry::Resolved::Full(b) => self.registry.knows(b),
        };
        if !self.rules.writers.contains(&creator.msp_id) {
            return Err(EndorseError::Denied(format!(
                "{} is not a writer on {}",
                creator.msp_id, header.channel_id
            )));
        }
        Ok(CheckedProposal { header, input, tx_id, creator, creator_registered })
    }

    /// Checks the proposal, verifies its signature and runs the contract; nothing is signed.
    pub fn simulate(
        &self,
        sp: &SignedProposal,
        snapshot: &dyn StateSnapshot,
        already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
        now: i64,
    ) -> Result<Simulation, EndorseError> {
        let checked = self.check(sp, now)?;
        if !self.ids.verify(&checked.creator, &sp.proposal_bytes, &sp.signature) {
            return Err(EndorseError::Denied("proposal signature does not verify".into()));
        }
        self.run(checked, sp, snapshot, already_committed)
    }

    /// Runs the contract for a proposal that passed [`Endorser::check`] and whose signature the caller
    /// verified (the gateway verifies many proposals' signatures in one batch).
    pub fn run(
        &self,
        checked: CheckedProposal,
        sp: &SignedProposal,
        snapshot: &dyn StateSnapshot,
        already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
    ) -> Result<Simulation, EndorseError> {
        let CheckedProposal { header, input, tx_id, creator, .. } = checked;
        if !self.rules.policies.contains_key(&header.contract) {
            return Err(EndorseError::UnknownContract(header.contract));
        }
        let contract = self
            .contracts
            .get(&header.contract)
            .ok_or_else(|| EndorseError::UnknownContract(header.contract.clone()))?;
        if already_committed(tx_id.as_str())? {
            return Err(EndorseError::Duplicate(tx_id.to_string()));
        }
        let caller = Caller {
            msp_id: creator.msp_id.clone(),
            role: creator.role.clone(),
            subject: creator.subject.clone(),
            cert_der: creator.cert_der.clone(),
        };
        let ts = header.timestamp.map_or(0, |t| t.seconds);
        let mut ctx = TxContext::new(&header.contract, snapshot, tx_id.to_string(), ts, &caller);
        match contract.invoke(&mut ctx, &input.function, &input.args) {
            Ok(out) => {
                let (rwset, event) = ctx.into_results();
                let response = Response { status: 200, message: String::new(), payload: out };
                let payload = ProposalResponsePayload {
                    proposal_hash: proposal_hash(&sp.proposal_bytes),
                    results: Some(TxRwSet { ns_rwsets: vec![rwset] }),
                    event: event.map(|(name, payload)| ContractEvent {
                        contract: header.contract.clone(),
                        tx_id: tx_id.to_string(),
                        event_name: name,
                        payload,
                    }),
                    response: Some(response.clone()),
                };
                Ok(Simulation { tx_id: tx_id.to_string(), response, payload: Some(payload) })
            }
            Err(e) => Ok(Simulation {
                tx_id: tx_id.to_string(),
                response: Response { status: e.status(), message: e.to_string(), payload: Vec::new() },
                payload: None,
            }),
        }
    }

    /// Signs a simulation (or returns the contract's failure as a response with its status and no
    /// endorsement).
    pub fn sign(&self, sim: Simulation) -> ProposalResponse {
        match sim.payload {
            Some(payload) => {
                // Named by reference once a committed block registered this endorser's identity.
                let endorser = match &self.own_ref {
                    Some((r, hash)) if self.registry.contains(hash) => r.clone(),
                    _ => self.signer.serialized_identity().to_vec(),
                };
                endorse_as(self.signer.as_ref(), endorser, &payload)
            }
            None => ProposalResponse { response: Some(sim.response), payload: Vec::new(), endorsement: None },
        }
    }

    /// Checks, simulates and signs. A contract failure is returned as a response with its status and no
    /// endorsement.
    pub fn process(
        &self,
        sp: &SignedProposal,
        snapshot: &dyn StateSnapshot,
        already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
        now: i64,
    ) -> Result<ProposalResponse, EndorseError> {
        Ok(self.sign(self.simulate(sp, snapshot, already_committed, now)?))
    }

    /// The identity this endorser signs as.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }
}
