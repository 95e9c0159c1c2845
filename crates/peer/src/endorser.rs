//! The endorser: checks a signed proposal, runs the contract against a state snapshot and signs the result.

use crate::identity::Identities;
use crate::lifecycle::{self, Runtime};
use crate::validator::{ChannelRules, RulesCell};
use contract::{Caller, Contract, TxContext};
use ledger_types::TxId;
use ledger_types::fabric_protos::hash::check_tx_id;
use ledger_types::fabric_protos::protos::ProposalResponsePayload;
use ledger_types::fabric_protos::tx::{UnpackedProposal, unpack_proposal};
use ledger_types::proto::{ContractEvent, ProposalResponse, Response, SignedProposal, TxRwSet};
use ledger_types::store::{StateSnapshot, StoreError};
use ledger_types::tx::{Signer, endorse, response_payload, response_to_fabric};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a proposal was refused before the contract ran (the contract's own failures are responses).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseError {
    /// The proposal is malformed.
    #[error("bad proposal: {0}")]
    BadProposal(String),
    /// The proposal is for a channel this peer does not serve.
    #[error("channel {0:?} is not served by this peer")]
    UnknownChannel(String),
    /// The creator is not allowed (unknown CA, not a writer, bad signature).
    #[error("access denied: {0}")]
    Denied(String),
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
    /// The proposal, unpacked.
    pub proposal: UnpackedProposal,
    /// Its transaction id.
    pub tx_id: TxId,
    /// The validated creator.
    pub creator: Arc<crate::identity::ValidatedIdentity>,
    /// The signed proposal itself, kept only for a contract that wants it (an external chaincode).
    pub signed: Option<SignedProposal>,
}

impl CheckedProposal {
    /// The chaincode (contract) invoked.
    pub fn contract(&self) -> &str {
        self.proposal.chaincode_name()
    }
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
    /// The read/write set endorsed (empty when the contract failed): the invoked contract's namespace
    /// first, then those of the contracts it called.
    pub rwset: TxRwSet,
}

/// Resolves the contracts a running contract calls into, under the rules its proposal runs by.
struct Resolver<'e> {
    endorser: &'e Endorser,
    rules: &'e ChannelRules,
}

impl contract::Invoker for Resolver<'_> {
    fn contract(&self, name: &str) -> Option<Arc<dyn Contract>> {
        if !self.rules.policies.contains_key(name) {
            return None;
        }
        self.endorser.contract_for(self.rules, name)
    }
}

/// An external chaincode a definition names: where it was dialed, and the connection.
struct DefinedExternal {
    address: String,
    tls_root_cert: Vec<u8>,
    contract: Arc<dyn Contract>,
}

/// Runs proposals against the installed contracts and the chaincodes the definitions in force name.
pub struct Endorser {
    rules: Arc<RulesCell>,
    ids: Arc<dyn Identities>,
    contracts: HashMap<String, Arc<dyn Contract>>,
    /// Chaincode servers named by committed definitions, by contract name (replaced when the address changes).
    defined: Mutex<HashMap<String, DefinedExternal>>,
    runtime: Option<tokio::runtime::Handle>,
    max_value: usize,
    modifications: Option<Arc<dyn contract::Modifications + Send>>,
    /// The TLS certificate and key the peer presents to chaincode servers that ask for one.
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    signer: Arc<dyn Signer>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// Proposals run at once on threads of their own (external chaincodes wait on their servers there, each
/// proposal holding a thread): more wait for a slot rather than exhaust the runtime's blocking threads.
pub const BLOCKING_RUNS: usize = 256;

impl Endorser {
    /// An endorser signing as `signer`, with the given contracts installed, following the rules in `rules`.
    /// Created inside a tokio runtime, it dials the chaincode servers that definitions name on it.
    pub fn new(
        rules: Arc<RulesCell>,
        ids: Arc<dyn Identities>,
        contracts: Vec<Arc<dyn Contract>>,
        signer: Arc<dyn Signer>,
    ) -> Endorser {
        let contracts = contracts.into_iter().map(|c| (c.name().to_owned(), c)).collect();
        Endorser {
            rules,
            ids,
            contracts,
            defined: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::try_current().ok(),
            max_value: usize::MAX,
            modifications: None,
            client_identity: None,
            signer,
            slots: Arc::new(tokio::sync::Semaphore::new(BLOCKING_RUNS)),
        }
    }

