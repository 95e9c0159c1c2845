//! Value translation between LwM2M resource values and oneM2M JSON content.
//!
//! A resource value in oneM2M content is a small JSON object (a *reading*):
//!
//! ```json
//! {"v": 21.5, "type": "FLOAT", "unit": "Cel", "t": 1700000000}
//! ```
//!
//! | LwM2M type | `v` in JSON |
//! |---|---|
//! | String, Corelnk | string |
//! | Integer, Time | integer (Time: seconds since the epoch) |
//! | Unsigned | non-negative integer |
//! | Float | number (NaN and infinities are refused: JSON has no such numbers) |
//! | Boolean | `true` / `false` |
//! | Opaque | standard base64 string (RFC 4648, with padding) |
//! | Objlnk | string `"3:0"` |
//!
//! Going back (a oneM2M application writing a value), the target resource's type comes from the object
//! registry; for resources the registry does not know, an explicit `"type"` (the names above, as
//! [`lwm2m::ResourceType::name`] spells them) or else the JSON type decides. A value that does not fit its
//! type is a [`TranslateError`], never silently dropped.

use lwm2m::{LwM2mPath, Record, Registry, ResourceType, Value};
use serde_json::{Map, Value as Json, json};
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Why a value could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// A JSON value does not fit the resource type.
    #[error("{path}: {reason}")]
    Value {
        /// The LwM2M path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A path is not valid.
    #[error("invalid LwM2M path {0:?}")]
    Path(String),
    /// The content has the wrong shape.
    #[error("content: {0}")]
    Shape(String),
    /// The LwM2M payload could not be decoded or encoded.
    #[error("LwM2M codec: {0}")]
    Codec(String),
}

fn value_err(path: &LwM2mPath, reason: impl Into<String>) -> TranslateError {
    TranslateError::Value { path: path.to_string(), reason: reason.into() }
}

/// The most values one message may carry.
pub const MAX_RECORDS: usize = 4096;

fn too_many(n: usize) -> Result<(), TranslateError> {
    if n > MAX_RECORDS {
        return Err(TranslateError::Shape(format!("{n} values, at most {MAX_RECORDS} per message")));
    }
    Ok(())
}

/// Parses a resource type name (`"FLOAT"`, `"float"`, `"UNSIGNED_INTEGER"`, `"objlnk"` …).
pub fn parse_type(name: &str) -> Option<ResourceType> {
    let n = name.trim().to_ascii_uppercase().replace(' ', "_");
    Some(match n.as_str() {
        "STRING" => ResourceType::String,
        "INTEGER" => ResourceType::Integer,
        "UNSIGNED_INTEGER" | "UNSIGNED" => ResourceType::Unsigned,
        "FLOAT" => ResourceType::Float,
        "BOOLEAN" => ResourceType::Boolean,
        "OPAQUE" => ResourceType::Opaque,
        "TIME" => ResourceType::Time,
        "OBJLNK" => ResourceType::Objlnk,
        "CORELINK" | "CORELNK" => ResourceType::Corelnk,
        "NONE" => ResourceType::None,
        _ => return None,
    })
}

/// The JSON form of a value (`v` of a reading).
pub fn value_to_json(path: &LwM2mPath, value: &Value) -> Result<Json, TranslateError> {
    Ok(match value {
        Value::String(s) | Value::Corelnk(s) => Json::String(s.clone()),
        Value::Integer(i) | Value::Time(i) => json!(i),
        Value::Unsigned(u) => json!(u),
        Value::Float(f) => {
            let n = serde_json::Number::from_f64(*f)
                .ok_or_else(|| value_err(path, format!("float {f} has no JSON form")))?;
            Json::Number(n)
        }
        Value::Boolean(b) => Json::Bool(*b),
        Value::Opaque(b) => Json::String(base64_encode(b)),
        Value::Objlnk(o, i) => Json::String(format!("{o}:{i}")),
        other => Json::String(other.to_string()),
    })
}

