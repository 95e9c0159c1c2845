//! Every component on a host of its own: 3 orderers, 2 peers and the bridge gateway (`ipechain gateway`) each
//! in a Linux network namespace this test creates, plus one for the applications and devices, joined by a
//! bridge in a switch namespace. The addresses (10.213.<tag>.0/24) exist only inside the namespaces; nothing
//! is added to the machine's own namespace. The network is generated from a network.toml that names those
//! hosts (`keys generate` puts them into the TLS certificates and writes the gateway's configuration).
//!
//! Checked: both interworking flows cross the hosts; an orderer's link cut (and healed) does not stop the
//! flow; with the gateway's link cut, a request submitted straight to the ledger waits, and once the link is
//! back the gateway catches up from its checkpoint and answers it; every request is answered exactly once;
//! all nodes end with the same head; `ipechain verify` passes.
//!
//! Needs root (CI runs as root) and iproute2 (`scripts/test.sh` installs it). Link delay and loss (`tc
//! netem`) are not exercised: these machines' kernel has no `sch_netem` ("Specified qdisc kind is unknown").

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use network::{GatewayHost, NetworkConfig};
use serde_json::{Value, json};
use test_support::ChildGuard;

use crate::interworking::{NodeClient, get_request, lines_of, mca_at, verify, wait_for};
use crate::processes::{Net, bin};

/// Runs a command to completion; panics with its stderr when it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// The hosts: name and last address byte.
const HOSTS: [(&str, u8); 7] =
    [("o0", 11), ("o1", 12), ("o2", 13), ("p1", 21), ("p2", 22), ("gw", 30), ("cl", 40)];

/// The namespaces of one test run; deleted (with their links) on drop.
struct Lab {
    tag: u8,
}

