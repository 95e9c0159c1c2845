//! Integration tests of the CoAP endpoint: two endpoints wired back to back, with the test as the network and
// The tests pick an arbitrary origin for their virtual clock; the endpoint itself never reads the clock.
#![allow(clippy::disallowed_methods)]
//! the clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap::lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use coap::{BlockValue, Config, Endpoint, Event, decode, encode, response};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn get(path: &str) -> Packet {
    let mut p = Packet::new();
    p.header.code = MessageClass::Request(RequestType::Get);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        p.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
    }
    p
}

fn drain(ep: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| ep.poll_transmit()).map(|t| t.bytes).collect()
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

const C: u16 = 40000;
const S: u16 = 5683;

#[test]
fn piggy_backed_response_and_duplicate_replay() {
    let now = Instant::now();
    let (mut c, mut s) =
        (Endpoint::new(Config::default()), Endpoint::new(Config { seed: 7, ..Config::default() }));
    let id = c.send_request(now, addr(S), get("/a"), true);
    let req = drain(&mut c);
    assert_eq!(req.len(), 1);
    s.handle_datagram(now, addr(C), &req[0]);
    let ev = events(&mut s);
    let Some(Event::Request { id: rid, request, .. }) = ev.first() else { panic!("{ev:?}") };
    assert_eq!(coap::path_of(request), vec!["a"]);
    s.respond(now, *rid, response(ResponseType::Content, b"x".to_vec()));
    let resp = drain(&mut s);
    let p = decode(&resp[0]).unwrap();
    assert_eq!(p.header.get_type(), MessageType::Acknowledgement);
    // The same request again (a retransmission): the cached response is replayed, no new event.
    s.handle_datagram(now, addr(C), &req[0]);
    assert!(events(&mut s).is_empty());
    assert_eq!(drain(&mut s), resp);
    c.handle_datagram(now, addr(S), &resp[0]);
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::Response { id: got, response }] if *got == id && response.payload == b"x")
    );
    // The duplicate ACK is ignored.
    c.handle_datagram(now, addr(S), &resp[0]);
    assert!(events(&mut c).is_empty());
    assert_eq!(c.open_exchanges(), 0);
}

#[test]
fn retransmits_with_exponential_backoff_then_times_out() {
    let start = Instant::now();
    let mut c = Endpoint::new(Config::default());
    let id = c.send_request(start, addr(S), get("/a"), true);
    assert_eq!(drain(&mut c).len(), 1);
    let mut gaps = Vec::new();
    let mut last = start;
    let mut sends = 0;
    while let Some(t) = c.poll_timeout() {
        c.handle_timeout(t);
        let n = drain(&mut c).len();
        if n > 0 {
            sends += n;
            gaps.push(t - last);
            last = t;
        }
        if let Some(ev) = c.poll_event() {
            assert!(matches!(ev, Event::Timeout { id: got } if got == id));
            break;
        }
    }
    assert_eq!(sends, 4, "MAX_RETRANSMIT retransmissions");
    let first = gaps[0];
    assert!(first >= Duration::from_secs(2) && first <= Duration::from_secs(3), "{first:?}");
    for w in gaps.windows(2) {
        assert_eq!(w[1], w[0] * 2);
    }
    assert_eq!(c.open_exchanges(), 0);
}

