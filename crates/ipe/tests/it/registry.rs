//! Device registry and the TS-0014 resource tree.

use crate::*;
use serde_json::json;

#[test]
fn registration_stores_the_device_and_announces_its_tree() {
    let mut l = Ledger::new();
    let (dev, (name, ev)) = l.ok(
        &gw1(),
        "register_device",
        json!({"endpoint": EP, "lwm2m_version": "1.1", "lifetime": 300, "links": "</1/0>,</3/0>,</3303/0>"}),
    );
    assert_eq!(dev["ae_id"], AE);
    assert_eq!(dev["gateway"], json!({"org": "Org1MSP", "id": "gw1"}));
    assert_eq!(dev["objects"], json!(["/1/0", "/3/0", "/3303/0"]));
    assert_eq!(name, "device.registered");
    assert_eq!(ev["to"], json!({"kind": "onem2m"}));
    assert_eq!(ev["tree"]["ae"]["rn"], AE);
    assert!(ev["tree"]["ae"]["lbl"].as_array().unwrap().contains(&json!(format!("lwm2m-ep:{EP}"))));
    // Found by name and by AE-ID.
    assert_eq!(l.query("get_device", EP).unwrap()["endpoint"], EP);
    assert_eq!(l.query("get_device", AE).unwrap()["endpoint"], EP);
    assert_eq!(l.query("get_device", "nope").unwrap_err().status(), 404);
    // Keys are namespaced.
    assert!(l.state.contains_key(&format!("dev/{EP}")));
    assert!(l.state.contains_key(&format!("ae/{AE}")));

    // Update: objects change, removed containers are announced.
    let (dev, (name, ev)) =
        l.ok(&gw1(), "update_device", json!({"endpoint": EP, "links": "</1/0>,</3/0>", "lifetime": 600}));
    assert_eq!(name, "device.updated");
    assert_eq!(dev["lifetime"], 600);
    let removed = ev["removed"].as_array().unwrap();
    assert!(removed.contains(&json!(format!("{AE}/obj3303_0"))));
    assert!(removed.contains(&json!(format!("{AE}/obj3303_0/res5700"))));

    // Another organization's gateway may neither update nor take over a live registration.
    assert_eq!(l.status(&gw2(), "update_device", json!({"endpoint": EP, "lifetime": 5})), 403);
    assert_eq!(l.status(&gw2(), "register_device", json!({"endpoint": EP, "links": "</3/0>"})), 403);

    // List.
    l.ok(&gw2(), "register_device", json!({"endpoint": "other", "links": "</3/0>"}));
    let all = l.query("list_devices", "").unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let org2 = l.call(&app_caller(), "list_devices", json!({"org": "Org2MSP"})).0.unwrap();
    assert_eq!(org2.as_array().unwrap().len(), 1);

    // De-registration deletes both keys.
    let (_, (name, ev)) = l.ok(&gw1(), "deregister_device", json!({"endpoint": EP, "reason": "expired"}));
    assert_eq!(name, "device.deregistered");
    assert_eq!(ev["reason"], "expired");
    assert!(!l.state.contains_key(&format!("dev/{EP}")));
    assert!(!l.state.contains_key(&format!("ae/{AE}")));
    assert_eq!(l.status(&gw1(), "deregister_device", json!({"endpoint": EP})), 404);
}

#[test]
fn colliding_ae_ids_get_a_hash_and_expired_registrations_move() {
    let mut l = Ledger::new();
    let (a, _) =
        l.ok(&gw1(), "register_device", json!({"endpoint": "a:b", "links": "</3/0>", "lifetime": 10}));
    let (b, _) = l.ok(&gw1(), "register_device", json!({"endpoint": "a-b", "links": "</3/0>"}));
    assert_eq!(a["ae_id"], "Ca-b");
    assert_ne!(b["ae_id"], "Ca-b");
    assert!(b["ae_id"].as_str().unwrap().starts_with("Ca-b-"));
    // After its lifetime, another organization's gateway may take the device over; the AE-ID stays.
    l.ts += 100;
    let (moved, _) = l.ok(&gw2(), "register_device", json!({"endpoint": "a:b", "links": "</3/0>"}));
    assert_eq!(moved["gateway"]["org"], "Org2MSP");
    assert_eq!(moved["ae_id"], "Ca-b");
}

