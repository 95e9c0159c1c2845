//! Building and taking apart proposals, endorsements and transactions, without any crypto of its own:
//! signing goes through the [`Signer`] trait and verification is the validator's job.

use crate::hash::Hash32;
use crate::proto::{
    Endorsement, Envelope, Header, HeaderType, Invocation, Proposal, ProposalResponse,
    ProposalResponsePayload, SerializedIdentity, SignedProposal, Timestamp, TxPayload,
};
use crate::{ChannelId, TxId};
use prost::Message;

/// Something that signs on behalf of an identity (a client, a peer, an orderer).
pub trait Signer: Send + Sync {
    /// The encoded identity this signer signs as: ipechain's [`SerializedIdentity`] for this module, Fabric's
    /// `msp.SerializedIdentity{mspid, id_bytes = PEM certificate}` ([`crate::fabric::serialize_identity`])
    /// for [`crate::fabric`].
    fn serialized_identity(&self) -> &[u8];
    /// Signs `msg`.
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// Why a transaction could not be assembled or taken apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Bytes did not decode as the expected message.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    /// A required field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// No endorsement was given.
    #[error("no endorsements")]
    NoEndorsements,
    /// The endorsers did not compute the same result.
    #[error("endorsements disagree: endorser {index} returned a different result")]
    Mismatch { index: usize },
    /// An endorser or the contract refused the proposal.
    #[error("endorsement failed with status {status}: {message}")]
    Refused { status: i32, message: String },
}

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, TxError> {
    M::decode(bytes).map_err(|e| TxError::Decode { what, reason: e.to_string() })
}

/// Encodes an identity for use as a creator, endorser or block signer.
pub fn serialize_identity(msp_id: &str, cert_der: &[u8]) -> Vec<u8> {
    SerializedIdentity { msp_id: msp_id.to_owned(), cert_der: cert_der.to_vec(), id_hash: Vec::new() }
        .encode_to_vec()
}

/// Decodes an encoded [`SerializedIdentity`].
pub fn deserialize_identity(bytes: &[u8]) -> Result<SerializedIdentity, TxError> {
    decode("serialized identity", bytes)
}

/// A proposal being put together by a client.
#[derive(Debug, Clone)]
pub struct ProposalBuilder {
    channel: ChannelId,
    contract: String,
    function: String,
    args: Vec<Vec<u8>>,
}

