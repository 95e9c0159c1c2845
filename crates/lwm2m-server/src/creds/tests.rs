use std::os::unix::fs::PermissionsExt;

use super::*;

fn psk(id: &str, key: &[u8]) -> Credential {
    Credential::Psk { identity: id.into(), key: key.to_vec() }
}

#[test]
fn file_round_trip_mode_0600_and_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::open(dir.path()).unwrap();
    store.set("dev-1", psk("id-1", b"\x01\x02secret")).unwrap();
    store.set("dev-2", Credential::X509 { sha256: [7; 32] }).unwrap();
    let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A key file someone made readable to others is closed again when opened.
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = FileCredentialStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(again.psk("id-1").as_deref(), Some(&b"\x01\x02secret"[..]));
    assert_eq!(again.psk("id-2"), None);
    assert!(again.certificate_known(&[7; 32]));
    assert!(!again.certificate_known(&[8; 32]));
    assert_eq!(again.endpoint_of(&Identity::Psk("id-1".into())).as_deref(), Some("dev-1"));
    assert_eq!(again.endpoint_of(&Identity::X509 { sha256: [7; 32] }).as_deref(), Some("dev-2"));
    assert_eq!(again.endpoint_of(&Identity::Psk("nobody".into())), None);
    assert!(again.has_credentials("dev-2") && !again.has_credentials("dev-3"));

    assert!(again.remove("dev-1").unwrap());
    assert!(!again.remove("dev-1").unwrap());
    let third = FileCredentialStore::open(dir.path()).unwrap();
    assert_eq!(third.psk("id-1"), None);
    assert!(third.has_credentials("dev-2"));
}

#[test]
fn an_identity_binds_one_endpoint_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::open(dir.path()).unwrap();
    store.set("dev-1", psk("id-1", b"k")).unwrap();
    assert!(matches!(store.set("dev-2", psk("id-1", b"k2")), Err(CredentialError::Taken { .. })));
    // Rebinding the same endpoint is a replacement.
    store.set("dev-1", psk("id-1b", b"k")).unwrap();
    assert_eq!(store.endpoint_of(&Identity::Psk("id-1".into())), None);
    assert!(matches!(store.set("has space", psk("x", b"k")), Err(CredentialError::Invalid(_))));
    assert!(matches!(store.set("dev-3", psk("x y", b"k")), Err(CredentialError::Invalid(_))));
    assert!(matches!(store.set("dev-3", psk("x", b"")), Err(CredentialError::Invalid(_))));
}

#[test]
fn secrets_are_not_printed_and_bad_files_are_errors() {
    let c = psk("id-1", b"topsecret");
    let shown = format!("{c:?}");
    assert!(!shown.contains("topsecret") && !shown.contains(&hex::encode(b"topsecret")), "{shown}");
    assert_eq!(shown, "Psk { identity: \"id-1\", key: <9 bytes> }");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lwm2m-keys");
    std::fs::write(&file, "# comment\n\ndev-1 psk id-1 zz\n").unwrap();
    let e = FileCredentialStore::open(dir.path()).unwrap_err();
    assert_eq!(e.to_string(), format!("key file {} line 3: PSK key is not hex", file.display()));
    std::fs::write(&file, "dev-1 x509 abcd\n").unwrap();
    assert!(matches!(FileCredentialStore::open(dir.path()), Err(CredentialError::Syntax { line: 1, .. })));
    std::fs::write(&file, "dev-1 rpk abcd\n").unwrap();
    assert!(matches!(FileCredentialStore::open(dir.path()), Err(CredentialError::Syntax { line: 1, .. })));
    std::fs::write(&file, format!("dev-1 raw {}\n", "ab".repeat(32))).unwrap();
    assert!(matches!(FileCredentialStore::open(dir.path()), Err(CredentialError::Syntax { line: 1, .. })));
}

#[test]
fn raw_public_keys_in_the_key_file_and_in_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let file = FileCredentialStore::open(dir.path()).unwrap();
    file.set("rpk-1", Credential::Rpk { sha256: [3; 32] }).unwrap();
    // One identity, one endpoint; a certificate with the same bytes is another identity.
    assert!(matches!(
        file.set("rpk-2", Credential::Rpk { sha256: [3; 32] }),
        Err(CredentialError::Taken { .. })
    ));
    file.set("x-1", Credential::X509 { sha256: [3; 32] }).unwrap();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains(&format!("rpk-1 rpk {}\n", "03".repeat(32))), "{text}");
    let again = FileCredentialStore::open(dir.path()).unwrap();
    assert!(again.public_key_known(&[3; 32]) && !again.public_key_known(&[4; 32]));
    assert_eq!(again.endpoint_of(&Identity::Rpk { sha256: [3; 32] }).as_deref(), Some("rpk-1"));
    assert_eq!(again.endpoint_of(&Identity::X509 { sha256: [3; 32] }).as_deref(), Some("x-1"));
    assert_eq!(again.psk("rpk-1"), None);
    assert_eq!(format!("{}", Identity::Rpk { sha256: [3; 32] }), format!("rpk:{}", "03".repeat(32)));

    // Bindings: the chain's RPK wins over the file's, a bootstrap RPK is admitted by the bootstrap role only.
    let store = std::sync::Arc::new(BoundCredentialStore::open(dir.path()).unwrap());
    store
        .refresh(&[
            Binding::Rpk { endpoint: "rpk-chain".into(), sha256: [3; 32] },
            Binding::BootstrapRpk { endpoint: "rpk-chain".into(), sha256: [5; 32] },
        ])
        .unwrap();
    assert_eq!(store.endpoint_of(&Identity::Rpk { sha256: [3; 32] }).as_deref(), Some("rpk-chain"));
    assert!(store.has_credentials("rpk-chain") && !store.has_credentials("rpk-1"));
    assert!(!store.public_key_known(&[5; 32]), "a bootstrap key is not a server credential");
    let bs = store.bootstrap();
    assert!(bs.public_key_known(&[5; 32]) && !bs.public_key_known(&[3; 32]));
    assert_eq!(bs.endpoint_of(&Identity::Rpk { sha256: [5; 32] }).as_deref(), Some("rpk-chain"));
    assert_eq!(store.server_psk("rpk-chain"), None);
}

