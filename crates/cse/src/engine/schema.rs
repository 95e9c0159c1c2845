//! The attributes each resource type accepts on CREATE and UPDATE, their types, and which children a type may have.

use onem2m::{ResourceType, Rsc, time};
use serde_json::{Map, Value};

use super::Fail;
use super::access::valid_privileges;

pub(super) const AE_CREATE: &[&str] = &[
    "rn", "api", "apn", "rr", "poa", "srv", "lbl", "acpi", "et", "at", "aa", "nl", "csz", "or", "daci",
    "regs", "trps", "scp",
];

pub(super) const AE_UPDATE: &[&str] = &[
    "apn", "rr", "poa", "srv", "lbl", "acpi", "et", "at", "aa", "nl", "csz", "or", "daci", "regs", "trps",
    "scp",
];

pub(super) const CNT_CREATE: &[&str] =
    &["rn", "lbl", "acpi", "et", "mni", "mbs", "mia", "cr", "at", "aa", "li", "or", "disr", "daci"];

pub(super) const CNT_UPDATE: &[&str] =
    &["lbl", "acpi", "et", "mni", "mbs", "mia", "at", "aa", "li", "or", "disr", "daci"];

pub(super) const CIN_CREATE: &[&str] =
    &["rn", "lbl", "et", "cnf", "con", "cr", "or", "at", "aa", "dcnt", "dgt"];

pub(super) const SUB_CREATE: &[&str] = &[
    "rn", "lbl", "acpi", "et", "enc", "exc", "nu", "nct", "su", "cr", "gpi", "nfu", "bn", "rl", "psn", "pn",
    "nsp", "ln", "nec", "daci",
];

pub(super) const SUB_UPDATE: &[&str] = &[
    "lbl", "acpi", "et", "enc", "exc", "nu", "nct", "gpi", "nfu", "bn", "rl", "psn", "pn", "nsp", "ln",
    "nec", "daci",
];

pub(super) const ACP_CREATE: &[&str] = &["rn", "lbl", "et", "pv", "pvs", "at", "aa", "adri", "apri", "airi"];

pub(super) const ACP_UPDATE: &[&str] = &["lbl", "et", "pv", "pvs", "at", "aa", "adri", "apri", "airi"];

pub(super) fn allowed_children(parent: ResourceType) -> &'static [ResourceType] {
    use ResourceType as T;
    match parent {
        T::CseBase => &[T::Ae, T::Container, T::Subscription, T::AccessControlPolicy],
        T::Ae => &[T::Container, T::Subscription, T::AccessControlPolicy],
        T::Container => &[T::Container, T::ContentInstance, T::Subscription],
        T::AccessControlPolicy => &[T::Subscription],
        _ => &[],
    }
}

/// Checks the JSON types of the attributes a request may set.
pub(super) fn check_types(body: &Map<String, Value>, now: i64) -> Result<(), Fail> {
    let bad = |k: &str, want: &str| (Rsc::BadRequest, format!("attribute {k:?} must be {want}"));
    for (k, v) in body {
        let ok = match k.as_str() {
            "rn" | "api" | "apn" | "cnf" | "su" | "or" | "li" | "csz" => v.is_string(),
            "lbl" | "acpi" | "poa" | "srv" | "nu" | "at" => {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            }
            "rr" | "aa" | "disr" => v.is_boolean() || (k == "aa" && v.is_array()),
            "mni" | "mbs" | "mia" | "exc" | "nec" => v.is_u64(),
            "ln" => v.is_boolean(),
            "bn" => v.as_object().is_some_and(|o| {
                o.keys().all(|k| k == "num" || k == "dur")
                    && o.get("num").is_none_or(Value::is_u64)
                    && o.get("dur").is_none_or(|d| {
                        d.as_str().and_then(time::parse_duration).is_some_and(|us| us >= 1_000_000)
                    })
            }),
            "rl" | "pn" | "nsp" | "nfu" | "psn" => {
                return Err((
                    Rsc::NotImplemented,
                    format!(
                        "attribute {k:?} ({}) is not supported by this CSE",
                        match k.as_str() {
                            "rl" => "rateLimit",
                            "pn" => "pendingNotification",
                            "nsp" => "notificationStoragePriority",
                            "nfu" => "notificationForwardingURI",
                            _ => "preSubscriptionNotify",
                        }
                    ),
                ));
            }
            "nct" => v.as_u64().is_some_and(|n| (1..=4).contains(&n)),
            "et" => {
                let Some(t) = v.as_str().and_then(time::parse) else {
                    return Err(bad(k, "a oneM2M timestamp"));
                };
                if t <= now {
                    return Err((Rsc::BadRequest, "et is in the past".to_owned()));
                }
                true
            }
            "enc" => v.as_object().is_some_and(|o| {
                o.get("net").is_none_or(|n| {
                    n.as_array()
                        .is_some_and(|a| a.iter().all(|x| x.as_u64().is_some_and(|x| (1..=8).contains(&x))))
                })
            }),
            "pv" | "pvs" => valid_privileges(v),
            "cr" => v.is_null(),
            _ => true,
        };
        if !ok {
            let want = match k.as_str() {
                "cr" => "null (the CSE fills it in)",
                "nct" => "1, 2, 3 or 4",
                "enc" => "an object with net: [1..8]",
                "pv" | "pvs" => {
                    "{\"acr\": [{\"acor\": [..], \"acop\": 0..63, \"acod\"?: [{\"chty\"?: [ty, ..]}]}]}"
                }
                "mni" | "mbs" | "mia" | "exc" | "nec" => "a non-negative integer",
                "rr" | "disr" | "ln" => "a boolean",
                "bn" => "{\"num\"?: a non-negative integer, \"dur\"?: an ISO 8601 duration of at least 1 s}",
                "lbl" | "acpi" | "poa" | "srv" | "nu" | "at" => "a list of strings",
                _ => "a string",
            };
            return Err(bad(k, want));
        }
    }
    Ok(())
}
