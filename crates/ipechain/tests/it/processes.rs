//! Five `ipechain node` processes (3 orderers, 2 peers) under load: the Raft leader and later a peer are
//! killed with SIGKILL and restarted. Afterwards every peer has the same chain, every transaction whose
//! commit was reported to a client is in it exactly once, the restarted peer streams one contract event per
//! commit and resumes from a checkpoint without gap or duplicate, a deleted state database is rebuilt, `ipechain verify` passes, and a flipped byte in a
//! block file makes `verify` fail naming that block.

use ledger_client::{Gateway, node_status};
use ledger_rpc::tls::{TlsMaterial, channel};
use ledger_types::BlockExt;
use ledger_types::tx::DecodedTx;
use network::layout::{load_identity, read_genesis, tls_material};
use network::{DataDir, IdentitySigner, NetworkConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::ChildGuard;

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ipechain"))
}

pub(crate) struct Net {
    _tmp: tempfile::TempDir,
    pub(crate) dir: DataDir,
    pub(crate) net: NetworkConfig,
    pub(crate) logs: PathBuf,
    nodes: HashMap<String, ChildGuard>,
}

impl Net {
    pub(crate) fn generate() -> Net {
        Net::generate_with(msp::Algorithm::Ed25519)
    }

    /// The default network on free ports, every node and user signing with `alg`.
    pub(crate) fn generate_with(alg: msp::Algorithm) -> Net {
        let mut net = NetworkConfig::default_network();
        net.crypto.key_algorithm = alg;
        for n in net.orderers.iter_mut().chain(net.peers.iter_mut()) {
            n.port = test_support::free_tcp_port();
        }
        Net::generate_from(net)
    }