#[test]
fn separate_response_after_empty_ack() {
    let now = Instant::now();
    let (mut c, mut s) =
        (Endpoint::new(Config::default()), Endpoint::new(Config { seed: 9, ..Config::default() }));
    let id = c.send_request(now, addr(S), get("/slow"), true);
    s.handle_datagram(now, addr(C), &drain(&mut c)[0]);
    let Some(Event::Request { id: rid, .. }) = s.poll_event() else { panic!() };
    let t = s.poll_timeout().unwrap();
    s.handle_timeout(t);
    let ack = drain(&mut s);
    assert_eq!(decode(&ack[0]).unwrap().header.code, MessageClass::Empty);
    c.handle_datagram(t, addr(S), &ack[0]);
    // acknowledged: no retransmission at the original deadline
    c.handle_timeout(now + Duration::from_secs(10));
    assert!(drain(&mut c).is_empty());
    s.respond(t, rid, response(ResponseType::Content, b"late".to_vec()));
    let con = drain(&mut s);
    assert_eq!(decode(&con[0]).unwrap().header.get_type(), MessageType::Confirmable);
    c.handle_datagram(t, addr(S), &con[0]);
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::Response { id: got, response }] if *got == id && response.payload == b"late")
    );
    let ack2 = drain(&mut c);
    assert_eq!(decode(&ack2[0]).unwrap().header.get_type(), MessageType::Acknowledgement);
    // A retransmitted separate response is ACKed again but not reported twice.
    c.handle_datagram(t, addr(S), &con[0]);
    assert!(events(&mut c).is_empty());
    assert_eq!(drain(&mut c), ack2);
    // The server stops retransmitting once ACKed.
    s.handle_datagram(t, addr(C), &ack2[0]);
    s.handle_timeout(t + Duration::from_secs(60));
    assert!(drain(&mut s).is_empty());
}

fn notification(token: &[u8], mid: u16, seq: u32, t: MessageType, body: &[u8]) -> Vec<u8> {
    let mut p = response(ResponseType::Content, body.to_vec());
    p.header.set_type(t);
    p.header.message_id = mid;
    p.set_token(token.to_vec());
    p.set_observe_value(seq);
    encode(&p).expect("encodable notification")
}

#[test]
fn observe_sequence_reordering_and_cancel() {
    let now = Instant::now();
    let mut c = Endpoint::new(Config::default());
    let mut req = get("/3303/0/5700");
    req.set_observe_value(0);
    let id = c.send_request(now, addr(S), req, true);
    let sent = decode(&drain(&mut c)[0]).unwrap();
    let token = sent.get_token().to_vec();
    // piggy-backed first response with Observe 5
    let mut first = response(ResponseType::Content, b"1".to_vec());
    first.header.message_id = sent.header.message_id;
    first.set_token(token.clone());
    first.set_observe_value(5);
    c.handle_datagram(now, addr(S), &encode(&first).unwrap());
    assert!(matches!(c.poll_event(), Some(Event::Response { id: got, .. }) if got == id));
    // newer NON notification from another port
    c.handle_datagram(now, addr(S + 1), &notification(&token, 100, 6, MessageType::NonConfirmable, b"2"));
    assert!(matches!(c.poll_event(), Some(Event::Notification { response, .. }) if response.payload == b"2"));
    // stale (re-ordered) notification: dropped
    c.handle_datagram(now, addr(S), &notification(&token, 101, 4, MessageType::NonConfirmable, b"old"));
    assert!(c.poll_event().is_none());
    // CON notification: ACKed and reported
    c.handle_datagram(now, addr(S), &notification(&token, 102, 7, MessageType::Confirmable, b"3"));
    assert!(matches!(c.poll_event(), Some(Event::Notification { .. })));
    let ack = decode(&drain(&mut c)[0]).unwrap();
    assert_eq!((ack.header.get_type(), ack.header.message_id), (MessageType::Acknowledgement, 102));
    // observations never time out
    c.handle_timeout(now + Duration::from_secs(3600));
    assert!(c.poll_event().is_none());
    // cancel: the next notification is answered with Reset
    c.cancel(id);
    c.handle_datagram(now, addr(S), &notification(&token, 103, 8, MessageType::Confirmable, b"4"));
    assert!(c.poll_event().is_none());
    let rst = decode(&drain(&mut c)[0]).unwrap();
    assert_eq!((rst.header.get_type(), rst.header.message_id), (MessageType::Reset, 103));
}

