//! The one DTLS parser we own: the 13-byte record header (RFC 6347 §4.1) and "is this datagram an
//! epoch-0 ClientHello?". The server uses it to decide, before any OpenSSL state exists for a peer, whether
//! a datagram from an address without a session may start one; everything else about records is OpenSSL's.
//!
//! ```
//! use dtls_record::{ContentType, parse_header};
//! let hello = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
//! let h = parse_header(&hello).unwrap();
//! assert_eq!((h.content_type, h.epoch, h.length), (ContentType::Handshake, 0, 1));
//! ```

/// Length of a DTLS 1.0/1.2 record header.
pub const HEADER_LEN: usize = 13;

/// The record content types of RFC 6347 (and RFC 9146's `tls12_cid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// 20
    ChangeCipherSpec,
    /// 21
    Alert,
    /// 22
    Handshake,
    /// 23
    ApplicationData,
    /// 25 (RFC 9146): a record with a connection id; its header is longer and not parsed here.
    Tls12Cid,
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Protocol version on the wire (0xfeff DTLS 1.0, 0xfefd DTLS 1.2).
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
    /// Length of the fragment after the header.
    pub length: u16,
}

/// Why a datagram is not a DTLS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than a header, or than the header's length says.
    #[error("truncated record")]
    Truncated,
    /// An unknown content type.
    #[error("unknown content type {0}")]
    ContentType(u8),
    /// Not DTLS 1.0 or 1.2.
    #[error("unsupported record version {0:#06x}")]
    Version(u16),
    /// A fragment longer than 2^14 + 2048 (RFC 6347 §4.1 via RFC 5246 §6.2.3).
    #[error("record length {0} too long")]
    TooLong(u16),
}

/// Parses the header of the first record in `datagram` and checks that its fragment is complete.
pub fn parse_header(datagram: &[u8]) -> Result<RecordHeader, RecordError> {
    let h: &[u8; HEADER_LEN] =
        datagram.get(..HEADER_LEN).and_then(|s| s.try_into().ok()).ok_or(RecordError::Truncated)?;
    let content_type = match h[0] {
        20 => ContentType::ChangeCipherSpec,
        21 => ContentType::Alert,
        22 => ContentType::Handshake,
        23 => ContentType::ApplicationData,
        25 => ContentType::Tls12Cid,
        t => return Err(RecordError::ContentType(t)),
    };
    let version = u16::from_be_bytes([h[1], h[2]]);
    if version != 0xfeff && version != 0xfefd {
        return Err(RecordError::Version(version));
    }
    let epoch = u16::from_be_bytes([h[3], h[4]]);
    let sequence = u64::from_be_bytes([0, 0, h[5], h[6], h[7], h[8], h[9], h[10]]);
    let length = u16::from_be_bytes([h[11], h[12]]);
    if usize::from(length) > (1 << 14) + 2048 {
        return Err(RecordError::TooLong(length));
    }
    if datagram.len() < HEADER_LEN + usize::from(length) {
        return Err(RecordError::Truncated);
    }
    Ok(RecordHeader { content_type, version, epoch, sequence, length })
}

/// Whether `datagram` starts with an epoch-0 handshake record whose first message is a ClientHello
/// (handshake type 1) starting at fragment offset 0: the only thing that may open a DTLS session.
pub fn is_client_hello(datagram: &[u8]) -> bool {
    let Ok(h) = parse_header(datagram) else { return false };
    if h.content_type != ContentType::Handshake || h.epoch != 0 {
        return false;
    }
    // Handshake header: type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
    let body = &datagram[HEADER_LEN..HEADER_LEN + usize::from(h.length)];
    match body.get(..12) {
        Some(m) => m[0] == 1 && m[6..9] == [0, 0, 0],
        None => false,
    }
}

/// The 32-byte `random` of the ClientHello that `datagram` starts with (see [`is_client_hello`]), if the
/// first fragment holds it: it tells a retransmitted ClientHello from a new one.
pub fn client_hello_random(datagram: &[u8]) -> Option<[u8; 32]> {
    if !is_client_hello(datagram) {
        return None;
    }
    let h = parse_header(datagram).ok()?;
    let body = &datagram[HEADER_LEN..HEADER_LEN + usize::from(h.length)];
    // Handshake header (12), client_version (2), random (32).
    body.get(14..46)?.try_into().ok()
}

#[cfg(test)]
mod tests;

/// Datagrams in and out of one OpenSSL `SSL` driven without a socket: OpenSSL reads one datagram per `read`
/// (`WouldBlock` when none is queued) and writes one per `write`. The owner pushes received datagrams onto
/// `inbound` and drains `outbound` to send. Shared by the server's sessions and the simulator's devices.
#[derive(Debug, Default)]
pub struct Datagrams {
    /// Received, not yet read by OpenSSL.
    pub inbound: std::collections::VecDeque<Vec<u8>>,
    /// Written by OpenSSL, not yet sent.
    pub outbound: Vec<Vec<u8>>,
}

impl std::io::Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inbound.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl std::io::Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.outbound.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
