//! Network assembly tests: generation, loading, and real mutual-TLS gRPC against a started peer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaincode;
mod cluster;
mod fabric_gateway;
mod generate;
mod tls;

use network::{DataDir, NetworkConfig, generate, unix_now};
use rand::SeedableRng;

/// Generates the default network with free ports into a temporary directory.
pub(crate) fn generated(seed: u64) -> (tempfile::TempDir, DataDir, NetworkConfig) {
    generated_with(seed, msp::Algorithm::Ed25519)
}

/// The default network with signing keys of `alg` for every node and user.
pub(crate) fn generated_with(seed: u64, alg: msp::Algorithm) -> (tempfile::TempDir, DataDir, NetworkConfig) {
    generated_custom(seed, |net| net.crypto.key_algorithm = alg)
}

/// The default network as `edit` changes it, with free ports.
pub(crate) fn generated_custom(
    seed: u64,
    edit: impl FnOnce(&mut NetworkConfig),
) -> (tempfile::TempDir, DataDir, NetworkConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("net"));
    let mut net = NetworkConfig::default_network();
    edit(&mut net);
    for n in net.orderers.iter_mut().chain(net.peers.iter_mut()) {
        n.port = test_support::free_tcp_port();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    generate(&dir, &net, unix_now(), &mut rng).unwrap();
    (tmp, dir, net)
}

/// The contracts the peers of these tests have built in: the IPE and the `kv` sample.
pub(crate) fn installed_contracts() -> Vec<std::sync::Arc<dyn contract::Contract>> {
    vec![std::sync::Arc::new(ipe::IpeContract::default()), std::sync::Arc::new(contract::samples::KvContract)]
}
