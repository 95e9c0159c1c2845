//! SenML JSON (110) and SenML CBOR (112) as LwM2M 1.1 §7.4.4/§7.4.5 use them: `bn`/`n` concatenate to a
//! path, `bt`/`t` to a time; values in `v`, `vs`, `vb`, `vd` (base64url in JSON) and `vlo` (object link).

use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Map, Value as Json};

use super::{CodecError, Record, base64, malformed, number_value, parse_objlnk, string_value, type_of};
use crate::model::Registry;
use crate::path::LwM2mPath;
use crate::value::Value;

/// One SenML record before resolution.
#[derive(Default)]
struct Raw {
    bn: Option<String>,
    bt: Option<f64>,
    n: Option<String>,
    t: Option<f64>,
    num: Option<(Option<i128>, f64)>,
    vs: Option<String>,
    vb: Option<bool>,
    vd: Option<Vec<u8>>,
    vlo: Option<String>,
}

fn resolve(raws: Vec<Raw>, reg: &Registry, fmt: &'static str) -> Result<Vec<Record>, CodecError> {
    let (mut bn, mut bt) = (String::new(), None::<f64>);
    let mut out = Vec::with_capacity(raws.len());
    for r in raws {
        if let Some(b) = r.bn {
            bn = b;
        }
        if let Some(b) = r.bt {
            bt = Some(b);
        }
        let name = format!("{bn}{}", r.n.unwrap_or_default());
        let path: LwM2mPath = name.parse().map_err(|_| CodecError::Path(name.clone()))?;
        let ty = type_of(reg, &path);
        let value = if let Some((i, f)) = r.num {
            number_value(ty, i, f)
        } else if let Some(s) = r.vs {
            string_value(ty, &s)
        } else if let Some(b) = r.vb {
            Value::Boolean(b)
        } else if let Some(d) = r.vd {
            Value::Opaque(d)
        } else if let Some(l) = r.vlo {
            parse_objlnk(&l).ok_or_else(|| malformed(fmt, "vlo is not object:instance"))?
        } else {
            // A record without value (e.g. a Read-Composite request path): not a resource value.
            continue;
        };
        if path.depth() < 3 {
            return Err(CodecError::Path(format!("{path} is not a resource")));
        }
        let time = match (bt, r.t) {
            (None, None) => None,
            (b, t) => Some(b.unwrap_or(0.0) + t.unwrap_or(0.0)),
        };
        out.push(Record { path, value, time });
    }
    Ok(out)
}

/// Splits each record's path into `bn` (given once) and `n`.
fn names(records: &[Record], base: &LwM2mPath) -> (String, Vec<String>) {
    if let [r] = records
        && r.path == *base
    {
        return (base.to_string(), vec![String::new()]);
    }
    let bn = if base.is_root() { "/".to_owned() } else { format!("{base}/") };
    let ns = records.iter().map(|r| r.path.to_string()[bn.len()..].to_owned()).collect();
    (bn, ns)
}

pub(super) fn decode_json(bytes: &[u8], reg: &Registry) -> Result<Vec<Record>, CodecError> {
    let m = |r: &str| malformed("senml-json", r);
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| m(&e.to_string()))?;
    let arr = doc.as_array().ok_or_else(|| m("not an array"))?;
    let mut raws = Vec::with_capacity(arr.len());
    for rec in arr {
        let o = rec.as_object().ok_or_else(|| m("record is not an object"))?;
        let s = |k: &str| o.get(k).and_then(Json::as_str).map(str::to_owned);
        let raw = Raw {
            bn: s("bn"),
            bt: o.get("bt").and_then(Json::as_f64),
            n: s("n"),
            t: o.get("t").and_then(Json::as_f64),
            num: o
                .get("v")
                .map(|v| {
                    let i = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
                    Ok::<_, CodecError>((i, v.as_f64().ok_or_else(|| m("v is not a number"))?))
                })
                .transpose()?,
            vs: s("vs"),
            vb: o.get("vb").map(|v| v.as_bool().ok_or_else(|| m("vb is not a boolean"))).transpose()?,
            vd: s("vd").map(|d| base64::decode(&d).ok_or_else(|| m("vd is not base64"))).transpose()?,
            vlo: s("vlo"),
        };
        raws.push(raw);
    }
    resolve(raws, reg, "senml-json")
}

