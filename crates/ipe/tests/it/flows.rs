//! Both flows: requests/responses (oneM2M → LwM2M), reports and device requests (LwM2M → oneM2M).

use crate::*;
use serde_json::json;

use contract::{Contract, TxContext};

#[test]
fn read_round_trip_with_tlv_payload_and_correlation_rules() {
    let mut l = registered();
    grant_all(&mut l);
    let (rec, (name, ev)) = l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "req-1", "originator": "Capp1", "endpoint": AE, "path": "/3303/0", "op": "read", "timeout": 30}),
    );
    assert_eq!(rec["status"], "pending");
    assert_eq!(name, "request");
    assert_eq!(ev["to"], json!({"kind": "gateway", "org": "Org1MSP", "id": "gw1"}));
    assert_eq!(ev["downlink"]["op"], "read");
    assert_eq!(ev["downlink"]["path"], "/3303/0");
    assert_eq!(ev["expires_at"].as_i64().unwrap(), ev["submitted_at"].as_i64().unwrap() + 30);

    // A repeated id never acts twice.
    let (r, ev) = l.call(
        &app_caller(),
        "submit_request",
        json!({"request_id": "req-1", "originator": "Capp1", "endpoint": EP, "path": "/3303/0", "op": "read"}),
    );
    assert_eq!(r.unwrap_err().status(), 409);
    assert!(ev.is_none());

    // Unknown id, wrong gateway.
    assert_eq!(l.status(&gw1(), "submit_response", json!({"request_id": "nope", "status": "ok"})), 404);
    assert_eq!(l.status(&gw2(), "submit_response", json!({"request_id": "req-1", "status": "ok"})), 403);
    assert_eq!(
        l.status(
            &caller("Org1MSP", "client", "gw9"),
            "submit_response",
            json!({"request_id": "req-1", "status": "ok"})
        ),
        403,
        "same org, other gateway"
    );
    // The submitter may not time it out before it expires.
    assert_eq!(
        l.status(&app_caller(), "submit_response", json!({"request_id": "req-1", "status": "timeout"})),
        403
    );

    // The gateway answers with the device's TLV payload: 5700 = 21.5 (float), 5701 = "Cel".
    let tlv = [0xE4u8, 0x16, 0x44, 0x41, 0xAC, 0x00, 0x00, 0xE3, 0x16, 0x45, b'C', b'e', b'l'];
    let b64 = ipe::translate::base64_encode(&tlv);
    let (rec, (name, ev)) = l.ok(
        &gw1(),
        "submit_response",
        json!({"request_id": "req-1", "status": "ok", "code": "2.05", "content_format": 11542, "payload": b64}),
    );
    assert_eq!(name, "response");
    assert_eq!(ev["to"], json!({"kind": "originator", "id": "Capp1"}));
    assert_eq!(rec["status"], "ok");
    let out = &ev["outcome"];
    assert_eq!(out["rsc"], 2000);
    let t = l.ts;
    assert_eq!(
        out["content"],
        json!({"values": {
            "/3303/0/5700": {"v": 21.5, "type": "FLOAT", "unit": "Cel", "t": t},
            "/3303/0/5701": {"v": "Cel", "type": "STRING", "t": t}
        }})
    );
    let cins = ev["cins"].as_array().unwrap();
    assert_eq!(cins[0]["container"], format!("{AE}/rsp"));
    assert_eq!(cins[0]["con"]["request_id"], "req-1");
    assert_eq!(
        cins[1],
        json!({"container": format!("{AE}/obj3303_0/res5700"), "con": {"v": 21.5, "type": "FLOAT", "unit": "Cel", "t": t}})
    );

    // A second answer is refused; the stored record has the answer.
    assert_eq!(l.status(&gw1(), "submit_response", json!({"request_id": "req-1", "status": "ok"})), 409);
    let got = l.query("get_request", "req-1").unwrap();
    assert_eq!(got["response"]["content"]["values"]["/3303/0/5700"]["v"], 21.5);
    assert_eq!(got["originator"], "Capp1");
    assert_eq!(l.query("get_request", "zzz").unwrap_err().status(), 404);
}

