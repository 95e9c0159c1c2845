//! Signatures and verifications per CPU-second, measured with the thread's own CPU time
//! (`/proc/thread-self/schedstat`), so the figure holds on a machine shared with other builds.
//!
//! `cargo run --release -p msp --example verify_rate`

#![allow(clippy::print_stdout)]

use msp::{Algorithm, PublicKey, SigningKey, VerifyItem, verify_batch};
use rand::SeedableRng as _;

const N: usize = 1024;

/// Nanoseconds this thread has spent on a CPU (Linux).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("Linux /proc/thread-self/schedstat")
}

fn rate(label: &str, rounds: usize, mut f: impl FnMut()) {
    f(); // warm up
    let start = cpu_ns();
    for _ in 0..rounds {
        f();
    }
    let secs = (cpu_ns() - start) as f64 / 1e9;
    println!("{label:<28} {:>10.0} operations per CPU-second", (rounds * N) as f64 / secs);
}

fn main() {
    for (alg, rounds) in [(Algorithm::Ed25519, 40), (Algorithm::EcdsaP256, 8)] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let signers: Vec<_> = (0..16).map(|_| SigningKey::generate(alg, &mut rng)).collect();
        let msgs: Vec<Vec<u8>> = (0..N).map(|i| vec![(i % 251) as u8; 300]).collect();
        let sigs: Vec<Vec<u8>> = (0..N).map(|i| signers[i % 16].sign(&msgs[i]).to_vec()).collect();
        let keys: Vec<PublicKey> = (0..N).map(|i| signers[i % 16].public_key()).collect();
        let items: Vec<_> = (0..N).map(|i| VerifyItem::new(&keys[i], &msgs[i], &sigs[i])).collect();
        rate(&format!("{alg} sign (per CPU-s)"), rounds, || {
            for (i, m) in msgs.iter().enumerate() {
                std::hint::black_box(signers[i % 16].sign(m));
            }
        });
        rate(&format!("{alg} single"), rounds, || {
            for it in &items {
                it.key.verify(it.msg, it.sig).expect("valid");
            }
        });
        rate(&format!("{alg} batch"), rounds, || verify_batch(&items).expect("valid"));
        if alg == Algorithm::Ed25519 {
            // Batch equations by chunk size: ed25519-zebra's cofactored one (ZIP-215, what BATCH_CHUNK
            // trades off) beside ed25519-dalek's cofactorless one (the rule before ZIP-215, for comparison).
            let raw: Vec<[u8; 32]> = keys
                .iter()
                .map(|k| match k {
                    PublicKey::Ed25519(k) => *k.as_bytes(),
                    PublicKey::EcdsaP256(_) => unreachable!("ed25519 set"),
                })
                .collect();
            let dalek_sigs: Vec<_> =
                sigs.iter().map(|s| ed25519_dalek::Signature::from_slice(s).expect("64 bytes")).collect();
            let dalek_vks: Vec<_> =
                raw.iter().map(|b| ed25519_dalek::VerifyingKey::from_bytes(b).expect("point")).collect();
            for size in [16usize, 32, 64, 128, 256, 1024] {
                rate(&format!("  zebra chunk {size}"), rounds, || {
                    for start in (0..N).step_by(size) {
                        let mut v = ed25519_zebra::batch::Verifier::new();
                        for i in start..start + size {
                            let sig: &[u8; 64] = sigs[i].as_slice().try_into().expect("64 bytes");
                            v.queue((
                                ed25519_zebra::VerificationKeyBytes::from(raw[i]),
                                ed25519_zebra::Signature::from_bytes(sig),
                                msgs[i].as_slice(),
                            ));
                        }
                        v.verify(rand_core::OsRng).expect("valid");
                    }
                });
                rate(&format!("  dalek chunk {size}"), rounds, || {
                    for start in (0..N).step_by(size) {
                        let m: Vec<&[u8]> = msgs[start..start + size].iter().map(Vec::as_slice).collect();
                        ed25519_dalek::verify_batch(
                            &m,
                            &dalek_sigs[start..start + size],
                            &dalek_vks[start..start + size],
                        )
                        .expect("valid");
                    }
                });
            }
        }
    }
}
