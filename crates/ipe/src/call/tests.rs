use serde_json::{Value as Json, json};

use super::IpeCall;
use crate::model::*;
use crate::policy::{Permission, Policy, Rule};
use crate::{SetCredentials, mapping::MappingMode};

/// The bytes of `call` are those of the `json!` document the gateway used to build for it.
fn same_bytes(call: &IpeCall, before: Json) {
    let args = call.args().unwrap();
    assert_eq!(args, [serde_json::to_vec(&before).unwrap()], "{}", call.function());
    assert_eq!(&IpeCall::parse(call.function(), &args).unwrap(), call);
}

#[test]
fn the_gateways_calls_keep_their_bytes() {
    let records = json!([{"path": "/3303/0/5700", "type": "FLOAT", "v": 21.5}]);
    let register = RegisterArgs {
        endpoint: "ep".into(),
        lwm2m_version: Some("1.1".into()),
        lifetime: Some(300),
        binding: Some("U".into()),
        queue_mode: false,
        links: "</3/0>".into(),
        mode: None,
    };
    same_bytes(
        &IpeCall::RegisterDevice(register),
        json!({"endpoint": "ep", "lwm2m_version": "1.1", "lifetime": 300, "binding": "U", "queue_mode": false,
            "links": "</3/0>"}),
    );
    let update = UpdateArgs {
        endpoint: "ep".into(),
        lifetime: Some(300),
        binding: Some("UQ".into()),
        queue_mode: Some(true),
        links: Some("</3/0>".into()),
    };
    same_bytes(
        &IpeCall::UpdateDevice(update),
        json!({"endpoint": "ep", "lifetime": 300, "binding": "UQ", "queue_mode": true, "links": "</3/0>"}),
    );
    same_bytes(
        &IpeCall::DeregisterDevice(DeregisterArgs { endpoint: "ep".into(), reason: Some("expired".into()) }),
        json!({"endpoint": "ep", "reason": "expired"}),
    );
    let report = |observe: Option<&str>, kind: &str, path: &str| ReportArgs {
        report_id: "gw-n-1".into(),
        endpoint: "ep".into(),
        kind: kind.into(),
        observe_request_id: observe.map(str::to_owned),
        path: Some(path.into()),
        records: Some(records.clone()),
        payload: None,
        content_format: None,
    };
    same_bytes(
        &IpeCall::Report(report(Some("r1"), "notify", "/3303/0/5700")),
        json!({"report_id": "gw-n-1", "endpoint": "ep", "kind": "notify", "observe_request_id": "r1",
            "path": "/3303/0/5700", "records": records}),
    );
    same_bytes(
        &IpeCall::Report(report(None, "send", "/")),
        json!({"report_id": "gw-n-1", "endpoint": "ep", "kind": "send", "path": "/", "records": records}),
    );
    let dreq = DeviceRequestArgs {
        request_id: "gw-d-1".into(),
        endpoint: "ep".into(),
        target: Some("Capp".into()),
        topic: "config".into(),
        records: Some(records.clone()),
        payload: None,
        content_format: None,
        timeout: Some(60),
    };
    same_bytes(
        &IpeCall::DeviceRequest(dreq),
        json!({"request_id": "gw-d-1", "endpoint": "ep", "topic": "config", "records": records, "timeout": 60,
            "target": "Capp"}),
    );
    let response = |status: &str, code: Option<&str>, message: Option<&str>| ResponseArgs {
        request_id: "r1".into(),
        status: status.into(),
        code: code.map(str::to_owned),
        records: None,
        payload: None,
        content_format: None,
        links: None,
        location: None,
        message: message.map(str::to_owned),
    };
    same_bytes(
        &IpeCall::SubmitResponse(ResponseArgs {
            records: Some(records.clone()),
            ..response("ok", Some("2.05"), None)
        }),
        json!({"request_id": "r1", "status": "ok", "code": "2.05", "records": records}),
    );
    same_bytes(
        &IpeCall::SubmitResponse(response("error", Some("4.04"), None)),
        json!({"request_id": "r1", "status": "error", "code": "4.04"}),
    );
    same_bytes(
        &IpeCall::SubmitResponse(response("timeout", None, Some("late"))),
        json!({"request_id": "r1", "status": "timeout", "code": null, "message": "late"}),
    );
    same_bytes(
        &IpeCall::AnswerDeviceRequest(AnswerArgs {
            request_id: "gw-d-1".into(),
            originator: None,
            status: "timeout".into(),
            content: None,
            message: Some("no oneM2M application answered in time".into()),
        }),
        json!({"request_id": "gw-d-1", "status": "timeout", "message": "no oneM2M application answered in time"}),
    );
    same_bytes(
        &IpeCall::ListDevices(ListDevicesArgs { after: None, limit: Some(1000), ..Default::default() }),
        json!({"limit": 1000, "after": null}),
    );
    same_bytes(
        &IpeCall::ListDevices(ListDevicesArgs {
            after: Some("ep".into()),
            limit: Some(1000),
            ..Default::default()
        }),
        json!({"limit": 1000, "after": "ep"}),
    );
    // The benchmark's and the CLI's.
    let read = RequestArgs {
        request_id: "b-1".into(),
        originator: "Cbench".into(),
        endpoint: "ep".into(),
        path: "/3303/0/5700".into(),
        op: Operation::Read,
        content: None,
        partial: false,
        observe_request_id: None,
        timeout: Some(30),
    };
    same_bytes(
        &IpeCall::SubmitRequest(read),
        json!({"request_id": "b-1", "originator": "Cbench", "endpoint": "ep", "op": "read",
            "path": "/3303/0/5700", "timeout": 30}),
    );
    let rule = Rule {
        id: "apps".into(),
        originators: vec!["C*".into()],
        devices: vec!["*".into()],
        ops: vec![Permission::All],
        msps: Vec::new(),
    };
    same_bytes(
        &IpeCall::Grant(rule),
        json!({"id": "apps", "originators": ["C*"], "devices": ["*"], "ops": ["*"]}),
    );
    same_bytes(
        &IpeCall::ListDeviceCredentials(ListCredentialsArgs { after: None, limit: Some(1000) }),
        json!({"limit": 1000}),
    );
    same_bytes(
        &IpeCall::SetDeviceCredentials(SetCredentials {
            endpoint: "ep".into(),
            mode: "psk".into(),
            identity: Some("id".into()),
            fingerprint: "ab".into(),
            bootstrap: None,
        }),
        json!({"endpoint": "ep", "mode": "psk", "identity": "id", "fingerprint": "ab"}),
    );
}

