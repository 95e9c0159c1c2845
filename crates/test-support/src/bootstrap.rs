//! The client side of an LwM2M bootstrap sequence, for tests: answers the bootstrap server's requests the way
//! a client does and decodes what it was given.

use coap::lite::{MessageClass, MessageType, Packet};
use lwm2m::{ContentFormat, LwM2mPath, Registry, Value, codec};

/// The answer to a confirmable request: a piggybacked ACK with the same message id and token.
fn ack(req: &Packet, class: u8, detail: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Acknowledgement);
    p.header.message_id = req.header.message_id;
    p.set_token(req.get_token().to_vec());
    p.header.code = MessageClass::from((class << 5) | detail);
    p.payload = payload.to_vec();
    coap::encode(&p).unwrap()
}

/// What a device learned from its bootstrap sequence.
#[derive(Debug, Default)]
pub struct Provisioned {
    pub steps: Vec<String>,
    pub uri: String,
    pub mode: i64,
    pub identity: Vec<u8>,
    pub key: Vec<u8>,
    pub ssid: i64,
    pub lifetime: i64,
}

/// Plays an LwM2M client's side of a bootstrap sequence over `io` (send, receive), answering every
/// request the server sends until Bootstrap-Finish; decodes the writes.
pub fn play(mut send: impl FnMut(&[u8]), mut recv: impl FnMut() -> Option<Vec<u8>>) -> Provisioned {
    let reg = Registry::builtin();
    let mut out = Provisioned::default();
    // The ACK to our Bootstrap-Request first.
    let first = coap::decode(&recv().expect("an answer to Bootstrap-Request")).unwrap();
    assert_eq!(first.header.code.to_string(), "2.04", "{:?}", String::from_utf8_lossy(&first.payload));
    loop {
        let bytes = recv().expect("the bootstrap server's next request");
        let req = coap::decode(&bytes).unwrap();
        let path = coap::path_of(&req);
        let method = match req.header.code {
            MessageClass::Request(coap::lite::RequestType::Get) => "GET",
            MessageClass::Request(coap::lite::RequestType::Post) => "POST",
            MessageClass::Request(coap::lite::RequestType::Put) => "PUT",
            MessageClass::Request(coap::lite::RequestType::Delete) => "DELETE",
            other => panic!("not a request: {other}"),
        };
        out.steps.push(format!("{method} /{}", path.join("/")));
        match (method, path.iter().map(String::as_str).collect::<Vec<_>>().as_slice()) {
            ("DELETE", _) => send(&ack(&req, 2, 2, b"")),
            ("GET", ["0"]) => send(&ack(&req, 2, 5, b"lwm2m=\"1.1\",</0/0>")),
            ("PUT", [obj, iid]) => {
                let base: LwM2mPath = format!("/{obj}/{iid}").parse().unwrap();
                let cf = req
                    .get_first_option(coap::lite::CoapOption::ContentFormat)
                    .map(|v| v.iter().fold(0u16, |a, b| (a << 8) | u16::from(*b)))
                    .unwrap();
                let records = codec::decode(ContentFormat(cf), &req.payload, &base, &reg).unwrap();
                for r in records {
                    match (*obj, r.path.resource(), r.value) {
                        ("0", Some(0), Value::String(s)) => out.uri = s,
                        ("0", Some(2), Value::Integer(m)) => out.mode = m,
                        ("0", Some(3), Value::Opaque(b)) => out.identity = b,
                        ("0", Some(5), Value::Opaque(b)) => out.key = b,
                        ("0", Some(10), Value::Integer(i)) => out.ssid = i,
                        ("1", Some(1), Value::Integer(i)) => out.lifetime = i,
                        _ => {}
                    }
                }
                send(&ack(&req, 2, 4, b""));
            }
            ("POST", ["bs"]) => {
                send(&ack(&req, 2, 4, b""));
                return out;
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}
