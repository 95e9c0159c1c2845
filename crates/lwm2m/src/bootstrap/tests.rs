use super::*;
use crate::model::Registry;

fn account() -> ServerAccount {
    ServerAccount {
        short_server_id: 101,
        uri: "coaps://127.0.0.1:5684".into(),
        mode: SecurityMode::Psk,
        identity: b"dev-1".to_vec(),
        server_public_key: vec![],
        secret_key: vec![0xAB; 16],
        lifetime: 300,
        binding: "U".into(),
        notification_storing: true,
    }
}

fn ok(detail: u8) -> ResponseCode {
    ResponseCode { class: 2, detail }
}

fn path_of(r: &CoapRequest) -> String {
    format!("/{}", r.uri_path.join("/"))
}

#[test]
fn requests_parse_with_endpoint_and_preferred_format() {
    let q = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let r = parse_request(&q(&["ep=dev-1", "pct=112"])).unwrap();
    assert_eq!(r.endpoint, "dev-1");
    assert_eq!(r.preferred_format, Some(ContentFormat::SENML_CBOR));
    assert_eq!(parse_request(&q(&["ep=dev-1"])).unwrap().preferred_format, None);
    assert_eq!(parse_request(&q(&[])), Err(BootstrapRequestError::Endpoint));
    assert_eq!(parse_request(&q(&["ep="])), Err(BootstrapRequestError::Endpoint));
    assert_eq!(parse_request(&q(&["ep=a b"])), Err(BootstrapRequestError::Endpoint));
    assert_eq!(parse_request(&q(&["ep=x", "pct=tlv"])), Err(BootstrapRequestError::PreferredFormat));
}

#[test]
fn a_full_sequence_deletes_discovers_writes_both_objects_and_finishes() {
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account()]), None);
    let mut seen = Vec::new();
    let reg = Registry::builtin();
    loop {
        let r = s.request().unwrap();
        seen.push(format!("{:?} {}", r.method, path_of(&r)));
        let progress = match s.step() {
            Step::Delete(_) => s.on_response(ok(2), b""),
            Step::Discover => {
                assert_eq!(r.accept, Some(ContentFormat::LINK));
                s.on_response(ok(5), b"lwm2m=\"1.1\",</0/0>,</1>,</3/0>")
            }
            Step::WriteSecurity(_) => {
                assert_eq!(r.content_format, Some(ContentFormat::TLV));
                let base: LwM2mPath = path_of(&r).parse().unwrap();
                let recs = codec::decode(ContentFormat::TLV, &r.payload, &base, &reg).unwrap();
                let get =
                    |rid: u16| recs.iter().find(|x| x.path.resource() == Some(rid)).unwrap().value.clone();
                assert_eq!(get(0), Value::String("coaps://127.0.0.1:5684".into()));
                assert_eq!(get(1), Value::Boolean(false));
                assert_eq!(get(2), Value::Integer(0));
                assert_eq!(get(3), Value::Opaque(b"dev-1".to_vec()));
                assert_eq!(get(5), Value::Opaque(vec![0xAB; 16]));
                assert_eq!(get(10), Value::Integer(101));
                s.on_response(ok(4), b"")
            }
            Step::WriteServer(_) => {
                let base: LwM2mPath = path_of(&r).parse().unwrap();
                let recs = codec::decode(ContentFormat::TLV, &r.payload, &base, &reg).unwrap();
                let get =
                    |rid: u16| recs.iter().find(|x| x.path.resource() == Some(rid)).unwrap().value.clone();
                assert_eq!(get(0), Value::Integer(101));
                assert_eq!(get(1), Value::Integer(300));
                assert_eq!(get(7), Value::String("U".into()));
                s.on_response(ok(4), b"")
            }
            Step::Finish => s.on_response(ok(4), b""),
        };
        match progress {
            Progress::Continue => continue,
            Progress::Done => break,
            Progress::Failed(why) => panic!("failed: {why}"),
        }
    }
    assert_eq!(
        seen,
        ["Delete /0", "Delete /1", "Get /0", "Put /0/1", "Put /1/0", "Post /bs"],
        "the bootstrap account /0/0 stays; the new security instance takes the first free id"
    );
}

