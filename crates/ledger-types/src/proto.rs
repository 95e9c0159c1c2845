//! Wire and storage messages (prost). Field tags are part of the on-disk format: never renumber; add new
//! fields with new tags. See `docs/ledger-format.md`.

#![allow(missing_docs)]

/// An X.509 identity as it travels in proposals, endorsements and block signatures.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SerializedIdentity {
    #[prost(string, tag = "1")]
    pub msp_id: String,
    /// DER-encoded certificate issued by the organization's CA. Empty in an identity reference.
    #[prost(bytes = "vec", tag = "2")]
    pub cert_der: Vec<u8>,
    /// Set instead of `cert_der` in an identity reference: the SHA-256 of the full encoded identity
    /// (`msp_id` + `cert_der`) it stands for, which a valid transaction of an earlier block carried in full
    /// (see `ledger_types::identity`).
    #[prost(bytes = "vec", tag = "3")]
    pub id_hash: Vec<u8>,
}

/// Seconds and nanoseconds since the Unix epoch, as chosen by the proposal's creator.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// What kind of transaction a payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HeaderType {
    /// A contract invocation endorsed by peers.
    EndorserTransaction = 0,
    /// A channel configuration (the genesis block's only transaction).
    Config = 1,
}

/// The header every proposal carries; the transaction inherits it through the embedded proposal bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    /// Hex SHA-256 of `nonce || creator`.
    #[prost(string, tag = "2")]
    pub tx_id: String,
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
    #[prost(bytes = "vec", tag = "4")]
    pub nonce: Vec<u8>,
    /// Encoded [`SerializedIdentity`] of the creator (the tx id is computed over these exact bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub creator: Vec<u8>,
    /// Name of the contract (chaincode) invoked.
    #[prost(string, tag = "6")]
    pub contract: String,
}

/// A contract invocation: function name and arguments.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Invocation {
    #[prost(string, tag = "1")]
    pub function: String,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub args: Vec<Vec<u8>>,
}

/// A request to run a contract.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Proposal {
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
    #[prost(message, optional, tag = "2")]
    pub input: Option<Invocation>,
}

/// A proposal as bytes plus the creator's signature over exactly those bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedProposal {
    #[prost(bytes = "vec", tag = "1")]
    pub proposal_bytes: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// A key's version: the block and the transaction (index in the block) that last wrote it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Version {
    #[prost(uint64, tag = "1")]
    pub block_num: u64,
    #[prost(uint64, tag = "2")]
    pub tx_num: u64,
}

/// A key read during simulation; no version means the key did not exist.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct KvRead {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub version: Option<Version>,
}

/// A key written (or deleted) by a transaction.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct KvWrite {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bool, tag = "2")]
    pub is_delete: bool,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}

/// A range query performed during simulation, re-executed at validation to detect phantoms.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RangeQueryInfo {
    #[prost(string, tag = "1")]
    pub start_key: String,
    /// Exclusive; empty means "to the end of the namespace".
    #[prost(string, tag = "2")]
    pub end_key: String,
    /// False when the contract stopped iterating early; then only the keys in `reads` are checked.
    #[prost(bool, tag = "3")]
    pub itr_exhausted: bool,
    #[prost(message, repeated, tag = "4")]
    pub reads: Vec<KvRead>,
}

/// The reads and writes of one namespace (contract).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NsRwSet {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(message, repeated, tag = "2")]
    pub reads: Vec<KvRead>,
    #[prost(message, repeated, tag = "3")]
    pub range_queries: Vec<RangeQueryInfo>,
    #[prost(message, repeated, tag = "4")]
    pub writes: Vec<KvWrite>,
}

/// A transaction's read/write set.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxRwSet {
    #[prost(message, repeated, tag = "1")]
    pub ns_rwsets: Vec<NsRwSet>,
}

/// The one event a transaction may emit; delivered to listeners only if the transaction is valid.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ContractEvent {
    #[prost(string, tag = "1")]
    pub contract: String,
    #[prost(string, tag = "2")]
    pub tx_id: String,
    #[prost(string, tag = "3")]
    pub event_name: String,
    #[prost(bytes = "vec", tag = "4")]
    pub payload: Vec<u8>,
}

/// A contract's answer: HTTP-like status (200 success, 400/500 errors), message and payload.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Response {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
}

/// What an endorser signs: the proposal's hash and the simulation result.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposalResponsePayload {
    #[prost(bytes = "vec", tag = "1")]
    pub proposal_hash: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub results: Option<TxRwSet>,
    #[prost(message, optional, tag = "3")]
    pub event: Option<ContractEvent>,
    #[prost(message, optional, tag = "4")]
    pub response: Option<Response>,
}

/// An endorser's signature over `proposal_response_payload_bytes || endorser`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Endorsement {
    /// Encoded [`SerializedIdentity`] of the endorsing peer.
    #[prost(bytes = "vec", tag = "1")]
    pub endorser: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// An endorser's reply to a [`SignedProposal`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposalResponse {
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
    /// Encoded [`ProposalResponsePayload`].
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub endorsement: Option<Endorsement>,
}