#[test]
fn write_translates_onem2m_content_into_lwm2m_payloads() {
    let mut l = registered();
    grant_all(&mut l);
    // The device advertised SenML JSON and CBOR: writes use SenML CBOR.
    let (_, (_, ev)) = l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "w1", "originator": "Capp1", "endpoint": EP, "path": "/3311/0", "op": "write", "partial": true,
               "content": {"values": {"5850": true, "5851": 75, "/3311/0/5750": "lamp"}}}),
    );
    let d = &ev["downlink"];
    assert_eq!(d["content_format"], 112);
    assert_eq!(d["partial"], true);
    assert_eq!(
        d["records"],
        json!([
            {"path": "/3311/0/5750", "type": "STRING", "v": "lamp"},
            {"path": "/3311/0/5850", "type": "BOOLEAN", "v": true},
            {"path": "/3311/0/5851", "type": "INTEGER", "v": 75}
        ])
    );
    let bytes = ipe::translate::base64_decode(d["payload"].as_str().unwrap()).unwrap();
    let reg = lwm2m::Registry::builtin();
    let base: lwm2m::LwM2mPath = "/3311/0".parse().unwrap();
    let recs = lwm2m::codec::decode(lwm2m::ContentFormat::SENML_CBOR, &bytes, &base, &reg).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1].value, lwm2m::Value::Boolean(true));
    assert_eq!(recs[2].value, lwm2m::Value::Integer(75));

    // A value that does not fit the type is refused at submission (an answer, not a silent drop).
    assert_eq!(
        l.status(&app_caller(), "submit_request",
            json!({"request_id": "w2", "originator": "Capp1", "endpoint": EP, "path": "/3311/0/5850", "op": "write", "content": {"v": "maybe"}})),
        400
    );
    // A 1.0 device that advertised nothing gets text/plain for one resource, TLV otherwise.
    l.ok(&gw1(), "register_device", json!({"endpoint": "old", "links": "</3/0>,</1/0>"}));
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request",
        json!({"request_id": "w3", "originator": "Capp1", "endpoint": "old", "path": "/3/0/14", "op": "write", "content": {"v": "+02"}}));
    assert_eq!(ev["downlink"]["content_format"], 0);
    assert_eq!(ipe::translate::base64_decode(ev["downlink"]["payload"].as_str().unwrap()).unwrap(), b"+02");
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request",
        json!({"request_id": "w4", "originator": "Capp1", "endpoint": "old", "path": "/1/0", "op": "write", "content": {"values": {"1": 300, "6": false}}}));
    assert_eq!(ev["downlink"]["content_format"], 11542);
    // The write's answer: 2.04 → 2004.
    let (rec, (_, ev)) =
        l.ok(&gw1(), "submit_response", json!({"request_id": "w4", "status": "ok", "code": "2.04"}));
    assert_eq!(rec["status"], "ok");
    assert_eq!(ev["outcome"]["rsc"], 2004);
    // Execute with arguments, create, delete, discover.
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request",
        json!({"request_id": "x1", "originator": "Capp1", "endpoint": "old", "path": "/3/0/4", "op": "execute", "content": {"args": "0='now'"}}));
    assert_eq!(ev["downlink"]["args"], "0='now'");
    assert_eq!(l.status(&app_caller(), "submit_request",
        json!({"request_id": "x2", "originator": "Capp1", "endpoint": "old", "path": "/3/0/4", "op": "execute", "content": {"args": "bad args"}})), 400);
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request",
        json!({"request_id": "c1", "originator": "Capp1", "endpoint": EP, "path": "/3303", "op": "create", "content": {"values": {"1/5700": 3.5}}}));
    assert_eq!(ev["downlink"]["records"], json!([{"path": "/3303/1/5700", "type": "FLOAT", "v": 3.5}]));
    let (_, (_, ev)) = l.ok(
        &gw1(),
        "submit_response",
        json!({"request_id": "c1", "status": "ok", "code": "2.01", "location": "/3303/1"}),
    );
    assert_eq!(ev["outcome"]["rsc"], 2001);
    assert_eq!(ev["outcome"]["content"], json!({"location": "/3303/1"}));
    l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "dc", "originator": "Capp1", "endpoint": EP, "path": "/3/0", "op": "discover"}),
    );
    let (_, (_, ev)) = l.ok(&gw1(), "submit_response",
        json!({"request_id": "dc", "status": "ok", "code": "2.05", "links": "</3/0>,</3/0/1>,</3/0/7>;dim=2"}));
    assert_eq!(ev["outcome"]["content"]["links"][2], json!({"path": "/3/0/7", "attrs": {"dim": "2"}}));
    l.ok(&app_caller(), "submit_request", json!({"request_id": "del", "originator": "Capp1", "endpoint": EP, "path": "/3303/1", "op": "delete"}));
    let (_, (_, ev)) = l.ok(
        &gw1(),
        "submit_response",
        json!({"request_id": "del", "status": "error", "code": "4.04", "message": "no such instance"}),
    );
    assert_eq!(ev["outcome"]["status"], "error");
    assert_eq!(ev["outcome"]["rsc"], 4004);
    // A 4.xx called "ok" by the gateway is still an error.
    l.ok(&app_caller(), "submit_request", json!({"request_id": "del2", "originator": "Capp1", "endpoint": EP, "path": "/3303/1", "op": "delete"}));
    let (rec, (_, ev)) =
        l.ok(&gw1(), "submit_response", json!({"request_id": "del2", "status": "ok", "code": "4.05"}));
    assert_eq!(rec["status"], "error");
    assert_eq!(ev["outcome"]["rsc"], 4005);
}

