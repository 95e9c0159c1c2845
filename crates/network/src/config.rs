//! The network description (`network.toml`): who runs what where.

use msp::NetworkSpec;
use serde::{Deserialize, Serialize};

/// A node of the network: its short name in the crypto spec (`orderer0`, `peer0`), organization and
/// endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Short name as in the crypto spec (`peer0`, `orderer1`).
    pub name: String,
    /// The node's organization.
    pub msp_id: String,
    /// Host other nodes and clients reach it at.
    pub host: String,
    /// gRPC port.
    pub port: u16,
}

impl NodeSettings {
    /// `host:port`.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Block cutting (Fabric's BatchSize and BatchTimeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// Most transactions in a block.
    pub max_message_count: u32,
    /// A block is cut before it would exceed this many bytes.
    pub preferred_max_bytes: u32,
    /// Larger transactions are refused.
    pub absolute_max_bytes: u32,
    /// A pending batch is cut after this long.
    pub batch_timeout_ms: u32,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_message_count: 2000,
            preferred_max_bytes: 4 << 20,
            absolute_max_bytes: 16 << 20,
            // 100 ms since 2026-12-05 (docs/ledger-perf.md, eleventh round): alternated against 50 ms on
            // the same build, `bench ledger --apps 2000` 1.04x (4 pairs, p99 326-346 against 337-355 ms)
            // and `bench interworking --apps 1000,2000` 1.05x / 1.10x (3 pairs, ahead in every pair);
            // 25 ms was 0.95x with a higher p99, and at most 500 transactions per block no different.
            // Larger blocks cost less CPU per transaction (8 durable writes, signatures and commits per
            // block). At low load the leader cuts without waiting for the timer (fewer than 32
            // envelopes per timeout, over ten: docs/ordering.md, "How blocks are cut"). Earlier builds
            // measured 50 ms ahead for interworking (1,194 round trips/s against 897-1,092 at 100 ms,
            // 2026-11-26), when per-block costs were smaller than stalls.
            batch_timeout_ms: 100,
        }
    }
}

/// A contract deployed on the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSettings {
    /// Contract name.
    pub name: String,
    /// Endorsement policy (`ANY`, `MAJORITY`, `AND('Org1MSP','Org2MSP')`, `OutOf(1, ...)`).
    pub policy: String,
}

/// The whole network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The channel name.
    pub channel: String,
    /// Organizations, nodes and users to issue certificates for.
    pub crypto: NetworkSpec,
    /// The Raft ordering service (ids 1.. in this order).
    pub orderers: Vec<NodeSettings>,
    /// Peers, one or more per application organization.
    pub peers: Vec<NodeSettings>,
    /// Block cutting.
    #[serde(default)]
    pub batch: BatchSettings,
    /// Contracts and their endorsement policies.
    pub contracts: Vec<ContractSettings>,
    /// Where the bridge gateway runs when it has a host of its own (`ipechain gateway`); `ipechain keys
    /// generate` writes its configuration (`gateway.toml`) either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayHost>,
}

/// The bridge gateway's host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayHost {
    /// Host name or IP address applications and devices reach it at.
    pub host: String,
}

impl NetworkConfig {
    /// The default network of DESIGN §6: 3 orderers (OrdererMSP) on 7050/8050/9050, `peer0` of Org1 on 7051
    /// and of Org2 on 9051, channel `iot`, the `ipe` contract and the `kv` sample, both with policy `ANY`.
    pub fn default_network() -> NetworkConfig {
        let node = |name: &str, msp: &str, port| NodeSettings {
            name: name.into(),
            msp_id: msp.into(),
            host: "127.0.0.1".into(),
            port,
        };
        NetworkConfig {
            channel: "iot".into(),
            crypto: NetworkSpec::default_network(),
            orderers: vec![
                node("orderer0", "OrdererMSP", 7050),
                node("orderer1", "OrdererMSP", 8050),
                node("orderer2", "OrdererMSP", 9050),
            ],
            peers: vec![node("peer0", "Org1MSP", 7051), node("peer0", "Org2MSP", 9051)],
            batch: BatchSettings::default(),
            contracts: vec![
                ContractSettings { name: "ipe".into(), policy: "ANY".into() },
                ContractSettings { name: "kv".into(), policy: "ANY".into() },
            ],
            gateway: None,
        }
    }

    /// Parses `network.toml`.
    pub fn from_toml(s: &str) -> Result<NetworkConfig, toml::de::Error> {
        toml::from_str(s)
    }

    /// Writes `network.toml`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Moves every port by `offset` (several networks on one machine, tests).
    pub fn with_port_offset(mut self, offset: u16) -> NetworkConfig {
        for n in self.orderers.iter_mut().chain(self.peers.iter_mut()) {
            n.port = n.port.wrapping_add(offset);
        }
        self
    }
}