#[test]
fn block1_request_reassembled_and_block2_response_followed() {
    let now = Instant::now();
    let (mut c, mut s) = (
        Endpoint::new(Config { block_size: 256, ..Config::default() }),
        Endpoint::new(Config { seed: 3, ..Config::default() }),
    );
    let body: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut req = get("/dp");
    req.header.code = MessageClass::Request(RequestType::Post);
    req.payload = body.clone();
    let id = c.send_request(now, addr(S), req, true);
    let mut blocks = 0;
    let request = loop {
        let out = drain(&mut c);
        assert_eq!(out.len(), 1);
        blocks += 1;
        s.handle_datagram(now, addr(C), &out[0]);
        if let Some(Event::Request { id: rid, request, .. }) = s.poll_event() {
            // answer with a 600-byte body that the test splits into Block2 blocks by hand
            let mut r = response(ResponseType::Changed, Vec::new());
            r.payload = vec![1; 64];
            r.add_option(CoapOption::Block2, BlockValue { num: 0, more: true, szx: 2 }.encode());
            s.respond(now, rid, r);
            c.handle_datagram(now, addr(S), &drain(&mut s)[0]);
            break request;
        }
        c.handle_datagram(now, addr(S), &drain(&mut s)[0]);
    };
    assert_eq!(blocks, 4, "1000 bytes in 256-byte blocks");
    assert_eq!(request.payload, body);
    assert!(request.get_option(CoapOption::Block1).is_none_or(|l| l.is_empty()));
    // the client asks for block 1 of the response
    let follow = decode(&drain(&mut c)[0]).unwrap();
    let b2 = BlockValue::decode(follow.get_first_option(CoapOption::Block2).unwrap()).unwrap();
    assert_eq!((b2.num, b2.szx), (1, 2));
    let mut last = response(ResponseType::Changed, vec![2; 10]);
    last.header.message_id = follow.header.message_id;
    last.set_token(follow.get_token().to_vec());
    last.add_option(CoapOption::Block2, BlockValue { num: 1, more: false, szx: 2 }.encode());
    c.handle_datagram(now, addr(S), &encode(&last).unwrap());
    let Some(Event::Response { id: got, response }) = c.poll_event() else { panic!() };
    assert_eq!(got, id);
    assert_eq!(response.payload.len(), 74);
}

#[test]
fn bad_input_gets_the_rfc_answer() {
    let now = Instant::now();
    let mut s = Endpoint::new(Config { max_body: 100, ..Config::default() });
    // malformed CON (tkl 9) -> RST with its mid; malformed NON -> nothing
    s.handle_datagram(now, addr(C), &[0x49, 0x01, 0x12, 0x34]);
    let rst = decode(&drain(&mut s)[0]).unwrap();
    assert_eq!((rst.header.get_type(), rst.header.message_id), (MessageType::Reset, 0x1234));
    s.handle_datagram(now, addr(C), &[0x59, 0x01, 0x12, 0x35]);
    assert!(drain(&mut s).is_empty());
    // garbage shorter than a header: dropped
    s.handle_datagram(now, addr(C), &[0xFF]);
    assert!(drain(&mut s).is_empty());
    // CoAP ping -> RST
    s.handle_datagram(now, addr(C), &[0x40, 0x00, 0x00, 0x07]);
    assert_eq!(decode(&drain(&mut s)[0]).unwrap().header.get_type(), MessageType::Reset);
    // unknown critical option 9999 -> 4.02 piggy-backed, no event
    let mut p = get("/x");
    p.header.set_type(MessageType::Confirmable);
    p.header.message_id = 1;
    p.add_option(CoapOption::Unknown(9999), vec![1]);
    s.handle_datagram(now, addr(C), &encode(&p).unwrap());
    assert!(s.poll_event().is_none());
    let r = decode(&drain(&mut s)[0]).unwrap();
    assert_eq!(r.header.code, MessageClass::Response(ResponseType::BadOption));
    // unknown elective option is ignored
    let mut p = get("/x");
    p.header.message_id = 2;
    p.add_option(CoapOption::Unknown(9998), vec![1]);
    s.handle_datagram(now, addr(C), &encode(&p).unwrap());
    assert!(matches!(s.poll_event(), Some(Event::Request { .. })));
    // oversized payload -> 4.13 with Size1
    let mut p = get("/x");
    p.header.message_id = 3;
    p.payload = vec![0; 101];
    s.handle_datagram(now, addr(C), &encode(&p).unwrap());
    let r = decode(&drain(&mut s)[0]).unwrap();
    assert_eq!(r.header.code, MessageClass::Response(ResponseType::RequestEntityTooLarge));
    assert!(r.get_option(CoapOption::Size1).is_some());
    // Block1 out of order -> 4.08
    let mut p = get("/x");
    p.header.message_id = 4;
    p.payload = vec![0; 16];
    p.add_option(CoapOption::Block1, BlockValue { num: 3, more: true, szx: 0 }.encode());
    s.handle_datagram(now, addr(C), &encode(&p).unwrap());
    let r = decode(&drain(&mut s)[0]).unwrap();
    assert_eq!(r.header.code, MessageClass::Response(ResponseType::RequestEntityIncomplete));
    // unexpected response with unknown token -> RST
    s.handle_datagram(now, addr(C), &notification(b"zz", 9, 1, MessageType::NonConfirmable, b""));
    assert_eq!(decode(&drain(&mut s)[0]).unwrap().header.get_type(), MessageType::Reset);
}