    /// The largest value a chaincode server named by a definition may write (the channel's absolute
    /// maximum transaction size).
    pub fn with_max_value(mut self, max: usize) -> Endorser {
        self.max_value = max;
        self
    }

    /// The TLS certificate and key (PEM) presented to chaincode servers that definitions name, when they
    /// ask for a client certificate.
    pub fn with_chaincode_client_identity(mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Endorser {
        self.client_identity = (!cert_pem.is_empty()).then_some((cert_pem, key_pem));
        self
    }

    /// Where contracts read key histories from (the peer's ledger).
    pub fn with_modifications(mut self, source: Arc<dyn contract::Modifications + Send>) -> Endorser {
        self.modifications = Some(source);
        self
    }

    /// The contract that runs `name` under `rules`: for a definition naming a chaincode server, the peer's
    /// own `[chaincodes]` server of that name if it has one (as a Fabric organization installs its own
    /// package), else that server; otherwise the installed contract (built in, or the peer's server).
    fn contract_for(&self, rules: &ChannelRules, name: &str) -> Option<Arc<dyn Contract>> {
        let installed = self.contracts.get(name);
        let Some(Runtime::External { address, tls_root_cert }) =
            rules.definitions.get(name).map(lifecycle::runtime)
        else {
            return installed.cloned();
        };
        if let Some(local) = installed.filter(|c| c.is_external()) {
            return Some(local.clone());
        }
        let mut defined = self.defined.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = defined.get(name)
            && d.address == address
            && d.tls_root_cert == tls_root_cert
        {
            return Some(d.contract.clone());
        }
        let runtime = self.runtime.clone()?;
        let _entered = runtime.enter();
        let endpoint = crate::ccaas::ChaincodeEndpoint {
            address: address.clone(),
            tls_ca_pem: (!tls_root_cert.is_empty()).then(|| tls_root_cert.clone()),
            client_identity: self.client_identity.clone(),
        };
        let contract: Arc<dyn Contract> =
            Arc::new(crate::ccaas::ExternalChaincode::new(name, endpoint).with_max_value(self.max_value));
        tracing::info!(contract = %name, %address, "chaincode definition names a chaincode server");
        defined
            .insert(name.to_owned(), DefinedExternal { address, tls_root_cert, contract: contract.clone() });
        Some(contract)
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<ChannelRules> {
        self.rules.get()
    }

    /// Slots for proposals run on a thread of their own (see [`BLOCKING_RUNS`]).
    pub fn blocking_slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slots
    }

    /// Unpacks and checks a proposal (Fabric's layers, channel, tx id, timestamp within
    /// [`TX_TIME_WINDOW_SECS`](ledger_types::block::TX_TIME_WINDOW_SECS) of `now`, creator membership at
    /// the proposal's time and writer right) without verifying its signature; see [`Endorser::run`]. `now`
    /// is the peer's clock (Unix seconds): a proposal the orderers would cut far from its own time would
    /// only be invalid at validation, so it is refused here with a message about the client's clock.
    pub fn check(&self, sp: &SignedProposal, now: i64) -> Result<CheckedProposal, EndorseError> {
        let proposal = unpack_proposal(sp)
            .map_err(|e| EndorseError::BadProposal(format!("failed to unpack transaction proposal: {e}")))?;
        let channel = proposal.channel_id();
        let rules = self.rules.get();
        if channel != rules.channel_id {
            return Err(EndorseError::UnknownChannel(channel.to_owned()));
        }
        let ch = &proposal.channel_header;
        let sh = &proposal.signature_header;
        let tx_id = TxId::parse(&ch.tx_id).map_err(|e| EndorseError::BadProposal(e.to_string()))?;
        if sh.nonce.is_empty() || sh.creator.is_empty() {
            return Err(EndorseError::BadProposal("signature header needs a creator and a nonce".into()));
        }
        check_tx_id(&ch.tx_id, &sh.nonce, &sh.creator)
            .map_err(|e| EndorseError::BadProposal(e.to_string()))?;
        let at = ch
            .timestamp
            .as_ref()
            .map(|t| t.seconds)
            .ok_or_else(|| EndorseError::BadProposal("proposal has no timestamp".into()))?;
        if !ledger_types::block::within_tx_window(at, now) {
            return Err(EndorseError::BadProposal(format!(
                "proposal timestamp {at} is {} s from this peer's clock (at most {} s): check the client's clock",
                at.abs_diff(now),
                ledger_types::block::TX_TIME_WINDOW_SECS
            )));
        }
        let creator = self.ids.validate(&sh.creator, at).map_err(EndorseError::Denied)?;
        if !rules.writers.contains(&creator.msp_id) {
            return Err(EndorseError::Denied(format!("{} is not a writer on {channel}", creator.msp_id)));
        }
        let signed = self
            .contract_for(&rules, proposal.chaincode_name())
            .filter(|c| c.wants_proposal())
            .map(|_| sp.clone());
        Ok(CheckedProposal { proposal, tx_id, creator, signed })
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
        self.run(checked, snapshot, already_committed)
    }

    /// Runs the contract for a proposal that passed [`Endorser::check`] and whose signature the caller
    /// verified (the gateway verifies many proposals' signatures in one batch). The first argument is the
    /// function name (Fabric's convention: fabric-gateway sends `[transaction name, ...arguments]`).
    pub fn run(
        &self,
        checked: CheckedProposal,
        snapshot: &dyn StateSnapshot,
        already_committed: &dyn Fn(&str) -> Result<bool, StoreError>,
    ) -> Result<Simulation, EndorseError> {
        let CheckedProposal { proposal, tx_id, creator, signed } = checked;
        let name = proposal.chaincode_name().to_owned();
        let rules = self.rules.get();
        if !rules.policies.contains_key(&name) {
            return Err(EndorseError::UnknownContract(name));
        }
        let contract =
            self.contract_for(&rules, &name).ok_or_else(|| EndorseError::UnknownContract(name.clone()))?;
        if already_committed(tx_id.as_str())? {
            return Err(EndorseError::Duplicate(tx_id.to_string()));
        }
        let caller = Caller {
            msp_id: creator.msp_id.clone(),
            role: creator.role.clone(),
            subject: creator.subject.clone(),
            cert_der: creator.cert_der.clone(),
        };
        let ts = proposal.channel_header.timestamp.as_ref().map_or(0, |t| t.seconds);
        let (function, args): (String, Vec<Vec<u8>>) = match proposal.args().split_first() {
            Some((f, rest)) => {
                (String::from_utf8_lossy(f).into_owned(), rest.iter().map(|a| a.to_vec()).collect())
            }
            None => (String::new(), Vec::new()),
        };
        let resolver = Resolver { endorser: self, rules: &rules };
        let mut ctx = TxContext::new(&name, snapshot, tx_id.to_string(), ts, &caller);
        ctx.set_invoker(&resolver);
        if let Some(m) = &self.modifications {
            ctx.set_modifications(m.as_ref());
        }
        if let Some(sp) = &signed {
            ctx.set_proposal(proposal.channel_id(), sp);
        }
        let init = crate::lifecycle::check_init(&mut ctx, rules.definitions.get(&name), proposal.is_init());
        let result = init.and_then(|()| contract.invoke(&mut ctx, &function, &args));
        match result {
            Ok(out) => {
                let (rwsets, event) = ctx.into_all_results();
                let response = Response { status: 200, message: String::new(), payload: out };
                let event = event.map(|(event_name, payload)| ContractEvent {
                    contract: name.clone(),
                    tx_id: tx_id.to_string(),
                    event_name,
                    payload,
                });
                let version = rules.versions.get(&name).map_or("", String::as_str);
                let rwset = TxRwSet { ns_rwsets: rwsets };
                let payload = response_payload(&proposal, version, &rwset, event.as_ref(), &response)
                    .map_err(|e| EndorseError::BadProposal(e.to_string()))?;
                Ok(Simulation { tx_id: tx_id.to_string(), response, payload: Some(payload), rwset })
            }
            Err(e) => Ok(Simulation {
                tx_id: tx_id.to_string(),
                response: Response { status: e.status(), message: e.to_string(), payload: Vec::new() },
                payload: None,
                rwset: TxRwSet::default(),
            }),
        }
    }

    /// Signs a simulation (or returns the contract's failure as a response with its status and no
    /// endorsement).
    pub fn sign(&self, sim: Simulation) -> ProposalResponse {
        match sim.payload {
            Some(payload) => endorse(self.signer.as_ref(), &sim.response, &payload),
            None => ProposalResponse {
                version: 1,
                response: Some(response_to_fabric(&sim.response)),
                ..Default::default()
            },
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