/// The value a JSON `v` stands for, as resource type `ty` (or inferred from the JSON when `None`).
pub fn json_to_value(path: &LwM2mPath, ty: Option<ResourceType>, v: &Json) -> Result<Value, TranslateError> {
    let bad = |what: &str| value_err(path, format!("{v} is not {what}"));
    let Some(ty) = ty else {
        return Ok(match v {
            Json::String(s) => Value::String(s.clone()),
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Value::Integer(i),
                (None, Some(u), _) => Value::Unsigned(u),
                (_, _, Some(f)) => Value::Float(f),
                _ => return Err(bad("a number")),
            },
            _ => return Err(bad("a scalar value")),
        });
    };
    Ok(match ty {
        ResourceType::String => match v {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(bad("a string")),
        },
        ResourceType::Corelnk => match v {
            Json::String(s) => Value::Corelnk(s.clone()),
            _ => return Err(bad("a CoRE link string")),
        },
        ResourceType::Integer => Value::Integer(
            match v {
                Json::Number(n) => whole_i64(n),
                Json::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("a 64-bit integer"))?,
        ),
        ResourceType::Time => Value::Time(
            match v {
                Json::Number(n) => whole_i64(n),
                Json::String(s) => s.trim().parse().ok().or_else(|| parse_timestamp(s.trim())),
                _ => None,
            }
            .ok_or_else(|| bad("a time (seconds, \"20231114T221320\" or \"2023-11-14T22:13:20Z\")"))?,
        ),
        ResourceType::Unsigned => match v {
            Json::Number(n) => Value::Unsigned(
                n.as_u64()
                    .or_else(|| {
                        n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15).map(|f| f as u64)
                    })
                    .ok_or_else(|| bad("an unsigned integer"))?,
            ),
            Json::String(s) => Value::Unsigned(s.trim().parse().map_err(|_| bad("an unsigned integer"))?),
            _ => return Err(bad("an unsigned integer")),
        },
        ResourceType::Float => match v {
            Json::Number(n) => Value::Float(n.as_f64().ok_or_else(|| bad("a number"))?),
            Json::String(s) => {
                let f: f64 = s.trim().parse().map_err(|_| bad("a number"))?;
                if !f.is_finite() {
                    return Err(bad("a finite number"));
                }
                Value::Float(f)
            }
            _ => return Err(bad("a number")),
        },
        ResourceType::Boolean => match v {
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) if n.as_u64() == Some(0) => Value::Boolean(false),
            Json::Number(n) if n.as_u64() == Some(1) => Value::Boolean(true),
            Json::String(s) if s == "true" || s == "1" => Value::Boolean(true),
            Json::String(s) if s == "false" || s == "0" => Value::Boolean(false),
            _ => return Err(bad("a boolean")),
        },
        ResourceType::Opaque => match v {
            Json::String(s) => Value::Opaque(base64_decode(s).ok_or_else(|| bad("base64"))?),
            _ => return Err(bad("a base64 string")),
        },
        ResourceType::Objlnk => match v {
            Json::String(s) => {
                Value::from_text(ResourceType::Objlnk, s).ok_or_else(|| bad("an object link \"3:0\""))?
            }
            _ => return Err(bad("an object link string")),
        },
        ResourceType::None => return Err(value_err(path, "executable resources carry no value")),
        _ => return Err(value_err(path, "unsupported resource type")),
    })
}

/// An integer, or a float without fraction that an integer holds exactly (`20.0`).
fn whole_i64(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

/// oneM2M basic format (TS-0004): `20231114T221320`.
const ONEM2M_BASIC: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second]");
/// RFC 3339's date and time: `2023-11-14T22:13:20` (`T`, `t` or a space between them).
const RFC_3339: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second]");

/// Seconds since the epoch of a UTC time in oneM2M basic format (`20231114T221320`, TS-0004) or RFC 3339
/// (`2023-11-14T22:13:20Z`), with an optional fraction (`.` or `,` and digits; ignored) and an optional `Z`; other
/// offsets are not guessed. Dates that do not exist are refused; a leap second (`60`) is the next minute's first.
/// The calendar is the `time` crate's: deterministic, no clock.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    // (format, length, where the seconds are)
    let (t, rest) =
        [(ONEM2M_BASIC, 15, 13), (RFC_3339, 19, 17)].into_iter().find_map(|(fmt, len, sec)| {
            let (head, rest) = (s.get(..len)?, s.get(len..)?);
            // `time` has no leap seconds: read `60` as `59` plus one second.
            let (head, leap) = match head.get(sec..) {
                Some("60") => (format!("{}59", head.get(..sec)?), 1),
                _ => (head.to_owned(), 0),
            };
            let t = PrimitiveDateTime::parse(&head, fmt).ok()?;
            Some((t.assume_utc().unix_timestamp() + leap, rest))
        })?;
    let rest = rest.strip_suffix(['Z', 'z']).unwrap_or(rest);
    let fraction_ok = rest.is_empty()
        || rest
            .strip_prefix(['.', ','])
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    fraction_ok.then_some(t)
}