impl ProposalBuilder {
    /// A proposal to call `function` of `contract` on `channel`.
    pub fn new(channel: ChannelId, contract: impl Into<String>, function: impl Into<String>) -> Self {
        ProposalBuilder { channel, contract: contract.into(), function: function.into(), args: Vec::new() }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args(mut self, args: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.args.extend(args);
        self
    }

    /// Signs the proposal. `nonce` must be fresh random bytes (24 are plenty) and `timestamp` the client's
    /// clock; both are arguments so this stays pure.
    pub fn sign(self, signer: &dyn Signer, nonce: Vec<u8>, timestamp: Timestamp) -> (SignedProposal, TxId) {
        let creator = signer.serialized_identity().to_vec();
        self.sign_as(signer, creator, nonce, timestamp)
    }

    /// [`sign`](Self::sign) with `creator` as the header's creator: the signer's full identity or a reference
    /// to it ([`crate::identity::reference`]).
    pub fn sign_as(
        self,
        signer: &dyn Signer,
        creator: Vec<u8>,
        nonce: Vec<u8>,
        timestamp: Timestamp,
    ) -> (SignedProposal, TxId) {
        let tx_id = TxId::compute(&nonce, &creator);
        let proposal = Proposal {
            header: Some(Header {
                channel_id: self.channel.as_str().to_owned(),
                tx_id: tx_id.as_str().to_owned(),
                timestamp: Some(timestamp),
                nonce,
                creator,
                contract: self.contract,
            }),
            input: Some(Invocation { function: self.function, args: self.args }),
        };
        let proposal_bytes = proposal.encode_to_vec();
        let signature = signer.sign(&proposal_bytes);
        (SignedProposal { proposal_bytes, signature }, tx_id)
    }
}

/// The bytes an endorser signs: the response payload followed by its own serialized identity.
pub fn endorsement_message(response_payload: &[u8], endorser: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(response_payload.len() + endorser.len());
    m.extend_from_slice(response_payload);
    m.extend_from_slice(endorser);
    m
}

/// Signs a simulation result as an endorser.
pub fn endorse(signer: &dyn Signer, payload: &ProposalResponsePayload) -> ProposalResponse {
    endorse_as(signer, signer.serialized_identity().to_vec(), payload)
}

/// [`endorse`] naming the endorser by `endorser`: the signer's full identity or a reference to it.
pub fn endorse_as(
    signer: &dyn Signer,
    endorser: Vec<u8>,
    payload: &ProposalResponsePayload,
) -> ProposalResponse {
    let payload_bytes = payload.encode_to_vec();
    let signature = signer.sign(&endorsement_message(&payload_bytes, &endorser));
    ProposalResponse {
        response: payload.response.clone(),
        payload: payload_bytes,
        endorsement: Some(Endorsement { endorser, signature }),
    }
}

/// Puts a proposal and matching endorsements together into a transaction payload (still to be signed by
/// the creator with [`sign_envelope`]). Every endorsement must carry the same result bytes and status < 400.
pub fn assemble(proposal: &SignedProposal, responses: &[ProposalResponse]) -> Result<TxPayload, TxError> {
    let first = responses.first().ok_or(TxError::NoEndorsements)?;
    let mut endorsements = Vec::with_capacity(responses.len());
    for (index, r) in responses.iter().enumerate() {
        let status = r.response.as_ref().map_or(500, |s| s.status);
        if status >= 400 {
            let message = r.response.as_ref().map(|s| s.message.clone()).unwrap_or_default();
            return Err(TxError::Refused { status, message });
        }
        if r.payload != first.payload {
            return Err(TxError::Mismatch { index });
        }
        endorsements.push(r.endorsement.clone().ok_or(TxError::Missing("endorsement"))?);
    }
    Ok(TxPayload {
        header_type: HeaderType::EndorserTransaction as i32,
        proposal_bytes: proposal.proposal_bytes.clone(),
        response_payload: first.payload.clone(),
        endorsements,
        config: None,
    })
}

/// Signs a transaction payload as its creator.
pub fn sign_envelope(signer: &dyn Signer, payload: &TxPayload) -> Envelope {
    let payload = payload.encode_to_vec();
    let signature = signer.sign(&payload);
    Envelope { payload, signature }
}

/// A transaction envelope taken apart (decoding only; nothing verified yet).
#[derive(Debug, Clone)]
pub struct DecodedTx {
    /// The envelope as received.
    pub envelope: Envelope,
    /// Its decoded payload.
    pub payload: TxPayload,
    /// The embedded proposal's header.
    pub header: Header,
    /// The embedded proposal's invocation (empty for config transactions).
    pub input: Invocation,
    /// The decoded response payload (None for config transactions).
    pub response: Option<ProposalResponsePayload>,
}

impl DecodedTx {
    /// Decodes an encoded envelope and its nested messages.
    pub fn decode(envelope_bytes: &[u8]) -> Result<DecodedTx, TxError> {
        let envelope: Envelope = decode("envelope", envelope_bytes)?;
        let payload: TxPayload = decode("transaction payload", &envelope.payload)?;
        if payload.header_type == HeaderType::Config as i32 {
            return Ok(DecodedTx {
                envelope,
                payload,
                header: Header::default(),
                input: Invocation::default(),
                response: None,
            });
        }
        let proposal: Proposal = decode("proposal", &payload.proposal_bytes)?;
        let header = proposal.header.ok_or(TxError::Missing("proposal header"))?;
        let input = proposal.input.unwrap_or_default();
        let response: ProposalResponsePayload =
            decode("proposal response payload", &payload.response_payload)?;
        Ok(DecodedTx { envelope, payload, header, input, response: Some(response) })
    }

    /// The transaction id claimed by the header.
    pub fn tx_id(&self) -> &str {
        &self.header.tx_id
    }

    /// Whether the response payload refers to this transaction's proposal.
    pub fn proposal_hash_matches(&self) -> bool {
        self.response.as_ref().is_some_and(|r| r.proposal_hash == Hash32::of(&self.payload.proposal_bytes).0)
    }
}

/// Hash of a proposal, as recorded in a [`ProposalResponsePayload`].
pub fn proposal_hash(proposal_bytes: &[u8]) -> Vec<u8> {
    Hash32::of(proposal_bytes).0.to_vec()
}
