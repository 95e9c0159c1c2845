//! Unit tests of the client's helpers.

use serde_json::json;

use crate::{McaClient, McaConfig, Notification, inner};

#[test]
fn unwraps_the_resource() {
    assert_eq!(inner(Some(json!({"m2m:cin": {"con": 1}}))), json!({"con": 1}));
    assert_eq!(inner(Some(json!({"m2m:uril": ["a"]}))), json!(["a"]));
    assert_eq!(inner(None), serde_json::Value::Null);
}

#[test]
fn requests_carry_origin_and_fresh_ids() {
    let c = McaClient::new(McaConfig::new("127.0.0.1:1", "Cipe"));
    let a = c.request(onem2m::Operation::Retrieve, "cse-in");
    let b = c.with_origin("Cdev").request(onem2m::Operation::Retrieve, "cse-in");
    assert_eq!(a.fr.as_deref(), Some("Cipe"));
    assert_eq!(b.fr.as_deref(), Some("Cdev"));
    assert_ne!(a.rqi, b.rqi);
}

#[test]
fn notification_helpers() {
    let n = Notification {
        origin: "/id-in".into(),
        path: "/Cipe".into(),
        body: json!({"m2m:sgn": {"nev": {"net": 3, "rep": {"m2m:cin": {"con": "x"}}}, "sur": "/id-in/sub1"}}),
    };
    assert_eq!(n.representation(), Some(&json!({"con": "x"})));
    assert_eq!(n.sur(), Some("/id-in/sub1"));
    assert!(!n.is_deletion());
    let d = Notification { body: json!({"m2m:sgn": {"sud": true, "sur": "/id-in/sub1"}}), ..n };
    assert!(d.is_deletion());
}