/// Common units of IPSO sensor objects, used when the object definition gives none (the built-in
/// definitions carry no units; IPSO puts them in resource 5701 at run time).
fn ipso_unit(object: u16, resource: u16) -> Option<&'static str> {
    if !matches!(resource, 5700 | 5601 | 5602 | 5603 | 5604) {
        return None;
    }
    Some(match object {
        3301 => "lx",
        3303 => "Cel",
        3304 => "%RH",
        3315 => "hPa",
        3316 => "V",
        3317 => "A",
        3323 => "Pa",
        3328 => "W",
        3330 => "m",
        3331 => "Wh",
        _ => return None,
    })
}

/// The unit of a resource: from its definition, else the IPSO default, else none.
pub fn unit_of(registry: &Registry, path: &LwM2mPath) -> Option<String> {
    let (o, r) = (path.object()?, path.resource()?);
    match registry.resource(o, r) {
        Some(m) if !m.units.is_empty() => Some(m.units.clone()),
        _ => ipso_unit(o, r).map(str::to_owned),
    }
}

/// The registry type of the resource at `path`, if known.
pub fn type_of(registry: &Registry, path: &LwM2mPath) -> Option<ResourceType> {
    registry.resource_type(path.object()?, path.resource()?)
}

/// The reading for one record: `{"v", "type", "unit"?, "t"}`; `t` is the record's own time when it has one
/// (SenML), else `default_time` (the transaction's timestamp). A resource-instance record adds `"ri"`.
pub fn reading(registry: &Registry, record: &Record, default_time: i64) -> Result<Json, TranslateError> {
    let mut o = Map::new();
    o.insert("v".into(), value_to_json(&record.path, &record.value)?);
    o.insert("type".into(), Json::String(record.value.resource_type().name().into()));
    if let Some(u) = unit_of(registry, &record.path) {
        o.insert("unit".into(), Json::String(u));
    }
    let t = match record.time {
        Some(t) if t.is_finite() && t.abs() < 1e15 => {
            // SenML: values below 2**28 are relative to now.
            let t = t as i64;
            if t < (1 << 28) { default_time + t } else { t }
        }
        _ => default_time,
    };
    o.insert("t".into(), json!(t));
    if let Some(ri) = record.path.resource_instance() {
        o.insert("ri".into(), json!(ri));
    }
    Ok(Json::Object(o))
}

/// Reads one record back from a reading (or a bare JSON value) for `path`. The registry type wins over the
/// reading's `"type"`, which wins over the JSON type.
pub fn record_from_reading(
    registry: &Registry,
    path: &LwM2mPath,
    j: &Json,
) -> Result<Record, TranslateError> {
    let (v, hint, t) = match j {
        Json::Object(o) if o.contains_key("v") => {
            let hint = match o.get("type") {
                Some(Json::String(s)) => {
                    Some(parse_type(s).ok_or_else(|| value_err(path, format!("unknown type {s:?}")))?)
                }
                Some(_) => return Err(value_err(path, "\"type\" must be a string")),
                None => None,
            };
            let t = o.get("t").and_then(Json::as_f64);
            (o.get("v").unwrap_or(&Json::Null), hint, t)
        }
        other => (other, None, None),
    };
    let ty = type_of(registry, path).or(hint);
    let value = json_to_value(path, ty, v)?;
    Ok(Record { path: *path, value, time: t })
}

/// Parses a path given as `"/3303/0/5700"`, or as a resource id relative to `base` (`"5700"` under `/3303/0`,
/// `"0/5700"` under `/3303`).
pub fn resolve_path(base: &LwM2mPath, key: &str) -> Result<LwM2mPath, TranslateError> {
    let p = if key.starts_with('/') {
        key.parse::<LwM2mPath>()
    } else {
        let mut ids = base.ids().to_vec();
        for seg in key.split('/').filter(|s| !s.is_empty()) {
            ids.push(seg.parse().map_err(|_| TranslateError::Path(key.to_owned()))?);
        }
        LwM2mPath::new(&ids)
    };
    p.map_err(|_| TranslateError::Path(key.to_owned()))
}

