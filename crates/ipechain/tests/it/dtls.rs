//! `ipechain up` serves LwM2M over DTLS with the key file under the data directory: coap-client-openssl
//! registers with PSK, and with `--lwm2m-nosec off` a NoSec Register is refused (4.03).

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use test_support::ChildGuard;

use crate::processes::{Net, bin};

pub(crate) fn coap_client(bin: std::path::PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin).args(["-B", "3"]).args(args).output().expect("libcoap client runs");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub(crate) fn clients(admin: u16) -> Option<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).ok()?;
    write!(s, "GET /api/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    serde_json::from_str(out.split_once("\r\n\r\n")?.1).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_coaps_from_the_key_file_and_refuses_nosec_when_off() {
    let net = Net::generate();
    let keys = net.dir.root().join("lwm2m");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(
        keys.join("lwm2m-keys"),
        format!("dtls-ep psk id-up {}\n", hex::encode(b"key-of-up-device")),
    )
    .unwrap();
    let (cse, coap, dtls, admin) = (
        test_support::free_tcp_port(),
        test_support::free_udp_port(),
        test_support::free_udp_port(),
        test_support::free_tcp_port(),
    );
    let log = std::fs::OpenOptions::new().create(true).append(true).open(net.logs.join("up.log")).unwrap();
    let _up = ChildGuard::spawn(
        Command::new(bin())
            .env("IPECHAIN_OPS_ADDR", "127.0.0.1:0") // every test its own operations port
            .args(["up", "--no-gateway", "--lwm2m-nosec", "off", "--data-dir"])
            .arg(net.dir.root())
            .args(["--cse-addr", &format!("127.0.0.1:{cse}")])
            .args(["--lwm2m-addr", &format!("127.0.0.1:{coap}")])
            .args(["--lwm2m-admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--lwm2m-dtls-addr", &format!("127.0.0.1:{dtls}")])
            .args(["--lwm2m-bootstrap-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--lwm2m-bootstrap-dtls-addr", &format!("127.0.0.1:{}", test_support::free_udp_port())])
            .args(["--cse-https-addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap();

    let register = format!("coaps://127.0.0.1:{dtls}/rd?ep=dtls-ep&lt=60&b=U");
    let mut found = None;
    for _ in 0..60 {
        if clients(admin).is_some() {
            let _ = tokio::task::spawn_blocking({
                let register = register.clone();
                move || {
                    coap_client(
                        test_support::coap_client_openssl(),
                        &["-u", "id-up", "-k", "key-of-up-device", "-m", "post", "-e", "</3/0>", &register],
                    )
                }
            })
            .await
            .unwrap();
            found = clients(admin).and_then(|c| {
                c.as_array().and_then(|a| a.iter().find(|c| c["endpoint"] == "dtls-ep").cloned())
            });
            if found.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let c = found
        .unwrap_or_else(|| panic!("dtls-ep never registered; see {}", net.logs.join("up.log").display()));
    assert_eq!((c["secure"].as_bool(), c["identity"].as_str()), (Some(true), Some("psk:id-up")));

    let plain = format!("coap://127.0.0.1:{coap}/rd?ep=open-ep&lt=60&b=U");
    let out = tokio::task::spawn_blocking(move || {
        coap_client(test_support::coap_client(), &["-m", "post", "-e", "</3/0>", &plain])
    })
    .await
    .unwrap();
    assert!(out.contains("4.03"), "{out}");
    let eps: Vec<String> =
        clients(admin).unwrap().as_array().unwrap().iter().map(|c| c["endpoint"].to_string()).collect();
    assert_eq!(eps, vec!["\"dtls-ep\"".to_owned()]);
}
