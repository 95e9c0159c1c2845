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
}