/// Records from oneM2M content for a write/create on `base`:
/// `{"v": …}` (a single resource or resource instance) or `{"values": {"<path or relative id>": reading, …}}`.
/// Records come out sorted by path.
pub fn records_from_content(
    registry: &Registry,
    base: &LwM2mPath,
    content: &Json,
) -> Result<Vec<Record>, TranslateError> {
    let Json::Object(o) = content else {
        return Err(TranslateError::Shape("content must be a JSON object".into()));
    };
    let mut out = Vec::new();
    if let Some(values) = o.get("values") {
        let Json::Object(values) = values else {
            return Err(TranslateError::Shape("\"values\" must be an object of path → value".into()));
        };
        too_many(values.len())?;
        for (k, v) in values {
            let path = resolve_path(base, k)?;
            if path.depth() < 3 || !path.starts_with(base) {
                return Err(TranslateError::Path(format!("{path} is not a resource under {base}")));
            }
            out.push(record_from_reading(registry, &path, v)?);
        }
    } else if o.contains_key("v") {
        if base.depth() < 3 {
            return Err(TranslateError::Shape(format!(
                "a single \"v\" needs a resource path, {base} is not one; use \"values\""
            )));
        }
        out.push(record_from_reading(registry, base, content)?);
    } else {
        return Err(TranslateError::Shape("content needs \"v\" or \"values\"".into()));
    }
    if out.is_empty() {
        return Err(TranslateError::Shape("no values to write".into()));
    }
    out.sort_by_key(|r| r.path);
    Ok(out)
}

/// Records in the typed JSON form gateways send and receive: `[{"path": "/3/0/1", "type": "STRING", "v": …, "t"?: …}]`.
pub fn records_to_json(records: &[Record]) -> Result<Json, TranslateError> {
    let mut arr = Vec::with_capacity(records.len());
    for r in records {
        let mut o = Map::new();
        o.insert("path".into(), Json::String(r.path.to_string()));
        o.insert("type".into(), Json::String(r.value.resource_type().name().into()));
        o.insert("v".into(), value_to_json(&r.path, &r.value)?);
        if let Some(t) = r.time.and_then(serde_json::Number::from_f64) {
            o.insert("t".into(), Json::Number(t));
        }
        arr.push(Json::Object(o));
    }
    Ok(Json::Array(arr))
}

/// Parses the typed JSON record list (see [`records_to_json`]); the registry type wins over `"type"`.
pub fn records_from_json(registry: &Registry, j: &Json) -> Result<Vec<Record>, TranslateError> {
    let Json::Array(arr) = j else {
        return Err(TranslateError::Shape("records must be an array".into()));
    };
    too_many(arr.len())?;
    let mut out = Vec::with_capacity(arr.len());
    for item in arr {
        let path = item
            .get("path")
            .and_then(Json::as_str)
            .ok_or_else(|| TranslateError::Shape("record without \"path\"".into()))?;
        let path: LwM2mPath = path.parse().map_err(|_| TranslateError::Path(path.to_owned()))?;
        if path.depth() < 3 {
            return Err(TranslateError::Path(format!("{path} is not a resource")));
        }
        out.push(record_from_reading(registry, &path, item)?);
    }
    Ok(out)
}

/// Decodes an LwM2M payload (base64 in JSON) of content format `ct` for a request on `base`.
pub fn decode_payload(
    registry: &Registry,
    ct: u16,
    payload_b64: &str,
    base: &LwM2mPath,
) -> Result<Vec<Record>, TranslateError> {
    let bytes =
        base64_decode(payload_b64).ok_or_else(|| TranslateError::Codec("payload is not base64".into()))?;
    let mut recs = lwm2m::codec::decode(lwm2m::ContentFormat(ct), &bytes, base, registry)
        .map_err(|e| TranslateError::Codec(e.to_string()))?;
    too_many(recs.len())?;
    for r in &mut recs {
        if let Some(ty) = type_of(registry, &r.path) {
            r.value = std::mem::replace(&mut r.value, Value::Boolean(false)).coerce(ty);
        }
    }
    Ok(recs)
}

/// The oneM2M response status code (TS-0004 RSC) for an LwM2M (CoAP) response code `"2.05"`.
pub fn rsc_for_code(code: &str) -> u16 {
    match code {
        "2.05" | "2.03" => 2000,
        "2.01" => 2001,
        "2.02" => 2002,
        "2.04" => 2004,
        "4.00" | "4.02" | "4.12" => 4000,
        "4.01" | "4.03" => 4103,
        "4.04" => 4004,
        "4.05" => 4005,
        "4.06" | "4.15" => 4015,
        "4.09" => 4105,
        "5.01" => 5001,
        _ if code.starts_with("2.") => 2000,
        _ if code.starts_with("4.") => 4000,
        _ => 5000,
    }
}

/// Standard base64 with padding (the `lwm2m` crate's codec, shared with LwM2M JSON).
pub fn base64_encode(b: &[u8]) -> String {
    lwm2m::codec::base64::encode(b, false)
}

/// Decodes standard base64 (padding optional; `-`/`_` of the URL alphabet accepted too).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    lwm2m::codec::base64::decode(s)
}
