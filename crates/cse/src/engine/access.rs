//! Access control: ACP privileges (`pv`, `acod`/`chty`) and the checks of a request's originator.

use onem2m::{ResourceType, Rsc};
use serde_json::{Map, Value};

use super::routing::Resolved;
use super::{Engine, Fail, fail};

/// Whether an access-control rule applies to a CREATE of `child` (TS-0004 `acod`: a rule with
/// accessControlObjectDetails applies to a CREATE only of the child types listed in one of their `chty`;
/// an `acod` entry without `chty` lists no restriction). Other operations are not restricted by `acod`.
fn child_type_allowed(rule: &Value, bit: u8, child: Option<ResourceType>) -> bool {
    let Some(acod) = rule.get("acod").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return true;
    };
    if bit != 1 {
        return true;
    }
    let Some(child) = child else { return false };
    acod.iter().any(|d| match d.get("chty").and_then(Value::as_array) {
        None => true,
        Some(types) => types.iter().any(|t| t.as_u64() == Some(u64::from(child.code()))),
    })
}

/// Whether `v` is a well-formed `pv`/`pvs`: `{"acr": [{"acor": [str..], "acop": 0..63, "acod"?: [{"chty"?: [ty..]}]}]}`.
pub(super) fn valid_privileges(v: &Value) -> bool {
    fn list(v: Option<&Value>) -> Option<&[Value]> {
        v.and_then(Value::as_array).map(Vec::as_slice)
    }
    let Some(rules) = list(v.get("acr")) else { return false };
    let valid_acod = |d: &Value| match d.get("chty") {
        None => true,
        Some(c) => list(Some(c)).is_some_and(|c| c.iter().all(|t| t.as_u64().is_some_and(|t| t <= 65535))),
    };
    rules.iter().all(|r| {
        r.get("acop").and_then(Value::as_u64).is_some_and(|x| x <= 63)
            && list(r.get("acor")).is_some_and(|a| a.iter().all(Value::is_string))
            && (r.get("acod").is_none() || list(r.get("acod")).is_some_and(|ds| ds.iter().all(valid_acod)))
    })
}

impl Engine {
    /// Access control: admin, the owner of the target or of an ancestor, else the nearest `acpi`.
    pub(super) fn permitted(&self, origin: &str, ri: &str, bit: u8) -> bool {
        self.permitted_child(origin, ri, bit, None)
    }

    /// [`Self::permitted`]; for a CREATE, `child` is the type of the resource to create, which rules with
    /// `acod` (accessControlObjectDetails) restrict by their `chty` lists.
    pub(super) fn permitted_child(
        &self,
        origin: &str,
        ri: &str,
        bit: u8,
        child: Option<ResourceType>,
    ) -> bool {
        if origin == self.cfg.admin {
            return true;
        }
        let mut cur = self.res.get(ri);
        let mut acp_decided: Option<bool> = None;
        while let Some(r) = cur {
            if r.owner == origin && r.ty != ResourceType::CseBase {
                return true;
            }
            if acp_decided.is_none() {
                let acpi: Vec<&str> = if r.ty == ResourceType::AccessControlPolicy {
                    vec![r.ri.as_str()]
                } else {
                    r.attrs
                        .get("acpi")
                        .and_then(Value::as_array)
                        .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
                };
                if !acpi.is_empty() {
                    let key = if r.ty == ResourceType::AccessControlPolicy { "pvs" } else { "pv" };
                    acp_decided = Some(acpi.iter().any(|a| self.acp_grants(a, key, origin, bit, child)));
                }
            }
            cur = if r.pi.is_empty() { None } else { self.res.get(&r.pi) };
        }
        acp_decided.unwrap_or(false)
    }

    fn acp_grants(
        &self,
        acp_ri: &str,
        key: &str,
        origin: &str,
        bit: u8,
        child: Option<ResourceType>,
    ) -> bool {
        // `acpi` holds resource identifiers, or any other address form of the policy (checked at CREATE/UPDATE).
        let acp = self.res.get(acp_ri).or_else(|| match self.resolve(acp_ri) {
            Ok(Resolved::Res(ri)) => self.res.get(&ri),
            _ => None,
        });
        let Some(acp) = acp.filter(|a| a.ty == ResourceType::AccessControlPolicy) else { return false };
        let rules = acp.attrs.get(key).and_then(|p| p.get("acr")).and_then(Value::as_array);
        rules.into_iter().flatten().any(|rule| {
            let op = rule.get("acop").and_then(Value::as_u64).unwrap_or(0);
            let who = rule.get("acor").and_then(Value::as_array);
            op & u64::from(bit) != 0
                && child_type_allowed(rule, bit, child)
                && who.into_iter().flatten().filter_map(Value::as_str).any(|o| {
                    o == "all"
                        || o == "*"
                        || o == origin
                        || o.strip_suffix('*').is_some_and(|p| origin.starts_with(p))
                })
        })
    }

    pub(super) fn check_acpi(&self, body: &Map<String, Value>) -> Result<(), Fail> {
        if let Some(acpi) = body.get("acpi").and_then(Value::as_array) {
            for a in acpi.iter().filter_map(Value::as_str) {
                let ok = self.resolve(a).ok().and_then(|r| match r {
                    Resolved::Res(ri) => self.res.get(&ri),
                    _ => None,
                });
                if ok.is_none_or(|r| r.ty != ResourceType::AccessControlPolicy) {
                    return fail(Rsc::BadRequest, format!("acpi {a:?} is not an accessControlPolicy"));
                }
            }
        }
        Ok(())
    }
}
