//! ipechain's own messages: the in-memory model of read/write sets, events and responses (converted to and
//! from Fabric's by [`crate::tx`]), the block metadata extensions of docs/ledger-format.md, and the in-memory
//! view of the channel configuration (the genesis block carries Fabric's `common.ConfigEnvelope`, converted
//! to and from [`ChannelConfig`] by [`crate::config`]). Everything that travels or is stored is Fabric's
//! (`fabric_protos`), re-exported here under the names the ledger uses. Field tags are part of the on-disk
//! format: never renumber; add new fields with new tags. See `docs/ledger-format.md`.

#![allow(missing_docs)]

pub use fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, Header, HeaderType, Metadata,
    MetadataSignature, Payload, SignatureHeader,
};
pub use fabric_protos::msp::SerializedIdentity;
pub use fabric_protos::protos::{ProposalResponse, SignedProposal};

/// ipechain's `OrdererBlockMetadata.consenter_metadata` (Fabric's etcdraft puts its own `BlockMetadata`
/// there; no Fabric client reads it): the time the ordering service gave the block. It is inside
/// `metadata[SIGNATURES].value`, so every orderer signature covers it.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ConsenterMetadata {
    /// When the ordering service cut the block (the Raft leader's clock, never before the previous block's
    /// time). Transactions are judged at their own timestamps, which must lie within
    /// [`crate::block::TX_TIME_WINDOW_SECS`] of it. Absent in the genesis block.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
}

/// ipechain's `metadata[ORDERER]` entry (index 3, deprecated and unused in Fabric), as `Metadata.value`:
/// the Raft term and log index under which the ordering service committed the block. Set by each orderer
/// when it applies the log entry, after the leader signed the block, so not covered by a signature.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RaftPosition {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
}

/// Seconds and nanoseconds since the Unix epoch, as chosen by the proposal's creator.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
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

/// An organization that is a member of a channel. In the genesis block: a group under `/Channel/Application`
/// or `/Channel/Orderer` named `name`, with its `MSP` value (`FabricMSPConfig{name = msp_id, root_certs,
/// tls_root_certs}` as PEM) and `AnchorPeers` (application) or `Endpoints` (orderer) from `peer_endpoints`.
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
    /// `host:port` of this org's peers, for endorsement requests and service discovery (Fabric's anchor
    /// peers); for an orderer organization, its orderers' `host:port` (Fabric's `Endpoints`).
    #[prost(string, repeated, tag = "5")]
    pub peer_endpoints: Vec<String>,
}

/// A member of the Raft ordering cluster. In the genesis block: an entry of Fabric 3's consenter mapping
/// (`/Channel/Orderer` value `Orderers`, `common.Consenter{id, host, port, msp_id, identity}`) and of the
/// etcdraft consenters (`ConsensusType.metadata`, host and port).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Consenter {
    /// The Raft node id (at most `u32::MAX`: Fabric's consenter ids are 32-bit).
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

/// A contract deployed on the channel and the policy its transactions must satisfy. Fabric keeps chaincode
/// definitions in the `_lifecycle` state namespace, not in the channel configuration, so these travel in
/// ipechain's extension of the genesis `ConfigEnvelope` ([`IpechainConfigExtension`]).
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

/// A channel's configuration as ipechain uses it: the parsed view of the genesis block's Fabric
/// `common.ConfigEnvelope` ([`crate::config::genesis_block`], [`crate::config::config_from_genesis`]).
/// Until 2026-12 its prost encoding was the genesis payload itself; it is decoded now only to recognize
/// such a block and say what to do about it.
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
    /// MSP ids allowed to read blocks and events (application organizations only; in the genesis block each
    /// organization's `Readers` policy: `OR('<msp>.member')` for these, reject-all for the others).
    #[prost(string, repeated, tag = "6")]
    pub readers: Vec<String>,
    /// MSP ids allowed to submit transactions (each organization's `Writers` policy, as for `readers`).
    #[prost(string, repeated, tag = "7")]
    pub writers: Vec<String>,
    /// MSP ids allowed to administer the channel (each organization's `Admins` policy: `OR('<msp>.admin')`
    /// for these, reject-all for the others).
    #[prost(string, repeated, tag = "8")]
    pub admins: Vec<String>,
    #[prost(message, repeated, tag = "9")]
    pub contracts: Vec<ContractDefinition>,
}

/// ipechain's extension of the genesis block's `common.ConfigEnvelope`: field 1000 of the same message
/// (Fabric's uses 1 and 2), appended after Fabric's fields. Fabric's decoders skip it (an unknown field), so
/// Fabric's tooling reads a pure Fabric configuration tree; the bytes are inside the envelope, so the data
/// hash covers them. Absent when the channel defines no contracts. See docs/ledger-format.md ("Blocks").
#[derive(Clone, PartialEq, prost::Message)]
pub struct IpechainConfigExtension {
    /// The contracts the channel starts with (Fabric keeps chaincode definitions in `_lifecycle` state).
    #[prost(message, repeated, tag = "1000")]
    pub contracts: Vec<ContractDefinition>,
}
