//! JSON views for the REST API: values, Leshan-like nodes, clients, events, and JSON → records for writes.

use std::time::{SystemTime, UNIX_EPOCH};

use lwm2m::codec::Record;
use lwm2m::link::Link;
use lwm2m::{LwM2mPath, Registry, ResourceType, Value};
use serde_json::{Map, Value as Json, json};

use crate::types::{ClientInfo, OpResponse, ServerEvent};

/// A value as JSON: numbers, booleans, strings; opaque as hex; object links as `"3:0"`.
pub(crate) fn value(v: &Value) -> Json {
    match v {
        Value::String(s) | Value::Corelnk(s) => Json::from(s.clone()),
        Value::Integer(i) | Value::Time(i) => Json::from(*i),
        Value::Unsigned(u) => Json::from(*u),
        Value::Float(f) => Json::from(*f),
        Value::Boolean(b) => Json::from(*b),
        other => Json::from(other.to_string()),
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn links(l: &[Link]) -> Json {
    Json::Array(
        l.iter()
            .map(|l| {
                let attrs: Map<String, Json> = l
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().map(Json::from).unwrap_or(Json::Null)))
                    .collect();
                json!({"url": l.target, "attributes": attrs})
            })
            .collect(),
    )
}

/// A client as `GET /api/clients` lists it (Leshan's field names).
pub(crate) fn client(c: &ClientInfo) -> Json {
    json!({
        "endpoint": c.endpoint,
        "registrationId": c.registration_id,
        "address": c.address.to_string(),
        "lifetime": c.lifetime,
        "lwM2mVersion": c.version.as_str(),
        "bindingMode": c.binding,
        "rootPath": c.root_path,
        "registrationDate": millis(c.registered_at),
        "lastUpdate": millis(c.last_update),
        "supportedContentFormats": c.supported_formats.iter().map(|f| f.0).collect::<Vec<_>>(),
        "objectLinks": links(&c.links),
        "secure": c.identity.is_some(),
        "identity": c.identity.as_ref().map(|i| i.to_string()),
    })
}

fn group(recs: Vec<&Record>, level: usize) -> Vec<(u16, Vec<&Record>)> {
    let mut out: Vec<(u16, Vec<&Record>)> = Vec::new();
    for r in recs {
        let id = r.path.ids().get(level).copied().unwrap_or(0);
        match out.iter_mut().find(|(i, _)| *i == id) {
            Some((_, v)) => v.push(r),
            None => out.push((id, vec![r])),
        }
    }
    out
}

/// A Leshan-like node for the records under `path`.
fn node(path: &LwM2mPath, records: &[Record], reg: &Registry) -> Json {
    let ty = |p: &LwM2mPath, v: &Value| {
        p.object()
            .zip(p.resource())
            .and_then(|(o, r)| reg.resource_type(o, r))
            .unwrap_or(v.resource_type())
            .name()
    };
    let resource = |rid: u16, recs: &[&Record]| -> Json {
        match recs {
            [r] if !r.path.is_resource_instance() => {
                json!({"kind": "singleResource", "id": rid, "type": ty(&r.path, &r.value), "value": value(&r.value)})
            }
            _ => {
                let values: Map<String, Json> = recs
                    .iter()
                    .filter_map(|r| r.path.resource_instance().map(|i| (i.to_string(), value(&r.value))))
                    .collect();
                let t = recs.first().map_or("NONE", |r| ty(&r.path, &r.value));
                json!({"kind": "multiResource", "id": rid, "type": t, "values": values})
            }
        }
    };
    let instance = |iid: u16, recs: Vec<&Record>| -> Json {
        let resources: Vec<Json> = group(recs, 2).into_iter().map(|(rid, rs)| resource(rid, &rs)).collect();
        json!({"kind": "instance", "id": iid, "resources": resources})
    };
    let all: Vec<&Record> = records.iter().collect();
    match path.depth() {
        4 => match records.first() {
            Some(r) => {
                json!({"kind": "resourceInstance", "id": path.resource_instance(), "type": ty(&r.path, &r.value), "value": value(&r.value)})
            }
            None => Json::Null,
        },
        3 => resource(path.resource().unwrap_or(0), &all),
        2 => instance(path.instance().unwrap_or(0), all),
        _ => {
            let instances: Vec<Json> = group(all, 1).into_iter().map(|(i, rs)| instance(i, rs)).collect();
            json!({"kind": "obj", "id": path.object(), "instances": instances})
        }
    }
}

