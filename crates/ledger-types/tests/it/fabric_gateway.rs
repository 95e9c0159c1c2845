//! Cross-check with Fabric's own Node client: `@hyperledger/fabric-gateway` 1.12.1 (on Node 22, both from npm,
//! installed by `scripts/test.sh`) builds and signs a proposal offline; this side takes it apart, checks the
//! tx id rule and the signature (Ed25519 over the whole proposal, ECDSA P-256 over its SHA-256, DER low-S), and
//! rebuilds the proposal with `ProposalBuilder` from the same creator, nonce and timestamp: the bytes
//! must be identical.

use std::process::Command;

use fabric_protos::gateway::ProposedTransaction;
use fabric_protos::{hash, tx};
use ledger_types::ChannelId;
use ledger_types::proto::Timestamp;
use ledger_types::tx::{ProposalBuilder, serialize_identity};
use prost::Message;

/// Makes a key (`ed25519` or `ec`) and a self-signed certificate with the `openssl` command; returns the
/// files' paths (certificate, key) under `dir`.
fn key_and_cert(dir: &std::path::Path, algorithm: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join(format!("{algorithm}-cert.pem")), dir.join(format!("{algorithm}-key.pem")));
    let mut genpkey = Command::new("openssl");
    genpkey.arg("genpkey");
    match algorithm {
        "ed25519" => genpkey.args(["-algorithm", "ed25519"]),
        _ => genpkey.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    };
    let out = genpkey.arg("-out").arg(&key).output().expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-subj", "/CN=User1@org1.example.com", "-days", "1", "-key"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn gateway_proposal(cert: &std::path::Path, key: &std::path::Path, args: &[&str]) -> (String, Vec<u8>) {
    let (node, modules) = test_support::fabric_gateway_node();
    let script =
        test_support::workspace_root().join("crates/ledger-types/tests/it/scripts/gateway_proposal.js");
    let out = Command::new(node)
        .arg(script)
        .arg(cert)
        .arg(key)
        .args(["Org1MSP", "iot", "ipe"])
        .args(args)
        .env("NODE_PATH", modules)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let bytes = hex::decode(v["proposed_transaction_hex"].as_str().unwrap()).unwrap();
    (v["transaction_id"].as_str().unwrap().to_owned(), bytes)
}

#[test]
fn fabric_gateway_proposals_are_read_checked_and_rebuilt_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in ["ed25519", "ec"] {
        let (cert, key) = key_and_cert(dir.path(), algorithm);
        let (tx_id, bytes) = gateway_proposal(&cert, &key, &["submit_request", "{\"id\":\"r-1\"}", ""]);
        let proposed = ProposedTransaction::decode(bytes.as_slice()).expect("a gateway.ProposedTransaction");
        assert_eq!(proposed.transaction_id, tx_id);
        let signed = proposed.proposal.expect("a signed proposal");
        let unpacked = tx::unpack_proposal(&signed).expect("Fabric's layers");

        // Who, where, what.
        let pem = std::fs::read(&cert).unwrap();
        assert_eq!(unpacked.signature_header.creator, serialize_identity("Org1MSP", &pem), "{algorithm}");
        assert_eq!(unpacked.channel_id(), "iot");
        assert_eq!(unpacked.chaincode_name(), "ipe");
        let args: Vec<&[u8]> = unpacked.args().iter().map(|a| &a[..]).collect();
        assert_eq!(args, [&b"submit_request"[..], b"{\"id\":\"r-1\"}", b""]);
        assert_eq!(unpacked.signature_header.nonce.len(), 24);
        // The tx id rule.
        let rule = hash::tx_id(&unpacked.signature_header.nonce, &unpacked.signature_header.creator);
        assert_eq!(rule, tx_id);
        assert_eq!(unpacked.channel_header.tx_id, tx_id);

        // The signature, over the proposal bytes as sent.
        let cert_x509 = openssl::x509::X509::from_pem(&pem).unwrap();
        let public = cert_x509.public_key().unwrap();
        let mut verifier = match algorithm {
            "ed25519" => openssl::sign::Verifier::new_without_digest(&public).unwrap(),
            _ => openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap(),
        };
        assert!(
            verifier.verify_oneshot(&signed.signature, &signed.proposal_bytes).unwrap(),
            "{algorithm} signature"
        );
        let mut tampered = signed.proposal_bytes.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let mut verifier = match algorithm {
            "ed25519" => openssl::sign::Verifier::new_without_digest(&public).unwrap(),
            _ => openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap(),
        };
        assert!(
            !verifier.verify_oneshot(&signed.signature, &tampered).unwrap_or(false),
            "the check can fail"
        );

        // Our builder, given the same creator, nonce and timestamp, writes the same bytes.
        let ts = unpacked.channel_header.timestamp.expect("a timestamp");
        let (rebuilt, rebuilt_id) =
            ProposalBuilder::new(ChannelId::parse("iot").unwrap(), "ipe", "submit_request")
                .args([b"{\"id\":\"r-1\"}".to_vec(), Vec::new()])
                .proposal(
                    unpacked.signature_header.creator.to_vec(),
                    unpacked.signature_header.nonce.to_vec(),
                    Timestamp { seconds: ts.seconds, nanos: ts.nanos },
                );
        assert_eq!(rebuilt_id.as_str(), tx_id);
        assert_eq!(rebuilt.encode_to_vec(), signed.proposal_bytes, "{algorithm}: byte for byte");
    }
}