#[test]
fn reset_ends_a_request() {
    let now = Instant::now();
    let mut c = Endpoint::new(Config::default());
    let id = c.send_request(now, addr(S), get("/a"), true);
    let mid = decode(&drain(&mut c)[0]).unwrap().header.message_id;
    let mut rst = Packet::new();
    rst.header.set_type(MessageType::Reset);
    rst.header.code = MessageClass::Empty;
    rst.header.message_id = mid;
    c.handle_datagram(now, addr(S), &encode(&rst).unwrap());
    assert!(matches!(c.poll_event(), Some(Event::Reset { id: got }) if got == id));
    assert_eq!(c.open_exchanges(), 0);
}

#[test]
fn non_request_gets_non_response_and_times_out_without_answer() {
    let now = Instant::now();
    let (mut c, mut s) =
        (Endpoint::new(Config::default()), Endpoint::new(Config { seed: 5, ..Config::default() }));
    let id = c.send_request(now, addr(S), get("/n"), false);
    s.handle_datagram(now, addr(C), &drain(&mut c)[0]);
    let Some(Event::Request { id: rid, .. }) = s.poll_event() else { panic!() };
    s.respond(now, rid, response(ResponseType::Content, vec![]));
    let r = decode(&drain(&mut s)[0]).unwrap();
    assert_eq!(r.header.get_type(), MessageType::NonConfirmable);
    let id2 = c.send_request(now, addr(S), get("/n"), false);
    c.handle_datagram(now, addr(S), &encode(&r).unwrap());
    assert!(matches!(c.poll_event(), Some(Event::Response { id: got, .. }) if got == id));
    c.handle_timeout(now + Duration::from_secs(94));
    assert!(matches!(c.poll_event(), Some(Event::Timeout { id: got }) if got == id2));
}

