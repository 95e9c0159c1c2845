//! OMA TLV (content format 11542, and 1542 as LwM2M 1.0 clients send it): LwM2M 1.1 §7.4.3.

use std::collections::BTreeMap;

use super::{CodecError, Record, malformed, type_of};
use crate::model::Registry;
use crate::path::LwM2mPath;
use crate::value::{ResourceType, Value};

/// The kind of a TLV entry (bits 7–6 of the type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvKind {
    /// Object instance (children are resources).
    ObjectInstance,
    /// Resource instance (value).
    ResourceInstance,
    /// Multiple resource (children are resource instances).
    MultipleResource,
    /// Resource with value.
    Resource,
}

/// One TLV entry: either a value or children.
#[derive(Debug, Clone, PartialEq)]
pub struct Tlv {
    /// Kind.
    pub kind: TlvKind,
    /// Identifier.
    pub id: u16,
    /// Value bytes (for `Resource` and `ResourceInstance`).
    pub value: Vec<u8>,
    /// Children (for `ObjectInstance` and `MultipleResource`).
    pub children: Vec<Tlv>,
}

impl Tlv {
    /// Parses a sequence of TLV entries.
    pub fn parse_all(mut bytes: &[u8]) -> Result<Vec<Tlv>, CodecError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (tlv, rest) = Tlv::parse_one(bytes, 0)?;
            out.push(tlv);
            bytes = rest;
        }
        Ok(out)
    }

    fn parse_one(bytes: &[u8], depth: u8) -> Result<(Tlv, &[u8]), CodecError> {
        let t = *bytes.first().ok_or_else(|| malformed("tlv", "truncated"))?;
        let kind = match t >> 6 {
            0 => TlvKind::ObjectInstance,
            1 => TlvKind::ResourceInstance,
            2 => TlvKind::MultipleResource,
            _ => TlvKind::Resource,
        };
        let mut idx = 1;
        let take = |idx: &mut usize, n: usize| -> Result<u32, CodecError> {
            let s = bytes.get(*idx..*idx + n).ok_or_else(|| malformed("tlv", "truncated header"))?;
            *idx += n;
            Ok(s.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
        };
        let id = take(&mut idx, if t & 0x20 != 0 { 2 } else { 1 })? as u16;
        let len = match (t >> 3) & 0x3 {
            0 => u32::from(t & 0x7),
            n => take(&mut idx, usize::from(n))?,
        } as usize;
        let value = bytes.get(idx..idx + len).ok_or_else(|| malformed("tlv", "value longer than payload"))?;
        let rest = &bytes[idx + len..];
        let nested = matches!(kind, TlvKind::ObjectInstance | TlvKind::MultipleResource);
        let tlv = if nested {
            if depth >= 2 {
                return Err(malformed("tlv", "nested too deep"));
            }
            let mut children = Vec::new();
            let mut v = value;
            while !v.is_empty() {
                let (c, r) = Tlv::parse_one(v, depth + 1)?;
                let ok = match kind {
                    TlvKind::ObjectInstance => {
                        matches!(c.kind, TlvKind::Resource | TlvKind::MultipleResource)
                    }
                    _ => c.kind == TlvKind::ResourceInstance,
                };
                if !ok {
                    return Err(malformed("tlv", "unexpected nested entry kind"));
                }
                children.push(c);
                v = r;
            }
            Tlv { kind, id, value: Vec::new(), children }
        } else {
            Tlv { kind, id, value: value.to_vec(), children: Vec::new() }
        };
        Ok((tlv, rest))
    }

    /// Appends the encoding of this entry.
    pub fn write(&self, out: &mut Vec<u8>) {
        let body: Vec<u8> = if self.children.is_empty() {
            self.value.clone()
        } else {
            let mut b = Vec::new();
            self.children.iter().for_each(|c| c.write(&mut b));
            b
        };
        let mut t: u8 = match self.kind {
            TlvKind::ObjectInstance => 0,
            TlvKind::ResourceInstance => 1,
            TlvKind::MultipleResource => 2,
            TlvKind::Resource => 3,
        } << 6;
        if self.id > 0xFF {
            t |= 0x20;
        }
        let len = body.len();
        let len_bytes: Vec<u8> = if len < 8 {
            t |= len as u8;
            vec![]
        } else if len <= 0xFF {
            t |= 0x08;
            vec![len as u8]
        } else if len <= 0xFFFF {
            t |= 0x10;
            (len as u16).to_be_bytes().to_vec()
        } else {
            t |= 0x18;
            (len as u32).to_be_bytes()[1..].to_vec()
        };
        out.push(t);
        if self.id > 0xFF {
            out.extend_from_slice(&self.id.to_be_bytes());
        } else {
            out.push(self.id as u8);
        }
        out.extend_from_slice(&len_bytes);
        out.extend_from_slice(&body);
    }
}

