//! Reading single fields of encoded messages in place, without decoding or copying: for the few hot paths
//! that need one field deep inside an envelope (block indexing).

/// Why [`only_field`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// The bytes are not a valid encoding: a full decode fails too.
    Malformed,
    /// The field repeats or a group appears: only a full decode (with protobuf's merge rules) tells.
    Unusual,
}

/// The single length-delimited field `tag` of an encoded message, after checking the wire format of every
/// field; `Ok(None)` when absent.
pub fn only_field(mut buf: &[u8], tag: u32) -> Result<Option<&[u8]>, FieldError> {
    use FieldError::{Malformed, Unusual};
    use prost::encoding::decode_varint;
    let mut found = None;
    while !buf.is_empty() {
        let key = decode_varint(&mut buf).map_err(|_| Malformed)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(Malformed);
        }
        match wire {
            0 => {
                decode_varint(&mut buf).map_err(|_| Malformed)?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                buf = buf.get(n..).ok_or(Malformed)?;
            }
            _ if field == u64::from(tag) && wire != 2 => return Err(Malformed),
            2 => {
                let len = usize::try_from(decode_varint(&mut buf).map_err(|_| Malformed)?)
                    .map_err(|_| Malformed)?;
                let value = buf.get(..len).ok_or(Malformed)?;
                buf = &buf[len..];
                if field == u64::from(tag) {
                    if found.is_some() {
                        return Err(Unusual);
                    }
                    found = Some(value);
                }
            }
            3 | 4 => return Err(Unusual),
            _ => return Err(Malformed),
        }
    }
    Ok(found)
}

/// The `ChannelHeader` bytes of an encoded `common.Envelope` (`Envelope.payload` → `Payload.header` →
/// `Header.channel_header`), each on the path present once; `Ok(None)` when a step is absent.
pub fn envelope_channel_header(envelope: &[u8]) -> Result<Option<&[u8]>, FieldError> {
    let Some(payload) = only_field(envelope, 1)? else { return Ok(None) };
    let Some(header) = only_field(payload, 1)? else { return Ok(None) };
    only_field(header, 1)
}

/// The `tx_id` (field 5) of an encoded `common.ChannelHeader`.
pub const CHANNEL_HEADER_TX_ID: u32 = 5;