/// The body of a transaction envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxPayload {
    #[prost(enumeration = "HeaderType", tag = "1")]
    pub header_type: i32,
    /// The signed proposal's `proposal_bytes` (its header names channel, tx id, creator).
    #[prost(bytes = "vec", tag = "2")]
    pub proposal_bytes: Vec<u8>,
    /// Encoded [`ProposalResponsePayload`], identical across all endorsements.
    #[prost(bytes = "vec", tag = "3")]
    pub response_payload: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub endorsements: Vec<Endorsement>,
    /// Only for [`HeaderType::Config`].
    #[prost(message, optional, tag = "5")]
    pub config: Option<ChannelConfig>,
}

/// A transaction as submitted for ordering: payload bytes and the creator's signature over them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// Encoded [`TxPayload`].
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// The hashed part of a block.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BlockHeader {
    #[prost(uint64, tag = "1")]
    pub number: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub previous_hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub data_hash: Vec<u8>,
}

/// The transactions of a block, each an encoded [`Envelope`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BlockData {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub data: Vec<Vec<u8>>,
}

/// A signature over the block header's hash by an orderer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MetadataSignature {
    /// Encoded [`SerializedIdentity`] of the signing orderer.
    #[prost(bytes = "vec", tag = "1")]
    pub signer: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// The unhashed part of a block: orderer signatures, and on peers the validation outcome.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BlockMetadata {
    #[prost(message, repeated, tag = "1")]
    pub signatures: Vec<MetadataSignature>,
    /// One [`crate::TxValidationCode`] per transaction, set by the committing peer.
    #[prost(bytes = "vec", tag = "2")]
    pub tx_validation_codes: Vec<u8>,
    /// Peer only: SHA-256 of (previous commit hash, this block's header hash, validation codes); equal on two
    /// peers iff they validated the whole chain identically.
    #[prost(bytes = "vec", tag = "3")]
    pub commit_hash: Vec<u8>,
    /// Raft term and log index under which the ordering service committed this block (0 for genesis).
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
    #[prost(uint64, tag = "5")]
    pub raft_index: u64,
    /// When the ordering service cut the block (the Raft leader's clock, never before the previous block's
    /// time). Covered by the orderer's signature ([`crate::block::block_signing_bytes`]); transactions are
    /// judged at their own timestamps, which must lie within [`crate::block::TX_TIME_WINDOW_SECS`] of it.
    /// Absent in the genesis block and in blocks cut by versions before it existed.
    #[prost(message, optional, tag = "6")]
    pub timestamp: Option<Timestamp>,
}

/// A block.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Block {
    #[prost(message, optional, tag = "1")]
    pub header: Option<BlockHeader>,
    #[prost(message, optional, tag = "2")]
    pub data: Option<BlockData>,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<BlockMetadata>,
}

/// An organization that is a member of a channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrgConfig {
    #[prost(string, tag = "1")]
    pub msp_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    /// DER root CA certificates that sign this org's identities.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub root_certs: Vec<Vec<u8>>,
    /// DER root CA certificates that sign this org's TLS certificates.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub tls_root_certs: Vec<Vec<u8>>,
    /// `host:port` of this org's peers, for endorsement requests and service discovery.
    #[prost(string, repeated, tag = "5")]
    pub peer_endpoints: Vec<String>,
}

/// A member of the Raft ordering cluster.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Consenter {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub host: String,
    #[prost(uint32, tag = "3")]
    pub port: u32,
    /// Encoded [`SerializedIdentity`] whose key signs the blocks this orderer cuts.
    #[prost(bytes = "vec", tag = "4")]
    pub identity: Vec<u8>,
}

/// How the leader cuts blocks (Fabric's BatchSize and BatchTimeout).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BatchConfig {
    #[prost(uint32, tag = "1")]
    pub max_message_count: u32,
    #[prost(uint32, tag = "2")]
    pub preferred_max_bytes: u32,
    #[prost(uint32, tag = "3")]
    pub absolute_max_bytes: u32,
    #[prost(uint32, tag = "4")]
    pub batch_timeout_ms: u32,
}

/// A contract deployed on the channel and the policy its transactions must satisfy.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContractDefinition {
    #[prost(string, tag = "1")]
    pub name: String,
    /// See [`crate::policy::Policy::parse`], e.g. `ANY`, `MAJORITY`, `AND('Org1MSP','Org2MSP')`.
    #[prost(string, tag = "2")]
    pub endorsement_policy: String,
    #[prost(string, tag = "3")]
    pub version: String,
}

/// A channel's configuration: carried by the genesis block.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelConfig {
    #[prost(string, tag = "1")]
    pub channel_id: String,
    /// Application organizations (peers, clients, gateways).
    #[prost(message, repeated, tag = "2")]
    pub orgs: Vec<OrgConfig>,
    /// Organizations of the ordering service.
    #[prost(message, repeated, tag = "3")]
    pub orderer_orgs: Vec<OrgConfig>,
    #[prost(message, repeated, tag = "4")]
    pub consenters: Vec<Consenter>,
    #[prost(message, optional, tag = "5")]
    pub batch: Option<BatchConfig>,
    /// MSP ids allowed to read blocks and events.
    #[prost(string, repeated, tag = "6")]
    pub readers: Vec<String>,
    /// MSP ids allowed to submit transactions.
    #[prost(string, repeated, tag = "7")]
    pub writers: Vec<String>,
    /// MSP ids allowed to administer the channel.
    #[prost(string, repeated, tag = "8")]
    pub admins: Vec<String>,
    #[prost(message, repeated, tag = "9")]
    pub contracts: Vec<ContractDefinition>,
}