#[test]
fn timeouts_are_answers_and_untranslatable_answers_are_errors() {
    let mut l = registered();
    grant_all(&mut l);
    let rd = |id: &str| json!({"request_id": id, "originator": "Capp1", "endpoint": EP, "path": "/3303/0/5700", "op": "read", "timeout": 10});
    l.ok(&app_caller(), "submit_request", rd("t1"));
    let (rec, (_, ev)) = l.ok(&gw1(), "submit_response", json!({"request_id": "t1", "status": "timeout"}));
    assert_eq!(rec["status"], "timeout");
    assert_eq!(ev["outcome"]["rsc"], 4008);
    assert_eq!(ev["to"]["id"], "Capp1");

    // The gateway is gone: after expiry the submitter closes its own request.
    l.ok(&app_caller(), "submit_request", rd("t2"));
    l.ts += 20;
    let (rec, _) = l.ok(&app_caller(), "submit_response", json!({"request_id": "t2", "status": "timeout"}));
    assert_eq!(rec["status"], "timeout");
    let stored = l.query("get_request", "t2").unwrap();
    assert_eq!(stored["response"]["by"], json!({"msp": "Org2MSP", "subject": "app1"}));
    // … but only with a timeout.
    l.ok(&app_caller(), "submit_request", rd("t3"));
    l.ts += 20;
    assert_eq!(l.status(&app_caller(), "submit_response", json!({"request_id": "t3", "status": "ok"})), 403);

    // A payload that does not decode becomes an error answer (4102), not a lost request.
    let (rec, (_, ev)) = l.ok(&gw1(), "submit_response",
        json!({"request_id": "t3", "status": "ok", "code": "2.05", "content_format": 11542, "payload": "////"}));
    assert_eq!(rec["status"], "error");
    assert_eq!(ev["outcome"]["rsc"], 4102);
    assert!(ev["outcome"]["message"].as_str().unwrap().starts_with("untranslatable answer"));
    assert_eq!(l.status(&gw1(), "submit_response", json!({"request_id": "t3", "status": "bogus"})), 400);
}

