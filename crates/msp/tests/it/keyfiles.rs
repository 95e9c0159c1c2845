//! Key files are readable by the tools Fabric users have: OpenSSL 3.0's `openssl pkey` and Node's `crypto`
//! read the keystore's `priv_sk` of both algorithms, and a signature Node makes with it verifies here.

use msp::{Algorithm, SigningKey};
use rand::SeedableRng as _;
use std::process::Command;

fn tool(name: &str) -> String {
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output();
    match found {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => {
            panic!("{name} is missing: scripts/test.sh installs it (Debian's openssl, the machine's Node.js)")
        }
    }
}

#[test]
fn openssl_and_node_read_the_keystore_and_node_signatures_verify() {
    let (openssl, node) = (tool("openssl"), tool("node"));
    let dir = tempfile::tempdir().unwrap();
    for (i, alg) in [Algorithm::Ed25519, Algorithm::EcdsaP256].into_iter().enumerate() {
        let key = SigningKey::generate(alg, &mut rand::rngs::StdRng::seed_from_u64(40 + i as u64));
        let pem = key.to_pkcs8_pem();
        let path = dir.path().join(format!("priv_sk_{alg}"));
        std::fs::write(&path, &pem).unwrap();
        // The file reads back, in both PKCS#8 versions for Ed25519.
        assert_eq!(SigningKey::from_pkcs8_pem(pem.as_bytes()).unwrap().public_key(), key.public_key());

        let out = Command::new(&openssl).args(["pkey", "-noout", "-in"]).arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "openssl pkey refuses the {alg} key: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // Node signs with the key file; we verify with the key we wrote.
        let script = "const c = require('crypto'); const fs = require('fs');\
            const k = c.createPrivateKey(fs.readFileSync(process.argv[1]));\
            const alg = k.asymmetricKeyType === 'ed25519' ? null : 'sha256';\
            process.stdout.write(c.sign(alg, Buffer.from('fabric user'), k).toString('hex'));";
        let out = Command::new(&node).args(["-e", script]).arg(&path).output().unwrap();
        assert!(out.status.success(), "node refuses the {alg} key: {}", String::from_utf8_lossy(&out.stderr));
        let sig = hex::decode(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        // Node's ECDSA signatures may be high-S; the ledger accepts low-S only, as Fabric's SDKs produce.
        let sig = match alg {
            Algorithm::EcdsaP256 => {
                let s = p256::ecdsa::Signature::from_der(&sig).unwrap();
                s.normalize_s().unwrap_or(s).to_der().as_bytes().to_vec()
            }
            Algorithm::Ed25519 => sig,
        };
        key.public_key().verify(b"fabric user", &sig).unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
    // A PKCS#8 v2 Ed25519 key (with its public key, as earlier versions wrote) is still read.
    let key = SigningKey::generate(Algorithm::Ed25519, &mut rand::rngs::StdRng::seed_from_u64(7));
    let SigningKey::Ed25519(k) = &key else { unreachable!() };
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let v2 = k.to_pkcs8_der().unwrap();
    assert_eq!(SigningKey::from_pkcs8_der(v2.as_bytes()).unwrap().public_key(), key.public_key());
    assert_ne!(v2.as_bytes(), key.to_pkcs8_der().as_slice(), "v1 is written, not v2");
}
