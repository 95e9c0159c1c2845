//! Interworking end to end through the ledger, with real peers: `ipechain up` (embedded CSE or ACME as a
//! remote CSE), lwm2m-node-lib and aiocoap as LwM2M clients, oneM2M applications over Mca HTTP.
//!
//! Checked: a device's registration becomes its AE tree; read / write / execute / observe written into
//! `<AE>/cmd` come back as one contentInstance each in `<AE>/rsp` (and the subscriber is notified); a
//! repeated request id and a request the on-chain policy denies are rejected with 4105 / 4103; a device that
//! stopped answering gets a timeout answer; the gateway killed with SIGKILL mid-flow and restarted answers every
//! request exactly once; a Send of SenML CBOR lands in the data containers; a device's own request is answered
//! by an application (scenario 2); the paper's Node.js application on Fabric's own client
//! (`examples/fabric-node-app/app.js`) runs both scenarios; `ipechain verify` passes afterwards.

use ledger_types::BlockExt;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ledger_client::Gateway;
use mca_client::NotificationListener;
use serde_json::{Value, json};
use test_support::ChildGuard;
use tokio::io::AsyncWriteExt;

use crate::processes::{Net, bin};

/// A blocking Mca request on 127.0.0.1; returns (rsc, body).
pub(crate) fn mca(
    port: u16,
    method: &str,
    path: &str,
    origin: &str,
    ty: Option<u16>,
    body: &Value,
) -> (u16, Value) {
    mca_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), method, path, origin, ty, body)
}

