//! Device credentials bound on chain: admin only, fingerprints only, one identity per endpoint.

use super::*;

const FP1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const FP2: &str = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752";

fn psk(ep: &str, id: &str, fp: &str) -> Json {
    json!({"endpoint": ep, "mode": "psk", "identity": id, "fingerprint": fp})
}

#[test]
fn credentials_are_admin_only_and_listed_without_secrets() {
    let mut l = Ledger::new();
    assert_eq!(l.status(&gw1(), "set_device_credentials", psk(EP, "dev1", FP1)), 403);
    assert_eq!(l.status(&app_caller(), "set_device_credentials", psk(EP, "dev1", FP1)), 403);
    let (rec, (name, ev)) = l.ok(&admin(), "set_device_credentials", psk(EP, "dev1", FP1));
    assert_eq!(name, "device.credentials");
    assert_eq!(ev["to"], json!({"kind": "gateways"}));
    assert_eq!(ev["endpoint"], EP);
    assert_eq!(ev["credentials"]["identity"], "dev1");
    assert_eq!(rec["mode"], "psk");
    assert_eq!(rec["fingerprint"], FP1);
    assert_eq!(rec["bound_by"], json!({"msp": "Org1MSP", "subject": "Admin@org1"}));

    // An admin MSP member (role client) may too; X.509 takes no identity; fingerprints are stored lowercase.
    let org_admin = caller("AdminMSP", "client", "ops");
    let (rec, _) = l.ok(
        &org_admin,
        "set_device_credentials",
        json!({"endpoint": "cert-dev", "mode": "x509", "fingerprint": FP2}),
    );
    assert_eq!(rec["fingerprint"], FP2.to_ascii_lowercase());
    assert!(rec.get("identity").is_none());

    let list = l.query("list_device_credentials", "").unwrap();
    let eps: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["endpoint"].as_str().unwrap()).collect();
    assert_eq!(eps, ["cert-dev", EP]);
    let one = l.query("get_device_credentials", EP).unwrap();
    assert_eq!(one["identity"], "dev1");
    let page = l.query("list_device_credentials", r#"{"after":"cert-dev","limit":5}"#).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(l.query("get_device_credentials", "nobody").unwrap_err().status(), 404);
    // The device registry is a separate range: bindings are not devices.
    assert_eq!(l.query("list_devices", "").unwrap(), json!([]));

    // Remove: admin only; the record goes, and so does the identity (free for another endpoint).
    let who = gw1();
    assert_eq!(
        l.call_raw(&who, "remove_device_credentials", &[EP.as_bytes().to_vec()]).0.unwrap_err().status(),
        403
    );
    let a = admin();
    let (out, ev) = l.call_raw(&a, "remove_device_credentials", &[EP.as_bytes().to_vec()]);
    assert_eq!(out.unwrap()["identity"], "dev1");
    let (name, ev) = ev.unwrap();
    assert_eq!(name, "device.credentials");
    assert_eq!(ev["credentials"], Json::Null);
    assert_eq!(l.query("get_device_credentials", EP).unwrap_err().status(), 404);
    assert_eq!(
        l.call_raw(&a, "remove_device_credentials", &[EP.as_bytes().to_vec()]).0.unwrap_err().status(),
        404
    );
    l.ok(&admin(), "set_device_credentials", psk("other", "dev1", FP1));
}