#[test]
fn observe_notify_and_cancel() {
    let mut l = registered();
    grant_all(&mut l);
    l.ok(&app_caller(), "submit_request",
        json!({"request_id": "o1", "originator": "Capp1", "endpoint": EP, "path": "/3303/0/5700", "op": "observe"}));
    let (rec, _) = l.ok(&gw1(), "submit_response",
        json!({"request_id": "o1", "status": "ok", "code": "2.05", "records": [{"path": "/3303/0/5700", "v": 20.0}]}));
    assert_eq!(rec["status"], "observing");
    // Notifications: SenML JSON payload with its own time.
    let senml = br#"[{"bn":"/3303/0/","n":"5700","v":22.25,"t":1700000500}]"#;
    let (rpt, (name, ev)) = l.ok(&gw1(), "report", json!({
        "report_id": "n1", "endpoint": EP, "kind": "notify", "observe_request_id": "o1", "path": "/3303/0/5700",
        "content_format": 110, "payload": ipe::translate::base64_encode(senml)}));
    assert_eq!(name, "report");
    assert_eq!(rpt, json!({"report_id": "n1", "tx_id": ev["tx_id"]}), "a receipt, not the event again");
    assert_eq!(ev["originator"], "Capp1");
    assert_eq!(
        ev["cins"],
        json!([{"container": format!("{AE}/obj3303_0/res5700"),
        "con": {"v": 22.25, "type": "FLOAT", "unit": "Cel", "t": 1_700_000_500}}])
    );
    assert_eq!(
        l.status(
            &gw1(),
            "report",
            json!({"report_id": "n1", "endpoint": EP, "kind": "notify", "records": []})
        ),
        409
    );
    assert_eq!(
        l.status(&gw2(), "report", json!({"report_id": "n2", "endpoint": EP, "kind": "send", "records": []})),
        403
    );
    // Cancel by another originator is refused; by the owner it ends the observation.
    l.ok(&admin(), "grant", json!({"id": "x", "originators": ["Cx"], "devices": ["*"], "ops": ["observe"]}));
    assert_eq!(l.status(&app_caller(), "submit_request",
        json!({"request_id": "c0", "originator": "Cx", "endpoint": EP, "path": "/3303/0/5700", "op": "cancel-observe", "observe_request_id": "o1"})), 403);
    l.ok(&app_caller(), "submit_request",
        json!({"request_id": "c1", "originator": "Capp1", "endpoint": EP, "path": "/3303/0/5700", "op": "cancel-observe", "observe_request_id": "o1"}));
    l.ok(&gw1(), "submit_response", json!({"request_id": "c1", "status": "ok", "code": "2.05"}));
    assert_eq!(l.query("get_request", "o1").unwrap()["status"], "cancelled");
}

#[test]
fn send_report_in_transparent_mode_is_encapsulated() {
    let mut l = Ledger::new();
    l.ok(&gw1(), "register_device", json!({"endpoint": "t1", "links": "</3303/0>", "mode": "transparent"}));
    let senml = br#"[{"n":"/3303/0/5700","v":19.5}]"#;
    let b64 = ipe::translate::base64_encode(senml);
    let (_, (_, ev)) = l.ok(
        &gw1(),
        "report",
        json!({"report_id": "s1", "endpoint": "t1", "kind": "send", "content_format": 110, "payload": b64}),
    );
    assert_eq!(ev["content"]["values"]["/3303/0/5700"]["v"], 19.5);
    let t = l.ts;
    assert_eq!(
        ev["cins"],
        json!([{"container": "Ct1/lwm2m", "con": {"LWM2M-Object-Encapsulation":
        {"ep": "t1", "path": "/", "ct": 110, "data": b64, "t": t}}}])
    );
}

