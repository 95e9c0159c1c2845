//! Content-format codecs as pure functions over byte slices.
//!
//! Every codec turns a payload into a flat list of [`Record`]s (a resource or resource-instance path with its
//! value, plus an optional SenML timestamp) and back. The request path (`base`) says what the payload is
//! about, as in a Read of `/3/0`; the [`Registry`] gives resource types. Values of resources the registry does
//! not know stay untyped: opaque bytes for TLV, text for text, whatever the format itself says otherwise.

pub mod base64;
mod lwcbor;
mod lwjson;
mod senml;
mod tlv;

use crate::format::ContentFormat;
use crate::model::Registry;
use crate::path::LwM2mPath;
use crate::value::{ResourceType, Value};

pub use tlv::{Tlv, TlvKind};

/// One resource (or resource-instance) value.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Resource or resource-instance path.
    pub path: LwM2mPath,
    /// The value.
    pub value: Value,
    /// SenML time (seconds; absolute or relative as the sender gave it), when present.
    pub time: Option<f64>,
}

impl Record {
    /// A record without timestamp.
    pub fn new(path: LwM2mPath, value: Value) -> Self {
        Record { path, value, time: None }
    }
}

/// Why a payload could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload is not valid for its format.
    #[error("malformed {format} payload: {reason}")]
    Malformed {
        /// Format name.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The format has no codec here.
    #[error("unsupported content format {0}")]
    Unsupported(ContentFormat),
    /// The format carries one value but the content is not exactly one resource value.
    #[error("content format {0} carries a single resource value")]
    NotSingle(ContentFormat),
    /// A path in the payload is not under the request path, or not valid.
    #[error("invalid path in payload: {0}")]
    Path(String),
}

pub(crate) fn malformed(format: &'static str, reason: impl Into<String>) -> CodecError {
    CodecError::Malformed { format, reason: reason.into() }
}

/// Decodes `bytes` of `format` for a request on `base`.
pub fn decode(
    format: ContentFormat,
    bytes: &[u8],
    base: &LwM2mPath,
    registry: &Registry,
) -> Result<Vec<Record>, CodecError> {
    match format {
        ContentFormat::TEXT => {
            let s = std::str::from_utf8(bytes).map_err(|_| malformed("text", "not UTF-8"))?;
            let path = single_path(format, base)?;
            let ty = type_of(registry, &path).unwrap_or(ResourceType::String);
            let value =
                Value::from_text(ty, s).ok_or_else(|| malformed("text", format!("not a {}", ty.name())))?;
            Ok(vec![Record::new(path, value)])
        }
        ContentFormat::OPAQUE => {
            Ok(vec![Record::new(single_path(format, base)?, Value::Opaque(bytes.to_vec()))])
        }
        ContentFormat::TLV | ContentFormat::OLD_TLV => tlv::decode(bytes, base, registry),
        ContentFormat::SENML_JSON => senml::decode_json(bytes, registry),
        ContentFormat::SENML_CBOR => senml::decode_cbor(bytes, registry),
        ContentFormat::JSON | ContentFormat::OLD_JSON => lwjson::decode(bytes, base, registry),
        ContentFormat::LWM2M_CBOR => lwcbor::decode(bytes, registry),
        other => Err(CodecError::Unsupported(other)),
    }
}

/// Encodes `records` as `format` for a request on `base` (every record must be at or below `base`).
pub fn encode(format: ContentFormat, records: &[Record], base: &LwM2mPath) -> Result<Vec<u8>, CodecError> {
    if let Some(r) = records.iter().find(|r| !r.path.starts_with(base) || r.path.depth() < 3) {
        return Err(CodecError::Path(format!("{} is not a resource under {base}", r.path)));
    }
    match format {
        ContentFormat::TEXT | ContentFormat::OPAQUE => {
            let [r] = records else { return Err(CodecError::NotSingle(format)) };
            Ok(match (&r.value, format) {
                (Value::Opaque(b), _) => b.clone(),
                (v, ContentFormat::TEXT) => v.to_string().into_bytes(),
                _ => return Err(CodecError::NotSingle(format)),
            })
        }
        ContentFormat::TLV | ContentFormat::OLD_TLV => Ok(tlv::encode(records, base)),
        ContentFormat::SENML_JSON => Ok(senml::encode_json(records, base)),
        ContentFormat::SENML_CBOR => senml::encode_cbor(records, base),
        ContentFormat::JSON | ContentFormat::OLD_JSON => Ok(lwjson::encode(records, base)),
        ContentFormat::LWM2M_CBOR => lwcbor::encode(records),
        other => Err(CodecError::Unsupported(other)),
    }
}

fn single_path(format: ContentFormat, base: &LwM2mPath) -> Result<LwM2mPath, CodecError> {
    if base.depth() >= 3 { Ok(*base) } else { Err(CodecError::NotSingle(format)) }
}

/// The registry type of the resource at `path` (resource or resource instance).
pub(crate) fn type_of(registry: &Registry, path: &LwM2mPath) -> Option<ResourceType> {
    registry.resource_type(path.object()?, path.resource()?)
}

/// Types a number from a JSON/CBOR payload by the registry (integers stay integers when untyped).
pub(crate) fn number_value(ty: Option<ResourceType>, int: Option<i128>, float: f64) -> Value {
    match (ty, int) {
        (Some(ResourceType::Integer), Some(i)) => Value::Integer(i as i64),
        (Some(ResourceType::Time), Some(i)) => Value::Time(i as i64),
        (Some(ResourceType::Unsigned), Some(i)) if i >= 0 => Value::Unsigned(i as u64),
        (Some(ResourceType::Integer), None) => Value::Integer(float as i64),
        (Some(ResourceType::Time), None) => Value::Time(float as i64),
        (Some(ResourceType::Float), _) => Value::Float(float),
        (Some(ResourceType::Boolean), Some(i)) => Value::Boolean(i != 0),
        (_, Some(i)) if i >= i128::from(i64::MIN) && i <= i128::from(i64::MAX) => Value::Integer(i as i64),
        (_, Some(i)) if i >= 0 && i <= i128::from(u64::MAX) => Value::Unsigned(i as u64),
        _ => Value::Float(float),
    }
}

/// Types a string from a JSON/CBOR payload by the registry.
pub(crate) fn string_value(ty: Option<ResourceType>, s: &str) -> Value {
    match ty {
        Some(ResourceType::Corelnk) => Value::Corelnk(s.to_owned()),
        Some(ResourceType::Objlnk) => {
            Value::from_text(ResourceType::Objlnk, s).unwrap_or(Value::String(s.into()))
        }
        _ => Value::String(s.to_owned()),
    }
}

pub(crate) fn parse_objlnk(s: &str) -> Option<Value> {
    Value::from_text(ResourceType::Objlnk, s)
}
