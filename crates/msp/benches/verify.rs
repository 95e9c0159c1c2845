//! Signature verification throughput: single vs batch vs parallel batch, Ed25519 and ECDSA P-256.
//!
//! `cargo bench -p msp --bench verify`. Throughput is reported in signatures per second
//! (criterion's "elements"); the ledger benchmark quotes these as the crypto bound.

use std::num::NonZeroUsize;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use msp::{Algorithm, PublicKey, SigningKey, VerifyItem, verify_batch, verify_batch_parallel};
use rand::SeedableRng as _;

const N: usize = 1024;

struct Set {
    keys: Vec<PublicKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Vec<u8>>,
}

fn set(alg: Algorithm) -> Set {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // A few signers, as on a ledger (a handful of clients and endorsers).
    let signers: Vec<_> = (0..16).map(|_| SigningKey::generate(alg, &mut rng)).collect();
    let mut s = Set { keys: Vec::new(), msgs: Vec::new(), sigs: Vec::new() };
    for i in 0..N {
        let k = &signers[i % signers.len()];
        // Roughly the size of a transaction's signed payload.
        let msg = vec![(i % 251) as u8; 300];
        s.sigs.push(k.sign(&msg).to_vec());
        s.keys.push(k.public_key());
        s.msgs.push(msg);
    }
    s
}

fn items(s: &Set) -> Vec<VerifyItem<'_>> {
    (0..N).map(|i| VerifyItem::new(&s.keys[i], &s.msgs[i], &s.sigs[i])).collect()
}

fn bench(c: &mut Criterion) {
    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let s = set(alg);
        let items = items(&s);
        let mut g = c.benchmark_group(format!("verify/{alg}"));
        g.throughput(Throughput::Elements(N as u64));
        g.sample_size(10);
        g.bench_function("single", |b| {
            b.iter(|| {
                for it in &items {
                    it.key.verify(it.msg, it.sig).expect("valid");
                }
            })
        });
        g.bench_function("batch", |b| b.iter(|| verify_batch(&items).expect("valid")));
        for t in [2usize, 4] {
            let n = NonZeroUsize::new(t).expect("non-zero");
            g.bench_with_input(BenchmarkId::new("batch-parallel", t), &n, |b, n| {
                b.iter(|| verify_batch_parallel(&items, *n).expect("valid"))
            });
        }
        g.finish();
    }
}

fn identities(c: &mut Criterion) {
    let now = msp::UnixTime::from_secs(1_780_000_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let m = msp::cryptogen::generate(&msp::NetworkSpec::default_network(), now, &mut rng).expect("generate");
    let cert = m.org("Org1MSP").and_then(|o| o.member("User1")).expect("user").cert_der.clone();
    let mut g = c.benchmark_group("msp");
    g.throughput(Throughput::Elements(1));
    let cached = m.msp_manager().expect("manager");
    g.bench_function("validate-cached", |b| {
        b.iter(|| cached.validate("Org1MSP", &cert, now).expect("valid"))
    });
    let msp = m.org("Org1MSP").expect("org").msp().expect("msp");
    g.bench_function("validate-uncached", |b| b.iter(|| msp.validate(&cert, now).expect("valid")));
    g.finish();
}

/// The raw ed25519-dalek batch equation at several sizes: what [`msp::BATCH_CHUNK`] trades off
/// (bigger amortises better; a failing chunk costs one strict verification per member).
fn chunk_sizes(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let keys: Vec<_> = (0..16).map(|_| ed25519_dalek::SigningKey::generate(&mut rng)).collect();
    let msgs: Vec<Vec<u8>> = (0..512).map(|i| vec![(i % 251) as u8; 300]).collect();
    let sigs: Vec<_> =
        msgs.iter().enumerate().map(|(i, m)| ed25519_dalek::Signer::sign(&keys[i % 16], m)).collect();
    let vks: Vec<_> = (0..512).map(|i| keys[i % 16].verifying_key()).collect();
    let mut g = c.benchmark_group("ed25519-batch-size");
    g.sample_size(10);
    for size in [16usize, 32, 64, 128, 256, 512] {
        g.throughput(Throughput::Elements(512));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| {
                for start in (0..512).step_by(size) {
                    let m: Vec<&[u8]> = msgs[start..start + size].iter().map(Vec::as_slice).collect();
                    ed25519_dalek::verify_batch(&m, &sigs[start..start + size], &vks[start..start + size])
                        .expect("valid");
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, identities, chunk_sizes);
criterion_main!(benches);