#[test]
fn queries_take_a_plain_string_or_nothing() {
    let q = IpeCall::GetRequest { request_id: "r:1".into() };
    assert!(q.is_query());
    assert_eq!(q.args().unwrap(), [b"r:1".to_vec()]);
    assert_eq!(IpeCall::GetPolicy.args().unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(IpeCall::parse("get_policy", &[]).unwrap(), IpeCall::GetPolicy);
    assert!(!IpeCall::Revoke { rule_id: "x".into() }.is_query());
    for call in [
        IpeCall::GetDevice { endpoint: "ep".into() },
        IpeCall::GetMapping { endpoint: "ep".into() },
        IpeCall::GetDeviceRequest { request_id: "d".into() },
        IpeCall::RemoveDeviceCredentials { endpoint: "ep".into() },
        IpeCall::GetDeviceCredentials { endpoint: "ep".into() },
        IpeCall::Revoke { rule_id: "x".into() },
        IpeCall::SetPolicy(Policy { version: 0, rules: Vec::new() }),
    ] {
        assert_eq!(IpeCall::parse(call.function(), &call.args().unwrap()).unwrap(), call);
    }
}

#[test]
fn malformed_calls_are_the_contracts_400s_with_its_messages() {
    let msg = |f: &str, args: &[&[u8]]| {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let e = IpeCall::parse(f, &args).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        e.to_string()
    };
    assert_eq!(msg("nope", &[]), "bad request: ipe has no function \"nope\"");
    assert_eq!(msg("report", &[]), "bad request: report: missing JSON argument");
    assert!(msg("report", &[b"{\"x\":1}"]).starts_with("bad request: report: unknown field `x`"));
    assert_eq!(msg("get_request", &[]), "bad request: missing argument request_id");
    assert_eq!(msg("revoke", &[b"\xff"]), "bad request: rule_id must be UTF-8");
    assert_eq!(msg("list_devices", &[b"[]"]), "bad request: list_devices: argument must be a JSON object");
    assert_eq!(msg("list_devices", &[b"null"]), "bad request: list_devices: argument must be a JSON object");
    assert!(msg("list_device_credentials", &[b"{\"gateway\":1}"]).contains("unknown field `gateway`"));
}

#[test]
fn listings_read_their_filters_as_before() {
    // Absent or empty: everything; list_devices ignores what it does not know and wrong types.
    for args in [vec![], vec![Vec::new()]] {
        assert_eq!(
            IpeCall::parse("list_devices", &args).unwrap(),
            IpeCall::ListDevices(ListDevicesArgs::default())
        );
        assert_eq!(
            IpeCall::parse("list_device_credentials", &args).unwrap(),
            IpeCall::ListDeviceCredentials(ListCredentialsArgs::default())
        );
    }
    let lenient =
        IpeCall::parse("list_devices", &[br#"{"after":5,"limit":"x","org":"Org1MSP","more":1}"#.to_vec()]);
    assert_eq!(
        lenient.unwrap(),
        IpeCall::ListDevices(ListDevicesArgs { org: Some("Org1MSP".into()), ..Default::default() })
    );
}

#[test]
fn what_an_application_writes_means_the_same_after_a_round_trip() {
    // A cmd request as an application wrote it: explicit nulls and defaults are the same call.
    let raw = json!({"request_id": "a1", "originator": "Capp", "endpoint": "ep", "op": "write",
        "path": "/3/0/1", "content": {"v": "x"}, "partial": false, "observe_request_id": null, "timeout": null});
    let call = IpeCall::parse("submit_request", &[serde_json::to_vec(&raw).unwrap()]).unwrap();
    assert_eq!(IpeCall::parse("submit_request", &call.args().unwrap()).unwrap(), call);
    let IpeCall::SubmitRequest(a) = call else { panic!() };
    assert_eq!((a.op, a.partial, a.timeout), (Operation::Write, false, None));
    let reg = RegisterArgs {
        endpoint: "ep".into(),
        lwm2m_version: None,
        lifetime: None,
        binding: None,
        queue_mode: true,
        links: String::new(),
        mode: Some(MappingMode::Transparent),
    };
    let call = IpeCall::RegisterDevice(reg);
    assert_eq!(IpeCall::parse(call.function(), &call.args().unwrap()).unwrap(), call);
}

#[test]
fn every_refusal_has_a_stable_status() {
    use super::Refusal;
    use contract::ContractError;
    for r in
        [Refusal::BadRequest, Refusal::Forbidden, Refusal::NotFound, Refusal::Conflict, Refusal::Internal]
    {
        assert_eq!(Refusal::from_status(r.status()), Some(r));
    }
    let errors = [
        (ContractError::BadRequest(String::new()), Refusal::BadRequest),
        (ContractError::Forbidden(String::new()), Refusal::Forbidden),
        (ContractError::NotFound(String::new()), Refusal::NotFound),
        (ContractError::Conflict(String::new()), Refusal::Conflict),
        (ContractError::Internal(String::new()), Refusal::Internal),
    ];
    for (e, r) in errors {
        assert_eq!(Refusal::of(&e), Some(r), "{e}");
    }
    assert_eq!(Refusal::from_status(200), None);
}
