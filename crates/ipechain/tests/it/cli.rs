//! The operator's surface of the binary: `up --config` / `--print-config` (the printed configuration reads
//! back as the same configuration; flags over variables over the file; an unknown key is named),
//! `completions` and `man`, and a newcomer's `up` printing no ERROR line while its orderers elect a leader.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use test_support::ChildGuard;

use crate::processes::{Net, bin};

/// The variables that would change what these tests see, removed.
fn ipechain() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("IPECHAIN_") && k != "IPECHAIN_PEERS_DIR") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn printed_config_reads_back_and_flags_beat_variables_beat_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let printed = ok(ipechain()
        .args(["up", "--print-config", "--data-dir"])
        .arg(&data)
        .args(["--cse-addr", "127.0.0.1:18080", "--cse-id", "id-test", "--lwm2m-nosec", "off"])
        .args(["--mca-ca", "/etc/ca.pem", "--lwm2m-advertised-host", "lwm2m.test", "--log-format", "json"])
        .output()
        .unwrap());
    assert!(printed.contains("addr = \"127.0.0.1:18080\""), "{printed}");
    assert!(printed.contains("id = \"id-test\""), "{printed}");
    assert!(printed.contains("nosec = false"), "{printed}");
    assert!(printed.contains(&format!("data_dir = \"{}\"", data.display())), "{printed}");
    let file = tmp.path().join("ipechain.toml");
    std::fs::write(&file, &printed).unwrap();
    let again = ok(ipechain().args(["up", "--print-config", "--config"]).arg(&file).output().unwrap());
    assert_eq!(again, printed, "--print-config's output is the same configuration as --config");

    // A variable beats the file, a flag beats the variable.
    let env = ok(ipechain()
        .args(["up", "--print-config", "--config"])
        .arg(&file)
        .env("IPECHAIN_CSE_ADDR", "127.0.0.1:18081")
        .env("IPECHAIN_CONFIG", "/nonexistent/ignored-because---config-is-given.toml")
        .output()
        .unwrap());
    assert!(env.contains("addr = \"127.0.0.1:18081\""), "{env}");
    let flag = ok(ipechain()
        .args(["up", "--print-config", "--cse-addr", "127.0.0.1:18082", "--config"])
        .arg(&file)
        .env("IPECHAIN_CSE_ADDR", "127.0.0.1:18081")
        .output()
        .unwrap());
    assert!(flag.contains("addr = \"127.0.0.1:18082\""), "{flag}");
    // IPECHAIN_CONFIG names the file when --config does not.
    let by_var =
        ok(ipechain().args(["up", "--print-config"]).env("IPECHAIN_CONFIG", &file).output().unwrap());
    assert_eq!(by_var, printed);
}

