//! The on-chain access policy.

use crate::*;
use serde_json::json;

#[test]
fn policy_is_admin_only_and_denies_by_default() {
    let mut l = registered();
    let req = |id: &str, orig: &str, op: &str| json!({"request_id": id, "originator": orig, "endpoint": EP, "path": "/3303/0/5700", "op": op});
    assert_eq!(l.status(&app_caller(), "submit_request", req("r0", "Capp1", "read")), 403, "default deny");
    let rule = json!({"id": "r1", "originators": ["Capp*"], "devices": [AE], "ops": ["read", "observe"]});
    assert_eq!(l.status(&app_caller(), "grant", rule.clone()), 403, "a client is no admin");
    assert_eq!(l.status(&gw1(), "set_policy", json!({"rules": []})), 403);
    let (p, (name, _)) = l.ok(&admin(), "grant", rule);
    assert_eq!(name, "policy.changed");
    assert_eq!(p["version"], 1);
    // An admin MSP member without the admin role may change it too.
    let (p, _) = l.ok(
        &caller("AdminMSP", "client", "ops"),
        "grant",
        json!({"id": "r2", "originators": ["Cboss"], "devices": ["imei:*"], "ops": ["*"]}),
    );
    assert_eq!(p["version"], 2);
    assert_eq!(l.query("get_policy", "").unwrap()["rules"].as_array().unwrap().len(), 2);

    assert_eq!(l.status(&app_caller(), "submit_request", req("r1", "Capp1", "read")), 200);
    assert_eq!(l.status(&app_caller(), "submit_request", req("r2", "Capp1", "observe")), 200);
    assert_eq!(l.status(&app_caller(), "submit_request", req("r3", "Capp1", "write")), 403);
    assert_eq!(l.status(&app_caller(), "submit_request", req("r4", "Cother", "read")), 403);
    assert_eq!(
        l.status(&app_caller(), "submit_request", req("r5", "Cboss", "execute")),
        400,
        "not executable path"
    );
    assert_eq!(
        l.status(&app_caller(), "submit_request", json!({"request_id": "r6", "originator": "Cboss", "endpoint": EP, "path": "/3/0/4", "op": "execute"})),
        200
    );
    // Revoke.
    l.call_raw(&admin(), "revoke", &[b"r1".to_vec()]).0.unwrap();
    assert_eq!(l.status(&app_caller(), "submit_request", req("r7", "Capp1", "read")), 403);
    assert_eq!(l.call_raw(&admin(), "revoke", &[b"r1".to_vec()]).0.unwrap_err().status(), 404);
    // Bad rules.
    assert_eq!(
        l.status(
            &admin(),
            "grant",
            json!({"id": "x", "originators": ["a*b"], "devices": ["*"], "ops": ["read"]})
        ),
        400
    );
    assert_eq!(
        l.status(
            &admin(),
            "grant",
            json!({"id": "x", "originators": ["a"], "devices": ["*"], "ops": ["fly"]})
        ),
        400
    );
    assert_eq!(
        l.status(
            &admin(),
            "set_policy",
            json!({"rules": [
            {"id": "d", "originators": ["a"], "devices": ["*"], "ops": ["read"]},
            {"id": "d", "originators": ["b"], "devices": ["*"], "ops": ["read"]}]})
        ),
        400
    );
}

#[test]
fn rules_may_bind_originators_to_submitting_organizations() {
    let mut l = registered();
    l.ok(
        &admin(),
        "grant",
        json!({"id": "bound", "originators": ["Capp1"], "devices": ["*"], "ops": ["read"], "msps": ["Org2MSP"]}),
    );
    let req = |id: &str| json!({"request_id": id, "originator": "Capp1", "endpoint": EP, "path": "/3/0", "op": "read"});
    assert_eq!(l.status(&app_caller(), "submit_request", req("b1")), 200, "Org2MSP member");
    assert_eq!(
        l.status(&caller("Org3MSP", "client", "mallory"), "submit_request", req("b2")),
        403,
        "other org claims Capp1"
    );
    let p = l.query("get_policy", "").unwrap();
    assert_eq!(p["rules"][0]["msps"], json!(["Org2MSP"]));
}