/// Decodes a TLV value by resource type; unknown types stay opaque.
fn typed(ty: Option<ResourceType>, b: &[u8]) -> Result<Value, CodecError> {
    let int = || -> Result<i64, CodecError> {
        Ok(match b.len() {
            1 => i64::from(b[0] as i8),
            2 => i64::from(i16::from_be_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            8 => i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            n => return Err(malformed("tlv", format!("integer of {n} bytes"))),
        })
    };
    Ok(match ty {
        Some(ResourceType::Integer) => Value::Integer(int()?),
        Some(ResourceType::Time) => Value::Time(int()?),
        Some(ResourceType::Unsigned) => {
            if !matches!(b.len(), 1 | 2 | 4 | 8) {
                return Err(malformed("tlv", "unsigned length"));
            }
            Value::Unsigned(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
        }
        Some(ResourceType::Float) => match b.len() {
            4 => Value::Float(f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]]))),
            8 => Value::Float(f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            n => return Err(malformed("tlv", format!("float of {n} bytes"))),
        },
        Some(ResourceType::Boolean) => match b {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return Err(malformed("tlv", "boolean is not 0 or 1")),
        },
        Some(ResourceType::Objlnk) => match b {
            [a0, a1, b0, b1] => Value::Objlnk(u16::from_be_bytes([*a0, *a1]), u16::from_be_bytes([*b0, *b1])),
            _ => return Err(malformed("tlv", "objlnk is not 4 bytes")),
        },
        Some(ResourceType::String) | Some(ResourceType::Corelnk) => {
            let s = String::from_utf8(b.to_vec()).map_err(|_| malformed("tlv", "string not UTF-8"))?;
            if ty == Some(ResourceType::Corelnk) { Value::Corelnk(s) } else { Value::String(s) }
        }
        _ => Value::Opaque(b.to_vec()),
    })
}

fn value_bytes(v: &Value) -> Vec<u8> {
    fn int(i: i64) -> Vec<u8> {
        if let Ok(x) = i8::try_from(i) {
            x.to_be_bytes().to_vec()
        } else if let Ok(x) = i16::try_from(i) {
            x.to_be_bytes().to_vec()
        } else if let Ok(x) = i32::try_from(i) {
            x.to_be_bytes().to_vec()
        } else {
            i.to_be_bytes().to_vec()
        }
    }
    match v {
        Value::Integer(i) | Value::Time(i) => int(*i),
        Value::Unsigned(u) => {
            let b = u.to_be_bytes();
            let n = if *u <= 0xFF {
                1
            } else if *u <= 0xFFFF {
                2
            } else if *u <= 0xFFFF_FFFF {
                4
            } else {
                8
            };
            b[8 - n..].to_vec()
        }
        Value::Float(f) => {
            let g = *f as f32;
            if f64::from(g) == *f || f.is_nan() { g.to_be_bytes().to_vec() } else { f.to_be_bytes().to_vec() }
        }
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::String(s) | Value::Corelnk(s) => s.as_bytes().to_vec(),
        Value::Opaque(b) => b.clone(),
        Value::Objlnk(a, b) => [a.to_be_bytes(), b.to_be_bytes()].concat(),
    }
}

/// Decodes a TLV payload for a request on `base`.
pub(super) fn decode(bytes: &[u8], base: &LwM2mPath, registry: &Registry) -> Result<Vec<Record>, CodecError> {
    let tlvs = Tlv::parse_all(bytes)?;
    let mut out = Vec::new();
    let bad = |m: &str| CodecError::Path(format!("{m} under {base}"));
    let obj = base.object().ok_or_else(|| bad("TLV needs an object"))?;
    for t in &tlvs {
        match (base.depth(), t.kind) {
            (1, TlvKind::ObjectInstance) => resources(&mut out, obj, t.id, &t.children, registry)?,
            (1, _) => resources(&mut out, obj, 0, std::slice::from_ref(t), registry)?,
            (2, TlvKind::ObjectInstance) if Some(t.id) == base.instance() => {
                resources(&mut out, obj, t.id, &t.children, registry)?
            }
            (2, TlvKind::Resource | TlvKind::MultipleResource) => {
                resources(&mut out, obj, base.instance().unwrap_or(0), std::slice::from_ref(t), registry)?
            }
            (3, TlvKind::Resource | TlvKind::MultipleResource) if Some(t.id) == base.resource() => {
                resources(&mut out, obj, base.instance().unwrap_or(0), std::slice::from_ref(t), registry)?
            }
            (3, TlvKind::ResourceInstance) => {
                let p = base.child(t.id).map_err(|e| CodecError::Path(e.to_string()))?;
                out.push(Record::new(p, typed(type_of(registry, &p), &t.value)?));
            }
            (4, TlvKind::ResourceInstance) if Some(t.id) == base.resource_instance() => {
                out.push(Record::new(*base, typed(type_of(registry, base), &t.value)?));
            }
            _ => return Err(bad(&format!("unexpected TLV entry {:?} {}", t.kind, t.id))),
        }
    }
    reject_duplicates(&out, "tlv")?;
    Ok(out)
}