#[test]
fn one_identity_one_endpoint() {
    let mut l = Ledger::new();
    l.ok(&admin(), "set_device_credentials", psk(EP, "dev1", FP1));
    let (r, ev) = l.call(&admin(), "set_device_credentials", psk("imei:2", "dev1", FP2));
    let e = r.unwrap_err();
    assert_eq!(e.status(), 409);
    assert!(e.to_string().contains("already bound to endpoint \"imei:356938035643809\""), "{e}");
    assert!(ev.is_none());
    l.ok(&admin(), "set_device_credentials", json!({"endpoint": "c1", "mode": "x509", "fingerprint": FP2}));
    let upper = FP2.to_ascii_uppercase();
    let r = l.call(
        &admin(),
        "set_device_credentials",
        json!({"endpoint": "c2", "mode": "x509", "fingerprint": upper}),
    );
    assert_eq!(
        r.0.unwrap_err().status(),
        409,
        "the same certificate in another case is the same certificate"
    );
    // A PSK identity and a certificate fingerprint are separate namespaces.
    l.ok(&admin(), "set_device_credentials", psk("imei:3", FP2, FP1));

    // Re-binding an endpoint replaces its credential and frees the old identity.
    l.ok(&admin(), "set_device_credentials", psk(EP, "dev1-new", FP2));
    assert_eq!(l.query("get_device_credentials", EP).unwrap()["identity"], "dev1-new");
    l.ok(&admin(), "set_device_credentials", psk("imei:2", "dev1", FP2));
    // Switching an endpoint from PSK to X.509 frees its PSK identity too.
    l.ok(
        &admin(),
        "set_device_credentials",
        json!({"endpoint": "imei:2", "mode": "x509", "fingerprint": FP1}),
    );
    l.ok(&admin(), "set_device_credentials", psk("imei:4", "dev1", FP2));
    assert_eq!(l.query("list_device_credentials", "").unwrap().as_array().unwrap().len(), 5);
}

#[test]
fn bad_bindings_are_refused_with_what_is_wrong() {
    let mut l = Ledger::new();
    let cases = [
        (
            json!({"endpoint": "", "mode": "psk", "identity": "i", "fingerprint": FP1}),
            "endpoint must not be empty",
        ),
        (
            json!({"endpoint": "a b", "mode": "psk", "identity": "i", "fingerprint": FP1}),
            "without whitespace",
        ),
        (
            json!({"endpoint": "e", "mode": "nosec", "identity": "i", "fingerprint": FP1}),
            "unknown mode \"nosec\" (psk, x509 or rpk)",
        ),
        (json!({"endpoint": "e", "mode": "rpk", "identity": "i", "fingerprint": FP1}), "takes no identity"),
        (json!({"endpoint": "e", "mode": "rpk", "fingerprint": "abcd"}), "64 hex digits"),
        (json!({"endpoint": "e", "mode": "psk", "identity": "i", "fingerprint": "abcd"}), "64 hex digits"),
        (
            json!({"endpoint": "e", "mode": "psk", "identity": "i", "fingerprint": format!("{}zz", &FP1[..62])}),
            "64 hex digits",
        ),
        (json!({"endpoint": "e", "mode": "psk", "fingerprint": FP1}), "needs an identity"),
        (json!({"endpoint": "e", "mode": "psk", "identity": "", "fingerprint": FP1}), "PSK identity must be"),
        (
            json!({"endpoint": "e", "mode": "psk", "identity": "x".repeat(129), "fingerprint": FP1}),
            "PSK identity must be",
        ),
        (json!({"endpoint": "e", "mode": "x509", "identity": "i", "fingerprint": FP1}), "takes no identity"),
        (
            json!({"endpoint": "e", "mode": "psk", "identity": "i", "fingerprint": FP1, "key": "00"}),
            "unknown field",
        ),
    ];
    for (arg, want) in cases {
        let e = l.call(&admin(), "set_device_credentials", arg.clone()).0.unwrap_err();
        assert_eq!(e.status(), 400, "{arg}: {e}");
        assert!(e.to_string().contains(want), "{arg}: {e} (wanted {want:?})");
    }
    assert_eq!(l.query("list_device_credentials", "").unwrap(), json!([]));
    assert_eq!(l.query("list_device_credentials", "[1]").unwrap_err().status(), 400);
}

