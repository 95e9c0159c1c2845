//! One resource of the tree (`Res`) and its stored form.

use onem2m::{ResourceType, time};
use serde_json::{Map, Value};

/// One resource in the tree.
#[derive(Debug, Clone)]
pub(crate) struct Res {
    pub(crate) ty: ResourceType,
    pub(crate) ri: String,
    pub(crate) rn: String,
    pub(crate) pi: String,
    /// The originator that created it (the AE-ID for an AE, the admin for the CSEBase).
    pub(crate) owner: String,
    /// Creation order (children are kept in this order).
    pub(crate) seq: u64,
    /// The full representation (`ri`, `rn`, `pi`, `ty`, `ct`, ... and type-specific attributes).
    pub(crate) attrs: Map<String, Value>,
}

impl Res {
    /// The stored form: the JSON object `{"attrs","owner","pi","ri","rn","seq","ty"}` (keys in this order, as
    /// serde_json writes a map), written straight from the fields without copying them into a `Value` first.
    pub(super) fn to_record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"attrs\":");
        // Writing a map with string keys, or a string, into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.attrs);
        for (k, v) in [("owner", &self.owner), ("pi", &self.pi), ("ri", &self.ri), ("rn", &self.rn)] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            let _ = serde_json::to_writer(&mut out, v.as_str());
        }
        out.extend_from_slice(format!(",\"seq\":{},\"ty\":{}}}", self.seq, self.ty.code()).as_bytes());
        out
    }

    pub(super) fn from_record(b: &[u8]) -> Option<Res> {
        let v: Value = serde_json::from_slice(b).ok()?;
        Some(Res {
            ty: ResourceType::from_code(u16::try_from(v.get("ty")?.as_u64()?).ok()?)?,
            ri: v.get("ri")?.as_str()?.to_owned(),
            rn: v.get("rn")?.as_str()?.to_owned(),
            pi: v.get("pi")?.as_str()?.to_owned(),
            owner: v.get("owner")?.as_str()?.to_owned(),
            seq: v.get("seq")?.as_u64()?,
            attrs: v.get("attrs")?.as_object()?.clone(),
        })
    }

    pub(super) fn et(&self) -> Option<i64> {
        self.attrs.get("et").and_then(Value::as_str).and_then(time::parse)
    }

    pub(super) fn u64_attr(&self, k: &str) -> Option<u64> {
        self.attrs.get(k).and_then(Value::as_u64)
    }

    pub(super) fn rep(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.ty.short_name().to_owned(), Value::Object(self.attrs.clone()));
        Value::Object(m)
    }
}

pub(super) fn content_size(con: &Value) -> u64 {
    let n = match con {
        Value::String(s) => s.len(),
        v => serde_json::to_string(v).map_or(0, |s| s.len()),
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}