impl Lab {
    fn create() -> Lab {
        let lab = Lab { tag: 20 + (std::process::id() % 200) as u8 };
        let sw = lab.ns("sw");
        // Leftovers of an earlier run with the same tag (a killed test) go first.
        drop(Lab { tag: lab.tag });
        run("ip", &["netns", "add", &sw]);
        run("ip", &["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &sw, "link", "set", "br0", "up"]);
        for (host, _) in HOSTS {
            let ns = lab.ns(host);
            let veth = format!("v-{host}");
            run("ip", &["netns", "add", &ns]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            run(
                "ip",
                &["-n", &sw, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns],
            );
            run("ip", &["-n", &sw, "link", "set", &veth, "master", "br0", "up"]);
            run("ip", &["-n", &ns, "addr", "add", &format!("{}/24", lab.ip(host)), "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn ns(&self, host: &str) -> String {
        format!("ipc{}-{host}", self.tag)
    }

    fn ip(&self, host: &str) -> String {
        let last = HOSTS.iter().find(|(h, _)| *h == host).map(|(_, n)| *n).unwrap();
        format!("10.213.{}.{last}", self.tag)
    }

    /// `program` run on `host`.
    fn cmd(&self, host: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).arg(program);
        c
    }

    /// Unplugs (or plugs back) `host`'s cable at the switch.
    fn link(&self, host: &str, up: bool) {
        run(
            "ip",
            &["-n", &self.ns("sw"), "link", "set", &format!("v-{host}"), if up { "up" } else { "down" }],
        );
    }

    /// Runs `f` on a thread that entered `host`'s network namespace: the sockets it opens live there.
    async fn on<T: Send + 'static>(&self, host: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns(host));
        tokio::task::spawn_blocking(move || {
            std::thread::spawn(move || {
                use std::os::fd::AsRawFd;
                let file = std::fs::File::open(&path).unwrap();
                // SAFETY: setns(2) on a valid namespace fd moves only this thread, which then runs `f`;
                // no memory is shared through it.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
        .await
        .unwrap()
    }

    /// `f` as a future on a runtime of its own on `host` (ledger clients).
    async fn on_async<T, Fut>(&self, host: &str, f: impl FnOnce() -> Fut + Send + 'static) -> T
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        self.on(host, move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f())
        })
        .await
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (host, _) in HOSTS.iter().chain([&("sw", 0)]) {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(host)]).stderr(Stdio::null()).status();
        }
    }
}

/// The host a node of the generated network runs on.
fn host_of(name: &str) -> &'static str {
    match name {
        "orderer0.ipechain.local" => "o0",
        "orderer1.ipechain.local" => "o1",
        "orderer2.ipechain.local" => "o2",
        "peer0.org1.ipechain.local" => "p1",
        "peer0.org2.ipechain.local" => "p2",
        other => panic!("no host for {other}"),
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    ChildGuard::spawn(cmd.stdout(Stdio::null()).stderr(log)).unwrap()
}

/// `ipechain status --json` as seen from the clients' host.
fn status(lab: &Lab, net: &Net) -> Vec<Value> {
    let out =
        lab.cmd("cl", bin()).args(["status", "--json", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Whether every node answers, one orderer leads, and all nodes have the same height and head.
fn converged(rows: &[Value]) -> bool {
    let heads: std::collections::HashSet<_> =
        rows.iter().map(|r| (r["height"].as_u64(), r["head_hash"].as_str().map(str::to_owned))).collect();
    rows.len() == 5
        && rows.iter().all(|r| r["reachable"] == true)
        && rows.iter().filter(|r| r["raft_state"] == "leader").count() == 1
        && heads.len() == 1
}

/// What the application stores in a device's `rsp` container, by request id.
async fn answers(lab: &Lab, cse: SocketAddr, ae: &str) -> Vec<Value> {
    let path = format!("/cse-in/{ae}/rsp?rcn=4");
    let (rsc, body) = lab.on("cl", move || mca_at(cse, "GET", &path, "CAdmin", None, &Value::Null)).await;
    if rsc != 2000 {
        return Vec::new();
    }
    body.pointer("/m2m:cnt/m2m:cin")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.get("con").cloned())
        .map(|c| match c {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
            v => v,
        })
        .collect()
}

/// Writes a request into `<ae>/cmd` as the application `Capp-mh`.
async fn request(lab: &Lab, cse: SocketAddr, ae: &str, con: Value) {
    let path = format!("/cse-in/{ae}/cmd");
    let (rsc, body) = lab
        .on("cl", move || {
            mca_at(cse, "POST", &path, "Capp-mh", Some(4), &json!({"m2m:cin": {"cr": null, "con": con}}))
        })
        .await;
    assert_eq!(rsc, 2001, "request into {ae}/cmd: {body}");
}

/// The stored answer to `id` in `<ae>/rsp`, waiting up to `secs`.
async fn answer(lab: &Lab, cse: SocketAddr, ae: &str, id: &str, secs: u64) -> Value {
    for _ in 0..secs * 4 {
        if let Some(a) = answers(lab, cse, ae).await.into_iter().find(|a| a["request_id"] == id) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no answer to {id} in {ae}/rsp within {secs} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_component_on_its_own_host_interworks_and_survives_cut_links() {
    let lab = Lab::create();
    let mut cfg = NetworkConfig::default_network();
    for (i, o) in cfg.orderers.iter_mut().enumerate() {
        o.host = lab.ip(&format!("o{i}"));
        o.port = 7050;
    }
    for (i, p) in cfg.peers.iter_mut().enumerate() {
        p.host = lab.ip(&format!("p{}", i + 1));
        p.port = 7051;
    }
    cfg.gateway = Some(GatewayHost { host: lab.ip("gw") });
    let net = Net::generate_from(cfg);
    let gateway_toml = net.dir.root().join("gateway.toml");
    assert!(gateway_toml.exists(), "keys generate writes the gateway's configuration");

    // The ledger: each node on its host.
    let mut nodes = Vec::new();
    for name in net.node_names() {
        let mut cmd = lab.cmd(host_of(&name), bin());
        cmd.args(["node", "--config"]).arg(net.dir.node_config(&name)).env("RUST_LOG", "info,openraft=warn");
        nodes.push(spawn(&mut cmd, &net.logs.join(format!("{name}.log"))));
    }
    wait_for("the ledger on five hosts", 90, || converged(&status(&lab, &net)).then_some(())).await;
    // The ledger's admins let applications `Capp*` do everything (from the clients' host).
    let out = lab
        .cmd("cl", bin())
        .args(["policy", "grant", "--data-dir"])
        .arg(net.dir.root())
        .args(["--id", "apps", "--originators", "Capp*"])
        .output()
        .unwrap();
    assert!(out.status.success(), "policy grant: {}", String::from_utf8_lossy(&out.stderr));

    // The gateway on its host, configured by the generated gateway.toml only.
    let state = net.logs.join("gateway-state");
    let mut gw_cmd = lab.cmd("gw", bin());
    gw_cmd
        .args(["gateway", "--config"])
        .arg(&gateway_toml)
        .arg("--data-dir")
        .arg(&state)
        .env("RUST_LOG", "info,bridge=debug");
    let mut gateway = spawn(&mut gw_cmd, &net.logs.join("gateway.log"));
    let cse: SocketAddr = format!("{}:8080", lab.ip("gw")).parse().unwrap();
    for _ in 0..240 {
        if lab.on("cl", move || mca_at(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0).await == 2000 {
            break;
        }
        assert!(gateway.0.try_wait().unwrap().is_none(), "the gateway exited (see gateway.log)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (rsc, body) = lab
        .on("cl", move || {
            mca_at(
                cse,
                "POST",
                "/cse-in",
                "Capp-mh",
                Some(2),
                &json!({"m2m:ae": {"rn": "app-mh", "api": "Napp", "rr": true, "srv": ["3"]}}),
            )
        })
        .await;
    assert_eq!(rsc, 2001, "the application's AE: {body}");

    // Scenario 1: a device on the clients' host, read and written by the application.
    let gw_ip = lab.ip("gw");
    let _dev = NodeClient::start_with(
        lab.cmd("cl", "node"),
        &format!(
            "create /3/0\nset /3/0 0 Acme\ncreate /3303/0\nset /3303/0 5700 21.5\nset /3303/0 5750 hall\n\
             connect {gw_ip} 5683 mh-node /\n"
        ),
    )
    .await;
    for _ in 0..240 {
        let p = "/cse-in/Cmh-node/obj3303_0/res5700";
        if lab.on("cl", move || mca_at(cse, "GET", p, "CAdmin", None, &Value::Null).0).await == 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    request(&lab, cse, "Cmh-node", json!({"request_id": "mh-1", "op": "read", "path": "/3303/0/5700"})).await;
    let a = answer(&lab, cse, "Cmh-node", "mh-1", 60).await;
    assert_eq!(
        (a["status"].clone(), a["content"]["values"]["/3303/0/5700"]["v"].clone()),
        (json!("ok"), json!(21.5)),
        "{a}"
    );
    request(
        &lab,
        cse,
        "Cmh-node",
        json!({"request_id": "mh-2", "op": "write", "path": "/3303/0/5750", "content": {"v": "roof"}}),
    )
    .await;
    assert_eq!(answer(&lab, cse, "Cmh-node", "mh-2", 30).await["rsc"], 2004);

    // Scenario 2: a device asks, the application answers through the ledger.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_device.py");
    let mut aio = lab.cmd("cl", test_support::aiocoap_python());
    aio.arg(&script)
        .arg(format!("{gw_ip}:5683"))
        .arg("56830")
        .arg("mh-aio")
        .env("AIOCOAP_SERVER_TRANSPORT", "udp6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut device = ChildGuard::spawn(&mut aio).expect("python runs the aiocoap device");
    let mut stdin = device.0.stdin.take().unwrap();
    let mut lines = lines_of(device.0.stdout.take().unwrap());
    for _ in 0..240 {
        let p = "/cse-in/Cmh-aio/obj3303_0/res5700";
        if lab.on("cl", move || mca_at(cse, "GET", p, "CAdmin", None, &Value::Null).0).await == 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    writeln!(stdin, "go").unwrap();
    writeln!(stdin, "go").unwrap();
    let mut asked = None;
    for _ in 0..240 {
        asked = answers(&lab, cse, "Cmh-aio")
            .await
            .into_iter()
            .find_map(|a| a.pointer("/device_request/request_id").and_then(Value::as_str).map(str::to_owned));
        if asked.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let asked = asked.expect("the device's request reaches the application");
    request(
        &lab,
        cse,
        "Cmh-aio",
        json!({"op": "answer", "request_id": asked, "status": "ok", "content": {"setpoint": 20}}),
    )
    .await;
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.recv().await {
            if l.starts_with("ANSWER") {
                return l;
            }
        }
        panic!("the device's output ended");
    })
    .await
    .expect("the answer reaches the device");
    assert!(line.contains(&hex::encode(&asked)), "{line}");

    // Fault 1: an orderer's cable is pulled; the other two keep ordering.
    lab.link("o0", false);
    request(&lab, cse, "Cmh-node", json!({"request_id": "mh-3", "op": "read", "path": "/3303/0/5750"})).await;
    let a = answer(&lab, cse, "Cmh-node", "mh-3", 90).await;
    assert_eq!(a["content"]["values"]["/3303/0/5750"]["v"], "roof", "{a}");
    lab.link("o0", true);

    // Fault 2: the gateway's cable is pulled. A request submitted straight to the ledger (as a Fabric
    // application would) is committed and waits; once the cable is back, the gateway catches up from its
    // checkpoint and answers it.
    lab.link("gw", false);
    let (signer, tls) = net.user(1);
    let peer = net.endpoint("peer0.org1.ipechain.local");
    lab.on_async("cl", move || async move {
        let gw = ledger_client::Gateway::connect(&peer, &tls, signer, "iot").unwrap();
        let args = json!({"request_id": "mh-4", "originator": "Capp-mh", "endpoint": "mh-node", "op": "read",
            "path": "/3303/0/5700", "timeout": 120});
        gw.contract("ipe").submit("submit_request", &[args.to_string().into_bytes()]).await.unwrap();
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pending = {
        let (signer, tls) = net.user(1);
        let peer = net.endpoint("peer0.org1.ipechain.local");
        lab.on_async("cl", move || async move {
            let gw = ledger_client::Gateway::connect(&peer, &tls, signer, "iot").unwrap();
            get_request(&gw, "mh-4").await
        })
        .await
    };
    assert_ne!(pending["status"], "ok", "answered while the gateway was cut off: {pending}");
    lab.link("gw", true);
    let mut done = Value::Null;
    for _ in 0..120 {
        let (signer, tls) = net.user(1);
        let peer = net.endpoint("peer0.org1.ipechain.local");
        done = lab
            .on_async("cl", move || async move {
                let gw = ledger_client::Gateway::connect(&peer, &tls, signer, "iot").unwrap();
                get_request(&gw, "mh-4").await
            })
            .await;
        if done["status"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(done["status"], "ok", "{done}");

    // Exactly once: one stored answer per request; every node ends with the same head.
    let stored = answers(&lab, cse, "Cmh-node").await;
    for id in ["mh-1", "mh-2", "mh-3"] {
        assert_eq!(stored.iter().filter(|a| a["request_id"] == id).count(), 1, "{id}: {stored:#?}");
    }
    wait_for("equal heads on every node", 60, || converged(&status(&lab, &net)).then_some(())).await;

    drop(device);
    for mut child in [gateway].into_iter().chain(nodes) {
        Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
        for _ in 0..200 {
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    verify(&net);
}
