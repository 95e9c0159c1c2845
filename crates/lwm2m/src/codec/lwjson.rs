//! OMA LwM2M JSON (11543, and 1543): `{"bn": "/3/0/", "e": [{"n": "0", "sv": "Acme"}, ...]}` (LwM2M 1.0 §6.4.4).

use serde_json::{Map, Value as Json};

use super::{CodecError, Record, base64, malformed, number_value, parse_objlnk, string_value, type_of};
use crate::model::Registry;
use crate::path::LwM2mPath;
use crate::value::{ResourceType, Value};

pub(super) fn decode(bytes: &[u8], base: &LwM2mPath, reg: &Registry) -> Result<Vec<Record>, CodecError> {
    let m = |r: &str| malformed("lwm2m-json", r);
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| m(&e.to_string()))?;
    let bn = match doc.get("bn").and_then(Json::as_str) {
        Some(b) => b.to_owned(),
        None if base.is_root() => String::new(),
        None => format!("{base}/"),
    };
    let bt = doc.get("bt").and_then(Json::as_f64);
    let e = doc.get("e").and_then(Json::as_array).ok_or_else(|| m("no \"e\" array"))?;
    let mut out = Vec::with_capacity(e.len());
    for rec in e {
        let n = rec.get("n").and_then(Json::as_str).unwrap_or("");
        let name = format!("{bn}{n}");
        let path: LwM2mPath = name.parse().map_err(|_| CodecError::Path(name.clone()))?;
        if path.depth() < 3 {
            return Err(CodecError::Path(format!("{path} is not a resource")));
        }
        let ty = type_of(reg, &path);
        let value = if let Some(v) = rec.get("v") {
            let i = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
            number_value(ty, i, v.as_f64().ok_or_else(|| m("v is not a number"))?)
        } else if let Some(b) = rec.get("bv") {
            Value::Boolean(b.as_bool().ok_or_else(|| m("bv is not a boolean"))?)
        } else if let Some(o) = rec.get("ov").and_then(Json::as_str) {
            parse_objlnk(o).ok_or_else(|| m("ov is not object:instance"))?
        } else if let Some(s) = rec.get("sv").and_then(Json::as_str) {
            if ty == Some(ResourceType::Opaque) {
                Value::Opaque(base64::decode(s).ok_or_else(|| m("opaque sv is not base64"))?)
            } else {
                string_value(ty, s)
            }
        } else {
            return Err(m("record without value"));
        };
        let time = match (bt, rec.get("t").and_then(Json::as_f64)) {
            (None, None) => None,
            (b, t) => Some(b.unwrap_or(0.0) + t.unwrap_or(0.0)),
        };
        out.push(Record { path, value, time });
    }
    Ok(out)
}

pub(super) fn encode(records: &[Record], base: &LwM2mPath) -> Vec<u8> {
    let single = matches!(records, [r] if r.path == *base);
    let bn = if single || base.is_root() { base.to_string() } else { format!("{base}/") };
    let skip = if single || !base.is_root() { bn.len() } else { 1 };
    let e: Vec<Json> = records
        .iter()
        .map(|r| {
            let mut o = Map::new();
            let full = r.path.to_string();
            let n = full.get(skip..).unwrap_or("");
            if !n.is_empty() {
                o.insert("n".into(), Json::from(n.to_owned()));
            }
            let (k, v) = match &r.value {
                Value::Integer(x) | Value::Time(x) => ("v", Json::from(*x)),
                Value::Unsigned(x) => ("v", Json::from(*x)),
                Value::Float(x) => ("v", Json::from(*x)),
                Value::Boolean(b) => ("bv", Json::from(*b)),
                Value::String(s) | Value::Corelnk(s) => ("sv", Json::from(s.clone())),
                Value::Opaque(b) => ("sv", Json::from(base64::encode(b, false))),
                Value::Objlnk(a, b) => ("ov", Json::from(format!("{a}:{b}"))),
            };
            o.insert(k.into(), v);
            if let Some(t) = r.time {
                o.insert("t".into(), Json::from(t));
            }
            Json::Object(o)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("bn".into(), Json::from(bn));
    doc.insert("e".into(), Json::Array(e));
    Json::Object(doc).to_string().into_bytes()
}