#[test]
fn a_bootstrap_credential_is_separate_and_indexed_on_its_own() {
    let mut l = Ledger::new();
    let with_bs = |ep: &str, id: &str, bs_id: &str, bs_fp: &str| {
        let mut a = psk(ep, id, FP1);
        a["bootstrap"] = json!({"mode": "psk", "identity": bs_id, "fingerprint": bs_fp});
        a
    };
    let (rec, (_, ev)) = l.ok(&admin(), "set_device_credentials", with_bs(EP, "dev1", "bs-dev1", FP2));
    assert_eq!(
        rec["bootstrap"],
        json!({"mode": "psk", "identity": "bs-dev1", "fingerprint": FP2.to_ascii_lowercase()})
    );
    assert_eq!(ev["credentials"]["bootstrap"]["identity"], "bs-dev1");
    // The same bootstrap identity for another endpoint: 409. The same key for both roles: 400.
    let e =
        l.call(&admin(), "set_device_credentials", with_bs("imei:2", "dev2", "bs-dev1", FP2)).0.unwrap_err();
    assert_eq!(e.status(), 409, "{e}");
    assert!(e.to_string().contains("bootstrap identity \"bs-dev1\" is already bound"), "{e}");
    let e =
        l.call(&admin(), "set_device_credentials", with_bs("imei:2", "dev2", "bs-dev2", FP1)).0.unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("must differ from the server credential"), "{e}");
    let mut bad = with_bs("imei:2", "dev2", "bs dev2", FP2);
    let e = l.call(&admin(), "set_device_credentials", bad.clone()).0.unwrap_err();
    assert!(e.to_string().contains("bootstrap: PSK identity must be"), "{e}");
    bad["bootstrap"]["surprise"] = json!(1);
    assert_eq!(l.call(&admin(), "set_device_credentials", bad).0.unwrap_err().status(), 400);
    // Bootstrap identities have their own index: another endpoint's server identity may name one.
    l.ok(&admin(), "set_device_credentials", with_bs("imei:3", "dev3", "dev1", "00".repeat(32).as_str()));
    // Replacing EP's binding without a bootstrap frees its bootstrap identity; so does removal.
    l.ok(&admin(), "set_device_credentials", psk(EP, "dev1", FP1));
    assert!(l.query("get_device_credentials", EP).unwrap().get("bootstrap").is_none());
    l.ok(&admin(), "set_device_credentials", with_bs("imei:2", "dev2", "bs-dev1", FP2));
    let a = admin();
    l.call_raw(&a, "remove_device_credentials", &[b"imei:2".to_vec()]).0.unwrap();
    l.ok(&admin(), "set_device_credentials", with_bs("imei:4", "dev4", "bs-dev1", FP2));
}

#[test]
fn raw_public_keys_bind_by_fingerprint_one_key_one_endpoint() {
    let mut l = Ledger::new();
    let rpk = |ep: &str, fp: &str| json!({"endpoint": ep, "mode": "rpk", "fingerprint": fp});
    let (rec, (_, ev)) = l.ok(&admin(), "set_device_credentials", rpk("rpk-1", &FP1.to_ascii_uppercase()));
    assert_eq!(rec["mode"], "rpk");
    assert_eq!(rec["fingerprint"], FP1.to_ascii_lowercase());
    assert!(rec.get("identity").is_none());
    assert_eq!(ev["credentials"]["mode"], "rpk");
    // The same key for another endpoint: 409, whatever its case.
    let e = l.call(&admin(), "set_device_credentials", rpk("rpk-2", FP1)).0.unwrap_err();
    assert_eq!(e.status(), 409);
    assert!(e.to_string().contains("public key") && e.to_string().contains("\"rpk-1\""), "{e}");
    // A certificate with the same fingerprint value is another namespace.
    l.ok(&admin(), "set_device_credentials", json!({"endpoint": "x-1", "mode": "x509", "fingerprint": FP1}));
    // A bootstrap RPK, separate from the server credential; switching rpk-1 to PSK frees its key.
    let mut with_bs = psk("rpk-3", "id-3", FP2);
    with_bs["bootstrap"] = json!({"mode": "rpk", "fingerprint": FP1});
    let (rec, _) = l.ok(&admin(), "set_device_credentials", with_bs);
    assert_eq!(rec["bootstrap"], json!({"mode": "rpk", "fingerprint": FP1.to_ascii_lowercase()}));
    l.ok(&admin(), "set_device_credentials", psk("rpk-1", "id-1", FP2));
    l.ok(&admin(), "set_device_credentials", rpk("rpk-2", FP1));
    let list = l.query("list_device_credentials", "").unwrap();
    let modes: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["psk", "rpk", "psk", "x509"]);
}
