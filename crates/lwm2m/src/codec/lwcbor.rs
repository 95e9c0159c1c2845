//! LwM2M CBOR (11544): nested maps keyed by path ids from the root, e.g. `{3: {0: {0: "Acme"}}}`; a key may
//! also be an array of ids that stands for several levels (`{[3, 0]: {0: "Acme"}}`).

use std::collections::BTreeMap;

use ciborium::value::{Integer, Value as Cbor};

use super::{CodecError, Record, malformed, number_value, string_value, type_of};
use crate::model::Registry;
use crate::path::LwM2mPath;
use crate::value::Value;

pub(super) fn decode(bytes: &[u8], reg: &Registry) -> Result<Vec<Record>, CodecError> {
    let doc: Cbor = ciborium::de::from_reader(bytes).map_err(|e| malformed("lwm2m-cbor", e.to_string()))?;
    let mut out = Vec::new();
    walk(&doc, &mut Vec::new(), reg, &mut out)?;
    super::tlv::reject_duplicates(&out, "lwm2m-cbor")?;
    Ok(out)
}

fn id_of(v: &Cbor) -> Result<u16, CodecError> {
    match v {
        Cbor::Integer(i) => {
            u16::try_from(i128::from(*i)).map_err(|_| malformed("lwm2m-cbor", "key out of range"))
        }
        _ => Err(malformed("lwm2m-cbor", "key is not an integer")),
    }
}

fn walk(v: &Cbor, ids: &mut Vec<u16>, reg: &Registry, out: &mut Vec<Record>) -> Result<(), CodecError> {
    if ids.len() > 4 {
        return Err(malformed("lwm2m-cbor", "nested too deep"));
    }
    if let Cbor::Map(entries) = v {
        for (k, child) in entries {
            let n = ids.len();
            match k {
                Cbor::Array(parts) => {
                    for p in parts {
                        ids.push(id_of(p)?);
                    }
                }
                other => ids.push(id_of(other)?),
            }
            walk(child, ids, reg, out)?;
            ids.truncate(n);
        }
        return Ok(());
    }
    let path = LwM2mPath::new(ids).map_err(|e| CodecError::Path(e.to_string()))?;
    if path.depth() < 3 {
        return Err(CodecError::Path(format!("{path} is not a resource")));
    }
    let ty = type_of(reg, &path);
    let value = match v {
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            number_value(ty, Some(i), i as f64)
        }
        Cbor::Float(f) => number_value(ty, None, *f),
        Cbor::Bool(b) => Value::Boolean(*b),
        Cbor::Text(s) => string_value(ty, s),
        Cbor::Bytes(b) => Value::Opaque(b.clone()),
        _ => return Err(malformed("lwm2m-cbor", "unsupported value type")),
    };
    out.push(Record::new(path, value));
    Ok(())
}

enum Tree {
    Leaf(Cbor),
    Node(BTreeMap<u16, Tree>),
}

pub(super) fn encode(records: &[Record]) -> Result<Vec<u8>, CodecError> {
    let mut root = BTreeMap::new();
    for r in records {
        let ids = r.path.ids();
        let mut node = &mut root;
        for id in &ids[..ids.len() - 1] {
            let entry = node.entry(*id).or_insert_with(|| Tree::Node(BTreeMap::new()));
            node = match entry {
                Tree::Node(m) => m,
                Tree::Leaf(_) => {
                    return Err(CodecError::Path(format!("{} has a value and children", r.path)));
                }
            };
        }
        let leaf = match &r.value {
            Value::Integer(x) | Value::Time(x) => Cbor::Integer(Integer::from(*x)),
            Value::Unsigned(x) => Cbor::Integer(Integer::from(*x)),
            Value::Float(x) => Cbor::Float(*x),
            Value::Boolean(b) => Cbor::Bool(*b),
            Value::String(s) | Value::Corelnk(s) => Cbor::Text(s.clone()),
            Value::Opaque(b) => Cbor::Bytes(b.clone()),
            Value::Objlnk(a, b) => Cbor::Text(format!("{a}:{b}")),
        };
        node.insert(ids[ids.len() - 1], Tree::Leaf(leaf));
    }
    fn to_cbor(m: BTreeMap<u16, Tree>) -> Cbor {
        Cbor::Map(
            m.into_iter()
                .map(|(k, t)| {
                    let v = match t {
                        Tree::Leaf(c) => c,
                        Tree::Node(n) => to_cbor(n),
                    };
                    (Cbor::Integer(Integer::from(k)), v)
                })
                .collect(),
        )
    }
    let mut out = Vec::new();
    ciborium::ser::into_writer(&to_cbor(root), &mut out)
        .map_err(|e| malformed("lwm2m-cbor", e.to_string()))?;
    Ok(out)
}