/// A path given twice, or a resource given both as a value and with instances, makes a payload ambiguous.
pub(super) fn reject_duplicates(records: &[Record], format: &'static str) -> Result<(), CodecError> {
    let mut paths: Vec<LwM2mPath> = records.iter().map(|r| r.path).collect();
    paths.sort();
    // Sorted, a path is directly followed by its first descendant if it has any.
    match paths.windows(2).find(|w| w[1].starts_with(&w[0])) {
        Some(w) => Err(malformed(format, format!("{} given twice or with sub-paths", w[0]))),
        None => Ok(()),
    }
}

fn resources(
    out: &mut Vec<Record>,
    obj: u16,
    inst: u16,
    ts: &[Tlv],
    reg: &Registry,
) -> Result<(), CodecError> {
    let path = |ids: &[u16]| LwM2mPath::new(ids).map_err(|e| CodecError::Path(e.to_string()));
    for t in ts {
        match t.kind {
            TlvKind::Resource => {
                let p = path(&[obj, inst, t.id])?;
                out.push(Record::new(p, typed(type_of(reg, &p), &t.value)?));
            }
            TlvKind::MultipleResource => {
                for c in &t.children {
                    let p = path(&[obj, inst, t.id, c.id])?;
                    out.push(Record::new(p, typed(type_of(reg, &p), &c.value)?));
                }
            }
            _ => return Err(malformed("tlv", "expected a resource")),
        }
    }
    Ok(())
}

/// A resource while encoding: its single value, or its instances.
type ResEntry<'a> = (Option<&'a Value>, Vec<(u16, &'a Value)>);

/// Encodes records (all at or below `base`) as TLV.
pub(super) fn encode(records: &[Record], base: &LwM2mPath) -> Vec<u8> {
    // instance -> resource -> (single value | instances)
    let mut tree: BTreeMap<u16, BTreeMap<u16, ResEntry<'_>>> = BTreeMap::new();
    for r in records {
        let (Some(i), Some(res)) = (r.path.instance(), r.path.resource()) else { continue };
        let e = tree.entry(i).or_default().entry(res).or_default();
        match r.path.resource_instance() {
            Some(ri) => e.1.push((ri, &r.value)),
            None => e.0 = Some(&r.value),
        }
    }
    let res_tlv = |id: u16, (single, multi): &ResEntry<'_>| match single {
        Some(v) if multi.is_empty() => {
            Tlv { kind: TlvKind::Resource, id, value: value_bytes(v), children: vec![] }
        }
        _ => Tlv {
            kind: TlvKind::MultipleResource,
            id,
            value: vec![],
            children: multi
                .iter()
                .map(|(ri, v)| Tlv {
                    kind: TlvKind::ResourceInstance,
                    id: *ri,
                    value: value_bytes(v),
                    children: vec![],
                })
                .collect(),
        },
    };
    let mut out = Vec::new();
    for (inst, res) in &tree {
        match base.depth() {
            0 | 1 => {
                let children: Vec<Tlv> = res.iter().map(|(id, e)| res_tlv(*id, e)).collect();
                Tlv { kind: TlvKind::ObjectInstance, id: *inst, value: vec![], children }.write(&mut out);
            }
            2 => res.iter().for_each(|(id, e)| res_tlv(*id, e).write(&mut out)),
            3 => res.iter().for_each(|(id, e)| res_tlv(*id, e).write(&mut out)),
            _ => {
                for (ri, v) in res.values().flat_map(|e| e.1.iter()) {
                    Tlv { kind: TlvKind::ResourceInstance, id: *ri, value: value_bytes(v), children: vec![] }
                        .write(&mut out);
                }
            }
        }
    }
    out
}
