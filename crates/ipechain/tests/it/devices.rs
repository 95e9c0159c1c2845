//! `ipechain device add|list|remove` against a running `ipechain up`: the binding is committed on chain with
//! fingerprints only, the PSK lands in the gateway's key file (0600, other entries kept) after the commit, and
//! only admins may bind. The running gateway admits by the chain's bindings without a restart.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::ChildGuard;

use crate::dtls::{clients, coap_client};
use crate::processes::{Net, bin};

fn device(net: &Net, args: &[&str]) -> Output {
    Command::new(bin()).arg("device").args(args).arg("--data-dir").arg(net.dir.root()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_credentials_are_bound_on_chain_and_the_psk_kept_in_the_key_file() {
    let net = Net::generate();
    let keys = net.dir.root().join("lwm2m");
    std::fs::create_dir_all(&keys).unwrap();
    let key_file = keys.join("lwm2m-keys");
    // An entry made by hand before: it must survive the CLI's writes.
    std::fs::write(&key_file, format!("old-ep psk old-id {}\n", hex::encode(b"old-key"))).unwrap();
    let (coap, dtls, admin_port) =
        (test_support::free_udp_port(), test_support::free_udp_port(), test_support::free_tcp_port());
    let bs_dtls = test_support::free_udp_port();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(net.logs.join("up.log")).unwrap();
    let _up = ChildGuard::spawn(
        Command::new(bin())
            .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
            .args(["up", "--no-gateway", "--data-dir"])
            .arg(net.dir.root())
            .args(["--cse-addr", &format!("127.0.0.1:{}", test_support::free_tcp_port())])
            .args(["--cse-https-addr", "127.0.0.1:0"])
            .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
            .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{admin_port}")])
            .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{dtls}")])
            .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-dtls-addr", &format!("127.0.0.1:{bs_dtls}")])
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap();
    for n in net.node_names() {
        net.wait_up(&n).await;
    }

    // A file that is no public key and half a PSK are refused before anything is submitted.
    let out = device(&net, &["add", "--endpoint", "x", "--rpk-public-key", "/dev/null"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/dev/null is not a public key"), "{}", text(&out));
    let out = device(&net, &["add", "--endpoint", "x", "--psk-identity", "i"]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = device(&net, &["add", "--endpoint", "x", "--psk-identity", "i", "--psk-key", "not-hex"]);
    assert!(text(&out).contains("--psk-key must be hex"), "{}", text(&out));
    assert!(!text(&out).contains("not-hex"), "a key is never echoed: {}", text(&out));

    // Add a PSK device (the first submit may wait for the channel to elect a leader: retry a while).
    let key_hex = hex::encode(b"secret-key-of-dev-1");
    let add = ["add", "--endpoint", "dev-1", "--psk-identity", "dev-1-id", "--psk-key", key_hex.as_str()];
    let mut out = device(&net, &add);
    for _ in 0..30 {
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        out = device(&net, &add);
    }
    assert!(out.status.success(), "device add: {}", text(&out));
    assert!(!text(&out).contains(&key_hex), "the key is never printed");
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fp = sha256_hex(b"secret-key-of-dev-1");
    assert_eq!(rec["fingerprint"], fp.as_str());
    assert_eq!(rec["bound_by"]["subject"], "Admin@org1.ipechain.local", "{rec}");

    // The key file: 0600, the new key and the old entry.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(file.contains(&format!("dev-1 psk dev-1-id {key_hex}\n")), "{file}");
    assert!(file.contains(&format!("old-ep psk old-id {}\n", hex::encode(b"old-key"))), "{file}");

    // The running gateway admits it without a restart: the device registers over DTLS with that PSK.
    let register = format!("coaps://127.0.0.1:{dtls}/rd?ep=dev-1&lt=60&b=U");
    let mut found = None;
    for _ in 0..20 {
        let register = register.clone();
        let _ = tokio::task::spawn_blocking(move || {
            coap_client(
                test_support::coap_client_openssl(),
                &["-u", "dev-1-id", "-k", "secret-key-of-dev-1", "-m", "post", "-e", "</3/0>", &register],
            )
        })
        .await
        .unwrap();
        found = clients(admin_port)
            .and_then(|c| c.as_array().and_then(|a| a.iter().find(|c| c["endpoint"] == "dev-1").cloned()));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let c =
        found.unwrap_or_else(|| panic!("dev-1 never registered; see {}", net.logs.join("up.log").display()));
    assert_eq!(c["identity"], "psk:dev-1-id", "{c}");

    // The key may come from standard input instead of the command line.
    let mut child = Command::new(bin())
        .args([
            "device",
            "add",
            "--endpoint",
            "dev-4",
            "--psk-identity",
            "dev-4-id",
            "--psk-key",
            "-",
            "--data-dir",
        ])
        .arg(net.dir.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", hex::encode(b"key-of-dev-4")).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "device add --psk-key -: {}", text(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["fingerprint"], sha256_hex(b"key-of-dev-4").as_str());
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(file.contains(&format!("dev-4 psk dev-4-id {}\n", hex::encode(b"key-of-dev-4"))), "{file}");

    // An X.509 device, by the SHA-256 of its DER (checked against `openssl x509 -fingerprint`).
    let pem = net.logs.join("dev2.pem");
    let keyf = net.logs.join("dev2.key");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=dev-2", "-keyout"])
        .arg(&keyf)
        .arg("-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let fpo = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let cert_fp = String::from_utf8_lossy(&fpo.stdout)
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_ascii_lowercase();
    let out = device(&net, &["add", "--endpoint", "dev-2", "--cert", pem.to_str().unwrap()]);
    assert!(out.status.success(), "device add --cert: {}", text(&out));

    // list: endpoint, mode, identity, fingerprint; never a key.
    let out = device(&net, &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("dev-1 ")).unwrap_or_else(|| panic!("{table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["dev-1", "psk", "dev-1-id", fp.as_str(), "-"], "{table}");
    let row = table.lines().find(|l| l.starts_with("dev-2 ")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["dev-2", "x509", "-", cert_fp.as_str(), "-"]);
    assert!(!table.contains(&key_hex) && !table.contains("old-ep"), "{table}");
    let out = device(&net, &["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // One identity, one endpoint: refused before submitting when the key file binds it elsewhere...
    let other_key = hex::encode(b"another-key");
    let out =
        device(&net, &["add", "--endpoint", "dev-3", "--psk-identity", "dev-1-id", "--psk-key", &other_key]);
    assert!(!out.status.success());
    assert!(text(&out).contains("psk:dev-1-id is already bound to endpoint dev-1"), "{}", text(&out));
    // ...and by the contract (409) when only the chain binds it (bound by another admin): the key file is
    // left alone.
    let (signer, tls) = net.user_named(1, "Admin");
    let admin =
        ledger_client::Gateway::connect(&net.endpoint("peer0.org1.ipechain.local"), &tls, signer, "iot")
            .unwrap();
    let arg = json!({"endpoint": "chain-ep", "mode": "psk", "identity": "chain-id", "fingerprint": fp});
    admin.contract("ipe").submit("set_device_credentials", &[arg.to_string().into_bytes()]).await.unwrap();
    let out =
        device(&net, &["add", "--endpoint", "dev-3", "--psk-identity", "chain-id", "--psk-key", &other_key]);
    assert!(!out.status.success());
    assert!(text(&out).contains("refused set_device_credentials (409)"), "{}", text(&out));
    assert!(text(&out).contains("already bound to endpoint \"chain-ep\""), "{}", text(&out));
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(!file.contains("dev-3") && !file.contains(&other_key), "{file}");
    // An endpoint bound on chain is credentialed for the running gateway, key or not: NoSec Register → 4.03.
    // (Wait for the gateway's refresh first: a NoSec registration made before it would stand; see docs/lwm2m.md.)
    tokio::time::sleep(Duration::from_secs(5)).await;
    let plain = format!("coap://127.0.0.1:{coap}/rd?ep=chain-ep&lt=60&b=U");
    let refused = tokio::task::spawn_blocking(move || {
        coap_client(test_support::coap_client(), &["-m", "post", "-e", "</3/0>", &plain])
    })
    .await
    .unwrap();
    assert!(refused.contains("4.03"), "{refused}");

    // A non-admin (Org1's User1, Org2's Gateway) cannot bind: 403 from the contract.
    let arg = json!({"endpoint": "evil", "mode": "psk", "identity": "evil", "fingerprint": fp});
    for (org, user) in [(1, "User1"), (2, "Gateway")] {
        let (signer, tls) = net.user_named(org, user);
        let peer = net.endpoint(&format!("peer0.org{org}.ipechain.local"));
        let gw = ledger_client::Gateway::connect(&peer, &tls, signer, "iot").unwrap();
        let e = gw
            .contract("ipe")
            .submit("set_device_credentials", &[arg.to_string().into_bytes()])
            .await
            .expect_err("a non-admin binds nothing");
        let (status, msg) = bridge::ledger::contract_status(&e).unwrap_or_else(|| panic!("{e}"));
        assert_eq!(status, 403, "{msg}");
        assert!(msg.contains("only admins"), "{msg}");
    }

    // remove: off the list and out of the key file; the old entry stays.
    let out = device(&net, &["remove", "--endpoint", "dev-1"]);
    assert!(out.status.success(), "device remove: {}", text(&out));
    let out = device(&net, &["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let eps: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["endpoint"].as_str().unwrap()).collect();
    assert_eq!(eps, ["chain-ep", "dev-2", "dev-4"]);
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(!file.contains("dev-1"), "{file}");
    assert!(file.contains("old-ep psk old-id"), "{file}");
    // dev-1's live registration ends within a refresh period or two, not at the end of its lifetime.
    let mut still = true;
    for _ in 0..20 {
        let c = clients(admin_port).unwrap();
        still = c.as_array().unwrap().iter().any(|c| c["endpoint"] == "dev-1");
        if !still {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!still, "dev-1's registration stands after its credentials were removed");
    // The running gateway follows a removal: dev-4 (added while it ran, never registered) is refused now.
    let out = device(&net, &["remove", "--endpoint", "dev-4"]);
    assert!(out.status.success(), "device remove: {}", text(&out));
    tokio::time::sleep(Duration::from_secs(5)).await; // two refresh periods
    let register = format!("coaps://127.0.0.1:{dtls}/rd?ep=dev-4&lt=60&b=U");
    let key4 = hex::encode(b"key-of-dev-4");
    let key4_text = String::from_utf8(hex::decode(&key4).unwrap()).unwrap();
    for _ in 0..2 {
        let (register, key) = (register.clone(), key4_text.clone());
        tokio::task::spawn_blocking(move || {
            coap_client(
                test_support::coap_client_openssl(),
                &["-u", "dev-4-id", "-k", &key, "-m", "post", "-e", "</3/0>", &register],
            )
        })
        .await
        .unwrap();
    }
    let eps: Vec<String> =
        clients(admin_port).unwrap().as_array().unwrap().iter().map(|c| c["endpoint"].to_string()).collect();
    assert!(eps.is_empty(), "dev-4 never registered, dev-1 was ended: {eps:?}");

    let out = device(&net, &["remove", "--endpoint", "dev-1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("(404)"), "{}", text(&out));

    // Bootstrap: dev-5 gets a server PSK nobody typed (`random`) and a bootstrap PSK; the running gateway's
    // bootstrap server hands it the server PSK over DTLS, and the device registers with it.
    let bs_key = hex::encode(b"bootstrap-key-of-dev-5");
    let out = device(
        &net,
        &[
            "add",
            "--endpoint",
            "dev-5",
            "--psk-identity",
            "dev-5-id",
            "--psk-key",
            "random",
            "--bootstrap-psk-identity",
            "bs-dev-5",
            "--bootstrap-psk-key",
            &bs_key,
        ],
    );
    assert!(out.status.success(), "device add with bootstrap: {}", text(&out));
    assert!(!text(&out).contains(&bs_key), "the key is never printed");
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["bootstrap"]["identity"], "bs-dev-5", "{rec}");
    assert_eq!(rec["bootstrap"]["fingerprint"], sha256_hex(b"bootstrap-key-of-dev-5").as_str());
    let bs_file = std::fs::read_to_string(keys.join("lwm2m-bootstrap-keys")).unwrap();
    assert!(bs_file.contains(&format!("dev-5 psk bs-dev-5 {bs_key}\n")), "{bs_file}");
    let mode = std::fs::metadata(keys.join("lwm2m-bootstrap-keys")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let table = String::from_utf8_lossy(&device(&net, &["list"]).stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("dev-5 ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.ends_with("psk bs-dev-5"), "{table}");
    // `random` without a bootstrap credential is refused (nobody could ever hand the key to the device).
    let out =
        device(&net, &["add", "--endpoint", "dev-6", "--psk-identity", "dev-6-id", "--psk-key", "random"]);
    assert!(!out.status.success() && text(&out).contains("needs a bootstrap credential"), "{}", text(&out));

    let bs_addr: std::net::SocketAddr = format!("127.0.0.1:{bs_dtls}").parse().unwrap();
    let mut got = None;
    for _ in 0..20 {
        // The gateway takes up new bindings within its refresh period (2 s).
        let done = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(|| {
                let d = std::cell::RefCell::new(test_support::dtls::Device::connect(
                    bs_addr,
                    "bs-dev-5",
                    b"bootstrap-key-of-dev-5",
                ));
                let req = d.borrow_mut().request(0x02, &["bs"], &["ep=dev-5"], b"");
                d.borrow_mut().send(&req);
                test_support::bootstrap::play(|b| d.borrow_mut().send(b), || d.borrow_mut().recv(5000))
            })
            .ok()
        })
        .await
        .unwrap();
        if done.is_some() {
            got = done;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got =
        got.unwrap_or_else(|| panic!("dev-5 never bootstrapped; see {}", net.logs.join("up.log").display()));
    assert_eq!(got.uri, format!("coaps://127.0.0.1:{dtls}"));
    assert_eq!(got.identity, b"dev-5-id");
    assert_eq!(got.key.len(), 16, "the random server PSK");
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(file.contains(&format!("dev-5 psk dev-5-id {}\n", hex::encode(&got.key))), "{file}");
    let server: std::net::SocketAddr = format!("127.0.0.1:{dtls}").parse().unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        let mut d = test_support::dtls::Device::connect(server, "dev-5-id", &got.key);
        d.register("dev-5")
    })
    .await
    .unwrap();
    assert_eq!(answer[1], 0x41, "2.01 Created");
    let c = clients(admin_port).unwrap();
    let dev5 = c.as_array().unwrap().iter().find(|c| c["endpoint"] == "dev-5").cloned();
    assert_eq!(dev5.map(|c| c["identity"].clone()), Some(json!("psk:dev-5-id")));

    // A raw public key (RFC 7250): made and fingerprinted by the `openssl` command (SHA-256 of the DER
    // SubjectPublicKeyInfo), bound with --rpk-public-key, and the running gateway admits GnuTLS's client
    // with it.
    let rpk_key = net.logs.join("dev7.key");
    let rpk_pub = net.logs.join("dev7.pub.pem");
    let ok = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        o.stdout
    };
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&rpk_key));
    ok(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&rpk_key).arg("-out").arg(&rpk_pub));
    let spki = ok(Command::new("openssl").args(["pkey", "-pubin", "-outform", "DER", "-in"]).arg(&rpk_pub));
    let rpk_fp = sha256_hex(&spki);
    // The private key is refused (it never leaves the device).
    let out = device(&net, &["add", "--endpoint", "dev-7", "--rpk-public-key", rpk_key.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("holds a private key"), "{}", text(&out));
    let out = device(&net, &["add", "--endpoint", "dev-7", "--rpk-public-key", rpk_pub.to_str().unwrap()]);
    assert!(out.status.success(), "device add --rpk-public-key: {}", text(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((rec["mode"].as_str(), rec["fingerprint"].as_str()), (Some("rpk"), Some(rpk_fp.as_str())));
    let table = String::from_utf8_lossy(&device(&net, &["list"]).stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("dev-7 ")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["dev-7", "rpk", "-", rpk_fp.as_str(), "-"]);
    let file = std::fs::read_to_string(&key_file).unwrap();
    assert!(file.contains(&format!("dev-7 rpk {rpk_fp}\n")), "{file}");
    // GnuTLS reads the key pair from one PEM file.
    let pair = net.logs.join("dev7.pair.pem");
    let mut pem = std::fs::read(&rpk_key).unwrap();
    pem.extend(std::fs::read(&rpk_pub).unwrap());
    std::fs::write(&pair, pem).unwrap();
    let register = format!("coaps://127.0.0.1:{dtls}/rd?ep=dev-7&lt=60&b=U");
    let mut found = None;
    for _ in 0..20 {
        let (register, pair) = (register.clone(), pair.clone());
        let _ = tokio::task::spawn_blocking(move || {
            coap_client(
                test_support::coap_client_gnutls(),
                &["-M", pair.to_str().unwrap(), "-m", "post", "-e", "</3/0>", &register],
            )
        })
        .await
        .unwrap();
        found = clients(admin_port)
            .and_then(|c| c.as_array().and_then(|a| a.iter().find(|c| c["endpoint"] == "dev-7").cloned()));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let c =
        found.unwrap_or_else(|| panic!("dev-7 never registered; see {}", net.logs.join("up.log").display()));
    assert_eq!(c["identity"], format!("rpk:{rpk_fp}"), "{c}");
}
