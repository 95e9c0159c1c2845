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
//! Link delay and loss without `tc netem` (these machines' kernel has no `sch_netem`: "Specified qdisc kind
//! is unknown"), with netfilter inside the gateway's and the switch's namespaces: delay is an NFQUEUE rule
//! (`iptables`, nf_tables backend) on the gateway's interface and a queue consumer of this test ([`Delay`],
//! the `nfq` crate) that holds every packet the gateway sends for 20 ms, in order, as `netem delay 20ms`
//! on that interface would; loss is an nft `numgen random` drop at the ingress of both ends of the gateway's
//! cable. The interworking round trips run once without and once with the delay, and the test prints the
//! delayed rate as a share of the undelayed one (a figure, not an assertion); the cut-links phase runs with
//! 10 % loss on the gateway's link.
//!
//! Needs root (CI runs as root), iproute2, nftables and iptables (`scripts/test.sh` installs them).

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
                enter_netns(&path);
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

/// Link delay on a host's interface: every packet it sends out of `eth0` is queued (NFQUEUE) and let go
/// `delay` after it was queued, in order, by a thread of this test in that host's namespace. Removed on drop.
struct Delay {
    ns: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

/// The NFQUEUE rule of [`Delay`]: `-A` adds it, `-D` deletes it. `-w`: iptables takes a lock file shared by
/// every namespace of the machine, so another run's rule change waits instead of failing this one.
fn delay_rule(ns: &str, op: &str) {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "iptables",
            "-w",
            op,
            "OUTPUT",
            "-o",
            "eth0",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "0",
        ],
    );
}

impl Delay {
    fn start(lab: &Lab, host: &str, delay: Duration) -> Delay {
        let ns = lab.ns(host);
        let path = format!("/run/netns/{ns}");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (bound_tx, bound) = std::sync::mpsc::channel();
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            enter_netns(&path);
            let mut q = nfq::Queue::open().expect("a netfilter queue socket");
            q.bind(0).expect("bind netfilter queue 0");
            q.set_queue_max_len(0, 65536).expect("queue length");
            q.set_nonblocking(true);
            bound_tx.send(()).unwrap();
            let mut held: std::collections::VecDeque<(std::time::Instant, nfq::Message)> = Default::default();
            let mut passed = 0u64;
            loop {
                let stopping = halt.load(Ordering::Acquire);
                loop {
                    match q.recv() {
                        Ok(m) => held.push_back((std::time::Instant::now() + delay, m)),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("netfilter queue: {e}"),
                    }
                }
                let now = std::time::Instant::now();
                while held.front().is_some_and(|(due, _)| stopping || *due <= now) {
                    let (_, mut m) = held.pop_front().unwrap();
                    m.set_verdict(nfq::Verdict::Accept);
                    q.verdict(m).expect("verdict");
                    passed += 1;
                }
                if stopping {
                    return passed;
                }
                std::thread::sleep(Duration::from_micros(250));
            }
        });
        bound.recv_timeout(Duration::from_secs(10)).expect("the queue consumer bound its queue");
        delay_rule(&ns, "-A");
        Delay { ns, stop, thread: Some(thread) }
    }

    /// Removes the delay; returns how many packets it held.
    fn stop(mut self) -> u64 {
        self.end()
    }

    fn end(&mut self) -> u64 {
        let Some(t) = self.thread.take() else { return 0 };
        delay_rule(&self.ns, "-D");
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        t.join().unwrap()
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.end();
        }
    }
}

/// Random loss of `percent` of the packets in both directions of `host`'s cable: an nft `numgen random`
/// drop at the ingress of its interface (what reaches the host) and of the cable's switch end (what it sends).
fn loss(lab: &Lab, host: &str, percent: u8) {
    for (ns, dev) in [(lab.ns(host), "eth0".to_owned()), (lab.ns("sw"), format!("v-{host}"))] {
        let nft = |args: &[&str]| run("ip", &[&["netns", "exec", &ns, "nft"][..], args].concat());
        nft(&["add", "table", "netdev", "loss"]);
        let hook = format!("{{ type filter hook ingress device \"{dev}\" priority 0; }}");
        nft(&["add", "chain", "netdev", "loss", "ingress", &hook]);
        let p = percent.to_string();
        nft(&[
            "add", "rule", "netdev", "loss", "ingress", "numgen", "random", "mod", "100", "<", &p, "counter",
            "drop",
        ]);
    }
}