pub(super) fn encode_json(records: &[Record], base: &LwM2mPath) -> Vec<u8> {
    let (bn, ns) = names(records, base);
    let arr: Vec<Json> = records
        .iter()
        .zip(ns)
        .enumerate()
        .map(|(i, (r, n))| {
            let mut o = Map::new();
            if i == 0 {
                o.insert("bn".into(), Json::from(bn.clone()));
            }
            if !n.is_empty() {
                o.insert("n".into(), Json::from(n));
            }
            if let Some(t) = r.time {
                o.insert("t".into(), Json::from(t));
            }
            let (k, v) = match &r.value {
                Value::Integer(x) | Value::Time(x) => ("v", Json::from(*x)),
                Value::Unsigned(x) => ("v", Json::from(*x)),
                Value::Float(x) => ("v", Json::from(*x)),
                Value::Boolean(b) => ("vb", Json::from(*b)),
                Value::String(s) | Value::Corelnk(s) => ("vs", Json::from(s.clone())),
                Value::Opaque(b) => ("vd", Json::from(base64::encode(b, true))),
                Value::Objlnk(a, b) => ("vlo", Json::from(format!("{a}:{b}"))),
            };
            o.insert(k.into(), v);
            Json::Object(o)
        })
        .collect();
    Json::Array(arr).to_string().into_bytes()
}

fn cbor_num(v: &Cbor) -> Option<(Option<i128>, f64)> {
    match v {
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            Some((Some(i), i as f64))
        }
        Cbor::Float(f) => Some((None, *f)),
        _ => None,
    }
}

pub(super) fn decode_cbor(bytes: &[u8], reg: &Registry) -> Result<Vec<Record>, CodecError> {
    let m = |r: &str| malformed("senml-cbor", r);
    let doc: Cbor = ciborium::de::from_reader(bytes).map_err(|e| m(&e.to_string()))?;
    let arr = doc.as_array().ok_or_else(|| m("not an array"))?;
    let mut raws = Vec::with_capacity(arr.len());
    for rec in arr {
        let map = rec.as_map().ok_or_else(|| m("record is not a map"))?;
        let mut raw = Raw::default();
        for (k, v) in map {
            let text = || v.as_text().map(str::to_owned).ok_or_else(|| m("expected text"));
            match k {
                Cbor::Integer(i) => match i128::from(*i) {
                    -2 => raw.bn = Some(text()?),
                    -3 => raw.bt = Some(cbor_num(v).ok_or_else(|| m("bt is not a number"))?.1),
                    0 => raw.n = Some(text()?),
                    2 => raw.num = Some(cbor_num(v).ok_or_else(|| m("v is not a number"))?),
                    3 => raw.vs = Some(text()?),
                    4 => raw.vb = Some(v.as_bool().ok_or_else(|| m("vb is not a boolean"))?),
                    6 => raw.t = Some(cbor_num(v).ok_or_else(|| m("t is not a number"))?.1),
                    8 => raw.vd = Some(v.as_bytes().cloned().ok_or_else(|| m("vd is not bytes"))?),
                    _ => {}
                },
                Cbor::Text(t) if t == "vlo" => raw.vlo = Some(text()?),
                _ => {}
            }
        }
        raws.push(raw);
    }
    resolve(raws, reg, "senml-cbor")
}

pub(super) fn encode_cbor(records: &[Record], base: &LwM2mPath) -> Result<Vec<u8>, CodecError> {
    let (bn, ns) = names(records, base);
    let int = |i: i64| Cbor::Integer(Integer::from(i));
    let arr: Vec<Cbor> = records
        .iter()
        .zip(ns)
        .enumerate()
        .map(|(i, (r, n))| {
            let mut o = Vec::new();
            if i == 0 {
                o.push((int(-2), Cbor::Text(bn.clone())));
            }
            if !n.is_empty() {
                o.push((int(0), Cbor::Text(n)));
            }
            if let Some(t) = r.time {
                o.push((int(6), Cbor::Float(t)));
            }
            o.push(match &r.value {
                Value::Integer(x) | Value::Time(x) => (int(2), int(*x)),
                Value::Unsigned(x) => (int(2), Cbor::Integer(Integer::from(*x))),
                Value::Float(x) => (int(2), Cbor::Float(*x)),
                Value::Boolean(b) => (int(4), Cbor::Bool(*b)),
                Value::String(s) | Value::Corelnk(s) => (int(3), Cbor::Text(s.clone())),
                Value::Opaque(b) => (int(8), Cbor::Bytes(b.clone())),
                Value::Objlnk(a, b) => (Cbor::Text("vlo".into()), Cbor::Text(format!("{a}:{b}"))),
            });
            Cbor::Map(o)
        })
        .collect();
    let mut out = Vec::new();
    ciborium::ser::into_writer(&Cbor::Array(arr), &mut out)
        .map_err(|e| malformed("senml-cbor", e.to_string()))?;
    Ok(out)
}