#[test]
fn device_request_answered_by_an_application() {
    let mut l = registered();
    // Addressed to one application.
    let (rec, (name, ev)) = l.ok(
        &gw1(),
        "device_request",
        json!({
        "request_id": "d1", "endpoint": EP, "target": "Capp1", "topic": "config",
        "records": [{"path": "/3303/0/5700", "v": 30.5}]}),
    );
    assert_eq!(name, "device.request");
    assert_eq!(rec["status"], "pending");
    assert_eq!(ev["to"], json!({"kind": "originator", "id": "Capp1"}));
    assert_eq!(ev["content"]["values"]["/3303/0/5700"]["v"], 30.5);
    assert_eq!(
        l.status(&gw1(), "device_request", json!({"request_id": "d1", "endpoint": EP, "topic": "x"})),
        409
    );
    assert_eq!(
        l.status(&gw2(), "device_request", json!({"request_id": "d9", "endpoint": EP, "topic": "x"})),
        403
    );
    // Only the target may answer.
    assert_eq!(
        l.status(
            &app_caller(),
            "answer_device_request",
            json!({"request_id": "d1", "originator": "Cother", "status": "ok"})
        ),
        403
    );
    let (rec, (name, ev)) = l.ok(
        &app_caller(),
        "answer_device_request",
        json!({
        "request_id": "d1", "originator": "Capp1", "status": "ok",
        "content": {"values": {"/1/0/1": 120, "/3/0/13": 1_700_000_000, "/3311/0/5750": "on"}}}),
    );
    assert_eq!(name, "device.answer");
    assert_eq!(rec["status"], "ok");
    assert_eq!(ev["to"], json!({"kind": "gateway", "org": "Org1MSP", "id": "gw1"}));
    assert_eq!(
        ev["answer"]["records"],
        json!([
        {"path": "/1/0/1", "type": "INTEGER", "v": 120},
        {"path": "/3/0/13", "type": "TIME", "v": 1_700_000_000},
        {"path": "/3311/0/5750", "type": "STRING", "v": "on"}])
    );
    assert_eq!(
        l.status(
            &app_caller(),
            "answer_device_request",
            json!({"request_id": "d1", "originator": "Capp1", "status": "ok"})
        ),
        409
    );
    assert_eq!(
        l.status(
            &app_caller(),
            "answer_device_request",
            json!({"request_id": "dx", "originator": "Capp1", "status": "ok"})
        ),
        404
    );

    // Unaddressed: any application the policy lets `answer`; or the gateway's timeout.
    l.ok(&gw1(), "device_request", json!({"request_id": "d2", "endpoint": EP, "topic": "hello"}));
    assert_eq!(
        l.status(
            &app_caller(),
            "answer_device_request",
            json!({"request_id": "d2", "originator": "Capp9", "status": "ok"})
        ),
        403
    );
    l.ok(
        &admin(),
        "grant",
        json!({"id": "ans", "originators": ["Capp9"], "devices": [EP], "ops": ["answer"]}),
    );
    assert_eq!(
        l.status(
            &app_caller(),
            "answer_device_request",
            json!({"request_id": "d2", "originator": "Capp9", "status": "ok", "content": {"text": "hi"}})
        ),
        200
    );
    l.ok(&gw1(), "device_request", json!({"request_id": "d3", "endpoint": EP, "topic": "hello"}));
    let (rec, _) = l.ok(&gw1(), "answer_device_request", json!({"request_id": "d3", "status": "timeout"}));
    assert_eq!(rec["status"], "timeout");
    assert_eq!(l.query("get_device_request", "d3").unwrap()["answer"]["status"], "timeout");
}

#[test]
fn same_inputs_give_the_same_read_write_set_and_event() {
    let run = || {
        let mut l = registered();
        grant_all(&mut l);
        let who = app_caller();
        let arg = serde_json::to_vec(
            &json!({"request_id": "det", "originator": "Capp1", "endpoint": EP, "path": "/3311/0",
            "op": "write", "content": {"values": {"5850": true, "5851": 10, "5750": "x"}}}),
        )
        .unwrap();
        let mut ctx = TxContext::new("ipe", &l, "ab".repeat(32), 1_800_000_000, &who);
        l.ipe.invoke(&mut ctx, "submit_request", &[arg]).unwrap();
        let (rw, ev) = ctx.into_results();
        (format!("{rw:?}"), ev)
    };
    assert_eq!(run(), run());
}

