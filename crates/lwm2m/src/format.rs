//! Content formats (CoAP Content-Format numbers) that LwM2M uses.

use std::fmt;

/// A CoAP content format number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentFormat(pub u16);

impl ContentFormat {
    /// text/plain (0).
    pub const TEXT: Self = ContentFormat(0);
    /// application/link-format (40).
    pub const LINK: Self = ContentFormat(40);
    /// application/octet-stream (42).
    pub const OPAQUE: Self = ContentFormat(42);
    /// application/cbor (60): LwM2M 1.1 allows it for single values.
    pub const CBOR: Self = ContentFormat(60);
    /// application/senml+json (110).
    pub const SENML_JSON: Self = ContentFormat(110);
    /// application/senml+cbor (112).
    pub const SENML_CBOR: Self = ContentFormat(112);
    /// application/vnd.oma.lwm2m+tlv, pre-registration number used by LwM2M 1.0 clients (1542).
    pub const OLD_TLV: Self = ContentFormat(1542);
    /// application/vnd.oma.lwm2m+json, old number (1543).
    pub const OLD_JSON: Self = ContentFormat(1543);
    /// application/vnd.oma.lwm2m+tlv (11542).
    pub const TLV: Self = ContentFormat(11542);
    /// application/vnd.oma.lwm2m+json (11543).
    pub const JSON: Self = ContentFormat(11543);
    /// application/vnd.oma.lwm2m+cbor (11544).
    pub const LWM2M_CBOR: Self = ContentFormat(11544);

    /// The formats this crate decodes and encodes.
    pub const SUPPORTED: [ContentFormat; 10] = [
        Self::TEXT,
        Self::LINK,
        Self::OPAQUE,
        Self::SENML_JSON,
        Self::SENML_CBOR,
        Self::OLD_TLV,
        Self::OLD_JSON,
        Self::TLV,
        Self::JSON,
        Self::LWM2M_CBOR,
    ];

    /// Parses a name as the REST API's `format=` takes it (`tlv`, `json`, `senml-json`, `senml-cbor`, `cbor`,
    /// `text`, `opaque`, `link`) or a number.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "text" | "plain" => Self::TEXT,
            "link" => Self::LINK,
            "opaque" => Self::OPAQUE,
            "senml-json" | "senml_json" | "senmljson" => Self::SENML_JSON,
            "senml-cbor" | "senml_cbor" | "senmlcbor" => Self::SENML_CBOR,
            "tlv" => Self::TLV,
            "old-tlv" => Self::OLD_TLV,
            "json" => Self::JSON,
            "cbor" | "lwm2m-cbor" => Self::LWM2M_CBOR,
            other => return other.parse().ok().map(ContentFormat),
        })
    }

    /// Short name (inverse of [`ContentFormat::from_name`]).
    pub fn name(&self) -> &'static str {
        match self.0 {
            0 => "text",
            40 => "link",
            42 => "opaque",
            60 => "cbor-single",
            110 => "senml-json",
            112 => "senml-cbor",
            1542 => "old-tlv",
            1543 => "old-json",
            11542 => "tlv",
            11543 => "json",
            11544 => "cbor",
            _ => "unknown",
        }
    }

    /// Whether this crate has a codec for it.
    pub fn is_supported(&self) -> bool {
        Self::SUPPORTED.contains(self)
    }

    /// Whether the format can carry several resources (multi-node formats).
    pub fn is_multi(&self) -> bool {
        !matches!(self.0, 0 | 42 | 60)
    }
}

impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
