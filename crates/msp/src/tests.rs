//! Unit tests of signatures and batch verification.

use std::num::NonZeroUsize;

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use crate::{
    Algorithm, KeyError, PublicKey, SigError, SigningKey, VerifyItem, verify_batch, verify_batch_parallel,
};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

/// RFC 8032 §7.1, TEST 1–3: (secret key, public key, message, signature).
const RFC8032: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn rfc8032_vectors_sign_and_verify() {
    for (sk, pk, msg, sig) in RFC8032 {
        let sk: [u8; 32] = unhex(sk).try_into().expect("32 bytes");
        let key = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&sk));
        let public = key.public_key();
        assert_eq!(public.raw_bytes(), unhex(pk));
        let msg = unhex(msg);
        let signature = key.sign(&msg);
        assert_eq!(signature.as_bytes(), unhex(sig).as_slice());
        assert_eq!(public.verify(&msg, &unhex(sig)), Ok(()));
        let mut tampered = msg.clone();
        tampered.push(0);
        assert_eq!(public.verify(&tampered, &unhex(sig)), Err(SigError::Invalid));
    }
}

#[test]
fn sign_verify_both_algorithms() {
    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let key = SigningKey::generate(alg, &mut rng(1));
        assert_eq!(key.algorithm(), alg);
        let sig = key.sign(b"hello");
        let pk = key.public_key();
        assert_eq!(pk.verify(b"hello", sig.as_bytes()), Ok(()));
        assert_eq!(pk.verify(b"hellO", sig.as_bytes()), Err(SigError::Invalid));
        let other = SigningKey::generate(alg, &mut rng(2)).public_key();
        assert_eq!(other.verify(b"hello", sig.as_bytes()), Err(SigError::Invalid));
        assert_eq!(pk.verify(b"hello", &sig.as_bytes()[..10]), Err(SigError::Malformed));
        // Deterministic signing.
        assert_eq!(key.sign(b"hello"), sig);
    }
}

#[test]
fn ecdsa_signatures_are_low_s_and_high_s_is_rejected() {
    let key = SigningKey::generate(Algorithm::EcdsaP256, &mut rng(3));
    let pk = key.public_key();
    let mut saw = 0;
    for i in 0u32..64 {
        let msg = i.to_be_bytes();
        let sig = key.sign(&msg);
        let parsed = p256::ecdsa::Signature::from_der(sig.as_bytes()).expect("DER");
        assert!(parsed.normalize_s().is_none(), "signing must produce low-S");
        // Flip s to n - s: the same signature in high-S form, valid for plain ECDSA.
        let (r, s) = parsed.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s.as_ref()).expect("scalars");
        let high_der = high.to_der();
        assert_eq!(pk.verify(&msg, high_der.as_bytes()), Err(SigError::HighS));
        // The high-S form does verify with a lax verifier: it is only refused by policy.
        use p256::ecdsa::signature::Verifier as _;
        if let crate::PublicKey::EcdsaP256(vk) = &pk {
            assert!(vk.verify(&msg, &high).is_ok());
            saw += 1;
        }
    }
    assert_eq!(saw, 64);
}

