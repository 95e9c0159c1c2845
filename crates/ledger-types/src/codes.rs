//! Transaction validation codes: Hyperledger Fabric's `TxValidationCode` (`peer/transaction.proto`), the same
//! numbers and names, the subset ipechain's validator assigns. Stored as one byte per transaction in the block metadata.

use std::fmt;

/// The outcome of validating one transaction of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
#[non_exhaustive]
pub enum TxValidationCode {
    /// Valid: its writes were applied.
    Valid = 0,
    /// The envelope was empty.
    NilEnvelope = 1,
    /// The envelope, payload or proposal could not be decoded.
    BadPayload = 2,
    /// The header is missing or malformed (channel, tx id, creator).
    BadCommonHeader = 3,
    /// The creator is not a valid member of the channel (unknown CA, expired at the transaction's time), not
    /// a writer, or its signature over the envelope does not verify (Fabric reports all of these so).
    BadCreatorSignature = 4,
    /// The endorsed action is inconsistent (proposal hash mismatch, endorsement malformed).
    InvalidEndorserTransaction = 5,
    /// A configuration transaction outside the genesis block.
    InvalidConfigTransaction = 6,
    /// The payload type is not supported.
    UnsupportedTxPayload = 7,
    /// The tx id is not the hash of nonce and creator.
    BadProposalTxId = 8,
    /// A transaction with this id is already in the ledger (or earlier in this block).
    DuplicateTxId = 9,
    /// The endorsements do not satisfy the contract's endorsement policy.
    EndorsementPolicyFailure = 10,
    /// A key read during simulation has changed since.
    MvccReadConflict = 11,
    /// A range read during simulation would now return different keys.
    PhantomReadConflict = 12,
    /// Unknown transaction type.
    UnknownTxType = 13,
    /// The transaction names another channel.
    TargetChainNotFound = 14,
    /// The channel header's timestamp is missing or further than [`crate::block::TX_TIME_WINDOW_SECS`] from
    /// the block's time: the transaction's certificates cannot be judged at a time the orderers vouch for.
    BadChannelHeader = 20,
    /// The read/write set could not be decoded, or uses what ipechain does not support (private data, key
    /// metadata, Merkle summaries).
    BadRwset = 22,
    /// The transaction's writes touch a namespace other than its chaincode's.
    IllegalWriteset = 23,
    /// The chaincode named in the transaction is not defined on the channel.
    InvalidChaincode = 25,
    /// Not validated yet (the orderer's copy of a block).
    NotValidated = 254,
    /// Invalid for another reason; among them, an endorsed chaincode response with an error status (Fabric's
    /// gateway never submits one, so only a crafted transaction carries it).
    InvalidOtherReason = 255,
}

impl TxValidationCode {
    /// All codes, for decoding.
    pub const ALL: [TxValidationCode; 21] = [
        Self::Valid,
        Self::NilEnvelope,
        Self::BadPayload,
        Self::BadCommonHeader,
        Self::BadCreatorSignature,
        Self::InvalidEndorserTransaction,
        Self::InvalidConfigTransaction,
        Self::UnsupportedTxPayload,
        Self::BadProposalTxId,
        Self::DuplicateTxId,
        Self::EndorsementPolicyFailure,
        Self::MvccReadConflict,
        Self::PhantomReadConflict,
        Self::UnknownTxType,
        Self::TargetChainNotFound,
        Self::BadChannelHeader,
        Self::BadRwset,
        Self::IllegalWriteset,
        Self::InvalidChaincode,
        Self::NotValidated,
        Self::InvalidOtherReason,
    ];

    /// The stored byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Decodes a stored byte; unknown values are `None`.
    pub fn from_u8(b: u8) -> Option<TxValidationCode> {
        Self::ALL.iter().copied().find(|c| c.as_u8() == b)
    }

    /// The code of a protobuf `protos.TxValidationCode` field (an `i32` on the wire), if it is one.
    pub fn from_i32(n: i32) -> Option<TxValidationCode> {
        u8::try_from(n).ok().and_then(Self::from_u8)
    }

    /// Fabric's upper-case name, e.g. `MVCC_READ_CONFLICT`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NilEnvelope => "NIL_ENVELOPE",
            Self::BadPayload => "BAD_PAYLOAD",
            Self::BadCommonHeader => "BAD_COMMON_HEADER",
            Self::BadCreatorSignature => "BAD_CREATOR_SIGNATURE",
            Self::InvalidEndorserTransaction => "INVALID_ENDORSER_TRANSACTION",
            Self::InvalidConfigTransaction => "INVALID_CONFIG_TRANSACTION",
            Self::UnsupportedTxPayload => "UNSUPPORTED_TX_PAYLOAD",
            Self::BadProposalTxId => "BAD_PROPOSAL_TXID",
            Self::DuplicateTxId => "DUPLICATE_TXID",
            Self::EndorsementPolicyFailure => "ENDORSEMENT_POLICY_FAILURE",
            Self::MvccReadConflict => "MVCC_READ_CONFLICT",
            Self::PhantomReadConflict => "PHANTOM_READ_CONFLICT",
            Self::UnknownTxType => "UNKNOWN_TX_TYPE",
            Self::TargetChainNotFound => "TARGET_CHAIN_NOT_FOUND",
            Self::BadChannelHeader => "BAD_CHANNEL_HEADER",
            Self::BadRwset => "BAD_RWSET",
            Self::IllegalWriteset => "ILLEGAL_WRITESET",
            Self::InvalidChaincode => "INVALID_CHAINCODE",
            Self::NotValidated => "NOT_VALIDATED",
            Self::InvalidOtherReason => "INVALID_OTHER_REASON",
        }
    }

    /// True only for [`TxValidationCode::Valid`].
    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }
}

impl fmt::Display for TxValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
