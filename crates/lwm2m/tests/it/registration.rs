//! Registration parsing (incl. the lenient cases real clients need), link format, paths, object model, ops.

use lwm2m::link;
use lwm2m::ops::{Attributes, Downlink, Method, ResponseCode, WriteMode, valid_execute_args};
use lwm2m::registration::{LwM2mVersion, RegistrationError, parse_register, parse_update};
use lwm2m::{ContentFormat, LwM2mPath, Registry, ResourceType};

fn q(s: &str) -> Vec<String> {
    s.split('&').map(str::to_owned).collect()
}

#[test]
fn register_like_lwm2m_node_lib() {
    // No Content-Format, a 1.0 client, no root link.
    let r = parse_register(&q("ep=node-ep-1&lt=85671&lwm2m=1.0&b=U"), None, b"</3/0>,</3303/0>").unwrap();
    assert_eq!(r.endpoint, "node-ep-1");
    assert_eq!(r.lifetime, 85671);
    assert_eq!(r.version, LwM2mVersion::V1_0);
    assert_eq!(r.links.root_path, "/");
    assert_eq!(r.links.object_ids(), vec![3, 3303]);
}

#[test]
fn register_defaults_and_advertised_formats() {
    let payload = br#"</>;rt="oma.lwm2m";ct="110 112 11543", </1/0>,</3/0>;ver=1.1, </31024/0>, </31024/1>"#;
    let r = parse_register(&q("ep=x&lwm2m=1.1"), Some(40), payload).unwrap();
    assert_eq!((r.lifetime, r.binding.as_str(), r.queue_mode), (86400, "U", false));
    assert_eq!(r.links.supported_formats, vec![ContentFormat(110), ContentFormat(112), ContentFormat(11543)]);
    assert_eq!(r.links.object_ids(), vec![1, 3, 31024]);
    assert_eq!(r.links.objects[1].version.as_deref(), Some("1.1"));
    // Alternate root path.
    let r = parse_register(&q("ep=y&b=UQ"), None, br#"</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>"#).unwrap();
    assert_eq!(r.links.root_path, "/lwm2m/");
    assert_eq!(r.links.object_ids(), vec![3]);
    assert!(r.queue_mode);
    // Empty payload is fine.
    assert!(parse_register(&q("ep=z"), None, b"").unwrap().links.objects.is_empty());
}

#[test]
fn register_refusals_carry_the_right_code() {
    let code =
        |qs: &str, cf: Option<u16>, body: &[u8]| parse_register(&q(qs), cf, body).unwrap_err().coap_code();
    assert_eq!(code("ep=a&lwm2m=1.2", None, b""), (4, 12));
    assert_eq!(code("ep=a&lwm2m=2.0", None, b""), (4, 12));
    // A patch number on 1.0 (coap-node writes `1.0.0`) is 1.0; other versions stay refused.
    assert_eq!(parse_register(&q("ep=a&lwm2m=1.0.0"), None, b"").unwrap().version, LwM2mVersion::V1_0);
    assert_eq!(code("ep=a&lwm2m=1.2.0", None, b""), (4, 12));
    assert_eq!(code("lt=60", None, b""), (4, 0));
    assert_eq!(code("ep=", None, b""), (4, 0));
    assert_eq!(code("ep=a&lt=abc", None, b""), (4, 0));
    assert_eq!(code("ep=a&lt=0", None, b""), (4, 0));
    assert_eq!(code("ep=a&b=X", None, b""), (4, 0));
    assert_eq!(code("ep=a", Some(50), b"{}"), (4, 15));
    assert_eq!(code("ep=a", None, b"</3/0"), (4, 0));
    assert!(matches!(
        parse_register(&q("ep=a&lwm2m=1.2"), None, b""),
        Err(RegistrationError::UnsupportedVersion(_))
    ));
}

#[test]
fn update_only_what_was_sent() {
    let u = parse_update(&q("lt=30"), None, b"").unwrap();
    assert_eq!(u.lifetime, Some(30));
    assert!(u.links.is_none() && u.binding.is_none());
    let u = parse_update(&[], None, b"</3/0>,</3303/1>").unwrap();
    assert_eq!(u.links.unwrap().object_ids(), vec![3, 3303]);
    assert_eq!(parse_update(&q("lt=-1"), None, b"").unwrap_err().coap_code(), (4, 0));
}

#[test]
fn link_format_parse_and_print() {
    let links = link::parse(r#"</3303/0/5700>;pmin=10;pmax=60, </3/0>;title="a, b";obs"#).unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0].attr("pmax"), Some("60"));
    assert_eq!(links[1].attr("title"), Some("a, b"));
    assert_eq!(links[1].attributes[1], ("obs".to_owned(), None));
    assert_eq!(link::format(&links), r#"</3303/0/5700>;pmin=10;pmax=60,</3/0>;title="a, b";obs"#);
    for bad in ["3/0", "</3/0", "</3/0>;", "</3/0> </4>", "</3/0>;a=\"x", "<\u{fffd}>;a=9\"\"9"] {
        assert!(link::parse(bad).is_err(), "{bad}");
    }
    assert!(link::parse("").unwrap().is_empty());
}

#[test]
fn paths_validate() {
    let p: LwM2mPath = "/3/0/1/2".parse().unwrap();
    assert_eq!(
        (p.object(), p.instance(), p.resource(), p.resource_instance()),
        (Some(3), Some(0), Some(1), Some(2))
    );
    assert_eq!(p.to_string(), "/3/0/1/2");
    assert_eq!(LwM2mPath::ROOT.to_string(), "/");
    assert!("/3/0/1/2/3".parse::<LwM2mPath>().is_err());
    assert!("/3/x".parse::<LwM2mPath>().is_err());
    assert!("/65535".parse::<LwM2mPath>().is_err());
    assert!("/3/-1".parse::<LwM2mPath>().is_err());
    assert!(p.starts_with(&"/3/0".parse().unwrap()));
}

#[test]
fn builtin_registry_has_core_and_ipso_objects() {
    let reg = Registry::builtin();
    for id in (0..=7).chain([3300, 3301, 3303, 3304, 3311, 3336, 3350]) {
        assert!(reg.object(id).is_some(), "object {id}");
    }
    assert_eq!(reg.resource_type(3303, 5700), Some(ResourceType::Float));
    assert_eq!(reg.resource_type(3311, 5850), Some(ResourceType::Boolean));
    assert_eq!(reg.resource_type(3, 13), Some(ResourceType::Time));
    assert!(reg.resource(3, 4).unwrap().operations.executable());
    assert!(reg.object(31024).is_none());
    let mut r = Registry::empty();
    assert!(r.load_xml("<LWM2M>").is_err());
    assert!(r.load_xml("<LWM2M></LWM2M>").is_err());
    assert!(r.load_xml("<LWM2M><Object><ObjectID>x</ObjectID></Object></LWM2M>").is_err());
}

#[test]
fn downlink_operations_map_to_coap() {
    let p = |s: &str| s.parse::<LwM2mPath>().unwrap();
    let r = Downlink::Read { path: p("/3/0/0"), accept: Some(ContentFormat::TLV) }.to_coap("/").unwrap();
    assert_eq!(
        (r.method, r.uri_path.clone(), r.accept),
        (Method::Get, vec!["3".into(), "0".into(), "0".into()], Some(ContentFormat::TLV))
    );
    let r = Downlink::Observe { path: p("/3303/0/5700"), accept: None }.to_coap("/lwm2m/").unwrap();
    assert_eq!((r.uri_path[0].as_str(), r.observe), ("lwm2m", Some(0)));
    assert!(Downlink::Execute { path: p("/3/0"), args: String::new() }.to_coap("/").is_err());
    assert!(Downlink::Execute { path: p("/3/0/4"), args: "0='a',1".into() }.to_coap("/").is_ok());
    assert!(Downlink::Execute { path: p("/3/0/4"), args: "x".into() }.to_coap("/").is_err());
    assert!(Downlink::Delete { path: p("/3") }.to_coap("/").is_err());
    let w = Downlink::Write {
        path: p("/3/0/13"),
        mode: WriteMode::Replace,
        format: ContentFormat::TEXT,
        records: vec![lwm2m::Record::new(p("/3/0/13"), lwm2m::Value::Time(5))],
    }
    .to_coap("/")
    .unwrap();
    assert_eq!((w.method, w.payload), (Method::Put, b"5".to_vec()));
    let a = Attributes::parse([("pmin", "10"), ("pmax", "60"), ("gt", "30.5")]).unwrap();
    assert_eq!(a.to_queries(), vec!["pmin=10", "pmax=60", "gt=30.5"]);
    assert!(Attributes::parse([("foo", "1")]).is_err());
    assert!(Attributes::parse([("pmin", "-1")]).is_err());
    assert!(valid_execute_args("") && valid_execute_args("5") && valid_execute_args("0='x',3"));
    assert!(!valid_execute_args("0=x") && !valid_execute_args("a") && !valid_execute_args("1,"));
    assert_eq!(ResponseCode::from_byte(0x45).name(), "CONTENT");
    assert_eq!(ResponseCode::from_byte(0x8C).to_string(), "4.12");
}
