//! The signature rule under attack: adversarial Ed25519 and ECDSA vectors get the same verdict from
//! single verification and from batches of every size 1–256 on 1, 2, 3, 4 and 8 threads, and the
//! keys no honest generator makes are refused when parsed.

use std::num::NonZeroUsize;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use sha2::{Digest as _, Sha512};

use crate::sig::Ed25519Key;
use crate::{Algorithm, KeyError, PublicKey, SigError, SigningKey, VerifyItem, verify_each};

/// The group order ℓ, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// p + 1 = 2²⁵⁵ − 18: a non-canonical encoding of y = 1 (the identity point).
fn identity_non_canonical() -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[0] = 0xee;
    b[31] = 0x7f;
    b
}

fn k_of(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn sig_bytes(r: [u8; 32], s: [u8; 32]) -> Vec<u8> {
    [r, s].concat()
}

fn add_le(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// One adversarial case: a key (checked or not), a message, a signature, and the verdict the rule gives.
struct Case {
    name: &'static str,
    key: PublicKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
    verdict: Result<(), SigError>,
}

/// Signs `msg` for key `a_point` (secret `a`) with nonce point `r_point` (secret `r`, plus whatever torsion
/// the caller added), encoding `R` as `r_enc`.
fn forge(a: Scalar, a_enc: [u8; 32], r: Scalar, r_enc: [u8; 32], msg: &[u8]) -> Vec<u8> {
    let k = k_of(&r_enc, &a_enc, msg);
    sig_bytes(r_enc, (r + k * a).to_bytes())
}

fn ed25519_cases(rng: &mut StdRng) -> Vec<Case> {
    let t = EIGHT_TORSION[1]; // a point of order 8
    let mut cases = Vec::new();
    let scalar = |rng: &mut StdRng| {
        let mut b = [0u8; 64];
        rand::RngCore::fill_bytes(rng, &mut b);
        Scalar::from_bytes_mod_order_wide(&b)
    };
    let unchecked = |p: [u8; 32]| PublicKey::Ed25519(Ed25519Key::unchecked(p).expect("a curve point"));

    let a = scalar(rng);
    let a_enc = (B * a).compress().to_bytes();
    let honest = unchecked(a_enc);
    let msg = b"transfer 10 from alice to bob".to_vec();

    // 1. An honest signature.
    let r = scalar(rng);
    let good = forge(a, a_enc, r, (B * r).compress().to_bytes(), &msg);
    cases.push(Case {
        name: "honest",
        key: honest.clone(),
        msg: msg.clone(),
        sig: good.clone(),
        verdict: Ok(()),
    });

    // 2. R with a torsion component: s = r + k·a for R = rB + T. Cofactorless (strict) verification refuses
    //    it; the cofactored equation accepts it; a cofactorless batch accepted it 1 time in 8.
    let r = scalar(rng);
    let sig = forge(a, a_enc, r, (B * r + t).compress().to_bytes(), &msg);
    cases.push(Case { name: "R with torsion", key: honest.clone(), msg: msg.clone(), sig, verdict: Ok(()) });

    // 3. Non-canonical S (s + ℓ): refused by every path.
    let mut sig = good.clone();
    let s: [u8; 32] = good[32..].try_into().expect("32");
    sig[32..].copy_from_slice(&add_le(s, ELL));
    cases.push(Case {
        name: "non-canonical S",
        key: honest.clone(),
        msg: msg.clone(),
        sig,
        verdict: Err(SigError::Invalid),
    });

    // 4. Small-order R (the identity), canonically and non-canonically encoded: s = k·a.
    for (name, r_enc) in [
        ("small-order R", EdwardsPoint::default().compress().to_bytes()),
        ("non-canonical small-order R", identity_non_canonical()),
    ] {
        let sig = forge(a, a_enc, Scalar::ZERO, r_enc, &msg);
        cases.push(Case { name, key: honest.clone(), msg: msg.clone(), sig, verdict: Ok(()) });
    }

    // 5. A mixed-order key A = aB + T (refused when parsed; here unchecked to test the equation).
    let mixed_enc = (B * a + t).compress().to_bytes();
    let r = scalar(rng);
    let sig = forge(a, mixed_enc, r, (B * r).compress().to_bytes(), &msg);
    cases.push(Case {
        name: "mixed-order key",
        key: unchecked(mixed_enc),
        msg: msg.clone(),
        sig,
        verdict: Ok(()),
    });

    // 6. A small-order key: R = rB, s = r verifies for ANY message under the cofactored equation.
    let small_enc = t.compress().to_bytes();
    let r = scalar(rng);
    let sig = sig_bytes((B * r).compress().to_bytes(), r.to_bytes());
    cases.push(Case {
        name: "small-order key",
        key: unchecked(small_enc),
        msg: msg.clone(),
        sig,
        verdict: Ok(()),
    });

    // 7. Wrong message, wrong key, malformed length.
    cases.push(Case {
        name: "wrong message",
        key: honest.clone(),
        msg: b"transfer 99 from alice to bob".to_vec(),
        sig: good.clone(),
        verdict: Err(SigError::Invalid),
    });
    let other = scalar(rng);
    cases.push(Case {
        name: "wrong key",
        key: unchecked((B * other).compress().to_bytes()),
        msg: msg.clone(),
        sig: good.clone(),
        verdict: Err(SigError::Invalid),
    });
    cases.push(Case {
        name: "short signature",
        key: honest,
        msg,
        sig: good[..63].to_vec(),
        verdict: Err(SigError::Malformed),
    });
    cases
}

fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    while v.len() > 1 && v[0] == 0 && v[1] & 0x80 == 0 {
        v.remove(0);
    }
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    [vec![0x02, v.len() as u8], v].concat()
}

fn ecdsa_cases(rng: &mut StdRng) -> Vec<Case> {
    let key = SigningKey::generate(Algorithm::EcdsaP256, rng);
    let public = key.public_key();
    let msg = b"set /3303/0/5700 21.5".to_vec();
    let good = key.sign(&msg).to_vec();
    let parsed = p256::ecdsa::Signature::from_der(&good).expect("der");
    let (r, s) = parsed.split_scalars();
    let seq = |body: Vec<u8>| [vec![0x30, body.len() as u8], body].concat();
    let r_bytes = r.to_bytes().to_vec();
    let s_bytes = s.to_bytes().to_vec();
    let high =
        p256::ecdsa::Signature::from_scalars(r, -*s.as_ref()).expect("scalars").to_der().as_bytes().to_vec();
    // r padded with a superfluous leading zero (not minimal DER).
    let padded_r = [vec![0x02, (r_bytes.len() + 1) as u8, 0], r_bytes.clone()].concat();
    let non_minimal = seq([padded_r, der_int(&s_bytes)].concat());
    // The sequence length in long form (0x81 nn): BER, not DER.
    let body = [der_int(&r_bytes), der_int(&s_bytes)].concat();
    let long_form = [vec![0x30, 0x81, body.len() as u8], body.clone()].concat();
    let trailing = [good.clone(), vec![0]].concat();
    let zero_r = seq([der_int(&[0]), der_int(&s_bytes)].concat());
    let case = |name, sig, verdict| Case { name, key: public.clone(), msg: msg.clone(), sig, verdict };
    vec![
        case("ecdsa honest", good, Ok(())),
        case("ecdsa high-S", high, Err(SigError::HighS)),
        case("ecdsa non-minimal integer", non_minimal, Err(SigError::Malformed)),
        case("ecdsa long-form length", long_form, Err(SigError::Malformed)),
        case("ecdsa trailing byte", trailing, Err(SigError::Malformed)),
        case("ecdsa r = 0", zero_r, Err(SigError::Malformed)),
    ]
}

fn all_cases() -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(215);
    let mut cases = ed25519_cases(&mut rng);
    cases.extend(ecdsa_cases(&mut rng));
    cases
}