#[test]
fn discovered_ids_are_skipped_and_a_missing_discover_uses_the_defaults() {
    let two = BootstrapConfig::new(vec![account(), ServerAccount { short_server_id: 102, ..account() }]);
    let mut s = BootstrapSession::new(two.clone(), None);
    s.on_response(ok(2), b"");
    s.on_response(ok(2), b"");
    assert_eq!(s.step(), Step::Discover);
    // The bootstrap account sits at /0/1 on this client.
    s.on_response(ok(5), b"</0/1>");
    assert_eq!(path_of(&s.request().unwrap()), "/0/0");
    s.on_response(ok(4), b"");
    assert_eq!(path_of(&s.request().unwrap()), "/1/0");
    s.on_response(ok(4), b"");
    assert_eq!(path_of(&s.request().unwrap()), "/0/2");
    s.on_response(ok(4), b"");
    assert_eq!(path_of(&s.request().unwrap()), "/1/1");

    // A 1.0 client that resets Discover: the defaults.
    let mut s = BootstrapSession::new(two, None);
    s.on_response(ok(2), b"");
    s.on_response(ok(2), b"");
    assert_eq!(s.on_no_answer("reset"), Progress::Continue);
    assert_eq!(path_of(&s.request().unwrap()), "/0/1");
}

#[test]
fn nothing_to_delete_is_fine_but_a_refused_write_or_finish_fails() {
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account()]), None);
    assert_eq!(s.on_response(ResponseCode { class: 4, detail: 4 }, b""), Progress::Continue);
    assert_eq!(s.on_response(ResponseCode { class: 4, detail: 4 }, b""), Progress::Continue);
    assert_eq!(
        s.on_response(ResponseCode { class: 4, detail: 5 }, b""),
        Progress::Continue,
        "discover optional"
    );
    let p = s.on_response(ResponseCode { class: 4, detail: 0 }, b"");
    assert_eq!(p, Progress::Failed("Bootstrap-Write /0/1 answered 4.00 BAD_REQUEST".into()));

    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![]), None);
    let refused = s.on_response(ResponseCode { class: 4, detail: 1 }, b"");
    assert!(matches!(refused, Progress::Failed(ref w) if w.contains("Bootstrap-Delete /0")), "{refused:?}");
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![]), None);
    s.on_response(ok(2), b"");
    s.on_response(ok(2), b"");
    s.on_response(ok(5), b"");
    assert_eq!(s.step(), Step::Finish);
    assert!(matches!(s.on_response(ResponseCode { class: 5, detail: 0 }, b""), Progress::Failed(_)));
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account()]), None);
    assert!(matches!(s.on_no_answer("timeout"), Progress::Failed(ref w) if w.contains("timeout")));
}

#[test]
fn the_preferred_format_is_used_when_writable_and_tlv_otherwise() {
    let reg = Registry::builtin();
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account()]), Some(ContentFormat::SENML_CBOR));
    for _ in 0..3 {
        s.on_response(ok(2), b"");
    }
    let r = s.request().unwrap();
    assert_eq!(r.content_format, Some(ContentFormat::SENML_CBOR));
    let base: LwM2mPath = path_of(&r).parse().unwrap();
    let recs = codec::decode(ContentFormat::SENML_CBOR, &r.payload, &base, &reg).unwrap();
    assert!(recs.iter().any(|x| x.value == Value::Opaque(vec![0xAB; 16])));
    let s = BootstrapSession::new(BootstrapConfig::new(vec![]), Some(ContentFormat::TEXT));
    assert_eq!(s.format(), ContentFormat::TLV);
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let text = format!("{:?}", BootstrapConfig::new(vec![account()]));
    assert!(text.contains("<16 bytes>"), "{text}");
    assert!(!text.contains("171"), "{text}");
}

#[test]
fn an_unreadable_discover_answer_keeps_the_defaults() {
    assert_eq!(discovered_security_instances(b"lwm2m=\"1.1\",</0/0>,</0/3>;ssid=1"), Some(vec![0, 3]));
    assert_eq!(discovered_security_instances(b"lwm2m=\"1.1\""), Some(vec![]));
    assert_eq!(discovered_security_instances(b"</0/0"), None);
    let mut s = BootstrapSession::new(BootstrapConfig::new(vec![account()]), None);
    s.on_response(ok(2), b"");
    s.on_response(ok(2), b"");
    s.on_response(ok(5), b"\xff garbage <");
    assert_eq!(path_of(&s.request().unwrap()), "/0/1");
}