#[test]
fn active_cancel_reuses_the_token_with_observe_1() {
    let now = Instant::now();
    let mut c = Endpoint::new(Config::default());
    let mut req = get("/3303/0/5700");
    req.set_observe_value(0);
    let id = c.send_request(now, addr(S), req, true);
    let sent = decode(&drain(&mut c)[0]).unwrap();
    let token = sent.get_token().to_vec();
    assert!(c.cancel_observation(now, id).is_none(), "not established yet");
    let mut first = response(ResponseType::Content, b"1".to_vec());
    first.header.message_id = sent.header.message_id;
    first.set_token(token.clone());
    first.set_observe_value(5);
    c.handle_datagram(now, addr(S), &encode(&first).unwrap());
    assert!(matches!(c.poll_event(), Some(Event::Response { .. })));
    let cancel_id = c.cancel_observation(now, id).expect("established");
    let cancel = decode(&drain(&mut c)[0]).unwrap();
    assert_eq!(cancel.get_token(), &token[..]);
    assert!(matches!(cancel.get_observe_value(), Some(Ok(1))));
    assert_eq!(coap::path_of(&cancel), vec!["3303", "0", "5700"]);
    let mut ack = response(ResponseType::Content, b"2".to_vec());
    ack.header.message_id = cancel.header.message_id;
    ack.set_token(token);
    c.handle_datagram(now, addr(S), &encode(&ack).unwrap());
    assert!(matches!(c.poll_event(), Some(Event::Response { id: got, .. }) if got == cancel_id));
    assert_eq!(c.open_exchanges(), 0);
}

#[test]
fn large_notifications_are_completed_block_wise_under_a_new_token() {
    let now = Instant::now();
    let mut c = Endpoint::new(Config::default());
    let mut req = get("/3/0");
    req.set_observe_value(0);
    let id = c.send_request(now, addr(S), req, true);
    let sent = decode(&drain(&mut c)[0]).unwrap();
    let token = sent.get_token().to_vec();
    // The first answer is 16 + 4 bytes in two blocks (SZX 0).
    let mut first = response(ResponseType::Content, vec![1; 16]);
    first.header.message_id = sent.header.message_id;
    first.set_token(token.clone());
    first.set_observe_value(2);
    first.add_option(CoapOption::Block2, BlockValue { num: 0, more: true, szx: 0 }.encode());
    c.handle_datagram(now, addr(S), &encode(&first).unwrap());
    assert!(c.poll_event().is_none(), "not complete yet");
    let fetch = decode(&drain(&mut c)[0]).unwrap();
    assert_ne!(fetch.get_token(), &token[..], "a new token, so the observation is not cancelled");
    assert!(fetch.get_observe_value().is_none());
    assert_eq!(BlockValue::decode(fetch.get_first_option(CoapOption::Block2).unwrap()).unwrap().num, 1);
    let mut rest = response(ResponseType::Content, vec![2; 4]);
    rest.header.message_id = fetch.header.message_id;
    rest.set_token(fetch.get_token().to_vec());
    rest.add_option(CoapOption::Block2, BlockValue { num: 1, more: false, szx: 0 }.encode());
    c.handle_datagram(now, addr(S), &encode(&rest).unwrap());
    let Some(Event::Response { id: got, response: r }) = c.poll_event() else { panic!("first response") };
    assert_eq!((got, r.payload.len()), (id, 20));
    assert!(matches!(r.get_observe_value(), Some(Ok(2))));
    // A later large notification: same dance, reported as a Notification of the observation.
    let mut n = response(ResponseType::Content, vec![3; 16]);
    n.header.set_type(MessageType::NonConfirmable);
    n.header.message_id = 900;
    n.set_token(token.clone());
    n.set_observe_value(3);
    n.add_option(CoapOption::Block2, BlockValue { num: 0, more: true, szx: 0 }.encode());
    c.handle_datagram(now, addr(S), &encode(&n).unwrap());
    let fetch = decode(&drain(&mut c)[0]).unwrap();
    let mut rest = response(ResponseType::Content, vec![4; 1]);
    rest.header.message_id = fetch.header.message_id;
    rest.set_token(fetch.get_token().to_vec());
    rest.add_option(CoapOption::Block2, BlockValue { num: 1, more: false, szx: 0 }.encode());
    c.handle_datagram(now, addr(S), &encode(&rest).unwrap());
    let Some(Event::Notification { id: got, response: r, .. }) = c.poll_event() else {
        panic!("notification")
    };
    assert_eq!((got, r.payload.len()), (id, 17));
    assert_eq!(c.open_exchanges(), 1, "only the observation remains");
}
