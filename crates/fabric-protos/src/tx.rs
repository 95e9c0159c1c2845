//! Reading chaincode proposals and building transactions exactly as Fabric's gateway does
//! (`getChannelAndChaincodeFromSignedProposal` and `prepareTransaction` in `internal/pkg/gateway`).

use crate::common::{ChannelHeader, Envelope, Header, Payload, SignatureHeader};
use crate::protos::{
    ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeInvocationSpec, ChaincodeProposalPayload,
    Proposal, SignedProposal, Transaction, TransactionAction,
};
use prost::Message;

/// A signed chaincode proposal, decoded layer by layer.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpackedProposal {
    /// The proposal (its `header` and `payload` still as the signed bytes).
    pub proposal: Proposal,
    /// `proposal.header`, decoded.
    pub header: Header,
    /// `header.channel_header`, decoded.
    pub channel_header: ChannelHeader,
    /// `header.signature_header`, decoded.
    pub signature_header: SignatureHeader,
    /// `proposal.payload`, decoded.
    pub payload: ChaincodeProposalPayload,
    /// `payload.input`, decoded.
    pub invocation: ChaincodeInvocationSpec,
}

impl UnpackedProposal {
    /// The channel the proposal is for (never empty).
    pub fn channel_id(&self) -> &str {
        &self.channel_header.channel_id
    }

    /// The chaincode invoked (never empty).
    pub fn chaincode_name(&self) -> &str {
        self.invocation.chaincode_spec.as_ref().and_then(|s| s.chaincode_id.as_ref()).map_or("", |c| &c.name)
    }

    /// The invocation's arguments; by convention the first is the function name.
    pub fn args(&self) -> &[prost::bytes::Bytes] {
        self.invocation.chaincode_spec.as_ref().and_then(|s| s.input.as_ref()).map_or(&[], |i| &i.args)
    }

    /// Whether the invocation is the chaincode's initialization (`ChaincodeInput.is_init`, Fabric's
    /// `--isInit`).
    pub fn is_init(&self) -> bool {
        self.invocation.chaincode_spec.as_ref().and_then(|s| s.input.as_ref()).is_some_and(|i| i.is_init)
    }

    /// Whether the proposal carries transient data (Fabric's gateway then restricts the endorsers).
    pub fn has_transient_data(&self) -> bool {
        !self.payload.transient_map.is_empty()
    }
}

/// Why a signed proposal cannot be unpacked; the messages are Fabric's (its gateway answers
/// `INVALID_ARGUMENT` "failed to unpack transaction proposal: <message>").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    /// No proposal bytes.
    #[error("a signed proposal is required")]
    Missing,
    /// A layer does not decode.
    #[error("error unmarshalling {what}: {source}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// The channel header names no channel.
    #[error("no channel id provided")]
    NoChannel,
    /// The invocation has no chaincode spec.
    #[error("no chaincode spec is provided, channel id [{0}]")]
    NoChaincodeSpec(String),
    /// The chaincode spec has no chaincode id.
    #[error("no chaincode id is provided, channel id [{0}]")]
    NoChaincodeId(String),
    /// The chaincode id has no name.
    #[error("no chaincode name is provided, channel id [{0}]")]
    NoChaincodeName(String),
}

/// Decodes one layer from shared bytes: its `bytes` fields are slices of them, not copies.
fn decode<M: Message + Default>(what: &'static str, bytes: prost::bytes::Bytes) -> Result<M, UnpackError> {
    M::decode(bytes).map_err(|source| UnpackError::Decode { what, source })
}

/// Decodes a signed chaincode proposal and checks that it names a channel and a chaincode, as Fabric's
/// gateway does before endorsing or evaluating. The signature is not checked here.
pub fn unpack_proposal(signed: &SignedProposal) -> Result<UnpackedProposal, UnpackError> {
    if signed.proposal_bytes.is_empty() {
        return Err(UnpackError::Missing);
    }
    let proposal: Proposal = decode("Proposal", signed.proposal_bytes.clone())?;
    let header: Header = decode("Header", proposal.header.clone())?;
    let channel_header: ChannelHeader = decode("ChannelHeader", header.channel_header.clone())?;
    let signature_header: SignatureHeader = decode("SignatureHeader", header.signature_header.clone())?;
    let payload: ChaincodeProposalPayload = decode("ChaincodeProposalPayload", proposal.payload.clone())?;
    let invocation: ChaincodeInvocationSpec = decode("ChaincodeInvocationSpec", payload.input.clone())?;
    let channel = &channel_header.channel_id;
    if channel.is_empty() {
        return Err(UnpackError::NoChannel);
    }
    let spec =
        invocation.chaincode_spec.as_ref().ok_or_else(|| UnpackError::NoChaincodeSpec(channel.clone()))?;
    let id = spec.chaincode_id.as_ref().ok_or_else(|| UnpackError::NoChaincodeId(channel.clone()))?;
    if id.name.is_empty() {
        return Err(UnpackError::NoChaincodeName(channel.clone()));
    }
    Ok(UnpackedProposal { proposal, header, channel_header, signature_header, payload, invocation })
}

/// The prepared (unsigned) transaction for an endorsed proposal, as Fabric's gateway returns it from
/// `Endorse`: `Payload{header, data = Transaction{[TransactionAction{header = the proposal's signature
/// header, payload = ChaincodeActionPayload{proposal payload without transient map, action}]}}}`. The client
/// signs `Envelope.payload`.
pub fn prepare_transaction(
    header: &Header,
    payload: &ChaincodeProposalPayload,
    action: ChaincodeEndorsedAction,
) -> Envelope {
    let for_tx = ChaincodeProposalPayload { input: payload.input.clone(), transient_map: Default::default() };
    let cap = ChaincodeActionPayload {
        chaincode_proposal_payload: for_tx.encode_to_vec().into(),
        action: Some(action),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: cap.encode_to_vec().into(),
        }],
    };
    let payload = Payload { header: Some(header.clone()), data: tx.encode_to_vec().into() };
    Envelope { payload: payload.encode_to_vec().into(), signature: Default::default() }
}

#[cfg(test)]
mod tests;
