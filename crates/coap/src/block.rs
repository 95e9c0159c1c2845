//! Block1/Block2 option values (RFC 7959 §2.2): `NUM`, `M` and `SZX` packed in 0–3 bytes.

/// A decoded Block1 or Block2 option value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockValue {
    /// Block number.
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Size exponent: the block size is `2^(szx + 4)`, 0..=6.
    pub szx: u8,
}

impl BlockValue {
    /// Block size in bytes.
    pub fn size(&self) -> usize {
        1usize << (self.szx + 4)
    }

    /// Decodes an option value; `None` when it is longer than 3 bytes, has SZX 7 (reserved) or NUM overflows.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 3 {
            return None;
        }
        let v = bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        let szx = (v & 0x7) as u8;
        if szx == 7 {
            return None;
        }
        Some(BlockValue { num: v >> 4, more: v & 0x8 != 0, szx })
    }

    /// Encodes the value in the fewest bytes (zero bytes for 0).
    pub fn encode(&self) -> Vec<u8> {
        let v = (self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx & 0x7);
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    }

    /// The size exponent for a block size, rounded down to a power of two in 16..=1024.
    pub fn szx_for(size: usize) -> u8 {
        let mut szx = 6u8;
        while szx > 0 && (1usize << (szx + 4)) > size {
            szx -= 1;
        }
        szx
    }
}