#[test]
fn every_type_crosses_both_ways_through_the_contract() {
    let mut l = registered();
    grant_all(&mut l);
    // oneM2M → LwM2M: a write of every type; the downlink's encoded payload decodes to the same values.
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request", json!({
        "request_id": "types-w", "originator": "Capp1", "endpoint": EP, "path": "/9999/0", "op": "write",
        "content": {"values": {
            "1": {"v": -7, "type": "INTEGER"}, "2": {"v": 2.5, "type": "FLOAT"}, "3": {"v": true, "type": "BOOLEAN"},
            "4": {"v": "text", "type": "STRING"}, "5": {"v": "AAEC/w==", "type": "OPAQUE"},
            "6": {"v": 1_700_000_000, "type": "TIME"}, "7": {"v": "3:0", "type": "OBJLNK"},
            "8": {"v": 18_000_000_000_000_000_000u64, "type": "UNSIGNED_INTEGER"}}}}));
    let d = &ev["downlink"];
    assert_eq!(d["content_format"], 112);
    let bytes = ipe::translate::base64_decode(d["payload"].as_str().unwrap()).unwrap();
    let reg = lwm2m::Registry::builtin();
    let recs =
        lwm2m::codec::decode(lwm2m::ContentFormat::SENML_CBOR, &bytes, &"/9999/0".parse().unwrap(), &reg)
            .unwrap();
    let typed = ipe::translate::records_from_json(&reg, &d["records"]).unwrap();
    use lwm2m::Value as V;
    let want = vec![
        V::Integer(-7),
        V::Float(2.5),
        V::Boolean(true),
        V::String("text".into()),
        V::Opaque(vec![0, 1, 2, 255]),
        V::Time(1_700_000_000),
        V::Objlnk(3, 0),
        V::Unsigned(18_000_000_000_000_000_000),
    ];
    assert_eq!(typed.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), want);
    // SenML carries no types: untyped numbers, strings and data come back as SenML has them.
    assert_eq!(recs.len(), 8);
    assert_eq!(recs[4].value, V::Opaque(vec![0, 1, 2, 255]));

    // LwM2M → oneM2M: the device answers a read with every type in TLV (typed by the registry where known).
    l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "types-r", "originator": "Capp1", "endpoint": EP, "path": "/3/0", "op": "read"}),
    );
    let base: lwm2m::LwM2mPath = "/3/0".parse().unwrap();
    let p = |s: &str| s.parse::<lwm2m::LwM2mPath>().unwrap();
    let device_values = vec![
        lwm2m::Record::new(p("/3/0/0"), V::String("ACME".into())),
        lwm2m::Record::new(p("/3/0/9"), V::Integer(87)),
        lwm2m::Record::new(p("/3/0/13"), V::Time(1_700_000_123)),
    ];
    let tlv = lwm2m::codec::encode(lwm2m::ContentFormat::TLV, &device_values, &base).unwrap();
    let (_, (_, ev)) = l.ok(
        &gw1(),
        "submit_response",
        json!({"request_id": "types-r", "status": "ok", "code": "2.05",
        "content_format": 11542, "payload": ipe::translate::base64_encode(&tlv)}),
    );
    let t = l.ts;
    assert_eq!(
        ev["outcome"]["content"],
        json!({"values": {
        "/3/0/0": {"v": "ACME", "type": "STRING", "t": t},
        "/3/0/9": {"v": 87, "type": "INTEGER", "t": t},
        "/3/0/13": {"v": 1_700_000_123, "type": "TIME", "t": t}}})
    );
    // Typed records for the rest: float, boolean, opaque, objlnk on a vendor object.
    l.ok(&app_caller(), "submit_request", json!({"request_id": "types-r2", "originator": "Capp1", "endpoint": EP, "path": "/9999/0", "op": "read"}));
    let (_, (_, ev)) = l.ok(&gw1(), "submit_response", json!({"request_id": "types-r2", "status": "ok", "records": [
        {"path": "/9999/0/2", "type": "FLOAT", "v": 2.5}, {"path": "/9999/0/3", "type": "BOOLEAN", "v": false},
        {"path": "/9999/0/5", "type": "OPAQUE", "v": "3q2+7w=="}, {"path": "/9999/0/7", "type": "OBJLNK", "v": "65534:1"}]}));
    let vals = &ev["outcome"]["content"]["values"];
    assert_eq!(vals["/9999/0/2"]["v"], 2.5);
    assert_eq!(vals["/9999/0/3"]["v"], false);
    assert_eq!(vals["/9999/0/5"], json!({"v": "3q2+7w==", "type": "OPAQUE", "t": l.ts}));
    assert_eq!(vals["/9999/0/7"]["type"], "OBJLNK");
    // Unknown resources go to the instance container, with their path.
    let cins = ev["cins"].as_array().unwrap();
    assert_eq!(cins[1]["container"], format!("{AE}/obj9999_0"));
    assert_eq!(cins[1]["con"]["path"], "/9999/0/2");
}