fn flat(records: &[Record]) -> Json {
    Json::Object(records.iter().map(|r| (r.path.to_string(), value(&r.value))).collect())
}

/// The body of a REST answer to a device operation.
pub(crate) fn response(path: &LwM2mPath, r: &OpResponse, reg: &Registry) -> Json {
    let mut o = json!({
        "status": r.code.name(),
        "code": r.code.to_string(),
        "success": r.code.is_success(),
        "failure": !r.code.is_success(),
        "valid": true,
    });
    if let Some(f) = r.format {
        o["format"] = Json::from(f.name());
        o["contentFormat"] = Json::from(f.0);
    }
    if !r.records.is_empty() {
        o["content"] = node(path, &r.records, reg);
        o["values"] = flat(&r.records);
    }
    if !r.links.is_empty() {
        o["objectLinks"] = links(&r.links);
    }
    if let Some(l) = &r.location {
        o["location"] = Json::from(l.clone());
    }
    if !r.code.is_success() && !r.payload.is_empty() {
        o["errorMessage"] = Json::from(String::from_utf8_lossy(&r.payload).into_owned());
    }
    o
}

/// An event as the SSE stream sends it: `(event name, data)`.
pub(crate) fn event(e: &ServerEvent, reg: &Registry) -> (&'static str, Json) {
    match e {
        ServerEvent::Registered(c) => ("REGISTRATION", client(c)),
        ServerEvent::Updated(c) => ("UPDATED", client(c)),
        ServerEvent::Deregistered { endpoint, registration_id } => {
            ("DEREGISTRATION", json!({"endpoint": endpoint, "registrationId": registration_id}))
        }
        ServerEvent::Expired { endpoint, registration_id } => {
            ("EXPIRED", json!({"endpoint": endpoint, "registrationId": registration_id}))
        }
        ServerEvent::Notification { endpoint, path, code, records } => (
            "NOTIFICATION",
            json!({"ep": endpoint, "res": path.to_string(), "code": code.to_string(),
                   "val": node(path, records, reg), "values": flat(records)}),
        ),
        ServerEvent::Send { endpoint, records, .. } => {
            ("SEND", json!({"ep": endpoint, "values": flat(records)}))
        }
        ServerEvent::DtlsSession { peer, identity, cipher, resumed } => (
            "DTLS_SESSION",
            json!({"peer": peer.to_string(), "identity": identity.to_string(), "cipher": cipher, "resumed": resumed}),
        ),
        #[allow(unreachable_patterns)]
        _ => ("UNKNOWN", Json::Null),
    }
}

/// The endpoint name an event is about.
pub(crate) fn event_endpoint(e: &ServerEvent) -> &str {
    match e {
        ServerEvent::Registered(c) | ServerEvent::Updated(c) => &c.endpoint,
        ServerEvent::Deregistered { endpoint, .. }
        | ServerEvent::Expired { endpoint, .. }
        | ServerEvent::Notification { endpoint, .. }
        | ServerEvent::Send { endpoint, .. } => endpoint,
        #[allow(unreachable_patterns)]
        _ => "",
    }
}

