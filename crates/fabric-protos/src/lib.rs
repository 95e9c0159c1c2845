//! Hyperledger Fabric's client-facing protocol, and Fabric's hashing rules as pure functions.
//!
//! The messages and gRPC stubs are generated at build time from the `.proto` files in `protos/`, written
//! for ipechain from hyperledger/fabric-protos **v0.3.7** (the release that npm `@hyperledger/fabric-protos`
//! 0.3.7 packages, which `@hyperledger/fabric-gateway` uses). Packages, names and field numbers are
//! Fabric's, so the bytes are Fabric's: the integration tests check that against Fabric's own JavaScript
//! encodings.
//!
//! | module | proto package | what |
//! |---|---|---|
//! | [`common`] | `common` | `Envelope`, `Payload`, `Header`, `ChannelHeader`, `SignatureHeader`, `Block*`, `Metadata`, `Status`, `HeaderType`, policies, `MSPPrincipal`, channel configuration (`ConfigEnvelope`, `ConfigGroup`, …) |
//! | [`msp`] | `msp` | `SerializedIdentity`, `MSPConfig`/`FabricMSPConfig` |
//! | [`protos`] | `protos` | proposals, responses, endorsements, transactions, `TxValidationCode`, chaincode events, filtered blocks; services `Endorser`, `Deliver`, `ChaincodeSupport`, `Chaincode` |
//! | [`rwset`], [`kvrwset`] | `rwset`, `kvrwset` | read/write sets |
//! | [`lifecycle`] | `lifecycle` | `_lifecycle` arguments and results: `ApproveChaincodeDefinitionForMyOrgArgs`, `CommitChaincodeDefinitionArgs`, `CheckCommitReadiness*`, `QueryChaincodeDefinition(s)*`, ipechain's `ChaincodeRuntime` |
//! | [`orderer`] | `orderer` | `SeekInfo`, `SeekPosition`, `BroadcastResponse`, `DeliverResponse`; service `AtomicBroadcast`; `ConsensusType`, `BatchSize`, `BatchTimeout` |
//! | [`etcdraft`] | `etcdraft` | `ConfigMetadata`, `Consenter`, `Options`, `BlockMetadata` |
//! | [`gateway`] | `gateway` | service `Gateway` (Endorse, Submit, CommitStatus, Evaluate, ChaincodeEvents), `ErrorDetail` |
//! | [`google::rpc`] | `google.rpc` | `Status` (gRPC error details; see [`error_details`]) |
//!
//! Each service has a client (`<service>_client::<Service>Client<T>`, over any tonic channel) and a server
//! (`<service>_server::<Service>Server`, a tower service); connection setup (TLS, endpoints) is left to the
//! shells. The stubs and [`error_details`] need the default feature `grpc`; without it (as the core crate
//! `ledger-types` uses it) the crate has no tonic and no async runtime in its dependencies. The hashing rules are in [`hash`]; Fabric's
//! seek semantics (Deliver ranges, gateway chaincode-event resumption) in [`seek`]; proposal unpacking and
//! transaction preparation as Fabric's gateway does them in [`tx`].
//!
//! ```
//! use fabric_protos::{hash, msp::SerializedIdentity};
//! use prost::Message;
//!
//! let creator = SerializedIdentity { mspid: "Org1MSP".into(), id_bytes: b"-----BEGIN CERTIFICATE-----...".to_vec().into() };
//! let tx_id = hash::tx_id(b"a 24-byte random nonce..", &creator.encode_to_vec());
//! assert_eq!(tx_id.len(), 64);
//! ```
//!
//! **Architecture Invariant:** no I/O, no clock, no randomness here: nonces, timestamps and keys come in
//! from the caller.

macro_rules! package {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, rustdoc::all)]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}

package!(
    /// Proto package `common`: envelopes, headers, blocks, metadata, policies.
    common,
    "common.rs"
);
package!(
    /// Proto package `msp`: serialized identities.
    msp,
    "msp.rs"
);
package!(
    /// Proto package `protos` (Fabric's `peer/` directory): proposals, transactions, events, services.
    protos,
    "protos.rs"
);
package!(
    /// Proto package `rwset`: a transaction's read/write set per namespace.
    rwset,
    "rwset.rs"
);
package!(
    /// Proto package `kvrwset`: the key/value read/write set of one namespace.
    kvrwset,
    "kvrwset.rs"
);
package!(
    /// Proto package `queryresult`: range and history query results a peer sends a chaincode.
    queryresult,
    "queryresult.rs"
);
package!(
    /// Proto package `lifecycle`: the `_lifecycle` chaincode's arguments and results (chaincode
    /// definitions), with ipechain's `ipechain_runtime` extension.
    lifecycle,
    "lifecycle.rs"
);
package!(
    /// Proto package `orderer`: broadcast and deliver.
    orderer,
    "orderer.rs"
);
package!(
    /// Proto package `etcdraft`: the Raft consensus configuration and block metadata.
    etcdraft,
    "etcdraft.rs"
);
package!(
    /// Proto package `gateway`: the peer's Gateway service.
    gateway,
    "gateway.rs"
);

/// Package `google.rpc`: the `Status` message that carries gRPC error details.
pub mod google {
    package!(
        /// Proto package `google.rpc`.
        rpc,
        "google.rpc.rs"
    );
}

#[cfg(feature = "grpc")]
pub mod error_details;
pub mod hash;
pub mod seek;
pub mod tx;

/// The compiled `protos/` files as an encoded `google.protobuf.FileDescriptorSet` (for gRPC reflection and
/// for checking the services and enums against other implementations).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fabric_protos.fds.bin"));