#[test]
fn each_adversarial_case_gets_the_rules_verdict_alone() {
    for c in all_cases() {
        assert_eq!(c.key.verify(&c.msg, &c.sig), c.verdict, "{}", c.name);
    }
}

#[test]
fn batches_of_every_size_and_thread_count_agree_with_single_verification() {
    let cases = all_cases();
    let single: Vec<Result<(), SigError>> = cases.iter().map(|c| c.key.verify(&c.msg, &c.sig)).collect();
    // Many honest signers so that batches also coalesce and mix keys.
    let mut rng = StdRng::seed_from_u64(9);
    let signers: Vec<SigningKey> =
        (0..5).map(|_| SigningKey::generate(Algorithm::Ed25519, &mut rng)).collect();
    let honest: Vec<(PublicKey, Vec<u8>, Vec<u8>)> = (0..64)
        .map(|i| {
            let k = &signers[i % signers.len()];
            let msg = format!("honest {i}").into_bytes();
            (k.public_key(), msg.clone(), k.sign(&msg).to_vec())
        })
        .collect();
    for n in 1..=256usize {
        // Item i of the batch of size n: an adversarial case every third slot (which one and where depends
        // on n), honest items between.
        let mut want = Vec::with_capacity(n);
        let items: Vec<VerifyItem<'_>> = (0..n)
            .map(|i| {
                if (i + n) % 3 == 0 {
                    let c = (i * 7 + n) % cases.len();
                    want.push(single[c]);
                    VerifyItem::new(&cases[c].key, &cases[c].msg, &cases[c].sig)
                } else {
                    let (k, m, s) = &honest[(i + n) % honest.len()];
                    want.push(Ok(()));
                    VerifyItem::new(k, m, s)
                }
            })
            .collect();
        for threads in [1, 2, 3, 4, 8] {
            let got = verify_each(&items, NonZeroUsize::new(threads).expect("non-zero"));
            assert_eq!(got, want, "batch of {n} on {threads} threads");
        }
    }
}