#[test]
fn pkcs8_round_trip() {
    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let key = SigningKey::generate(alg, &mut rng(4));
        let der = key.to_pkcs8_der();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let k1 = SigningKey::from_pkcs8_der(&der).expect("der");
        let k2 = SigningKey::from_pkcs8_pem(pem.as_bytes()).expect("pem");
        assert_eq!(k1.public_key(), key.public_key());
        assert_eq!(k2.public_key(), key.public_key());
        let spki = key.public_key().to_spki_der();
        assert_eq!(PublicKey::from_spki_der(&spki).expect("spki"), key.public_key());
    }
    assert!(matches!(SigningKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00"), Err(KeyError::Malformed(_))));
    assert!(matches!(
        SigningKey::from_pkcs8_pem(b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n"),
        Err(KeyError::Pem(_))
    ));
}

#[test]
fn weak_ed25519_key_is_refused() {
    // SPKI of the identity point (0, 1): encoded y = 1, a small-order key.
    let mut spki = unhex("302a300506032b6570032100");
    let mut y = [0u8; 32];
    y[0] = 1;
    spki.extend_from_slice(&y);
    assert_eq!(PublicKey::from_spki_der(&spki), Err(KeyError::WeakKey));
}

struct Fixture {
    keys: Vec<PublicKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(n: usize, every_nth_ecdsa: Option<usize>) -> Self {
        let mut r = rng(5);
        let signers: Vec<_> = (0..8).map(|_| SigningKey::generate(Algorithm::Ed25519, &mut r)).collect();
        let ecdsa = SigningKey::generate(Algorithm::EcdsaP256, &mut r);
        let mut f = Fixture { keys: Vec::new(), msgs: Vec::new(), sigs: Vec::new() };
        for i in 0..n {
            let k = match every_nth_ecdsa {
                Some(m) if i % m == 0 => &ecdsa,
                _ => &signers[i % signers.len()],
            };
            let msg = format!("tx {i}").into_bytes();
            f.sigs.push(k.sign(&msg).to_vec());
            f.keys.push(k.public_key());
            f.msgs.push(msg);
        }
        f
    }

    fn items(&self) -> Vec<VerifyItem<'_>> {
        (0..self.keys.len()).map(|i| VerifyItem::new(&self.keys[i], &self.msgs[i], &self.sigs[i])).collect()
    }
}

#[test]
fn batch_all_good() {
    let f = Fixture::new(300, Some(7));
    assert_eq!(verify_batch(&f.items()), Ok(()));
    for t in [1, 2, 3, 8] {
        let n = NonZeroUsize::new(t).expect("non-zero");
        assert_eq!(verify_batch_parallel(&f.items(), n), Ok(()));
    }
    assert_eq!(verify_batch(&[]), Ok(()));
}

#[test]
fn batch_identifies_exactly_the_bad_items() {
    let mut f = Fixture::new(300, Some(11));
    // 17: Ed25519 with a flipped bit; 44: ECDSA (44 % 11 == 0) with a wrong message;
    // 130: truncated Ed25519 signature; 299: signature of another item.
    f.sigs[17][5] ^= 1;
    f.msgs[44].push(b'!');
    f.sigs[130].truncate(63);
    f.sigs[299] = f.sigs[298].clone();
    let expect = vec![
        (17, SigError::Invalid),
        (44, SigError::Invalid),
        (130, SigError::Malformed),
        (299, SigError::Invalid),
    ];
    let err = verify_batch(&f.items()).expect_err("bad items");
    assert_eq!(err.failures, expect);
    assert_eq!(err.failed_indices().collect::<Vec<_>>(), vec![17, 44, 130, 299]);
    let each = crate::verify_each(&f.items(), NonZeroUsize::new(2).expect("non-zero"));
    assert_eq!(each.len(), 300);
    for (i, reason) in &expect {
        assert_eq!(each[*i], Err(*reason));
    }
    assert_eq!(each.iter().filter(|r| r.is_ok()).count(), 296);
    for t in [1, 2, 5, 64] {
        let n = NonZeroUsize::new(t).expect("non-zero");
        let err = verify_batch_parallel(&f.items(), n).expect_err("bad items");
        assert_eq!(err.failures, expect, "threads = {t}");
    }
}

#[test]
fn single_bad_signature_in_small_batch() {
    let mut f = Fixture::new(5, None);
    f.sigs[3][0] ^= 0x80;
    let err = verify_batch(&f.items()).expect_err("one bad");
    assert_eq!(err.failures, vec![(3, SigError::Invalid)]);
}

/// The types the ledger shares between threads are `Send + Sync`.
#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<crate::MspManager>();
    check::<crate::Msp>();
    check::<crate::ValidatedIdentity>();
    check::<crate::PublicKey>();
    check::<crate::SigningKey>();
    check::<crate::LocalIdentity>();
    check::<crate::CryptoMaterial>();
    check::<crate::BatchError>();
}