/// A blocking Mca request to `addr`; returns (rsc, body); rsc 0 when nothing answers.
pub(crate) fn mca_at(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    origin: &str,
    ty: Option<u16>,
    body: &Value,
) -> (u16, Value) {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, Value::Null); // not listening (yet), or unreachable
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = addr.ip();
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let ct = ty.map(|t| format!("Content-Type: application/json;ty={t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-M2M-Origin: {origin}\r\nX-M2M-RI: t\r\nX-M2M-RVI: 3\r\n\
         Accept: application/json\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|_| ())
    .ok();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let rsc = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-m2m-rsc").then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    // A chunked body (ACME) has size lines around the JSON.
    let json_text =
        body.find('{').map(|i| &body[i..body.rfind('}').map_or(body.len(), |j| j + 1)]).unwrap_or("");
    (rsc, serde_json::from_str(json_text).unwrap_or(Value::Null))
}

pub(crate) struct Up {
    child: ChildGuard,
    pub(crate) cse: u16,
    pub(crate) coap: u16,
}

pub(crate) fn spawn_up(net: &Net, cse: u16, coap: u16, extra: &[String]) -> Up {
    let admin = test_support::free_tcp_port();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(net.logs.join("up.log")).unwrap();
    let child = ChildGuard::spawn(
        Command::new(bin())
            .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
            .args(["up", "--data-dir"])
            .arg(net.dir.root())
            .args(["--cse-addr", &format!("127.0.0.1:{cse}")])
            .args(["--cse-https-addr", "127.0.0.1:0"])
            .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
            .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(extra)
            .env("RUST_LOG", "info,openraft=error,bridge=debug")
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap();
    Up { child, cse, coap }
}

pub(crate) async fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..secs * 10 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The lwm2m-node-lib interactive client, fed commands on stdin.
pub(crate) struct NodeClient {
    child: ChildGuard,
    stdin: tokio::process::ChildStdin,
}

impl NodeClient {
    pub(crate) async fn start(setup: &str) -> NodeClient {
        NodeClient::start_with(Command::new("node"), setup).await
    }

    /// The client run by `cmd` (`node`, or a wrapper such as `ip netns exec NS node`), fed `setup`.
    pub(crate) async fn start_with(mut cmd: Command, setup: &str) -> NodeClient {
        cmd.arg(test_support::lwm2m_node_client())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = ChildGuard::spawn(&mut cmd).expect("node runs the lwm2m-node-lib client");
        let stdin = tokio::process::ChildStdin::from_std(child.0.stdin.take().unwrap()).unwrap();
        let mut c = NodeClient { child, stdin };
        c.stdin.write_all(setup.as_bytes()).await.unwrap();
        c
    }

    pub(crate) async fn say(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }
}

/// A oneM2M application: its AE on the CSE and a notification listener subscribed to a device's `rsp`.
pub(crate) struct App {
    port: u16,
    base: String,
    origin: String,
    notes: NotificationListener,
}

impl App {
    pub(crate) async fn register(port: u16, base: &str, origin: &str) -> App {
        let (rsc, body) = mca(
            port,
            "POST",
            &format!("/{base}"),
            origin,
            Some(2),
            &json!({"m2m:ae": {"rn": origin.trim_start_matches('C'), "api": "Napp", "rr": true, "srv": ["3"]}}),
        );
        assert!(rsc == 2001 || rsc == 4117 || rsc == 4105, "AE registration: {rsc} {body}");
        let notes = NotificationListener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        App { port, base: base.to_owned(), origin: origin.to_owned(), notes }
    }

    pub(crate) fn subscribe_rsp(&self, ae: &str, rn: &str) {
        let (rsc, body) = mca(
            self.port,
            "POST",
            &format!("/{}/{ae}/rsp", self.base),
            &self.origin,
            Some(23),
            &json!({"m2m:sub": {"rn": rn, "nu": [self.notes.url()], "nct": 1, "enc": {"net": [3]}}}),
        );
        assert_eq!(rsc, 2001, "subscription on {ae}/rsp: {body}");
    }

    pub(crate) fn request(&self, ae: &str, con: Value) {
        let (rsc, body) = mca(
            self.port,
            "POST",
            &format!("/{}/{ae}/cmd", self.base),
            &self.origin,
            Some(4),
            &json!({"m2m:cin": {"cr": null, "con": con}}),
        );
        assert_eq!(rsc, 2001, "request into {ae}/cmd: {body}");
    }

    /// The next answer in `rsp` for `request_id` (as notified).
    pub(crate) async fn answer(&mut self, request_id: &str, secs: u64) -> Value {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let n = tokio::time::timeout_at(until, self.notes.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer to {request_id} within {secs} s"))
                .unwrap();
            if let Some(con) = n.representation().and_then(|c| c.get("con")) {
                let con = match con {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                    v => v.clone(),
                };
                if con.get("request_id").and_then(Value::as_str) == Some(request_id) {
                    return con;
                }
                if con.pointer("/device_request/request_id").is_some() && request_id == "*device_request*" {
                    return con;
                }
            }
        }
    }

    /// Every answer stored in `<ae>/rsp`, by request id.
    fn stored_answers(&self, ae: &str) -> Vec<Value> {
        let (rsc, body) =
            mca(self.port, "GET", &format!("/{}/{ae}/rsp?rcn=4", self.base), "CAdmin", None, &Value::Null);
        assert_eq!(rsc, 2000, "{body}");
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
}

pub(crate) fn sdk(net: &Net, org: usize, user: &str) -> Gateway {
    let (signer, tls) = net.user_named(org, user);
    let peer = net.endpoint(&format!("peer0.org{org}.ipechain.local"));
    Gateway::connect(&peer, &tls, signer, "iot").unwrap()
}

/// The lines a child writes to its stdout, as they come.
pub(crate) fn lines_of(stdout: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    lines
}

pub(crate) async fn wait_ledger_up(net: &Net) {
    for n in net.node_names() {
        net.wait_up(&n).await;
    }
}

pub(crate) fn wait_tree(port: u16, base: &str, path: &str) -> impl FnMut() -> Option<()> {
    let p = format!("/{base}/{path}");
    move || (mca(port, "GET", &p, "CAdmin", None, &Value::Null).0 == 2000).then_some(())
}

pub(crate) async fn stop(up: &mut Up) {
    Command::new("kill").args(["-TERM", &up.child.0.id().to_string()]).status().unwrap();
    for _ in 0..300 {
        if let Some(s) = up.child.0.try_wait().unwrap() {
            assert!(s.success(), "`ipechain up` exited with {s}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`ipechain up` did not stop");
}

pub(crate) fn verify(net: &Net) {
    let out = Command::new(bin()).args(["verify", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) async fn get_request(gw: &Gateway, id: &str) -> Value {
    // Not on the ledger yet: Null (callers wait).
    match gw.contract("ipe").evaluate("get_request", &[id.as_bytes().to_vec()]).await {
        Ok(b) => serde_json::from_slice(&b).unwrap(),
        Err(_) => Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwm2m_node_lib_and_an_mca_application_through_the_ledger_and_the_embedded_cse() {
    node_lib_and_mca_application(&[]).await;
}

/// The same, with the IPE as an external chaincode (`up --ipe-external`): the peers drive it over Fabric's
/// chaincode protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwm2m_node_lib_and_an_mca_application_with_the_ipe_as_external_chaincode() {
    node_lib_and_mca_application(&["--ipe-external".into()]).await;
}

async fn node_lib_and_mca_application(extra: &[String]) {
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, extra);
    wait_ledger_up(&net).await;
    wait_for("the CSE", 30, || {
        (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;

    // The device registers; its AE tree appears on the oneM2M side through the ledger.
    let mut dev = NodeClient::start(&format!(
        "create /3/0\nset /3/0 0 Acme\nset /3/0 4 reboot\ncreate /3303/0\nset /3303/0 5700 21.5\n\
         set /3303/0 5750 hall\nconnect 127.0.0.1 {} node-ep /\n",
        up.coap
    ))
    .await;
    wait_for("the device's AE tree", 60, wait_tree(up.cse, "cse-in", "Cnode-ep/obj3303_0/res5700")).await;

    let mut app = App::register(up.cse, "cse-in", "Capp1").await;
    app.subscribe_rsp("Cnode-ep", "app1-rsp");

    // Read.
    app.request("Cnode-ep", json!({"request_id": "app1-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("app1-1", 60).await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["rsc"], 2000, "{a}");
    assert_eq!(a["content"]["values"]["/3303/0/5700"]["v"], 21.5, "{a}");
    assert_eq!(a["originator"], "Capp1");
    // The value also went into its data container.
    let (_, la) = mca(up.cse, "GET", "/cse-in/Cnode-ep/obj3303_0/res5700/la", "Capp1", None, &Value::Null);
    assert_eq!(la.pointer("/m2m:cin/con/v"), Some(&json!(21.5)), "{la}");

    // Write, then read back; execute.
    app.request(
        "Cnode-ep",
        json!({"request_id": "app1-2", "op": "write", "path": "/3303/0/5750", "content": {"v": "kitchen"}}),
    );
    let a = app.answer("app1-2", 30).await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["rsc"], 2004, "{a}");
    app.request("Cnode-ep", json!({"request_id": "app1-3", "op": "read", "path": "/3303/0/5750"}));
    let a = app.answer("app1-3", 30).await;
    assert_eq!(a["content"]["values"]["/3303/0/5750"]["v"], "kitchen", "{a}");
    app.request("Cnode-ep", json!({"request_id": "app1-4", "op": "execute", "path": "/3/0/4"}));
    let a = app.answer("app1-4", 30).await;
    assert_eq!(a["status"], "ok", "{a}");

    // Observe: the device's later values arrive in the data container.
    app.request("Cnode-ep", json!({"request_id": "app1-5", "op": "observe", "path": "/3303/0/5700"}));
    let a = app.answer("app1-5", 30).await;
    assert_eq!(a["status"], "ok", "{a}");
    dev.say("set /3303/0 5700 23.5").await;
    wait_for("the notified value in res5700", 30, || {
        let (_, la) =
            mca(up.cse, "GET", "/cse-in/Cnode-ep/obj3303_0/res5700/la", "Capp1", None, &Value::Null);
        (la.pointer("/m2m:cin/con/v") == Some(&json!(23.5))).then_some(())
    })
    .await;

    // A repeated request id is rejected (it never acts twice).
    app.request("Cnode-ep", json!({"request_id": "app1-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("app1-1", 30).await;
    assert_eq!((a["status"].as_str(), a["rsc"].as_u64()), (Some("rejected"), Some(4105)), "{a}");

    // The on-chain policy, changed by an admin, denies another application.
    let policy =
        json!({"rules": [{"id": "only-app1", "originators": ["Capp1"], "devices": ["*"], "ops": ["*"]}]});
    let file = net.logs.join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let out = Command::new(bin())
        .args(["policy", "set", "--data-dir"])
        .arg(net.dir.root())
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "policy set: {}", String::from_utf8_lossy(&out.stderr));
    let out =
        Command::new(bin()).args(["policy", "show", "--data-dir"]).arg(net.dir.root()).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["rules"][0]["id"], "only-app1", "{shown}");
    let app2 = App::register(up.cse, "cse-in", "Capp2").await;
    app2.request("Cnode-ep", json!({"request_id": "app2-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("app2-1", 30).await;
    assert_eq!((a["status"].as_str(), a["rsc"].as_u64()), (Some("rejected"), Some(4103)), "{a}");
    // The impersonation of issue 13: the denied application writes a request without asking for `cr` and names
    // the allowed one in the content. The gateway takes the originator from the CSE: answered 4103 as Capp2,
    // and the write never reaches the device.
    let (rsc, body) = mca(
        up.cse,
        "POST",
        "/cse-in/Cnode-ep/cmd",
        "Capp2",
        Some(4),
        &json!({"m2m:cin": {"con": {"request_id": "app2-2", "op": "write", "path": "/3303/0/5750",
            "content": {"v": "hijacked"}, "originator": "Capp1"}}}),
    );
    assert_eq!(rsc, 2001, "{body}");
    let a = app.answer("app2-2", 30).await;
    assert_eq!((a["status"].as_str(), a["rsc"].as_u64()), (Some("rejected"), Some(4103)), "{a}");
    assert_eq!(a["originator"], "Capp2", "{a}");
    app.request("Cnode-ep", json!({"request_id": "app1-30", "op": "read", "path": "/3303/0/5750"}));
    let a = app.answer("app1-30", 30).await;
    assert_eq!(a["content"]["values"]["/3303/0/5750"]["v"], "kitchen", "the device was written: {a}");

    // The gateway is killed mid-flow (requests written, answers not yet given) and restarted.
    for i in 6..11 {
        app.request(
            "Cnode-ep",
            json!({"request_id": format!("app1-{i}"), "op": "read", "path": "/3303/0/5700"}),
        );
    }
    up.child.0.kill().unwrap();
    up.child.0.wait().unwrap();
    let mut up = spawn_up(&net, cse, coap, &[]);
    wait_ledger_up(&net).await;
    // The LwM2M server forgot the registration with the process; the client registers again.
    dev.say("disconnect").await;
    dev.say(&format!("connect 127.0.0.1 {} node-ep /", up.coap)).await;
    let user = sdk(&net, 1, "User1");
    for i in 6..11 {
        let id = format!("app1-{i}");
        let rec = wait_for_async(&format!("an answer to {id}"), 90, || get_request(&user, &id)).await;
        // The device was unknown to the restarted LwM2M server until it registered again: the request
        // waited for it and was served then.
        assert_eq!(rec["status"], "ok", "{rec}");
    }

    // A device that stopped answering: the request times out, with an answer.
    dev.child.0.kill().unwrap();
    app.request(
        "Cnode-ep",
        json!({"request_id": "app1-20", "op": "read", "path": "/3303/0/5700", "timeout": 3}),
    );
    let rec = wait_for_async("the timeout answer", 60, || get_request(&user, "app1-20")).await;
    assert_eq!(rec["status"], "timeout", "{rec}");
    assert_eq!(rec["response"]["rsc"], 4008, "{rec}");

    // Every request has exactly one answer in rsp, and one on the ledger.
    let stored = wait_for("all answers stored", 30, || {
        let s = app.stored_answers("Cnode-ep");
        s.iter().any(|a| a["request_id"] == "app1-20").then_some(s)
    })
    .await;
    let mut ids: Vec<String> = stored
        .iter()
        .filter(|a| a["status"] != "rejected")
        .filter_map(|a| a["request_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(ids, dedup, "an answer stored twice");
    for id in ["app1-1", "app1-2", "app1-3", "app1-4", "app1-5", "app1-6", "app1-10", "app1-20"] {
        assert!(ids.iter().any(|x| x == id), "no answer to {id} in rsp: {ids:?}");
    }
    stop(&mut up).await;
    verify(&net);
    // On every peer's chain: each request exactly once as a valid submit_request and once as a valid
    // submit_response.
    for peer in ["peer0.org1.ipechain.local", "peer0.org2.ipechain.local"] {
        let calls = valid_ipe_calls(&net.dir.node_data(peer).join("blocks"));
        for id in [
            "app1-1", "app1-2", "app1-3", "app1-4", "app1-5", "app1-6", "app1-7", "app1-8", "app1-9",
            "app1-10", "app1-20",
        ] {
            let n = |f: &str| calls.iter().filter(|(func, rid)| func == f && rid == id).count();
            assert_eq!((n("submit_request"), n("submit_response")), (1, 1), "{id} on {peer}");
        }
        assert!(
            !calls.iter().any(|(f, rid)| f == "submit_request" && (rid == "app2-1" || rid == "app2-2")),
            "a denied request committed"
        );
    }
}

/// (function, request id) of every valid IPE transaction in a peer's block files.
fn valid_ipe_calls(blocks: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in ledger_store::file::scan(blocks).unwrap() {
        let b = b.unwrap();
        let codes = b.block.validation_codes().to_vec();
        for (i, env) in b.block.envelopes().iter().enumerate() {
            if codes[i] != 0 || b.number == 0 {
                continue;
            }
            let d = ledger_types::tx::DecodedTx::decode(env).unwrap();
            let spec = d.action.unwrap().invocation().unwrap().chaincode_spec.unwrap();
            let args = spec.input.unwrap().args;
            let function = String::from_utf8(args[0].to_vec()).unwrap();
            let arg: Value = args.get(1).and_then(|a| serde_json::from_slice(a).ok()).unwrap_or(Value::Null);
            if let Some(id) = arg.get("request_id").and_then(Value::as_str) {
                out.push((function, id.to_owned()));
            }
        }
    }
    out
}

async fn wait_for_async<F, Fut>(what: &str, secs: u64, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let mut last = Value::Null;
    for _ in 0..secs * 5 {
        last = f().await;
        if last["status"] != "pending" && !last.is_null() {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwm2m_node_lib_through_the_ledger_to_acme_as_a_remote_cse() {
    let acme = test_support::AcmeProcess::spawn(false).unwrap();
    wait_for("ACME", 60, || {
        (mca(acme.port, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let remote = format!("--remote-cse=http://{}/cse-in", acme.authority());
    let mut up = spawn_up(&net, cse, coap, &[remote]);
    wait_ledger_up(&net).await;
    // The gateway joined ACME as the IPE AE.
    wait_for("the IPE AE on ACME", 60, wait_tree(acme.port, "cse-in", "Cipechain-ipe")).await;

    let mut dev = NodeClient::start(&format!(
        "create /3303/0\nset /3303/0 5700 19.5\nset /3303/0 5750 lab\nconnect 127.0.0.1 {} acme-ep /\n",
        up.coap
    ))
    .await;
    wait_for("the device's tree on ACME", 60, wait_tree(acme.port, "cse-in", "Cacme-ep/obj3303_0/res5700"))
        .await;

    // An application written for ACME: its own AE, a subscription on the device's rsp, requests into cmd.
    let mut app = App::register(acme.port, "cse-in", "Cacme-app").await;
    app.subscribe_rsp("Cacme-ep", "acme-app-rsp");
    // Only the gateway writes answers: ACME refuses a forged one (the device ACP's `acod`/`chty`).
    let (rsc, body) = mca(
        acme.port,
        "POST",
        "/cse-in/Cacme-ep/rsp",
        "Cacme-app",
        Some(4),
        &json!({"m2m:cin": {"con": {"request_id": "acme-1", "status": "ok"}}}),
    );
    assert_eq!(rsc, 4103, "a forged answer in rsp: {body}");
    app.request("Cacme-ep", json!({"request_id": "acme-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("acme-1", 60).await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["content"]["values"]["/3303/0/5700"]["v"], 19.5, "{a}");
    app.request(
        "Cacme-ep",
        json!({"request_id": "acme-2", "op": "write", "path": "/3303/0/5750", "content": {"v": "cellar"}}),
    );
    assert_eq!(app.answer("acme-2", 30).await["rsc"], 2004);
    app.request("Cacme-ep", json!({"request_id": "acme-3", "op": "read", "path": "/3303/0/5750"}));
    let a = app.answer("acme-3", 30).await;
    assert_eq!(a["content"]["values"]["/3303/0/5750"]["v"], "cellar", "{a}");

    // Impersonation on ACME (issue 13): only Cacme-app may command devices. Another application names it in
    // the content: without `cr` the gateway cannot know who wrote the request and rejects it (4000); with
    // `"cr": null` ACME records the real creator and the policy refuses it (4103). Neither reaches the device.
    let policy = json!({"rules": [{"id": "only-acme-app", "originators": ["Cacme-app"], "devices": ["*"], "ops": ["*"]}]});
    let file = net.logs.join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let out = Command::new(bin())
        .args(["policy", "set", "--data-dir"])
        .arg(net.dir.root())
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "policy set: {}", String::from_utf8_lossy(&out.stderr));
    let evil = App::register(acme.port, "cse-in", "Cacme-evil").await;
    let claim = |id: &str| {
        json!({"request_id": id, "op": "write", "path": "/3303/0/5750", "content": {"v": "hijacked"},
            "originator": "Cacme-app"})
    };
    let (rsc, body) = mca(
        acme.port,
        "POST",
        "/cse-in/Cacme-ep/cmd",
        "Cacme-evil",
        Some(4),
        &json!({"m2m:cin": {"con": claim("evil-1")}}),
    );
    assert_eq!(rsc, 2001, "{body}");
    let a = app.answer("evil-1", 30).await;
    assert_eq!((a["status"].as_str(), a["rsc"].as_u64()), (Some("rejected"), Some(4000)), "{a}");
    assert!(a["message"].as_str().is_some_and(|m| m.contains("create the request with cr")), "{a}");
    evil.request("Cacme-ep", claim("evil-2"));
    let a = app.answer("evil-2", 30).await;
    assert_eq!((a["status"].as_str(), a["rsc"].as_u64()), (Some("rejected"), Some(4103)), "{a}");
    assert_eq!(a["originator"], "Cacme-evil", "{a}");
    app.request("Cacme-ep", json!({"request_id": "acme-5", "op": "read", "path": "/3303/0/5750"}));
    let a = app.answer("acme-5", 30).await;
    assert_eq!(a["content"]["values"]["/3303/0/5750"]["v"], "cellar", "the device was written: {a}");

    // LwM2M → oneM2M: an observed value reaches ACME's data container.
    app.request("Cacme-ep", json!({"request_id": "acme-4", "op": "observe", "path": "/3303/0/5700"}));
    assert_eq!(app.answer("acme-4", 30).await["status"], "ok");
    dev.say("set /3303/0 5700 20.5").await;
    wait_for("the notified value on ACME", 30, || {
        let (_, la) =
            mca(acme.port, "GET", "/cse-in/Cacme-ep/obj3303_0/res5700/la", "Cacme-app", None, &Value::Null);
        let con = la.pointer("/m2m:cin/con").cloned().unwrap_or(Value::Null);
        let con = match con {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
            v => v,
        };
        (con["v"] == json!(20.5)).then_some(())
    })
    .await;

    // De-registration removes the device's AE from ACME.
    dev.say("disconnect").await;
    wait_for("the AE removed from ACME", 30, || {
        (mca(acme.port, "GET", "/cse-in/Cacme-ep", "CAdmin", None, &Value::Null).0 == 4004).then_some(())
    })
    .await;
    stop(&mut up).await;
    verify(&net);
}

/// Mca over HTTPS with ACME (`useTLS`): `up --remote-cse https://… --mca-ca CA --notify-tls`. The gateway
/// speaks HTTPS to ACME (verifying its certificate against the CA) and ACME notifies the gateway's HTTPS
/// listener of each request; an application on HTTPS gets its answer from the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwm2m_node_lib_through_the_ledger_to_acme_over_https() {
    use mca_client::tls::{PemIdentity, TlsClient, TlsServer};
    let ca = test_support::pki::Ca::new("ipechain test Mca CA");
    let cert = ca.issue("acme", &["127.0.0.1", "localhost"]);
    let acme = test_support::AcmeProcess::spawn_https(&cert.cert_pem, &cert.key_pem).unwrap();
    let tls = TlsClient { ca_pems: vec![ca.cert_pem.clone()], identity: None }.rustls_config().unwrap();
    let url = format!("https://{}/cse-in", acme.authority());
    let admin =
        mca_client::McaClient::new(mca_client::McaConfig::from_url(&url, "CAdmin", Some(tls)).unwrap());
    let ok = |r: Result<Value, mca_client::McaError>| r.ok();
    for _ in 0..300 {
        if ok(admin.retrieve("cse-in").await).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let net = Net::generate();
    let ca_file = net.logs.join("mca-ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let extra =
        [format!("--remote-cse={url}"), format!("--mca-ca={}", ca_file.display()), "--notify-tls".into()];
    let mut up = spawn_up(&net, cse, coap, &extra);
    wait_ledger_up(&net).await;
    let mut ipe = Value::Null;
    for _ in 0..300 {
        if let Some(v) = ok(admin.retrieve("cse-in/Cipechain-ipe").await) {
            ipe = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ipe["poa"][0].as_str().is_some_and(|p| p.starts_with("https://127.0.0.1:")), "the IPE AE: {ipe}");

    let _dev = NodeClient::start(&format!(
        "create /3303/0\nset /3303/0 5700 18.5\nconnect 127.0.0.1 {} tls-ep /\n",
        up.coap
    ))
    .await;
    let mut tree = false;
    for _ in 0..300 {
        if ok(admin.retrieve("cse-in/Ctls-ep/obj3303_0/res5700").await).is_some() {
            tree = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(tree, "the device's tree on ACME");

    let receiver = ca.issue("app", &["127.0.0.1"]);
    let server = TlsServer {
        identity: PemIdentity { cert_pem: receiver.cert_pem, key_pem: receiver.key_pem },
        client_ca_pems: vec![],
    };
    let mut notes =
        NotificationListener::bind_tls("127.0.0.1:0".parse().unwrap(), server.rustls_config().unwrap())
            .await
            .unwrap();
    let app = admin.with_origin("Ctls-app");
    app.register_ae("cse-in", "tlsapp", "Napp", vec![notes.url()], vec![]).await.unwrap();
    app.create_subscription("cse-in/Ctls-ep/rsp", "tls-app-rsp", vec![notes.url()], &[3]).await.unwrap();
    let mut w = app.request(onem2m::Operation::Create, "cse-in/Ctls-ep/cmd");
    w.ty = Some(4);
    w.pc = Some(
        json!({"m2m:cin": {"cr": null, "con": {"request_id": "tls-1", "op": "read", "path": "/3303/0/5700"}}}),
    );
    let r = app.send(&w).await.unwrap();
    assert_eq!(r.rsc, onem2m::Rsc::Created, "{:?}", r.pc);
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = notes.recv().await.unwrap();
            let con = match n.representation().and_then(|c| c.get("con")).cloned() {
                Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::Null),
                Some(v) => v,
                None => continue,
            };
            if con["request_id"] == "tls-1" {
                return con;
            }
        }
    })
    .await
    .expect("an answer to tls-1");
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["originator"], "Ctls-app", "{answer}");
    assert_eq!(answer["content"]["values"]["/3303/0/5700"]["v"], 18.5, "{answer}");
    stop(&mut up).await;
    verify(&net);
}

/// The next line of a device script's output that starts with `tag` (30 s at most).
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>, tag: &str) -> String {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.recv().await {
            if l.starts_with(tag) {
                return l;
            }
        }
        panic!("the device's output ended before {tag}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {tag} line from the device within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiocoap_sends_senml_cbor_and_its_request_is_answered_by_an_application() {
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, &[]);
    wait_ledger_up(&net).await;
    wait_for("the CSE", 30, || {
        (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_device.py");
    let mut cmd = Command::new(test_support::aiocoap_python());
    cmd.arg(&script)
        .arg(format!("127.0.0.1:{coap}"))
        .arg(test_support::free_udp_port().to_string())
        .arg("aio-iw")
        .env("AIOCOAP_SERVER_TRANSPORT", "udp6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = ChildGuard::spawn(&mut cmd).expect("python runs the aiocoap device");
    let mut stdin = child.0.stdin.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = lines_of(stdout);
    wait_for("the device's tree", 60, wait_tree(cse, "cse-in", "Caio-iw/obj3303_0/res5700")).await;
    let mut app = App::register(cse, "cse-in", "Capp-aio").await;
    app.subscribe_rsp("Caio-iw", "aio-rsp");

    // Send (SenML CBOR) → report → the value in its data container. The device's Send is answered 2.04 once
    // the report is on the ledger (the gateway's LwM2M server waits for the bridge's receipt).
    writeln!(stdin, "go").unwrap();
    let sent = next_line(&mut lines, "SEND").await;
    assert!(sent.contains("2.04"), "{sent}");
    wait_for("the sent value in res5700", 30, || {
        let (_, la) = mca(cse, "GET", "/cse-in/Caio-iw/obj3303_0/res5700/la", "Capp-aio", None, &Value::Null);
        (la.pointer("/m2m:cin/con/v") == Some(&json!(22.25))).then_some(())
    })
    .await;

    // The device asks (scenario 2): the application sees the request in rsp and answers through cmd; the
    // answer crosses the ledger and is written to the device.
    writeln!(stdin, "go").unwrap();
    let asked = app.answer("*device_request*", 30).await;
    let ask = next_line(&mut lines, "ASK").await;
    assert!(ask.contains("2.04"), "the device's request is acknowledged once on the ledger: {ask}");
    let dreq = &asked["device_request"];
    assert_eq!(dreq["topic"], "config", "{asked}");
    let id = dreq["request_id"].as_str().unwrap().to_owned();
    app.request(
        "Caio-iw",
        json!({"op": "answer", "request_id": id, "status": "ok", "content": {"setpoint": 21}}),
    );
    let answer = next_line(&mut lines, "ANSWER").await;
    assert!(answer.contains(&hex::encode("setpoint")), "{answer}");
    assert!(answer.contains(&hex::encode(&id)), "{answer}");
    let user = sdk(&net, 1, "User1");
    let b = user.contract("ipe").evaluate("get_device_request", &[id.as_bytes().to_vec()]).await.unwrap();
    let rec: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_eq!(rec["answer"]["originator"], "Capp-aio", "{rec}");
    stop(&mut up).await;
    verify(&net);
}

/// `ipechain gateway --config <file>` with a state directory of its own: the bridge with its embedded CSE
/// and LwM2M server, against the ledger the file's `[ledger]` names.
pub(crate) fn spawn_gateway(
    logs: &std::path::Path,
    config: &std::path::Path,
    state: &std::path::Path,
    extra: &[String],
) -> Up {
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let log = std::fs::OpenOptions::new().create(true).append(true).open(logs.join("gateway.log")).unwrap();
    let child = ChildGuard::spawn(
        Command::new(bin())
            .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
            .args(["gateway", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(state)
            .args(["--cse-addr", &format!("127.0.0.1:{cse}")])
            .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
            .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{}", test_support::free_tcp_port())])
            .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(extra)
            .env("RUST_LOG", "info,bridge=debug")
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap();
    Up { child, cse, coap }
}

/// `[ledger.<side>]` for a network's `Gateway` user of `org`: the files of its cryptogen folder, as a
/// Fabric application is given them.
pub(crate) fn ledger_link(net: &Net, side: &str, org: usize) -> String {
    let domain = format!("org{org}.ipechain.local");
    let user = net.dir.crypto_dir().join(format!("peerOrganizations/{domain}/users/Gateway@{domain}"));
    let signcert = std::fs::read_dir(user.join("msp/signcerts")).unwrap().next().unwrap().unwrap().path();
    format!(
        "[ledger.{side}]\npeer = {:?}\ntls_ca = {:?}\ntls_cert = {:?}\ntls_key = {:?}\nmsp_id = \"Org{org}MSP\"\n\
         cert = {:?}\nkey = {:?}\n",
        net.endpoint(&format!("peer0.{domain}")),
        user.join("tls/ca.crt"),
        user.join("tls/client.crt"),
        user.join("tls/client.key"),
        signcert,
        user.join("msp/keystore/priv_sk"),
    )
}

/// The bridge gateway on its own (`ipechain gateway`), pointed at a running network only through its
/// configuration's `[ledger]` section (peer addresses, TLS CA and client files, MSP ids, certificates, keys,
/// channel, chaincode), as it would be at any Fabric gateway: an application reads a device through it
/// (scenario 1), and a device's own request is answered by an application (scenario 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_its_own_interworks_through_a_ledger_named_by_its_configuration() {
    let net = Net::generate();
    // The ledger: `ipechain up` without its own gateway (its CSE and LwM2M server stay unused).
    let mut ledger = spawn_up(
        &net,
        test_support::free_tcp_port(),
        test_support::free_udp_port(),
        &["--no-gateway".into()],
    );
    wait_ledger_up(&net).await;
    // The ledger's admins govern access: applications `Capp*` may do everything.
    policy(&net, "grant", &["--id", "apps", "--originators", "Capp*"]);

    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[ledger]\nchannel = \"iot\"\nchaincode = \"ipe\"\n{}{}",
            ledger_link(&net, "lwm2m", 2),
            ledger_link(&net, "onem2m", 1)
        ),
    )
    .unwrap();
    let gw_state = state.path().join("state");
    let mut gw = spawn_gateway(&net.logs, &config, &gw_state, &[]);
    let cse = gw.cse;
    wait_for("the gateway's CSE", 60, || {
        (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;

    // Scenario 1: an application reads and writes a device.
    let _dev = NodeClient::start(&format!(
        "create /3/0\nset /3/0 0 Acme\ncreate /3303/0\nset /3303/0 5700 19.5\nset /3303/0 5750 hall\n\
         connect 127.0.0.1 {} gw-node /\n",
        gw.coap
    ))
    .await;
    wait_for("the device's AE tree", 60, wait_tree(cse, "cse-in", "Cgw-node/obj3303_0/res5700")).await;
    let mut app = App::register(cse, "cse-in", "Capp-gw").await;
    app.subscribe_rsp("Cgw-node", "gw-rsp");
    app.request("Cgw-node", json!({"request_id": "gw-1", "op": "read", "path": "/3303/0/5700"}));
    let a = app.answer("gw-1", 60).await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["content"]["values"]["/3303/0/5700"]["v"], 19.5, "{a}");
    app.request(
        "Cgw-node",
        json!({"request_id": "gw-2", "op": "write", "path": "/3303/0/5750", "content": {"v": "roof"}}),
    );
    assert_eq!(app.answer("gw-2", 30).await["rsc"], 2004);

    // Scenario 2: a device asks; the application answers through the ledger.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_device.py");
    let mut cmd = Command::new(test_support::aiocoap_python());
    cmd.arg(&script)
        .arg(format!("127.0.0.1:{}", gw.coap))
        .arg(test_support::free_udp_port().to_string())
        .arg("gw-aio")
        .env("AIOCOAP_SERVER_TRANSPORT", "udp6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = ChildGuard::spawn(&mut cmd).expect("python runs the aiocoap device");
    let mut stdin = child.0.stdin.take().unwrap();
    let mut lines = lines_of(child.0.stdout.take().unwrap());
    wait_for("the second device's tree", 60, wait_tree(cse, "cse-in", "Cgw-aio/obj3303_0/res5700")).await;
    app.subscribe_rsp("Cgw-aio", "gw-aio-rsp");
    writeln!(stdin, "go").unwrap();
    writeln!(stdin, "go").unwrap();
    let asked = app.answer("*device_request*", 60).await;
    let id = asked["device_request"]["request_id"].as_str().unwrap().to_owned();
    app.request(
        "Cgw-aio",
        json!({"op": "answer", "request_id": id, "status": "ok", "content": {"setpoint": 18}}),
    );
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.recv().await {
            if l.starts_with("ANSWER") {
                return l;
            }
        }
        panic!("the device's output ended");
    })
    .await
    .expect("the answer reaches the device");
    assert!(answer.contains(&hex::encode(&id)), "{answer}");

    // The ledger holds both flows, submitted under the configured identities.
    let user = sdk(&net, 1, "User1");
    let r = get_request(&user, "gw-1").await;
    assert_eq!(r["status"], "ok", "{r}");
    let b = user.contract("ipe").evaluate("get_device_request", &[id.as_bytes().to_vec()]).await.unwrap();
    let rec: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_eq!(rec["answer"]["originator"], "Capp-gw", "{rec}");
    let dev: Value = serde_json::from_slice(
        &user.contract("ipe").evaluate("get_device", &[b"gw-node".to_vec()]).await.unwrap(),
    )
    .unwrap();
    assert_eq!(dev["gateway"]["org"], "Org2MSP", "{dev}");
    assert!(dev["gateway"]["id"].as_str().is_some_and(|id| id.starts_with("Gateway")), "{dev}");
    stop(&mut gw).await;
    stop(&mut ledger).await;
    verify(&net);
}

/// `ipechain policy SUBCOMMAND --data-dir … ARGS` (admin transactions signed as Org1's Admin).
pub(crate) fn policy(net: &Net, sub: &str, args: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(["policy", sub, "--data-dir"])
        .arg(net.dir.root())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "policy {sub}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The paper's Node.js application (`examples/fabric-node-app/app.js`) on Node 22 with
/// `@hyperledger/fabric-gateway`, given only its connection details: org 1's peer, `Org1MSP` and `User1`'s
/// cryptogen folder (channel `iot` and chaincode `ipe` are its defaults), and an event checkpoint file.
pub(crate) fn paper_app(net: &Net, scenario_args: &[&str]) -> Command {
    let (node, modules) = test_support::fabric_gateway_node();
    let app = test_support::workspace_root().join("examples/fabric-node-app/app.js");
    let user =
        net.dir.crypto_dir().join("peerOrganizations/org1.ipechain.local/users/User1@org1.ipechain.local");
    let mut cmd = Command::new(node);
    cmd.arg(app)
        .env("NODE_PATH", modules)
        .env("FABRIC_PEER", net.endpoint("peer0.org1.ipechain.local"))
        .env("FABRIC_MSP_ID", "Org1MSP")
        .env("FABRIC_USER_DIR", user)
        .arg("--checkpoint")
        .arg(net.logs.join("paper-app.checkpoint"))
        .args(scenario_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The application's JSON line of `event` (its report has one line per outcome).
pub(crate) fn outcome<'a>(lines: &'a [Value], event: &str) -> &'a Value {
    lines.iter().find(|l| l["event"] == event).unwrap_or_else(|| panic!("no {event:?} line in {lines:#?}"))
}

/// The research paper's two scenarios, by a Node.js application written against Fabric's own client
/// (`@hyperledger/fabric-gateway`) with nothing ipechain-specific but its connection details, against
/// `ipechain up`; the policy grants its originator `Cpaper-app` only. Scenario 1: it asks a device of the
/// simulator (`lwm2m-sim`) for its temperature through the IPE and receives the value by the `response` event.
/// Scenario 2: an aiocoap device asks it (a Send of object 32769), it answers through the IPE, and the device
/// receives the answer in `/32769/0/3` and `/32769/0/4`. Both are checked on the ledger with the Rust SDK too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_gateway_node_application_runs_both_paper_scenarios() {
    paper_scenarios(&[]).await;
}

/// The same with the IPE as an external chaincode (`up --ipe-external`): Fabric's client, ipechain's peers,
/// the IPE served over Fabric's chaincode protocol, as the paper's Go chaincode would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paper_scenarios_run_with_the_ipe_as_external_chaincode() {
    paper_scenarios(&["--ipe-external".into()]).await;
}

async fn paper_scenarios(extra: &[String]) {
    // A missing Node or fabric-gateway fails here, before anything starts.
    test_support::fabric_gateway_node();
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, extra);
    wait_ledger_up(&net).await;
    wait_for("the CSE", 30, || {
        (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;

    // A device of the simulator registers (its temperature is 20.0 until observed); its AE tree shows the
    // ledger has it.
    let sim = lwm2m_sim::Simulator::start(lwm2m_sim::SimConfig {
        server: std::net::SocketAddr::from(([127, 0, 0, 1], coap)),
        clients: 1,
        endpoint_prefix: "paper-sim-".into(),
        notify_interval: None,
        ..lwm2m_sim::SimConfig::default()
    })
    .await
    .unwrap();
    wait_for("the simulated device's tree", 60, wait_tree(cse, "cse-in", "Cpaper-sim-0/obj3303_0/res5700"))
        .await;

    // The starter policy (installed before the gateway made the tree) gives way to a rule for the application.
    policy(&net, "revoke", &["starter-all-apps"]);
    policy(
        &net,
        "grant",
        &["--id", "paper-app", "--originators", "Cpaper-app", "--ops", "read,answer", "--msps", "Org1MSP"],
    );
    let shown = policy(&net, "show", &[]);
    let rules: Vec<&str> =
        shown["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rules, ["paper-app"], "{shown}");

    // Scenario 1: the application reads the device through the IPE.
    let mut app = paper_app(&net, &["scenario1", "--endpoint", "paper-sim-0", "--path", "/3303/0/5700"]);
    let out = tokio::task::spawn_blocking(move || app.output().expect("node runs app.js")).await.unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scenario 1 failed:\n{report}");
    let lines: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let submitted = outcome(&lines, "submitted");
    assert_eq!(
        (submitted["status"].as_str(), submitted["committed"].as_bool()),
        (Some("pending"), Some(true))
    );
    let id = submitted["request_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("paper-app-"), "{submitted}");
    let response = outcome(&lines, "response");
    assert_eq!(response["request_id"], id.as_str());
    assert_eq!(
        (response["status"].as_str(), response["rsc"].as_u64()),
        (Some("ok"), Some(2000)),
        "{response}"
    );
    assert_eq!(response["values"]["/3303/0/5700"]["v"].as_f64(), Some(20.0), "{response}");
    assert_eq!(response["values"]["/3303/0/5700"]["unit"], "Cel", "{response}");
    // The ledger has the same: the request as Cpaper-app, submitted by Org1's User1, and the device's answer.
    let user = sdk(&net, 1, "User1");
    let rec = get_request(&user, &id).await;
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_eq!(
        (rec["originator"].as_str(), rec["submitter"]["msp"].as_str()),
        (Some("Cpaper-app"), Some("Org1MSP"))
    );
    assert_eq!(rec["endpoint"], "paper-sim-0", "{rec}");
    assert_eq!(rec["tx_id"], submitted["transaction_id"], "{rec}");
    assert_eq!(rec["response"]["tx_id"], response["transaction_id"], "{rec}");
    // (JavaScript writes the FLOAT 20.0 as 20.)
    let (kept, seen) =
        (&rec["response"]["content"]["values"]["/3303/0/5700"], &response["values"]["/3303/0/5700"]);
    assert_eq!(kept["v"].as_f64(), seen["v"].as_f64(), "{rec}");
    for field in ["t", "type", "unit"] {
        assert_eq!(kept[field], seen[field], "{field}: {rec}");
    }

    // Scenario 2: a device asks the application (its body names it as target).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scripts/aiocoap_device.py");
    let mut cmd = Command::new(test_support::aiocoap_python());
    cmd.arg(&script)
        .arg(format!("127.0.0.1:{coap}"))
        .arg(test_support::free_udp_port().to_string())
        .arg("paper-aio")
        .arg(r#"{"ask": "setpoint", "target": "Cpaper-app"}"#)
        .env("AIOCOAP_SERVER_TRANSPORT", "udp6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut dev = ChildGuard::spawn(&mut cmd).expect("python runs the aiocoap device");
    let mut dev_in = dev.0.stdin.take().unwrap();
    let mut dev_out = lines_of(dev.0.stdout.take().unwrap());
    let mut next_line = async |what: &str, prefix: &str| {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(l) = dev_out.recv().await {
                if l.starts_with(prefix) {
                    return l;
                }
            }
            panic!("the device's output ended before {what}");
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    };
    wait_for("the aiocoap device's tree", 60, wait_tree(cse, "cse-in", "Cpaper-aio/obj3303_0/res5700")).await;
    // Its first step is a Send of its temperature (a report); then it waits to ask.
    writeln!(dev_in, "go").unwrap();
    next_line("the device's Send", "SEND").await;

    // The application listens (resuming from scenario 1's checkpoint, so nothing between is missed)...
    let mut app = ChildGuard::spawn(&mut paper_app(&net, &["scenario2", "--endpoint", "paper-aio"]))
        .expect("node runs app.js");
    let mut app_err = app.0.stderr.take().unwrap();
    let mut app_out = lines_of(app.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    let listening = tokio::time::timeout(Duration::from_secs(60), app_out.recv()).await;
    lines.extend(listening.ok().flatten());
    assert!(
        lines.first().is_some_and(|l| l.contains(r#""event":"listening""#)),
        "scenario 2 did not start: {lines:?}"
    );
    // ... the device asks; the application answers and sees the answer on the ledger, then exits.
    writeln!(dev_in, "go").unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(l) = app_out.recv().await {
            lines.push(l);
        }
    })
    .await;
    let mut stderr = String::new();
    let status = match ended {
        Ok(()) => app.0.wait().unwrap(),
        Err(_) => panic!("scenario 2 did not finish within 90 s: {lines:#?}"),
    };
    app_err.read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "scenario 2 failed ({status}):\n{}\n{stderr}", lines.join("\n"));
    let lines: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let asked = outcome(&lines, "device.request");
    assert_eq!(asked["to"], json!({"kind": "originator", "id": "Cpaper-app"}), "{asked}");
    assert_eq!((asked["endpoint"].as_str(), asked["topic"].as_str()), (Some("paper-aio"), Some("config")));
    assert!(asked["content"].to_string().contains("setpoint"), "{asked}");
    let dreq = asked["request_id"].as_str().unwrap().to_owned();
    let answered = outcome(&lines, "answered");
    assert_eq!(
        (answered["request_id"].as_str(), answered["committed"].as_bool()),
        (Some(dreq.as_str()), Some(true))
    );
    let answer = outcome(&lines, "device.answer");
    assert_eq!((answer["status"].as_str(), answer["originator"].as_str()), (Some("ok"), Some("Cpaper-app")));
    assert_eq!(answer["content"], json!({"setpoint": 21}), "{answer}");
    assert_eq!(answer["to"]["kind"], "gateway", "{answer}");

    // The gateway wrote the answer to the device: /32769/0/1 the request id, /3 the status, /4 the content.
    let written = next_line("the answer on the device", "ANSWER").await;
    let mut parts = written.split_whitespace().skip(1);
    let format: u16 = parts.next().unwrap().parse().unwrap();
    let payload = hex::decode(parts.next().unwrap()).unwrap();
    let records = lwm2m::codec::decode(
        lwm2m::ContentFormat(format),
        &payload,
        &lwm2m::LwM2mPath::new(&[32769, 0]).unwrap(),
        &lwm2m::Registry::builtin(),
    )
    .unwrap_or_else(|e| panic!("the device's Write ({written}): {e}"));
    let resource = |r: u16| {
        records
            .iter()
            .find(|rec| rec.path.ids() == [32769, 0, r])
            .map(|rec| rec.value.clone().coerce(lwm2m::ResourceType::String).to_string())
            .unwrap_or_else(|| panic!("no /32769/0/{r} in {records:?}"))
    };
    assert_eq!(resource(1), dreq);
    assert_eq!(resource(3), "ok");
    assert_eq!(serde_json::from_str::<Value>(&resource(4)).unwrap(), json!({"setpoint": 21}));
    // The ledger has the device's request answered by Cpaper-app, submitted by Org1's User1.
    let b = user.contract("ipe").evaluate("get_device_request", &[dreq.as_bytes().to_vec()]).await.unwrap();
    let rec: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_eq!(rec["answer"]["originator"], "Cpaper-app", "{rec}");
    assert_eq!(rec["answer"]["by"]["msp"], "Org1MSP", "{rec}");
    assert_eq!(rec["answer"]["tx_id"], answered["transaction_id"], "{rec}");

    sim.stop();
    stop(&mut up).await;
    verify(&net);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_demo_shows_both_flows_crossing_the_ledger() {
    let net = Net::generate();
    let (cse, coap, admin) =
        (test_support::free_tcp_port(), test_support::free_udp_port(), test_support::free_tcp_port());
    let mut child = ChildGuard::spawn(
        Command::new(bin())
            .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
            .args(["up", "--demo", "--data-dir"])
            .arg(net.dir.root())
            .args(["--cse-addr", &format!("127.0.0.1:{cse}")])
            .args(["--cse-https-addr", "127.0.0.1:0"])
            .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
            .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = lines_of(stdout);
    let (mut answered, mut request, mut response, mut report) = (false, false, false, false);
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.recv().await {
            request |= l.starts_with("[ledger] block") && l.contains(" request demo-");
            response |=
                l.starts_with("[ledger] block") && l.contains(" response demo-") && l.contains("ok (2000)");
            report |= l.starts_with("[ledger] block") && l.contains("report (send) from demo-dev-");
            answered |= l.starts_with("[demo] Cdemo-app ← rsp: demo-") && l.contains(" ok rsc 2000 ");
            seen.push(l);
            if answered && request && response && report {
                break;
            }
        }
    })
    .await;
    assert!(answered && request && response && report, "demo output:\n{}", seen.join("\n"));
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_interworking_completes_round_trips_and_writes_csv_and_svg() {
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, &[]);
    wait_ledger_up(&net).await;
    wait_for("the CSE", 30, || {
        (mca(cse, "GET", "/cse-in", "CAdmin", None, &Value::Null).0 == 2000).then_some(())
    })
    .await;
    let csv = net.logs.join("iw.csv");
    let svg = net.logs.join("iw.svg");
    let out = tokio::process::Command::new(bin())
        .args([
            "bench",
            "interworking",
            "--apps",
            "4,8",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--devices",
            "4",
        ])
        .args([
            "--report-interval-ms",
            "500",
            "--lwm2m-addr",
            &format!("127.0.0.1:{coap}"),
            "--json",
            "--data-dir",
        ])
        .arg(net.dir.root())
        .arg("--csv")
        .arg(&csv)
        .arg("--svg")
        .arg(&svg)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "bench: {}", String::from_utf8_lossy(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    for r in rows {
        assert!(r["completed"].as_u64().unwrap() > 0, "no round trip completed: {j}");
        assert!(r["round_trips_per_s"].as_f64().unwrap() > 0.0, "{j}");
        assert!(r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(), "{j}");
        // The orderers' Raft terms were read before and after the load (a number, not `null`: unknown).
        assert!(r["raft_elections"].as_u64().is_some(), "{j}");
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("apps,round_trips_per_s,"), "{text}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("<polyline"), "{plot}");
    stop(&mut up).await;
    verify(&net);
}

/// `ipechain verify` on a chain written by `ipechain bench ledger`, with 1 and with 4 signature-checking
/// threads: every peer passes, and both runs (and both peers) derive the same validation codes (the commit
/// hash chains them) and the same state (its hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_benchmarked_chain_verifies_alike_on_1_and_4_threads() {
    let net = Net::generate();
    let (cse, coap) = (test_support::free_tcp_port(), test_support::free_udp_port());
    let mut up = spawn_up(&net, cse, coap, &[]);
    wait_ledger_up(&net).await;
    let out = tokio::process::Command::new(bin())
        .args(["bench", "ledger", "--apps", "64", "--duration", "3", "--warmup", "1", "--json", "--data-dir"])
        .arg(net.dir.root())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "bench: {}", String::from_utf8_lossy(&out.stderr));
    stop(&mut up).await;
    let run = |threads: &str| {
        let out = Command::new(bin())
            .args(["verify", "--threads", threads, "--data-dir"])
            .arg(net.dir.root())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "verify --threads {threads}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Per peer: (transactions, commit hash, state hash).
        let rows: Vec<(String, String, String)> = text
            .lines()
            .filter(|l| l.contains(": OK"))
            .map(|l| {
                let field = |name: &str| {
                    let at = l.find(&format!("  {name} ")).unwrap_or_else(|| panic!("no {name} in {l}"));
                    l[at + name.len() + 3..].split_whitespace().next().unwrap().to_owned()
                };
                let txs = l.split("  ").find(|p| p.ends_with("valid)")).unwrap().to_owned();
                (txs, field("commit"), field("state"))
            })
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        rows
    };
    let one = run("1");
    let four = run("4");
    assert_eq!(one, four, "verdicts must not depend on the thread count");
    assert_eq!(one[0], one[1], "both peers validated alike");
    let txs: u64 = one[0].0.split_whitespace().next().unwrap().parse().unwrap();
    assert!(txs > 100, "the benchmark committed transactions: {}", one[0].0);
}