fn sha(key: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(key)
}

#[test]
fn bound_store_admits_chain_bindings_with_matching_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = FileCredentialStore::open(dir.path()).unwrap();
    file.set("dev-1", psk("id-1", b"key-1")).unwrap();
    file.set("dev-2", psk("id-2", b"key-2")).unwrap();
    file.set("local", psk("id-local", b"key-l")).unwrap();
    file.set("moved", psk("id-moved", b"key-m")).unwrap();
    let store = BoundCredentialStore::open(dir.path()).unwrap();
    // Before any binding: the key file alone.
    assert_eq!(store.psk("id-1").as_deref(), Some(&b"key-1"[..]));

    let bindings = vec![
        Binding::Psk { endpoint: "dev-1".into(), identity: "id-1".into(), key_sha256: sha(b"key-1") },
        // The key file's key for id-2 is not the bound one.
        Binding::Psk { endpoint: "dev-2".into(), identity: "id-2".into(), key_sha256: sha(b"other") },
        // Bound on chain, no key here (yet).
        Binding::Psk { endpoint: "dev-3".into(), identity: "id-3".into(), key_sha256: sha(b"key-3") },
        // The chain binds id-moved to another endpoint than the file does: the chain wins.
        Binding::Psk { endpoint: "moved-ep".into(), identity: "id-moved".into(), key_sha256: sha(b"key-m") },
        Binding::X509 { endpoint: "cert-ep".into(), sha256: [9; 32] },
    ];
    let r = store.refresh(&bindings).unwrap();
    assert_eq!(
        r,
        RefreshReport {
            bound: 5,
            missing_key: vec!["dev-3".into()],
            wrong_key: vec!["dev-2".into()],
            ..RefreshReport::default()
        }
    );

    assert_eq!(store.psk("id-1").as_deref(), Some(&b"key-1"[..]));
    assert_eq!(store.endpoint_of(&Identity::Psk("id-1".into())).as_deref(), Some("dev-1"));
    assert_eq!(store.psk("id-2"), None, "a key that does not match the chain's fingerprint is not used");
    assert_eq!(store.psk("id-3"), None);
    assert!(
        store.has_credentials("dev-2") && store.has_credentials("dev-3"),
        "bound endpoints stay credentialed"
    );
    assert_eq!(store.endpoint_of(&Identity::Psk("id-moved".into())).as_deref(), Some("moved-ep"));
    assert!(store.certificate_known(&[9; 32]));
    assert_eq!(store.endpoint_of(&Identity::X509 { sha256: [9; 32] }).as_deref(), Some("cert-ep"));
    // A key-file entry no binding names keeps working.
    assert_eq!(store.psk("id-local").as_deref(), Some(&b"key-l"[..]));
    assert!(store.has_credentials("local"));

    // The key file is re-read on refresh (another process wrote it); removed bindings stop counting.
    file.set("dev-3", psk("id-3", b"key-3")).unwrap();
    let r = store.refresh(&bindings[2..3]).unwrap();
    assert!(r.missing_key.is_empty() && r.wrong_key.is_empty());
    assert_eq!(store.psk("id-3").as_deref(), Some(&b"key-3"[..]));
    assert!(!store.certificate_known(&[9; 32]) && !store.has_credentials("cert-ep"));
    let dbg = format!("{store:?}");
    assert!(!dbg.contains("6b6579") && !dbg.contains("key-"), "{dbg}");
}

#[test]
fn the_generation_moves_only_when_what_is_admitted_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = BoundCredentialStore::open(dir.path()).unwrap();
    let g0 = store.generation();
    store.refresh(&[]).unwrap();
    assert_eq!(store.generation(), g0, "the same (empty) admission: no change");
    FileCredentialStore::open(dir.path()).unwrap().set("dev-1", psk("id-1", b"k1")).unwrap();
    store.refresh(&[]).unwrap();
    let g1 = store.generation();
    assert!(g1 > g0, "a new key file entry is a change");
    store.refresh(&[]).unwrap();
    assert_eq!(store.generation(), g1);
    let b = [Binding::Psk { endpoint: "dev-1".into(), identity: "id-1".into(), key_sha256: sha(b"k1") }];
    store.refresh(&b).unwrap();
    assert_eq!(store.generation(), g1, "the chain binding admits exactly what the file did");
    FileCredentialStore::open(dir.path()).unwrap().remove("dev-1").unwrap();
    store.refresh(&b).unwrap();
    assert!(store.generation() > g1, "the key is gone: dev-1 is no longer admitted");
}