#[test]
fn keys_no_honest_generator_makes_are_refused_when_parsed() {
    let t = EIGHT_TORSION[1];
    let a = Scalar::from(0x1234_5678u64);
    let spki = |raw: [u8; 32]| [hex::decode("302a300506032b6570032100").expect("hex"), raw.to_vec()].concat();
    assert_eq!(PublicKey::from_spki_der(&spki(t.compress().to_bytes())), Err(KeyError::WeakKey));
    assert_eq!(PublicKey::from_spki_der(&spki(identity_non_canonical())), Err(KeyError::WeakKey));
    assert_eq!(PublicKey::from_spki_der(&spki((B * a + t).compress().to_bytes())), Err(KeyError::TorsionKey));
    // A non-canonical encoding (y + p, which fits in 255 bits only for y < 19) of a point that is not of
    // small order: refused as malformed before any other check. (No point with such a small y is
    // torsion-free, so these aliases are all of mixed order.)
    let mut found = false;
    for y in 2u8..19 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        let Some(p) = curve25519_dalek::edwards::CompressedEdwardsY(canonical).decompress() else { continue };
        if p.is_small_order() {
            continue;
        }
        let mut alias = [0xffu8; 32];
        alias[0] = 0xed + y; // p + y, little-endian: p = 2^255 - 19 = ed ff .. ff 7f
        alias[31] = 0x7f;
        assert!(
            matches!(PublicKey::from_spki_der(&spki(alias)), Err(KeyError::Malformed(_))),
            "non-canonical alias of y = {y}"
        );
        found = true;
    }
    assert!(found, "no point of large order with a small y: pick another alias");
    assert!(PublicKey::from_spki_der(&spki((B * a).compress().to_bytes())).is_ok());

    // P-256: a point off the curve and the point at infinity are refused.
    let p256_spki = |sec1: &[u8]| {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").expect("hex");
        der.extend_from_slice(sec1);
        der
    };
    let key = SigningKey::generate(Algorithm::EcdsaP256, &mut StdRng::seed_from_u64(3));
    let good = key.public_key().to_spki_der();
    assert!(PublicKey::from_spki_der(&good).is_ok());
    let mut off_curve = good[good.len() - 65..].to_vec();
    off_curve[64] ^= 1;
    assert!(matches!(PublicKey::from_spki_der(&p256_spki(&off_curve)), Err(KeyError::Malformed(_))));
    let mut zero = vec![0x04];
    zero.extend_from_slice(&[0u8; 64]);
    assert!(matches!(PublicKey::from_spki_der(&p256_spki(&zero)), Err(KeyError::Malformed(_))));
}