#[test]
fn a_bad_config_file_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ipechain.toml");
    std::fs::write(&file, "[lwm2m]\naddr = \"0.0.0.0:5683\"\nadress = \"0.0.0.0:5683\"\n").unwrap();
    let out = ipechain().args(["up", "--print-config", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `adress`") && err.contains("ipechain.toml"), "{err}");
    // Settings that contradict each other are named too.
    let out = ipechain().args(["up", "--print-config", "--demo", "--no-gateway"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--demo needs the gateway"));
    let out = ipechain().args(["up", "--print-config", "--notify-tls"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only to a remote CSE"));
    // `gateway` needs a `[ledger]`, `up` refuses one; a `[ledger]` whose files are missing is named.
    let out = ipechain().args(["gateway", "--print-config"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the ledger it connects to"), "{out:?}");
    let link = "peer = \"localhost:7051\"\ntls_ca = \"ca.crt\"\nmsp_id = \"Org1MSP\"\ncert = \"cert.pem\"\nkey = \"priv_sk\"\n";
    std::fs::write(
        &file,
        format!("[ledger]\nchannel = \"iot\"\n[ledger.lwm2m]\n{link}[ledger.onem2m]\n{link}"),
    )
    .unwrap();
    let out = ipechain().args(["up", "--print-config", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `ipechain gateway`"), "{out:?}");
    let printed = ok(ipechain().args(["gateway", "--print-config", "--config"]).arg(&file).output().unwrap());
    assert!(printed.contains("[ledger.onem2m]"), "{printed}");
    let out = ipechain()
        .args(["gateway", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(tmp.path().join("state"))
        .args(["--ops-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[ledger.lwm2m]") && err.contains("cert.pem"), "{err}");
    // A bad log filter is an error, not silence.
    let out =
        ipechain().args(["status", "--data-dir", "/nonexistent"]).env("IPECHAIN_LOG", "info,=x=y").output();
    let out = out.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IPECHAIN_LOG"), "{out:?}");
}

#[test]
fn completions_and_man_pages_come_from_the_cli() {
    let bash = ok(ipechain().args(["completions", "bash"]).output().unwrap());
    for sub in [
        "up",
        "gateway",
        "node",
        "keys",
        "status",
        "verify",
        "policy",
        "device",
        "bench",
        "completions",
        "man",
    ] {
        assert!(bash.contains(sub), "bash completion without {sub}");
    }
    assert!(bash.contains("--print-config") && bash.contains("--log-format"));
    // bash parses it.
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("ipechain.bash");
    std::fs::write(&script, &bash).unwrap();
    let parsed = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(parsed.status.success(), "bash -n: {}", String::from_utf8_lossy(&parsed.stderr));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let text = ok(ipechain().args(["completions", shell]).output().unwrap());
        assert!(text.contains("print-config"), "{shell}");
    }

    let dir = tmp.path().join("man");
    let listed = ok(ipechain().args(["man", "--dir"]).arg(&dir).output().unwrap());
    for page in ["ipechain.1", "ipechain-up.1", "ipechain-keys-generate.1", "ipechain-completions.1"] {
        let path = dir.join(page);
        assert!(listed.contains(&path.display().to_string()), "{page} not listed: {listed}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(".ie") || text.contains("\n.TH ") || text.starts_with(".TH "), "{page}");
        assert!(text.contains(".TH "), "{page}: no .TH");
    }
    let up = std::fs::read_to_string(dir.join("ipechain-up.1")).unwrap();
    assert!(up.contains("print\\-config"), "ipechain-up.1 documents --print-config");
    // groff (Debian's groff-base, installed by scripts/test.sh) renders the page without a warning (`-k`:
    // UTF-8 input through preconv).
    let out = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.join("ipechain-up.1"))
        .output()
        .expect("groff is missing: scripts/test.sh installs groff-base");
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn wait_for_line(path: &Path, needle: &str, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `ipechain up` on `net`'s data directory with its CSE on `cse_addr` and every other listener of the gateway on
/// a free loopback port.
fn up_on_free_ports(net: &Net, cse_addr: &str) -> Command {
    let free_udp = || format!("127.0.0.1:{}", test_support::free_udp_port());
    let mut c = ipechain();
    c.args(["up", "--data-dir"])
        .arg(net.dir.root())
        .args(["--cse-addr", cse_addr])
        .args(["--cse-https-addr", "127.0.0.1:0"])
        .args(["--lwm2m-addr", &free_udp()])
        .args(["--lwm2m-dtls-addr", &free_udp()])
        .args(["--lwm2m-bootstrap-addr", &free_udp()])
        .args(["--lwm2m-bootstrap-dtls-addr", &free_udp()])
        .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{}", test_support::free_tcp_port())])
        .args(["--ops-addr", "127.0.0.1:0"]);
    c
}

/// A newcomer's first `ipechain up` (default logging, JSON lines here to read them exactly): the three
/// orderers start one after the other and elect a leader while the others are not listening yet; that used
/// to print openraft ERROR lines. Nothing logs at ERROR now until the network has been up for a while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_prints_no_error_line_at_startup() {
    let net = Net::generate();
    let tmp = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (tmp.path().join("up.out"), tmp.path().join("up.err"));
    let _up = ChildGuard::spawn(
        up_on_free_ports(&net, &format!("127.0.0.1:{}", test_support::free_tcp_port()))
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap()),
    )
    .unwrap();
    assert!(
        wait_for_line(&stdout, "ipechain is up", 120),
        "up did not come up: {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    for n in net.node_names() {
        net.wait_up(&n).await;
    }
    // Elections and the first blocks settle within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(&stderr).unwrap();
    let mut lines = 0;
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_ne!(v["level"], "ERROR", "an ERROR line at startup: {line}");
        lines += 1;
    }
    assert!(lines >= 5, "the nodes log in JSON: {log}");
    assert!(log.contains("\"target\":\"orderer::node\""), "{log}");
}

/// `up` whose CSE port is taken stops with the reason after its orderers (each on a runtime of its own) have
/// started: the error names the port, and letting go of the running orderers' runtimes does not panic.
#[test]
fn up_with_its_cse_port_taken_stops_with_the_reason() {
    let net = Net::generate();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = up_on_free_ports(&net, &addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..1200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| panic!("up did not stop within 120 s: {stderr}"));
    assert!(!status.success(), "up started on a taken port: {stderr}");
    assert!(stderr.contains(&format!("binding the CSE to {addr}")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(taken);
}

/// `systemd-analyze verify` (Debian's `systemd`, installed by scripts/test.sh) accepts the packaged units, with `/usr/bin/ipechain` pointed at
/// the binary under test (verify checks that the executable exists) and the template unit as an instance.
#[test]
fn systemd_units_verify() {
    assert!(
        Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: scripts/test.sh installs Debian's systemd package"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    let tmp = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace("@.service", "@peer0.org1.ipechain.local.service");
        let text =
            std::fs::read_to_string(&path).unwrap().replace("/usr/bin/ipechain", bin().to_str().unwrap());
        std::fs::write(tmp.path().join(&name), text).unwrap();
        units.push(tmp.path().join(name));
    }
    units.sort();
    assert_eq!(units.len(), 3, "{units:?}");
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