#[test]
fn bad_registrations_are_bad_requests() {
    let mut l = Ledger::new();
    for arg in [
        json!({"endpoint": ""}),
        json!({"endpoint": "x", "lwm2m_version": "1.2"}),
        json!({"endpoint": "x", "lifetime": 0}),
        json!({"endpoint": "x", "binding": "Z"}),
        json!({"endpoint": "x", "links": "<3/0"}),
        json!({"endpoint": "x", "unknown_field": 1}),
        json!({"endpoint": 5}),
        json!([1, 2]),
    ] {
        assert_eq!(l.status(&gw1(), "register_device", arg.clone()), 400, "{arg}");
    }
    for raw in [&b"{not json"[..], b"", b"\xff\xfe", b"null"] {
        let r = l.call_raw(&gw1(), "register_device", &[raw.to_vec()]).0;
        assert_eq!(r.unwrap_err().status(), 400);
    }
    assert_eq!(l.call_raw(&gw1(), "register_device", &[]).0.unwrap_err().status(), 400);
    assert_eq!(l.call_raw(&gw1(), "no_such_function", &[]).0.unwrap_err().status(), 400);
    for f in [
        "submit_request",
        "submit_response",
        "report",
        "device_request",
        "answer_device_request",
        "grant",
        "set_policy",
    ] {
        let r = l.call_raw(&admin(), f, &[b"{\"garbage\":".to_vec()]).0;
        assert_eq!(r.unwrap_err().status(), 400, "{f}");
    }
}

#[test]
fn mapping_golden_full_and_transparent() {
    let mut l = registered();
    let tree = l.query("get_mapping", EP).unwrap();
    let paths: Vec<&str> =
        tree["containers"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    let compact =
        paths.iter().map(|p| p.trim_start_matches("Cimei-356938035643809/")).collect::<Vec<_>>().join(" ");
    assert_eq!(
        compact,
        "cmd rsp \
         obj1_0 obj1_0/res0 obj1_0/res1 obj1_0/res2 obj1_0/res3 obj1_0/res5 obj1_0/res6 obj1_0/res7 obj1_0/res10 \
         obj1_0/res11 obj1_0/res12 obj1_0/res13 obj1_0/res14 obj1_0/res15 obj1_0/res16 obj1_0/res17 obj1_0/res18 \
         obj1_0/res19 obj1_0/res20 obj1_0/res21 obj1_0/res22 obj1_0/res23 \
         obj3_0 obj3_0/res0 obj3_0/res1 obj3_0/res2 obj3_0/res3 obj3_0/res6 obj3_0/res7 obj3_0/res8 obj3_0/res9 \
         obj3_0/res10 obj3_0/res11 obj3_0/res13 obj3_0/res14 obj3_0/res15 obj3_0/res16 obj3_0/res17 obj3_0/res18 \
         obj3_0/res19 obj3_0/res20 obj3_0/res21 obj3_0/res22 \
         obj3303_0 obj3303_0/res5601 obj3303_0/res5602 obj3303_0/res5603 obj3303_0/res5604 obj3303_0/res5700 \
         obj3303_0/res5701 obj3303_0/res5750 \
         obj3311_0 obj3311_0/res5701 obj3311_0/res5706 obj3311_0/res5750 obj3311_0/res5805 obj3311_0/res5820 \
         obj3311_0/res5850 obj3311_0/res5851 obj3311_0/res5852",
        "no object 5 (declared without instance), no executable resources (/3/0/4), parents first"
    );
    assert_eq!(
        tree["ae"],
        json!({"rn": AE, "api": "Nlwm2m-ipe", "rr": true,
               "lbl": [format!("lwm2m-ep:{EP}"), "lwm2m-ver:1.1", "ipe-gw:Org1MSP/gw1", "ipe-mode:full"]})
    );
    let c5700 = tree["containers"].as_array().unwrap().iter().find(|c| c["rn"] == "res5700").unwrap().clone();
    assert_eq!(
        c5700,
        json!({"path": "Cimei-356938035643809/obj3303_0/res5700", "rn": "res5700",
               "lbl": ["lwm2m-path:/3303/0/5700", "lwm2m-name:Sensor Value", "lwm2m-type:FLOAT", "unit:Cel"]})
    );

    l.ok(&gw1(), "register_device", json!({"endpoint": "t1", "links": "</3303/0>", "mode": "transparent"}));
    let tree = l.query("get_mapping", "t1").unwrap();
    let paths: Vec<&str> =
        tree["containers"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["Ct1/cmd", "Ct1/rsp", "Ct1/lwm2m"]);
}

#[test]
fn list_devices_pages_in_endpoint_order() {
    let mut l = Ledger::new();
    for ep in ["d3", "d1", "d2", "d4"] {
        l.ok(&gw1(), "register_device", json!({"endpoint": ep, "links": "</3/0>"}));
    }
    let names = |v: &Json| {
        v.as_array().unwrap().iter().map(|d| d["endpoint"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let page = l.call(&app_caller(), "list_devices", json!({"limit": 2})).0.unwrap();
    assert_eq!(names(&page), ["d1", "d2"]);
    let page = l.call(&app_caller(), "list_devices", json!({"limit": 2, "after": "d2"})).0.unwrap();
    assert_eq!(names(&page), ["d3", "d4"]);
    let page = l.call(&app_caller(), "list_devices", json!({"after": "d4"})).0.unwrap();
    assert!(names(&page).is_empty());
    assert_eq!(l.status(&app_caller(), "list_devices", json!([1])), 400);
}
