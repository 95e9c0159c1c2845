//! Integration tests of the `msp` crate: cryptogen output, chain validation, the manager's cache.

mod chain;
mod cryptogen;
mod keyfiles;
mod manager;
mod props;
mod tls;

use msp::{CryptoMaterial, NetworkSpec, UnixTime};
use rand::SeedableRng as _;

/// 2026-06-01T00:00:00Z, the generation time of every fixture.
pub(crate) const NOW: UnixTime = UnixTime::from_secs(1_780_272_000);

pub(crate) fn network(seed: u64) -> CryptoMaterial {
    network_of(&NetworkSpec::default_network(), seed)
}

pub(crate) fn network_of(spec: &NetworkSpec, seed: u64) -> CryptoMaterial {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    msp::cryptogen::generate(spec, NOW, &mut rng).expect("generate")
}