/// Converts a JSON value to a resource value of the registry's type (or the JSON's own type when unknown).
pub(crate) fn to_value(path: &LwM2mPath, j: &Json, reg: &Registry) -> Result<Value, String> {
    let ty = path.object().zip(path.resource()).and_then(|(o, r)| reg.resource_type(o, r));
    let text = match j {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        _ => return Err(format!("{path}: value must be a string, number or boolean")),
    };
    let ty = ty.unwrap_or(match j {
        Json::Number(n) if n.is_i64() => ResourceType::Integer,
        Json::Number(_) => ResourceType::Float,
        Json::Bool(_) => ResourceType::Boolean,
        _ => ResourceType::String,
    });
    if ty == ResourceType::Opaque {
        return hex::decode(&text)
            .ok()
            .map(Value::Opaque)
            .ok_or_else(|| format!("{path}: opaque value must be hex"));
    }
    Value::from_text(ty, &text).ok_or_else(|| format!("{path}: {text:?} is not a {}", ty.name()))
}

/// Parses a write/create body into records under `path`. Accepted shapes:
/// `{"value": v}` (resource), `{"values": {"0": v, ...}}` (multiple resource), Leshan-like nodes
/// `{"kind": "instance", "id": 0, "resources": [{"id": 1, "value": v}, {"id": 6, "values": {"0": v}}]}`, and
/// a flat `{"values": {"/3/0/1": v}}` map of paths.
pub(crate) fn to_records(path: &LwM2mPath, body: &Json, reg: &Registry) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let at = |base: &LwM2mPath, id: u16| base.child(id).map_err(|e| e.to_string());
    let resource = |base: &LwM2mPath, r: &Json, out: &mut Vec<Record>| -> Result<(), String> {
        if let Some(v) = r.get("value") {
            out.push(Record::new(*base, to_value(base, v, reg)?));
        } else if let Some(vals) = r.get("values").and_then(Json::as_object) {
            for (k, v) in vals {
                let p = at(base, k.parse().map_err(|_| format!("bad resource instance id {k:?}"))?)?;
                out.push(Record::new(p, to_value(&p, v, reg)?));
            }
        } else {
            return Err("a resource needs \"value\" or \"values\"".into());
        }
        Ok(())
    };
    if let Some(vals) = body.get("values").and_then(Json::as_object)
        && vals.keys().all(|k| k.starts_with('/'))
    {
        for (k, v) in vals {
            let p: LwM2mPath = k.parse().map_err(|e: lwm2m::PathError| e.to_string())?;
            if !p.starts_with(path) {
                return Err(format!("{p} is not under {path}"));
            }
            out.push(Record::new(p, to_value(&p, v, reg)?));
        }
        return Ok(out);
    }
    match path.depth() {
        3 | 4 => resource(path, body, &mut out)?,
        1 | 2 => {
            let inst = if path.depth() == 1 {
                let id = body.get("id").and_then(Json::as_u64).unwrap_or(0);
                at(path, u16::try_from(id).map_err(|_| "instance id out of range")?)?
            } else {
                *path
            };
            let res =
                body.get("resources").and_then(Json::as_array).ok_or("an instance needs \"resources\"")?;
            for r in res {
                let id = r.get("id").and_then(Json::as_u64).ok_or("a resource needs a numeric \"id\"")?;
                let p = at(&inst, u16::try_from(id).map_err(|_| "resource id out of range")?)?;
                resource(&p, r, &mut out)?;
            }
        }
        _ => return Err("cannot write the root".into()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use lwm2m::{LwM2mPath, Registry, Value};
    use serde_json::json;

    #[test]
    fn opaque_values_are_hex() {
        let (reg, path) = (Registry::builtin(), "/5/0/0".parse::<LwM2mPath>().unwrap());
        assert_eq!(super::to_value(&path, &json!("0aFF"), &reg), Ok(Value::Opaque(vec![0x0a, 0xff])));
        assert_eq!(super::to_value(&path, &json!(""), &reg), Ok(Value::Opaque(vec![])));
        for bad in ["0", "0g", "+a", "0a ", "é0"] {
            assert!(super::to_value(&path, &json!(bad), &reg).is_err(), "{bad}");
        }
    }
}
