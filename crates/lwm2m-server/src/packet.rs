//! CoAP packets from the core's neutral requests, and bare replies: shared by the LwM2M server and the
//! bootstrap server.

use coap::lite::{CoapOption, MessageClass, Packet, RequestType};
use lwm2m::ops::{CoapRequest, Method};

/// A response code byte from class and detail.
pub(crate) fn code(class: u8, detail: u8) -> MessageClass {
    MessageClass::from((class << 5) | detail)
}

/// A reply with only a code.
pub(crate) fn reply_packet(class: u8, detail: u8) -> Packet {
    let mut p = Packet::new();
    p.header.code = code(class, detail);
    p
}

/// A CoAP uint option value (shortest big-endian form).
pub(crate) fn uint_bytes(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    b[skip..].to_vec()
}

/// The packet for a neutral request (options in number order as the encoder needs them).
pub(crate) fn packet_of(req: &CoapRequest) -> Packet {
    let mut p = Packet::new();
    p.header.code = MessageClass::Request(match req.method {
        Method::Get => RequestType::Get,
        Method::Post => RequestType::Post,
        Method::Put => RequestType::Put,
        Method::Delete => RequestType::Delete,
    });
    if let Some(o) = req.observe {
        p.add_option(CoapOption::Observe, uint_bytes(o));
    }
    for s in &req.uri_path {
        p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
    }
    if let Some(cf) = req.content_format {
        p.add_option(CoapOption::ContentFormat, uint_bytes(u32::from(cf.0)));
    }
    for q in &req.uri_query {
        p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
    }
    if let Some(a) = req.accept {
        p.add_option(CoapOption::Accept, uint_bytes(u32::from(a.0)));
    }
    p.payload = req.payload.clone();
    p
}