#[test]
fn transparent_reports_from_typed_records_are_senml() {
    let mut l = Ledger::new();
    l.ok(&gw1(), "register_device", json!({"endpoint": "t2", "links": "</3303/0>", "mode": "transparent"}));
    let (_, (_, ev)) = l.ok(
        &gw1(),
        "report",
        json!({"report_id": "s2", "endpoint": "t2", "kind": "send",
        "records": [{"path": "/3303/0/5700", "v": 18.5}]}),
    );
    let enc = &ev["cins"][0]["con"]["LWM2M-Object-Encapsulation"];
    assert_eq!(enc["ct"], 110);
    let bytes = ipe::translate::base64_decode(enc["data"].as_str().unwrap()).unwrap();
    let recs = lwm2m::codec::decode(
        lwm2m::ContentFormat::SENML_JSON,
        &bytes,
        &lwm2m::LwM2mPath::ROOT,
        &lwm2m::Registry::builtin(),
    )
    .unwrap();
    assert_eq!(recs[0].value, lwm2m::Value::Float(18.5));
}

#[test]
fn cmd_container_content_becomes_a_request_for_its_ae() {
    let con = json!(r#"{"request_id":"a1","op":"read","path":"/3303/0/5700","originator":"Cspoofed"}"#);
    let req = ipe::mapping::request_from_cmd(&con, "Capp1", AE).unwrap();
    assert_eq!(req["originator"], "Capp1");
    assert_eq!(req["endpoint"], AE);
    let mut l = registered();
    grant_all(&mut l);
    let (rec, _) = l.ok(&app_caller(), "submit_request", req);
    let stored = l.query("get_request", rec["request_id"].as_str().unwrap()).unwrap();
    assert_eq!(stored["endpoint"], EP);
    assert!(ipe::mapping::request_from_cmd(&json!("not json"), "C", "C").is_err());
    assert!(ipe::mapping::request_from_cmd(&json!([1]), "C", "C").is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Arbitrary bytes and arbitrary JSON objects never panic any function; failures are 4xx.
    #[test]
    fn malformed_input_is_an_error_never_a_panic(
        raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        keys in proptest::collection::vec("[a-z_]{1,12}", 0..6),
        f in proptest::sample::select(vec![
            "register_device", "update_device", "deregister_device", "submit_request", "submit_response", "report",
            "device_request", "answer_device_request", "grant", "set_policy", "revoke", "get_device", "get_request",
            "list_devices", "get_mapping", "get_device_request", "set_device_credentials", "remove_device_credentials",
            "get_device_credentials", "list_device_credentials",
        ]),
    ) {
        let mut l = registered();
        grant_all(&mut l);
        let obj: serde_json::Map<String, Json> = keys.into_iter().map(|k| (k, json!("x"))).collect();
        for arg in [raw, serde_json::to_vec(&obj).unwrap()] {
            for who in [gw1(), admin(), app_caller()] {
                if let Err(e) = l.call_raw(&who, f, std::slice::from_ref(&arg)).0 {
                    proptest::prop_assert!((400..500).contains(&e.status()), "{f}: {e}");
                }
            }
        }
    }
}

#[test]
fn answers_read_only_their_request_so_device_updates_do_not_invalidate_them() {
    let mut l = registered();
    grant_all(&mut l);
    l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "m1", "originator": "Capp1", "endpoint": EP, "path": "/3303/0", "op": "read"}),
    );
    let who = gw1();
    let arg = serde_json::to_vec(&json!({"request_id": "m1", "status": "ok", "code": "2.05",
        "records": [{"path": "/3303/0/5700", "v": 1.5}]}))
    .unwrap();
    let mut ctx = TxContext::new("ipe", &l, "cd".repeat(32), l.ts + 1, &who);
    l.ipe.invoke(&mut ctx, "submit_response", &[arg]).unwrap();
    let (rw, ev) = ctx.into_results();
    let reads: Vec<_> = rw.reads.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(reads, vec!["req/m1"]);
    assert!(rw.range_queries.is_empty());
    let writes: Vec<_> = rw.writes.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(writes, vec!["req/m1"]);
    let (_, payload) = ev.unwrap();
    let ev: Json = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        ev["cins"][1]["container"],
        format!("{AE}/obj3303_0/res5700"),
        "data cins without reading dev/"
    );
}

