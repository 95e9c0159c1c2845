//! The simulator against a minimal LwM2M server built from the sans-IO `coap` endpoint in the test:
//! devices register with distinct root paths on a shared socket, answer reads and notify observers.
#![allow(clippy::disallowed_methods)] // a test or benchmark harness times its own waits
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::collections::HashMap;
use std::time::Duration;

use coap::lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};
use coap::{Config, Endpoint, Event};
use lwm2m::{ContentFormat, LwM2mPath, Registry, Value, codec};
use lwm2m_sim::{SimConfig, Simulator};
use tokio::net::UdpSocket;

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_register_answer_and_notify() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(SimConfig {
        server: sock.local_addr().unwrap(),
        clients: 6,
        clients_per_socket: 3,
        notify_interval: Some(Duration::from_millis(50)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut ep = Endpoint::new(Config::default());
    let mut roots: HashMap<String, (std::net::SocketAddr, String)> = HashMap::new();
    let mut buf = vec![0; 4096];
    let reg = Registry::builtin();
    let mut read = None;
    let mut observed = None;
    let mut notifications = 0;
    tokio::time::timeout(Duration::from_secs(15), async {
        while notifications < 3 {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            ep.handle_datagram(now(), from, &buf[..n]);
            while let Some(ev) = ep.poll_event() {
                match ev {
                    Event::Request { id, from, request } => {
                        let q = coap::queries_of(&request);
                        let name = q.iter().find_map(|q| q.strip_prefix("ep=")).unwrap().to_owned();
                        let links = lwm2m::registration::ObjectLinks::parse(&request.payload).unwrap();
                        roots.insert(name.clone(), (from, links.root_path.clone()));
                        let mut r = coap::response(ResponseType::Created, vec![]);
                        r.add_option(CoapOption::LocationPath, b"rd".to_vec());
                        r.add_option(CoapOption::LocationPath, name.into_bytes());
                        ep.respond(now(), id, r);
                        if roots.len() == 6 {
                            let (addr, root) = roots["sim-4"].clone();
                            assert_eq!(root, "/d4/");
                            let mut get = Packet::new();
                            get.header.code = MessageClass::Request(RequestType::Get);
                            for s in ["d4", "3303", "0", "5700"] {
                                get.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
                            }
                            let mut obs = get.clone();
                            get.add_option(
                                CoapOption::Accept,
                                ContentFormat::SENML_JSON.0.to_be_bytes().to_vec(),
                            );
                            read = Some(ep.send_request(now(), addr, get, true));
                            obs.set_observe_value(0);
                            observed = Some(ep.send_request(now(), addr, obs, true));
                        }
                    }
                    Event::Response { id, response } if Some(id) == read => {
                        let recs = codec::decode(
                            ContentFormat::SENML_JSON,
                            &response.payload,
                            &LwM2mPath::ROOT,
                            &reg,
                        )
                        .unwrap();
                        assert!(matches!(recs[0].value, Value::Float(_)), "{recs:?}");
                    }
                    Event::Notification { id, response, .. } if Some(id) == observed => {
                        assert!(String::from_utf8_lossy(&response.payload).parse::<f64>().is_ok());
                        notifications += 1;
                    }
                    _ => {}
                }
            }
            while let Some(t) = ep.poll_transmit() {
                sock.send_to(&t.bytes, t.to).await.unwrap();
            }
        }
    })
    .await
    .expect("registrations, a read and notifications");
    assert_eq!(sim.registered(), 6);
    assert!(sim.stats().requests.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}