    /// `ipechain keys generate` of `net` into a fresh directory.
    pub(crate) fn generate_from(net: NetworkConfig) -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("network-in.toml");
        std::fs::write(&cfg, net.to_toml()).unwrap();
        let dir = DataDir::new(tmp.path().join("data"));
        let out = Command::new(bin())
            .args(["keys", "generate", "--data-dir"])
            .arg(dir.root())
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "keys generate: {}", String::from_utf8_lossy(&out.stderr));
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Net { _tmp: tmp, dir, net, logs, nodes: HashMap::new() }
    }

    pub(crate) fn node_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .net
            .orderers
            .iter()
            .map(|o| format!("{}.ipechain.local", o.name))
            .chain(
                self.net
                    .peers
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{}.org{}.ipechain.local", p.name, i + 1)),
            )
            .collect();
        v.dedup();
        v
    }

    pub(crate) fn start(&mut self, name: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .unwrap();
        let child = ChildGuard::spawn(
            Command::new(bin())
                .args(["node", "--config"])
                .arg(self.dir.node_config(name))
                .env("RUST_LOG", "info,openraft=warn")
                .stdout(Stdio::null())
                .stderr(log),
        )
        .unwrap();
        self.nodes.insert(name.to_owned(), child);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill9(&mut self, name: &str) {
        let mut g = self.nodes.remove(name).unwrap();
        g.0.kill().unwrap();
        g.0.wait().unwrap();
    }

    /// SIGTERM one node and wait for its clean exit.
    pub(crate) fn stop(&mut self, name: &str) {
        let mut g = self.nodes.remove(name).unwrap();
        Command::new("kill").args(["-TERM", &g.0.id().to_string()]).status().unwrap();
        for _ in 0..200 {
            if let Some(status) = g.0.try_wait().unwrap() {
                assert!(status.success(), "{name} exited with {status} after SIGTERM");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name} did not stop within 10 s of SIGTERM");
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop_all(&mut self) {
        for (name, mut g) in self.nodes.drain() {
            let pid = g.0.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let mut exited = false;
            for _ in 0..200 {
                if let Some(status) = g.0.try_wait().unwrap() {
                    assert!(status.success(), "{name} exited with {status} after SIGTERM");
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(exited, "{name} did not stop within 10 s of SIGTERM");
        }
    }

    pub(crate) fn user(&self, org: usize) -> (Arc<IdentitySigner>, TlsMaterial) {
        self.user_named(org, "User1")
    }

    /// A user (`User1`, `Admin`, `Gateway`) of peer organization `org` (1-based): signer and client TLS.
    pub(crate) fn user_named(&self, org: usize, name: &str) -> (Arc<IdentitySigner>, TlsMaterial) {
        let domain = format!("org{org}.ipechain.local");
        let d = self
            .dir
            .crypto_dir()
            .join("peerOrganizations")
            .join(&domain)
            .join("users")
            .join(format!("{name}@{domain}"));
        let id = load_identity(&format!("Org{org}MSP"), &d).unwrap();
        let (_, channel_cfg) = read_genesis(&self.dir.genesis_file("iot")).unwrap();
        let tls = tls_material(&id, &channel_cfg).unwrap();
        (Arc::new(IdentitySigner::new(id)), tls)
    }

    pub(crate) fn endpoint(&self, name: &str) -> String {
        let o = self.net.orderers.iter().find(|o| name.starts_with(&format!("{}.", o.name)));
        let p = self
            .net
            .peers
            .iter()
            .enumerate()
            .find(|(i, p)| name == format!("{}.org{}.ipechain.local", p.name, i + 1));
        o.map(|o| o.endpoint()).or(p.map(|(_, p)| p.endpoint())).unwrap()
    }

    pub(crate) async fn status(&self, name: &str) -> Option<ledger_rpc::messages::NodeStatus> {
        let (_, tls) = self.user_named(1, "Admin");
        let ch = channel(&self.endpoint(name), &tls).ok()?;
        tokio::time::timeout(Duration::from_secs(2), node_status(ch)).await.ok()?.ok()
    }

    pub(crate) async fn wait_up(&self, name: &str) {
        for _ in 0..300 {
            if self.status(name).await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Its own log when the test started it alone, else `ipechain up`'s.
        let own = self.logs.join(format!("{name}.log"));
        let log = if own.exists() { own } else { self.logs.join("up.log") };
        panic!("{name} did not come up; see {}", log.display());
    }

    async fn leader(&self) -> String {
        for _ in 0..100 {
            for o in &self.net.orderers {
                let name = format!("{}.ipechain.local", o.name);
                if let Some(s) = self.status(&name).await
                    && s.raft_state == "leader"
                {
                    return name;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no Raft leader");
    }
}

fn blocks_dir(dir: &DataDir, node: &str) -> PathBuf {
    dir.node_data(node).join("blocks")
}

/// Valid transaction ids in a peer's block files, with their count.
fn valid_tx_counts(dir: &Path) -> (HashMap<String, usize>, u64) {
    let mut counts = HashMap::new();
    let mut height = 0;
    for b in ledger_store::file::scan(dir).unwrap() {
        let b = b.unwrap();
        height = b.number + 1;
        let codes = b.block.validation_codes().to_vec();
        for (i, env) in b.block.envelopes().iter().enumerate() {
            if codes[i] == 0 && b.number > 0 {
                let d = DecodedTx::decode(env).unwrap();
                *counts.entry(d.tx_id().to_owned()).or_insert(0) += 1;
            }
        }
    }
    (counts, height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_survive_kill_9_and_the_chain_stays_whole() {
    let mut net = Net::generate();
    let names = net.node_names();
    for n in &names {
        net.start(n);
    }
    for n in &names {
        net.wait_up(n).await;
    }

    // Load: 6 client apps, half on each peer, recording every commit reported to them.
    let stop = Arc::new(AtomicBool::new(false));
    let reported = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut apps = Vec::new();
    for app in 0..6usize {
        let org = app % 2 + 1;
        let (signer, tls) = net.user(org);
        let gw = Gateway::connect(&net.net.peers[org - 1].endpoint(), &tls, signer, "iot").unwrap();
        let stop = stop.clone();
        let reported = reported.clone();
        apps.push(tokio::spawn(async move {
            let kv = gw.contract("kv");
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let key = format!("app{app}-{seq}");
                let args = [key.clone().into_bytes(), b"v".to_vec()];
                match tokio::time::timeout(Duration::from_secs(15), kv.submit("put", &args)).await {
                    Ok(Ok(c)) => reported.lock().unwrap().push((c.tx_id, key)),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let leader = net.leader().await;
    eprintln!("killing the Raft leader {leader}");
    net.kill9(&leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_restart = reported.lock().unwrap().len();
    net.start(&leader);
    net.wait_up(&leader).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let victim = names.iter().find(|n| n.contains("org2")).unwrap().clone();
    eprintln!("killing peer {victim}");
    net.kill9(&victim);
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.start(&victim);
    net.wait_up(&victim).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    for a in apps {
        a.await.unwrap();
    }
    let reported: Vec<(String, String)> = reported.lock().unwrap().clone();
    assert!(
        reported.len() > before_restart && before_restart > 0,
        "load kept committing: {before_restart} then {}",
        reported.len()
    );

    // Every node converges on one chain.
    let mut converged = None;
    for _ in 0..150 {
        let mut seen = Vec::new();
        for n in &names {
            seen.push(net.status(n).await.map(|s| (s.height, s.head_hash)));
        }
        if seen.iter().all(|s| s.is_some() && *s == seen[0]) {
            converged = seen[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (height, head) = converged.expect("all five nodes reach the same height and head hash");
    eprintln!("converged at height {height}, head {head}, {} commits reported", reported.len());

    // Contract events from the peer that was killed and restarted: every reported commit exactly once, in
    // chain order, and a resume from a checkpoint continues with no gap and no duplicate.
    let (signer, tls) = net.user(2);
    let gw2 = Gateway::connect(&net.net.peers[1].endpoint(), &tls, signer, "iot").unwrap();
    let mut stream = gw2.contract_events("kv", ledger_client::Checkpoint::default()).await.unwrap();
    let mut events = Vec::new();
    while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
        events.push((e.block, e.event.tx_id));
    }
    let ids: std::collections::HashSet<&String> = events.iter().map(|e| &e.1).collect();
    assert_eq!(ids.len(), events.len(), "no duplicate events");
    assert!(reported.iter().all(|(id, _)| ids.contains(id)), "an event for every reported commit");
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "events in chain order");
    let mid = events.len() / 2;
    let mut cp = ledger_client::Checkpoint::default();
    cp.handled(events[mid].0, &events[mid].1);
    let mut resumed = gw2.contract_events("kv", cp).await.unwrap();
    for expected in &events[mid + 1..] {
        let e = tokio::time::timeout(Duration::from_secs(5), resumed.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(&(e.block, e.event.tx_id), expected);
    }
    drop((stream, resumed));
    net.stop_all();

    // Each reported commit is in each peer's chain exactly once.
    for p in names.iter().filter(|n| n.starts_with("peer")) {
        let (counts, h) = valid_tx_counts(&blocks_dir(&net.dir, p));
        assert_eq!(h, height, "{p}");
        for (id, _) in &reported {
            assert_eq!(counts.get(id), Some(&1), "{p}: reported transaction {id}");
        }
    }

    // A peer whose state database is deleted rebuilds it from its blocks when it restarts.
    let org1 = names.iter().find(|n| n.contains("org1")).unwrap().clone();
    std::fs::remove_file(net.dir.node_data(&org1).join("state.redb")).unwrap();
    net.start(&org1);
    net.wait_up(&org1).await;
    let s = net.status(&org1).await.unwrap();
    assert_eq!((s.height, s.head_hash.clone()), (height, head.clone()), "rebuilt peer serves the same chain");
    let (signer, tls) = net.user(1);
    let gw = Gateway::connect(&net.net.peers[0].endpoint(), &tls, signer, "iot").unwrap();
    for (_, key) in reported.iter().step_by(50) {
        let got = gw.contract("kv").evaluate("get", &[key.clone().into_bytes()]).await.unwrap();
        assert_eq!(got, b"v", "state rebuilt: {key}");
    }
    net.stop_all();

    // The offline audit passes...
    let out = Command::new(bin()).args(["verify", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{text}");
    assert!(text.contains(&format!("height {height}")), "{text}");

    // ... and one flipped byte inside block 2 of peer0.org2 is found and named.
    let dir = blocks_dir(&net.dir, &victim);
    let target = ledger_store::file::scan(&dir).unwrap().map(|b| b.unwrap()).find(|b| b.number == 2).unwrap();
    let seg = dir.join("blocks").join(format!("{:06}.seg", target.pos.segment));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = target.pos.offset as usize + 48 + target.len as usize / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, bytes).unwrap();
    let out = Command::new(bin()).args(["verify", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify must fail on a damaged block:\n{text}");
    assert!(text.contains(&victim) && text.contains("block 2"), "verify must name the block:\n{text}");
}

/// A blocking HTTP/1.1 GET on 127.0.0.1 with oneM2M headers; returns the status line and body.
pub(crate) fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: t1\r\nX-M2M-RVI: 3\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_ledger_the_cse_and_the_lwm2m_server_and_stops_on_sigterm() {
    let net = Net::generate();
    let (cse, coap, admin) =
        (test_support::free_tcp_port(), test_support::free_udp_port(), test_support::free_tcp_port());
    let https = test_support::free_tcp_port();
    let spawn = || {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(net.logs.join("up.log")).unwrap();
        ChildGuard::spawn(
            Command::new(bin())
                .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
                .args(["up", "--data-dir"])
                .arg(net.dir.root())
                .args(["--cse-addr", &format!("127.0.0.1:{cse}")])
                .args(["--cse-https-addr", &format!("127.0.0.1:{https}")])
                .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
                .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{admin}")])
                .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
                .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
                .args([
                    "--lwm2m-bootstrap-dtls-addr",
                    &format!("127.0.0.1:{}", test_support::free_udp_port()),
                ])
                .stdout(Stdio::piped())
                .stderr(log),
        )
        .unwrap()
    };
    let mut up = spawn();
    for n in net.node_names() {
        net.wait_up(&n).await;
    }
    // The oneM2M side answers like ACME.
    let mut cb = String::new();
    for _ in 0..100 {
        cb = http_get(cse, "/cse-in");
        if cb.contains("m2m:cb") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cb.starts_with("HTTP/1.1 200") && cb.contains("\"csi\":\"/id-in\""), "{cb}");
    // And over HTTPS with peer0.org1's certificate, trusted through Org1's TLS CA; a client certificate of the
    // network binds the originator to its CN.
    let org1 = net.dir.crypto_dir().join("peerOrganizations/org1.ipechain.local");
    let ca = std::fs::read(org1.join("tlsca/tlsca.org1.ipechain.local-cert.pem")).unwrap();
    let https_client = |origin: &str, identity: Option<mca_client::tls::PemIdentity>| {
        let tls = mca_client::tls::TlsClient { ca_pems: vec![ca.clone()], identity }.rustls_config().unwrap();
        let url = format!("https://127.0.0.1:{https}/cse-in");
        mca_client::McaClient::new(mca_client::McaConfig::from_url(&url, origin, Some(tls)).unwrap())
    };
    let cb = https_client("CAdmin", None).retrieve("cse-in").await.unwrap();
    assert_eq!(cb["csi"], "/id-in", "{cb}");
    assert!(cb["poa"].as_array().unwrap().contains(&serde_json::json!(format!("https://127.0.0.1:{https}"))));
    let user = org1.join("users/User1@org1.ipechain.local/tls");
    let id = mca_client::tls::PemIdentity {
        cert_pem: std::fs::read(user.join("client.crt")).unwrap(),
        key_pem: std::fs::read(user.join("client.key")).unwrap(),
    };
    let c = https_client("Csomeone", Some(id));
    let r = c.send(&c.request(onem2m::Operation::Retrieve, "cse-in")).await.unwrap();
    assert_eq!(r.rsc, onem2m::Rsc::OriginatorHasNoPrivilege, "{:?}", r.pc);
    // An LwM2M client registers over real UDP and shows up in the admin API.
    let out = Command::new(test_support::coap_client())
        .args(["-m", "post", "-t", "40", "-e", "</3/0>,</3303/0>"])
        .arg(format!("coap://127.0.0.1:{coap}/rd?ep=up-ep&lt=60&lwm2m=1.1&b=U"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clients = http_get(admin, "/api/clients");
    assert!(clients.contains("\"endpoint\":\"up-ep\""), "{clients}");

    // SIGTERM: a clean exit.
    Command::new("kill").args(["-TERM", &up.0.id().to_string()]).status().unwrap();
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = up.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("`ipechain up` stops within 15 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    let mut printed = String::new();
    use std::io::Read;
    up.0.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    assert!(
        printed.contains("ipechain is up") && printed.contains(&format!("127.0.0.1:{cse}/cse-in")),
        "{printed}"
    );

    // A second run reuses the data: same keys, same chain.
    let mut again = spawn();
    for n in net.node_names() {
        net.wait_up(&n).await;
    }
    assert!(http_get(cse, "/cse-in").contains("m2m:cb"));
    Command::new("kill").args(["-TERM", &again.0.id().to_string()]).status().unwrap();
    let mut printed = String::new();
    again.0.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    assert!(printed.contains("reusing the network"), "{printed}");
}