#[test]
fn write_attributes_and_observe_with_attributes_are_validated() {
    let mut l = registered();
    grant_all(&mut l);
    let (_, (_, ev)) = l.ok(&app_caller(), "submit_request", json!({"request_id": "wa1", "originator": "Capp1",
        "endpoint": EP, "path": "/3303/0/5700", "op": "write-attributes", "content": {"attributes": {"pmax": 60, "pmin": 10, "gt": 25.5}}}));
    assert_eq!(ev["downlink"]["attributes"], json!(["pmin=10", "pmax=60", "gt=25.5"]));
    let (_, (_, ev)) = l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "ob1", "originator": "Capp1",
        "endpoint": EP, "path": "/3303/0/5700", "op": "observe", "content": {"attributes": {"pmin": "5"}}}),
    );
    assert_eq!(ev["downlink"]["attributes"], json!(["pmin=5"]));
    let (_, (_, ev)) = l.ok(
        &app_caller(),
        "submit_request",
        json!({"request_id": "ob2", "originator": "Capp1",
        "endpoint": EP, "path": "/3303/0/5700", "op": "observe"}),
    );
    assert_eq!(ev["downlink"]["attributes"], Json::Null);
    for (id, content) in [
        ("wa2", json!({"attributes": {"pmin": -1}})),
        ("wa3", json!({"attributes": {"bogus": 1}})),
        ("wa4", json!({"attributes": [1]})),
        ("wa5", json!({})),
    ] {
        let st = l.status(
            &app_caller(),
            "submit_request",
            json!({"request_id": id, "originator": "Capp1",
            "endpoint": EP, "path": "/3303/0/5700", "op": "write-attributes", "content": content}),
        );
        assert_eq!(st, 400, "{id}");
    }
    let (_, (_, ev)) =
        l.ok(&gw1(), "submit_response", json!({"request_id": "wa1", "status": "ok", "code": "2.04"}));
    assert_eq!(ev["outcome"]["rsc"], 2004);
}

#[test]
fn typed_arguments_serialise_to_what_the_contract_takes() {
    use ipe::model::{RequestArgs, ResponseArgs};
    let mut l = registered();
    grant_all(&mut l);
    let req = RequestArgs {
        request_id: "typed-1".into(),
        originator: "Capp1".into(),
        endpoint: EP.into(),
        path: "/3303/0/5700".into(),
        op: ipe::Operation::Read,
        content: None,
        partial: false,
        observe_request_id: None,
        timeout: Some(5),
    };
    let (rec, (_, ev)) = l.ok(&app_caller(), "submit_request", serde_json::to_value(&req).unwrap());
    let stored = l.query("get_request", rec["request_id"].as_str().unwrap()).unwrap();
    assert_eq!(rec["expires_at"], stored["expires_at"], "the receipt carries the expiry");
    assert_eq!(stored["expires_at"].as_i64().unwrap() - stored["submitted_at"].as_i64().unwrap(), 5);
    let ipe::IpeEvent::Request(r) =
        ipe::IpeEvent::parse("request", &serde_json::to_vec(&ev).unwrap()).unwrap().unwrap()
    else {
        panic!("not a request event")
    };
    let rsp = ResponseArgs {
        request_id: r.request_id,
        status: "ok".into(),
        code: Some("2.05".into()),
        records: Some(json!([{"path": "/3303/0/5700", "v": 20.5}])),
        payload: None,
        content_format: None,
        links: None,
        location: None,
        message: None,
    };
    let (rec, _) = l.ok(&gw1(), "submit_response", serde_json::to_value(&rsp).unwrap());
    let stored = l.query("get_request", rec["request_id"].as_str().unwrap()).unwrap();
    assert_eq!(stored["response"]["content"]["values"]["/3303/0/5700"]["v"], 20.5);
}
