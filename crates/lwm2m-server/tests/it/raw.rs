//! Raw CoAP from a test socket: registration corner cases, bad input and the right CoAP answers, a client
//! that drops Accept, a client that never answers, and isolation between clients.

use std::net::SocketAddr;
use std::time::Duration;

use coap::lite::{CoapOption, MessageClass, MessageType, Packet, RequestType};
use lwm2m::LwM2mPath;
use lwm2m_server::{OpError, SendAnswer, ServerEvent};
use tokio::net::UdpSocket;

use crate::common::{TestServer, wait_event};

struct Raw {
    sock: UdpSocket,
    server: SocketAddr,
    mid: u16,
}

impl Raw {
    async fn new(server: SocketAddr) -> Raw {
        Raw { sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(), server, mid: 100 }
    }

    fn packet(
        &mut self,
        method: RequestType,
        path: &str,
        queries: &[&str],
        cf: Option<u16>,
        payload: &[u8],
    ) -> Packet {
        self.mid += 1;
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(method);
        p.header.message_id = self.mid;
        p.set_token(vec![1, 2, (self.mid & 0xFF) as u8]);
        for s in path.split('/').filter(|s| !s.is_empty()) {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        if let Some(cf) = cf {
            p.add_option(CoapOption::ContentFormat, cf.to_be_bytes().to_vec());
        }
        for q in queries {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        p.payload = payload.to_vec();
        p
    }

    async fn send_bytes(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).await.unwrap();
    }

    async fn recv(&self, ms: u64) -> Option<Packet> {
        let mut buf = vec![0; 70000];
        let (n, _) = tokio::time::timeout(Duration::from_millis(ms), self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        coap::decode(&buf[..n]).ok()
    }

    async fn call(&mut self, p: Packet) -> Packet {
        self.send_bytes(&coap::encode(&p).unwrap()).await;
        self.recv(3000).await.expect("an answer")
    }

    async fn code(
        &mut self,
        method: RequestType,
        path: &str,
        queries: &[&str],
        cf: Option<u16>,
        payload: &[u8],
    ) -> String {
        let p = self.packet(method, path, queries, cf, payload);
        self.call(p).await.header.code.to_string()
    }
}

fn location(p: &Packet) -> String {
    p.get_option(CoapOption::LocationPath)
        .unwrap()
        .iter()
        .map(|s| format!("/{}", String::from_utf8_lossy(s)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_codes_and_never_disturbs_others() {
    let server = TestServer::start_with(|c| c.coap.max_body = 4096).await;
    let mut good = Raw::new(server.coap()).await;
    let p =
        good.packet(RequestType::Post, "/rd", &["ep=good", "lt=60", "lwm2m=1.1"], None, b"</3/0>,</31024/0>");
    let r = good.call(p).await;
    assert_eq!(r.header.code.to_string(), "2.01");
    let loc = location(&r);
    assert!(loc.starts_with("/rd/"), "{loc}");

    let mut bad = Raw::new(server.coap()).await;
    use RequestType::*;
    assert_eq!(bad.code(Post, "/rd", &["ep=x", "lwm2m=1.2"], None, b"").await, "4.12");
    assert_eq!(bad.code(Post, "/rd", &["lt=60"], None, b"").await, "4.00");
    assert_eq!(bad.code(Post, "/rd", &["ep=x", "lt=abc"], None, b"").await, "4.00");
    assert_eq!(bad.code(Post, "/rd", &["ep=x", "b=Z"], None, b"").await, "4.00");
    assert_eq!(bad.code(Post, "/rd", &["ep=x"], Some(50), b"{}").await, "4.15");
    assert_eq!(bad.code(Post, "/rd", &["ep=x"], None, b"</3/0").await, "4.00");
    assert_eq!(bad.code(Get, "/rd", &[], None, b"").await, "4.05");
    assert_eq!(bad.code(Put, "/rd/nope", &[], None, b"").await, "4.05");
    assert_eq!(bad.code(Post, "/rd/nope", &[], None, b"").await, "4.04");
    assert_eq!(bad.code(Delete, "/rd/nope", &[], None, b"").await, "4.04");
    assert_eq!(bad.code(Get, "/elsewhere", &[], None, b"").await, "4.04");
    // Send from an address with no registration, or in a format Send does not take
    assert_eq!(bad.code(Post, "/dp", &[], Some(112), &[0x80]).await, "4.04");
    assert_eq!(good.code(Post, "/dp", &[], Some(0), b"21").await, "4.15");
    assert_eq!(good.code(Post, "/dp", &[], Some(110), b"[{").await, "4.00");
    // Unknown critical option -> 4.02
    let mut p = bad.packet(Post, "/rd", &["ep=y"], None, b"");
    p.add_option(CoapOption::Unknown(2049), vec![1]);
    assert_eq!(bad.call(p).await.header.code.to_string(), "4.02");
    // Oversized payload -> 4.13
    assert_eq!(bad.code(Post, "/rd", &["ep=big"], None, &vec![b'x'; 5000]).await, "4.13");
    // Malformed CON -> RST; truncated / wrong version -> silently dropped
    bad.send_bytes(&[0x49, 0x02, 0x12, 0x34]).await;
    let rst = bad.recv(2000).await.expect("reset");
    assert_eq!((rst.header.get_type(), rst.header.message_id), (MessageType::Reset, 0x1234));
    for junk in [&[0x40u8][..], &[0x80, 0x02, 0, 1], &[0xFF; 3], b"\x00GET / HTTP/1.1\r\n\r\n"] {
        bad.send_bytes(junk).await;
    }
    assert!(bad.recv(300).await.is_none());
    for len in 0..40u8 {
        // truncated versions of a valid Register
        let full = coap::encode(&bad.packet(Post, "/rd", &["ep=trunc", "lt=60"], None, b"</3/0>")).unwrap();
        bad.send_bytes(&full[..usize::from(len).min(full.len())]).await;
    }
    while bad.recv(200).await.is_some() {}

    // The good client is untouched and can update from a new port.
    let c = server.handle.client("good").await.expect("still registered");
    assert_eq!(format!("/rd/{}", c.registration_id), loc);
    let mut moved = Raw::new(server.coap()).await;
    assert_eq!(moved.code(Post, &loc, &["lt=120"], None, b"").await, "2.04");
    let c = server.handle.client("good").await.unwrap();
    assert_eq!((c.lifetime, c.address), (120, moved.sock.local_addr().unwrap()));
    assert!(c.objects.contains(&"/31024/0".parse().unwrap()), "vendor object carried");
    // An Update with a payload replaces the object links.
    assert_eq!(moved.code(Post, &loc, &[], Some(40), b"</3/0>,</3303/0>,</3303/1>").await, "2.04");
    let c = server.handle.client("good").await.unwrap();
    assert_eq!(c.objects.len(), 3);
    assert_eq!(c.lifetime, 120, "lifetime kept when the Update does not carry lt");
    assert_eq!(moved.code(Delete, &loc, &[], None, b"").await, "2.02");
    assert!(server.handle.client("good").await.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_fallback_and_clean_timeouts() {
    let server = TestServer::start().await;
    let h = server.handle.clone();
    // A client that silently drops any request with an Accept option (like lwm2m-node-lib with TLV).
    let mut dev = Raw::new(server.coap()).await;
    let p = dev.packet(RequestType::Post, "/rd", &["ep=picky", "lwm2m=1.0"], None, b"</3303/0>");
    assert_eq!(dev.call(p).await.header.code.to_string(), "2.01");
    let sock = dev.sock;
    let answered = tokio::spawn(async move {
        let mut buf = vec![0; 2048];
        let mut answered = 0;
        let mut dropped = 0;
        while answered < 2 {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let req = coap::decode(&buf[..n]).unwrap();
            if req.get_option(CoapOption::Accept).is_some_and(|a| !a.is_empty()) {
                dropped += 1;
                continue;
            }
            let mut r = coap::response(coap::lite::ResponseType::Content, b"23.5".to_vec());
            r.header.message_id = req.header.message_id;
            r.set_token(req.get_token().to_vec());
            sock.send_to(&coap::encode(&r).unwrap(), from).await.unwrap();
            answered += 1;
        }
        dropped
    });
    let path: LwM2mPath = "/3303/0/5700".parse().unwrap();
    let r = h.read("picky", path, None, Some(Duration::from_secs(6))).await.expect("answered after fallback");
    assert_eq!(r.records[0].value, lwm2m::Value::Float(23.5));
    // Now the server remembers: no Accept, immediate answer.
    let r = h.read("picky", path, None, Some(Duration::from_secs(6))).await.unwrap();
    assert_eq!(r.code.to_string(), "2.05");
    assert!(answered.await.unwrap() >= 1, "the first request carried an Accept");

    // A client that never answers: the operation ends with Timeout in time, and the server keeps working.
    let mut mute = Raw::new(server.coap()).await;
    let p = mute.packet(RequestType::Post, "/rd", &["ep=mute"], None, b"</3/0>");
    assert_eq!(mute.call(p).await.header.code.to_string(), "2.01");
    let e = h.read("mute", "/3/0/0".parse().unwrap(), None, Some(Duration::from_millis(800))).await;
    assert_eq!(e, Err(OpError::Timeout));
    let mut events = h.subscribe_events();
    let mut other = Raw::new(server.coap()).await;
    let p = other.packet(RequestType::Post, "/rd", &["ep=after"], None, b"");
    assert_eq!(other.call(p).await.header.code.to_string(), "2.01");
    wait_event(&mut events, 5, |e| {
        matches!(e, ServerEvent::Registered(c) if c.endpoint == "after").then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_wise_send_is_reassembled() {
    let server = TestServer::start().await;
    let mut events = server.handle.subscribe_events();
    let mut dev = Raw::new(server.coap()).await;
    let p = dev.packet(RequestType::Post, "/rd", &["ep=blocky", "lwm2m=1.1"], None, b"</3303/0>");
    assert_eq!(dev.call(p).await.header.code.to_string(), "2.01");
    // 40 SenML JSON records, ~1.6 kB, sent in 256-byte Block1 blocks.
    let recs: Vec<String> = (0..40).map(|i| format!("{{\"n\":\"/3303/{i}/5700\",\"v\":{i}.5}}")).collect();
    let body = format!("[{}]", recs.join(",")).into_bytes();
    let blocks: Vec<&[u8]> = body.chunks(256).collect();
    for (num, chunk) in blocks.iter().enumerate() {
        let mut p = dev.packet(RequestType::Post, "/dp", &[], Some(110), chunk);
        let more = num + 1 < blocks.len();
        p.add_option(CoapOption::Block1, coap::BlockValue { num: num as u32, more, szx: 4 }.encode());
        let r = dev.call(p).await;
        let expect = if more { "2.31" } else { "2.04" };
        assert_eq!(r.header.code.to_string(), expect, "block {num}");
    }
    let n = wait_event(&mut events, 5, |e| match e {
        ServerEvent::Send { endpoint, records, receipt: None } if endpoint == "blocky" => Some(records.len()),
        _ => None,
    })
    .await;
    assert_eq!(n, 40);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_holds_requests_until_the_client_wakes_up() {
    let server = TestServer::start_with(|c| c.queue_awake = Duration::from_millis(300)).await;
    let h = server.handle.clone();
    let mut dev = Raw::new(server.coap()).await;
    let p = dev.packet(RequestType::Post, "/rd", &["ep=sleepy", "b=UQ"], None, b"</3/0>");
    let r = dev.call(p).await;
    assert_eq!(r.header.code.to_string(), "2.01");
    let loc = location(&r);
    assert!(h.client("sleepy").await.unwrap().queue_mode);
    // The device answers every request with "7" and sends an Update when told to.
    let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<()>(4);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    let sock = dev.sock;
    let server_addr = server.coap();
    let responder = tokio::spawn(async move {
        let mut buf = vec![0; 2048];
        let mut mid = 5000u16;
        loop {
            tokio::select! {
                w = wake_rx.recv() => {
                    if w.is_none() { break; }
                    mid += 1;
                    let mut u = Packet::new();
                    u.header.set_type(MessageType::Confirmable);
                    u.header.code = MessageClass::Request(RequestType::Post);
                    u.header.message_id = mid;
                    u.set_token(vec![9, (mid & 0xFF) as u8]);
                    for seg in loc.split('/').filter(|s| !s.is_empty()) {
                        u.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
                    }
                    sock.send_to(&coap::encode(&u).unwrap(), server_addr).await.unwrap();
                }
                r = sock.recv_from(&mut buf) => {
                    let (n, from) = r.unwrap();
                    let req = coap::decode(&buf[..n]).unwrap();
                    if !matches!(req.header.code, MessageClass::Request(_)) { continue; }
                    seen2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut a = coap::response(coap::lite::ResponseType::Content, b"7".to_vec());
                    a.header.message_id = req.header.message_id;
                    a.set_token(req.get_token().to_vec());
                    sock.send_to(&coap::encode(&a).unwrap(), from).await.unwrap();
                }
            }
        }
    });
    let path: LwM2mPath = "/3/0/9".parse().unwrap();
    // Awake right after registering: answered at once.
    assert_eq!(h.read("sleepy", path, None, None).await.unwrap().code.to_string(), "2.05");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Asleep: a read that times out before the device wakes never reaches it.
    assert_eq!(h.read("sleepy", path, None, Some(Duration::from_millis(300))).await, Err(OpError::Timeout));
    // Asleep: the read waits; the Update wakes the device and the read goes out.
    let h2 = h.clone();
    let pending =
        tokio::spawn(async move { h2.read("sleepy", path, None, Some(Duration::from_secs(5))).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1, "nothing sent while asleep");
    wake_tx.send(()).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap().unwrap();
    assert_eq!(r.records[0].value, lwm2m::Value::Integer(7));
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    drop(wake_tx);
    let _ = responder.await;
    server.stop().await;
}

/// With send receipts on, a Send is answered only when its receipt is: piggy-backed when that is quick, the
/// consumer's refusal with its code and reason, and 5.03 as a separate response (after an empty ACK) when
/// nobody answers in time; a late answer is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waits_for_its_receipt() {
    let server = TestServer::start_with(|c| c.send_receipt_timeout = Some(Duration::from_millis(1500))).await;
    let h = server.handle.clone();
    let mut events = h.subscribe_events();
    let mut dev = Raw::new(server.coap()).await;
    assert_eq!(
        dev.code(RequestType::Post, "/rd", &["ep=rcpt", "lwm2m=1.1"], None, b"</3303/0>").await,
        "2.01"
    );
    let body = br#"[{"n":"/3303/0/5700","v":21.5}]"#;
    let mut send = async |dev: &mut Raw| {
        let p = dev.packet(RequestType::Post, "/dp", &[], Some(110), body);
        dev.send_bytes(&coap::encode(&p).unwrap()).await;
        let receipt = wait_event(&mut events, 5, |e| match e {
            ServerEvent::Send { endpoint, receipt, .. } if endpoint == "rcpt" => Some(*receipt),
            _ => None,
        })
        .await
        .expect("a Send with receipts on carries one");
        (p, receipt)
    };

    // Recorded: nothing reaches the device before the answer, then 2.04 on the ACK of its request.
    let (p, receipt) = send(&mut dev).await;
    assert!(dev.recv(300).await.is_none(), "answered before its receipt");
    h.answer_send(receipt, SendAnswer::Recorded).await;
    let r = dev.recv(2000).await.expect("the answer");
    assert_eq!(r.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(r.header.message_id, p.header.message_id);
    assert_eq!(r.get_token(), p.get_token());
    assert_eq!(r.header.code.to_string(), "2.04");

    // Refused: the code and the reason.
    let (_, receipt) = send(&mut dev).await;
    h.answer_send(receipt, SendAnswer::Forbidden("not yours".into())).await;
    let r = dev.recv(2000).await.expect("the answer");
    assert_eq!(r.header.code.to_string(), "4.03");
    assert_eq!(r.payload, b"not yours");

    // Nobody answers: an empty ACK after a second (the device stops retransmitting), then 5.03 as a
    // confirmable separate response at the timeout; the answer that comes later is ignored.
    let (p, receipt) = send(&mut dev).await;
    let ack = dev.recv(1400).await.expect("an empty ACK");
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(ack.header.message_id, p.header.message_id);
    assert_eq!(ack.header.code.to_string(), "0.00");
    let r = dev.recv(2000).await.expect("the 5.03");
    assert_eq!(r.header.get_type(), MessageType::Confirmable);
    assert_eq!(r.get_token(), p.get_token());
    assert_eq!(r.header.code.to_string(), "5.03");
    let mut ack = Packet::new();
    ack.header.set_type(MessageType::Acknowledgement);
    ack.header.code = MessageClass::Empty;
    ack.header.message_id = r.header.message_id;
    dev.send_bytes(&coap::encode(&ack).unwrap()).await;
    h.answer_send(receipt, SendAnswer::Recorded).await;
    assert!(dev.recv(500).await.is_none(), "a late answer reached the device");
    server.stop().await;
}

/// At most 16 Sends of one device wait for their receipts; the next is answered 4.29 at once, and a slot
/// frees when one is answered. Another device is not held back by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_has_at_most_sixteen_sends_waiting() {
    let server = TestServer::start_with(|c| c.send_receipt_timeout = Some(Duration::from_secs(30))).await;
    let h = server.handle.clone();
    let mut events = h.subscribe_events();
    let mut dev = Raw::new(server.coap()).await;
    let mut other = Raw::new(server.coap()).await;
    assert_eq!(dev.code(RequestType::Post, "/rd", &["ep=busy"], None, b"</3303/0>").await, "2.01");
    assert_eq!(other.code(RequestType::Post, "/rd", &["ep=calm"], None, b"</3303/0>").await, "2.01");
    let body = br#"[{"n":"/3303/0/5700","v":1}]"#;
    let mut held = async |raw: &mut Raw, ep: &str| {
        let p = raw.packet(RequestType::Post, "/dp", &[], Some(110), body);
        raw.send_bytes(&coap::encode(&p).unwrap()).await;
        wait_event(&mut events, 5, |e| match e {
            ServerEvent::Send { endpoint, receipt, .. } if endpoint == ep => Some(*receipt),
            _ => None,
        })
        .await
    };
    let mut receipts = Vec::new();
    for _ in 0..16 {
        receipts.push(held(&mut dev, "busy").await.expect("a receipt"));
    }
    let p = dev.packet(RequestType::Post, "/dp", &[], Some(110), body);
    dev.send_bytes(&coap::encode(&p).unwrap()).await;
    // The held Sends' empty ACKs may come in between: the answer is the one to this message id.
    let refused = loop {
        let r = dev.recv(3000).await.expect("an answer to the 17th Send");
        if r.header.message_id == p.header.message_id {
            break r;
        }
    };
    assert_eq!(refused.header.code.to_string(), "4.29");
    assert!(held(&mut other, "calm").await.is_some(), "another device's Send waits for its receipt as usual");
    h.answer_send(receipts[0], SendAnswer::Recorded).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(held(&mut dev, "busy").await.is_some(), "a slot freed by an answer");
    server.stop().await;
}
