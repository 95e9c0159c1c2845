//! UPDATE.

use onem2m::{RequestPrimitive, ResourceType, ResponsePrimitive, ResultContent, Rsc, time};
use serde_json::{Map, Value, json};

use super::notification::net;
use super::routing::Resolved;
use super::schema::{ACP_UPDATE, AE_UPDATE, CNT_UPDATE, SUB_UPDATE, check_types};
use super::{Engine, Fail, fail};

/// `rcn=9`: the attributes that the operation changed other than as the request asked (e.g. `lt`, `st`, or a value
/// the CSE adjusted), as TS-0004 defines "modified attributes".
pub(super) fn modified_attributes(
    ty: ResourceType,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    request: &Map<String, Value>,
    rsc: Rsc,
) -> ResponsePrimitive {
    let changed: Map<String, Value> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v) && request.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut m = Map::new();
    m.insert(ty.short_name().to_owned(), Value::Object(changed));
    ResponsePrimitive::new(rsc, "", Some(Value::Object(m)))
}

impl Engine {
    pub(super) fn update(
        &mut self,
        req: &RequestPrimitive,
        target: Resolved,
        now: i64,
    ) -> Result<ResponsePrimitive, Fail> {
        let origin = self.origin(req)?.to_owned();
        let Resolved::Res(ri) = target else {
            return fail(Rsc::OperationNotAllowed, "UPDATE is not allowed on la/ol");
        };
        let r = self.res.get(&ri).ok_or((Rsc::NotFound, "not found".to_owned()))?;
        let allowed = match r.ty {
            ResourceType::Ae => AE_UPDATE,
            ResourceType::Container => CNT_UPDATE,
            ResourceType::Subscription => SUB_UPDATE,
            ResourceType::AccessControlPolicy => ACP_UPDATE,
            _ => {
                return fail(
                    Rsc::OperationNotAllowed,
                    format!("UPDATE of a {} is not allowed", r.ty.short_name()),
                );
            }
        };
        if !self.permitted(&origin, &ri, 4) {
            return fail(Rsc::OriginatorHasNoPrivilege, format!("originator {origin} may not UPDATE this"));
        }
        let Some(pc) = req.pc.as_ref().and_then(Value::as_object) else {
            return fail(Rsc::BadRequest, "UPDATE needs a JSON object as content");
        };
        let body = match pc.iter().next() {
            Some((k, v)) if pc.len() == 1 && k == r.ty.short_name() => {
                v.as_object().ok_or((Rsc::BadRequest, format!("{k} must be an object")))?
            }
            _ => {
                return fail(
                    Rsc::ContentsUnacceptable,
                    format!("content must be {{\"{}\": {{...}}}}", r.ty.short_name()),
                );
            }
        };
        if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
            return fail(Rsc::BadRequest, format!("attribute {k:?} is unknown or may not be updated"));
        }
        let non_null: Map<String, Value> =
            body.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        check_types(&non_null, now)?;
        self.check_acpi(&non_null)?;
        if r.ty == ResourceType::Subscription
            && body.get("nu").is_some_and(|v| v.as_array().is_none_or(|a| a.is_empty()))
        {
            return fail(Rsc::BadRequest, "nu must be a non-empty list");
        }
        let before = r.attrs.clone();
        let mut r = r.clone();
        for (k, v) in body {
            if v.is_null() {
                r.attrs.remove(k);
            } else {
                r.attrs.insert(k.clone(), v.clone());
            }
        }
        r.attrs.insert("lt".into(), json!(time::format(now)));
        if r.ty == ResourceType::Container {
            let st = r.u64_attr("st").unwrap_or(0) + 1;
            r.attrs.insert("st".into(), json!(st));
        }
        let mut modified = Map::new();
        for k in body.keys() {
            modified.insert(k.clone(), r.attrs.get(k).cloned().unwrap_or(Value::Null));
        }
        let rep = r.rep();
        let ty = r.ty;
        self.put(r);
        if ty == ResourceType::Container {
            self.enforce_limits(&ri, now);
        }
        let mut modrep = Map::new();
        modrep.insert(ty.short_name().to_owned(), Value::Object(modified.clone()));
        self.notify_event(&ri, net::UPDATE, &rep, Some(&Value::Object(modrep)), None, now);
        let rcn = req.rcn.unwrap_or(ResultContent::Attributes);
        if rcn == ResultContent::ModifiedAttributes {
            let after = self.res.get(&ri).map(|r| r.attrs.clone()).unwrap_or_default();
            return Ok(modified_attributes(ty, &before, &after, body, Rsc::Updated));
        }
        self.result(rcn, &ri, Rsc::Updated)
    }

    // ---------------------------------------------------------------- DELETE
}
