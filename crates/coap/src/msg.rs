//! Strict message decoding on top of coap-lite, and small helpers to read and build messages.

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

/// Why a datagram is not a valid CoAP message (RFC 7252 §3, "message format error").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 4 bytes: not even a header.
    #[error("datagram shorter than the 4-byte CoAP header")]
    Truncated,
    /// Version field is not 1.
    #[error("unsupported CoAP version {0}")]
    Version(u8),
    /// Token length 9–15, bad option encoding or truncated option.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Decodes one datagram. Stricter than coap-lite: checks the version, reserved code classes, an empty payload
/// after the payload marker, and that an Empty message (0.00) has no token, options or payload.
pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated);
    }
    let version = bytes[0] >> 6;
    if version != 1 {
        return Err(DecodeError::Version(version));
    }
    let class = bytes[1] >> 5;
    if matches!(class, 1 | 6 | 7) {
        return Err(DecodeError::Malformed("reserved code class"));
    }
    if bytes[1] == 0 && bytes.len() != 4 {
        return Err(DecodeError::Malformed("empty message with token, options or payload"));
    }
    if bytes.last() == Some(&0xFF) && ends_with_payload_marker(bytes) {
        return Err(DecodeError::Malformed("payload marker without payload"));
    }
    Packet::from_bytes(bytes).map_err(|e| {
        DecodeError::Malformed(match e {
            coap_lite::error::MessageError::InvalidTokenLength => "token length",
            coap_lite::error::MessageError::InvalidOptionDelta => "option delta",
            coap_lite::error::MessageError::InvalidOptionLength => "option length",
            _ => "header",
        })
    })
}

/// Whether the final 0xFF byte is a payload marker (and not the last byte of an option value).
fn ends_with_payload_marker(bytes: &[u8]) -> bool {
    let tkl = usize::from(bytes[0] & 0x0F);
    let mut idx = 4 + tkl;
    while idx < bytes.len() {
        let b = bytes[idx];
        if b == 0xFF {
            return idx == bytes.len() - 1;
        }
        idx += 1;
        let mut len = usize::from(b & 0x0F);
        match b >> 4 {
            13 => idx += 1,
            14 => idx += 2,
            _ => {}
        }
        match len {
            13 => {
                len = usize::from(*bytes.get(idx).unwrap_or(&0)) + 13;
                idx += 1;
            }
            14 => {
                let hi = usize::from(*bytes.get(idx).unwrap_or(&0));
                let lo = usize::from(*bytes.get(idx + 1).unwrap_or(&0));
                len = (hi << 8 | lo) + 269;
                idx += 2;
            }
            _ => {}
        }
        idx += len;
    }
    false
}

/// Encodes a packet with no size limit other than the datagram itself (block-wise keeps them small).
pub fn encode(packet: &Packet) -> Option<Vec<u8>> {
    packet.to_bytes_unlimited().ok()
}

/// Builds a response packet with `code` and `payload` (type, message id and token are set by the endpoint).
pub fn response(code: ResponseType, payload: Vec<u8>) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Acknowledgement);
    p.header.code = MessageClass::Response(code);
    p.payload = payload;
    p
}

/// "2.05"-style text of a message code.
pub fn code_string(code: MessageClass) -> String {
    code.to_string()
}

/// The Uri-Path segments of a request, lossily decoded as UTF-8.
pub fn path_of(packet: &Packet) -> Vec<String> {
    options_text(packet, CoapOption::UriPath)
}

/// The Uri-Query options of a request, lossily decoded as UTF-8.
pub fn queries_of(packet: &Packet) -> Vec<String> {
    options_text(packet, CoapOption::UriQuery)
}

fn options_text(packet: &Packet, opt: CoapOption) -> Vec<String> {
    packet
        .get_option(opt)
        .map(|l| l.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect())
        .unwrap_or_default()
}

/// Critical options have an odd number (RFC 7252 §5.4.6).
pub fn is_critical(number: u16) -> bool {
    number & 1 == 1
}

/// Option numbers this endpoint (and coap-lite) understands.
const KNOWN: &[u16] = &[1, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 17, 20, 23, 27, 28, 35, 39, 60, 258];

/// The first critical option of `packet` that this endpoint does not know, if any: a request carrying one is
/// answered 4.02 Bad Option, a response carrying one is rejected (RFC 7252 §5.4.1).
pub fn unknown_critical_option(packet: &Packet) -> Option<u16> {
    packet.options().map(|(n, _)| *n).find(|n| is_critical(*n) && !KNOWN.contains(n))
}