/// Removes [`loss`]; returns the packets it dropped (both directions).
fn no_loss(lab: &Lab, host: &str) -> u64 {
    let mut dropped = 0;
    for ns in [lab.ns(host), lab.ns("sw")] {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "list", "table", "netdev", "loss"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        dropped += text
            .split("packets ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no drop counter in {text}"));
        run("ip", &["netns", "exec", &ns, "nft", "delete", "table", "netdev", "loss"]);
    }
    dropped
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/<name>`): the sockets it
/// opens from now on live there.
fn enter_netns(path: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: setns(2) on a valid namespace fd moves only this thread; no memory is shared through it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
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

/// Writes a request into `<ae>/cmd` as the application `Capp-mh`. The contentInstance is named after the
/// request id, so the write can be repeated when no answer came back (the link may drop 10 % of the packets,
/// and a connection can outlast the client's timeouts): a repeat that finds the name taken (4105) means the
/// first write landed.
async fn request(lab: &Lab, cse: SocketAddr, ae: &str, con: Value) {
    let ae = ae.to_owned();
    lab.on("cl", move || write_request(cse, &ae, &con)).await;
}

/// [`request`] on a thread already in the client's namespace: a blocking write, repeated up to 5 times
/// when no answer comes (a connection refused, reset or timed out, as under loss or a starved machine).
fn write_request(cse: SocketAddr, ae: &str, con: &Value) {
    let path = format!("/cse-in/{ae}/cmd");
    let rn = con["request_id"].as_str().expect("a request has a request_id").to_owned();
    let cin = json!({"m2m:cin": {"rn": rn, "cr": null, "con": con}});
    let mut last = (0, Value::Null);
    for attempt in 0..5 {
        last = mca_at(cse, "POST", &path, "Capp-mh", Some(4), &cin);
        match last.0 {
            2001 => return,
            4105 if attempt > 0 => return,
            0 => std::thread::sleep(Duration::from_secs(1)),
            _ => break,
        }
    }
    panic!("request into {ae}/cmd: {} {}", last.0, last.1);
}

/// `n` interworking round trips at once: `n` read requests (`<prefix>-<i>`) written into the device's `cmd`
/// container as the application `Capp-mh`, one after the other over a connection each (`concurrent`
/// false: one application writing its requests in turn) or all at once (true: as `n` applications would),
/// done when all `n` answers are in its `rsp` container. Returns round trips per second, from the first
/// request written to the last answer seen (the container is read every 50 ms), and the seconds the
/// writing took.
async fn round_trips(
    lab: &Lab,
    cse: SocketAddr,
    aes: &[&str],
    prefix: &str,
    n: usize,
    concurrent: bool,
) -> (f64, f64) {
    let start = std::time::Instant::now();
    let body =
        |i: usize| json!({"request_id": format!("{prefix}-{i}"), "op": "read", "path": "/3303/0/5700"});
    // Request i goes to device i mod |aes|.
    let ae_of = |i: usize| aes[i % aes.len()];
    if concurrent {
        let ns = format!("/run/netns/{}", lab.ns("cl"));
        let writes: Vec<(String, Value)> = (0..n).map(|i| (ae_of(i).to_owned(), body(i))).collect();
        tokio::task::spawn_blocking(move || {
            let threads: Vec<_> = writes
                .into_iter()
                .map(|(ae, con)| {
                    let ns = ns.clone();
                    std::thread::spawn(move || {
                        enter_netns(&ns);
                        write_request(cse, &ae, &con);
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
        })
        .await
        .unwrap();
    } else {
        for i in 0..n {
            request(lab, cse, ae_of(i), body(i)).await;
        }
    }
    let written = start.elapsed().as_secs_f64();
    let want = format!("{prefix}-");
    for _ in 0..2400 {
        // Every device's answers at once: one after the other, the reads themselves would cross the
        // delayed link a dozen times per look and pace the measurement.
        let all = futures::future::join_all(aes.iter().map(|ae| answers(lab, cse, ae))).await;
        let done = all
            .iter()
            .flatten()
            .filter(|a| {
                a["request_id"].as_str().is_some_and(|id| id.starts_with(&want)) && a["status"] == "ok"
            })
            .count();
        if done == n {
            return (n as f64 / start.elapsed().as_secs_f64(), written);
        }
        assert!(done < n, "more answers than requests for {prefix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the {n} round trips {prefix} did not complete within 120 s");
}

/// The devices the larger delay-figure batches spread over: CoAP allows one outstanding request per device
/// (RFC 7252's NSTART = 1), so over a 20 ms link one device answers at most about 50 requests a second,
/// whatever ipechain does; spread over twelve, a batch of 60 measures the interworking path instead.
const FIG_DEVICES: [&str; 12] = [
    "mh-fig0", "mh-fig1", "mh-fig2", "mh-fig3", "mh-fig4", "mh-fig5", "mh-fig6", "mh-fig7", "mh-fig8",
    "mh-fig9", "mh-fig10", "mh-fig11",
];

/// Waits until the resource at `path` exists on the CSE (a device's tree was made).
async fn wait_for_tree(lab: &Lab, cse: SocketAddr, path: String) {
    for _ in 0..240 {
        let p = path.clone();
        if lab.on("cl", move || mca_at(cse, "GET", &p, "CAdmin", None, &Value::Null).0).await == 2000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{path} did not appear");
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
    // Twelve more devices for the larger batches of the delay figure (each answer container keeps 100 answers).
    let mut fig_devices = Vec::new();
    for ep in FIG_DEVICES {
        fig_devices.push(
            NodeClient::start_with(
                lab.cmd("cl", "node"),
                &format!("create /3303/0\nset /3303/0 5700 18.5\nconnect {gw_ip} 5683 {ep} /\n"),
            )
            .await,
        );
    }
    for ep in FIG_DEVICES {
        wait_for_tree(&lab, cse, format!("/cse-in/C{ep}/obj3303_0/res5700")).await;
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

    // Link delay: the same interworking round trips without and with 20 ms added to every packet the
    // gateway sends (as `netem delay 20ms` on its interface). The figure of issue 17: the delayed rate as a
    // share of the undelayed one, in the same run.
    const N: usize = 20;
    round_trips(&lab, cse, &["Cmh-node"], "warm", 4, false).await;
    let mut rates = Vec::new();
    for (concurrent, how) in [(false, "written one after the other"), (true, "written at once")] {
        let tag = if concurrent { "c" } else { "s" };
        let (plain, w_plain) =
            round_trips(&lab, cse, &["Cmh-node"], &format!("plain{tag}"), N, concurrent).await;
        let delay = Delay::start(&lab, "gw", Duration::from_millis(20));
        let (delayed, w_delayed) =
            round_trips(&lab, cse, &["Cmh-node"], &format!("delayed{tag}"), N, concurrent).await;
        let held = delay.stop();
        assert!(held > 0, "the delay held no packet");
        rates.push((how, plain, delayed, w_plain, w_delayed, held));
    }
    // A larger batch over twelve devices (20 each): the rate under load rather than one round trip's latency
    // or one device's CoAP pace. A batch of 20 to one device finishes in about 0.3 s undelayed, so the
    // latency a round trip gains (several link crossings of 20 ms, about 0.4 s in all) and the device's
    // one-at-a-time CoAP exchanges dominate it; 240 take seconds, and their rate is the path's throughput.
    const BIG: usize = 240;
    let fig_aes: Vec<String> = FIG_DEVICES.iter().map(|ep| format!("C{ep}")).collect();
    let fig_aes: Vec<&str> = fig_aes.iter().map(String::as_str).collect();
    // The first requests to a device that just registered are slow (seconds): warm each up first.
    round_trips(&lab, cse, &fig_aes, "figwarm", FIG_DEVICES.len() * 2, false).await;
    let (plain, w_plain) = round_trips(&lab, cse, &fig_aes, "bigplain", BIG, true).await;
    let delay = Delay::start(&lab, "gw", Duration::from_millis(20));
    let (delayed, w_delayed) = round_trips(&lab, cse, &fig_aes, "bigdelayed", BIG, true).await;
    let held = delay.stop();
    assert!(held > 0, "the delay held no packet");
    eprintln!(
        "FIGURE multihost interworking round trips, {BIG} requests to {} devices written at once: {plain:.2}/s without delay, \
         {delayed:.2}/s with 20 ms added to every packet the gateway sends ({held} packets held): {:.2} of the \
         undelayed rate (writing them took {w_plain:.2} s and {w_delayed:.2} s)",
        FIG_DEVICES.len(),
        delayed / plain
    );
    for (how, plain, delayed, w_plain, w_delayed, held) in rates {
        eprintln!(
            "FIGURE multihost interworking round trips, {N} requests {how}: {plain:.2}/s without delay, \
             {delayed:.2}/s with 20 ms added to every packet the gateway sends ({held} packets held): {:.2} \
             of the undelayed rate (writing them took {w_plain:.2} s and {w_delayed:.2} s)",
            delayed / plain
        );
    }

    // The cut-links phase runs with 10 % loss on the gateway's link (both directions).
    loss(&lab, "gw", 10);

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
    // Still lossy: another round trip through the gateway's link.
    request(&lab, cse, "Cmh-node", json!({"request_id": "mh-5", "op": "read", "path": "/3303/0/5750"})).await;
    assert_eq!(answer(&lab, cse, "Cmh-node", "mh-5", 90).await["status"], "ok");
    let dropped = no_loss(&lab, "gw");
    assert!(dropped > 0, "the loss dropped nothing");
    eprintln!("the cut-links phase lost {dropped} packets on the gateway's link (10 % each way)");

    // Exactly once: one stored answer per request; every node ends with the same head.
    let stored = answers(&lab, cse, "Cmh-node").await;
    let mut ids: Vec<String> = ["mh-1", "mh-2", "mh-3", "mh-5"].map(str::to_owned).into();
    for (prefix, n) in [("warm", 4), ("plains", N), ("delayeds", N), ("plainc", N), ("delayedc", N)] {
        ids.extend((0..n).map(|i| format!("{prefix}-{i}")));
    }
    for id in ids {
        assert_eq!(stored.iter().filter(|a| a["request_id"] == id.as_str()).count(), 1, "{id}: {stored:#?}");
    }
    let mut stored = Vec::new();
    for ae in &fig_aes {
        stored.extend(answers(&lab, cse, ae).await);
    }
    let fig_ids = [("figwarm", FIG_DEVICES.len() * 2), ("bigplain", BIG), ("bigdelayed", BIG)];
    for id in fig_ids.iter().flat_map(|(p, n)| (0..*n).map(move |i| format!("{p}-{i}"))) {
        assert_eq!(stored.iter().filter(|a| a["request_id"] == id.as_str()).count(), 1, "{id}: {stored:#?}");
    }
    drop(fig_devices);
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
