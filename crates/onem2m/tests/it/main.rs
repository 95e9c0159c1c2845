//! Integration tests of the HTTP binding: requests in, responses out, round trips.

use onem2m::http as binding;
use onem2m::{DiscResType, FilterUsage, Operation, RequestPrimitive, ResponsePrimitive, ResultContent, Rsc};
use proptest::prelude::*;

fn req(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RequestPrimitive, binding::BindingError> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = b.body(body.to_vec()).expect("valid test request");
    binding::request_from_http(r.method(), r.uri(), r.headers(), r.body())
}

const STD: &[(&str, &str)] = &[("X-M2M-Origin", "Cae"), ("X-M2M-RI", "r1"), ("X-M2M-RVI", "3")];

#[test]
fn methods_map_to_operations() {
    let mut h = STD.to_vec();
    h.push(("Content-Type", "application/json;ty=3"));
    assert_eq!(req("POST", "/cse-in", &h, b"{}").unwrap().op, Operation::Create);
    assert_eq!(req("POST", "/cse-in", STD, b"{}").unwrap().op, Operation::Notify);
    assert_eq!(req("GET", "/cse-in", STD, b"").unwrap().op, Operation::Retrieve);
    assert_eq!(req("PUT", "/cse-in", STD, b"{}").unwrap().op, Operation::Update);
    assert_eq!(req("DELETE", "/cse-in", STD, b"").unwrap().op, Operation::Delete);
    assert_eq!(req("PATCH", "/cse-in", STD, b"").unwrap_err().rsc, Rsc::OperationNotAllowed);
}

#[test]
fn targets_from_paths() {
    assert_eq!(req("GET", "/cse-in/ae/cnt/", STD, b"").unwrap().to, "cse-in/ae/cnt");
    assert_eq!(req("GET", "/~/id-in/cse-in/ae", STD, b"").unwrap().to, "/id-in/cse-in/ae");
    assert_eq!(req("GET", "/_/sp/id-in/ri1", STD, b"").unwrap().to, "//sp/id-in/ri1");
    assert_eq!(req("GET", "/cse-in/a%20b", STD, b"").unwrap_err().rsc, Rsc::BadRequest);
}

#[test]
fn header_errors() {
    let no_ri = [("X-M2M-Origin", "Cae"), ("X-M2M-RVI", "3")];
    assert_eq!(req("GET", "/cse-in", &no_ri, b"").unwrap_err().rsc, Rsc::BadRequest);
    let no_rvi = [("X-M2M-Origin", "Cae"), ("X-M2M-RI", "1")];
    let e = req("GET", "/cse-in", &no_rvi, b"").unwrap_err();
    assert_eq!(e.rsc, Rsc::ReleaseVersionNotSupported);
    assert_eq!(e.rqi, "1");
    let bad_rvi = [("X-M2M-Origin", "Cae"), ("X-M2M-RI", "1"), ("X-M2M-RVI", "9")];
    assert_eq!(req("GET", "/cse-in", &bad_rvi, b"").unwrap_err().rsc, Rsc::ReleaseVersionNotSupported);
    let no_origin = [("X-M2M-RI", "1"), ("X-M2M-RVI", "3")];
    assert_eq!(req("GET", "/cse-in", &no_origin, b"").unwrap().fr, None);
    let bad_origin = [("X-M2M-Origin", "C a"), ("X-M2M-RI", "1"), ("X-M2M-RVI", "3")];
    assert_eq!(req("GET", "/cse-in", &bad_origin, b"").unwrap_err().rsc, Rsc::BadRequest);
}

#[test]
fn content_errors() {
    let mut h = STD.to_vec();
    h.push(("Content-Type", "application/json;ty=x"));
    assert_eq!(req("POST", "/cse-in", &h, b"{}").unwrap_err().rsc, Rsc::BadRequest);
    let mut h = STD.to_vec();
    h.push(("Content-Type", "application/json;ty=4"));
    let e = req("POST", "/cse-in", &h, b"{not json").unwrap_err();
    assert_eq!(e.rsc, Rsc::BadRequest);
    assert!(e.message.contains("JSON"));
    let mut h = STD.to_vec();
    h.push(("Content-Type", "application/cbor;ty=4"));
    assert_eq!(req("POST", "/cse-in", &h, b"\xa0").unwrap_err().rsc, Rsc::UnsupportedMediaType);
}

#[test]
fn query_parameters() {
    let r = req(
        "GET",
        "/cse-in?fu=1&ty=3+4&lbl=a&lbl=b&cra=20260101T000000&lim=5&ofst=2&drt=2&fo=2&rcn=4&lvl=1",
        STD,
        b"",
    )
    .unwrap();
    assert_eq!(r.fc.fu, Some(FilterUsage::Discovery));
    assert_eq!(r.fc.ty, vec![3, 4]);
    assert_eq!(r.fc.lbl, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(r.fc.cra.as_deref(), Some("20260101T000000"));
    assert_eq!((r.fc.lim, r.fc.ofst, r.fc.lvl), (Some(5), Some(2), Some(1)));
    assert!(!r.fc.fo_and);
    assert_eq!(r.drt, DiscResType::Unstructured);
    assert_eq!(r.rcn, Some(ResultContent::AttributesAndChildResources));
    for bad in ["rcn=77", "fu=9", "ty=x", "lim=-1", "cra=yesterday", "zzz=1", "drt=3"] {
        assert_eq!(
            req("GET", &format!("/cse-in?{bad}"), STD, b"").unwrap_err().rsc,
            Rsc::BadRequest,
            "{bad}"
        );
    }
}

#[test]
fn response_round_trip() {
    let mut rsp =
        ResponsePrimitive::new(Rsc::Created, "r9", Some(serde_json::json!({"m2m:cnt": {"rn": "x"}})));
    rsp.content_location = Some("cse-in/ae/x".into());
    let h = binding::response_to_http(&rsp);
    assert_eq!(h.status(), http::StatusCode::CREATED);
    assert_eq!(h.headers()["x-m2m-rsc"], "2001");
    let back = binding::response_from_http(h.status(), h.headers(), h.body()).unwrap();
    assert_eq!(back, rsp);
    let e = ResponsePrimitive::error(Rsc::NotFound, "r", "no such resource");
    assert_eq!(e.debug_message(), Some("no such resource"));
}

#[test]
fn request_round_trip_through_http() {
    let mut p = RequestPrimitive::new(Operation::Retrieve, "/id-in/cse-in/ae", Some("Cae".into()), "7");
    p.fc.fu = Some(FilterUsage::Discovery);
    p.fc.ty = vec![3, 28];
    p.fc.lbl = vec!["a/b:c%".into()];
    p.fc.fo_and = false;
    p.drt = DiscResType::Unstructured;
    p.rcn = Some(ResultContent::ChildResourceReferences);
    let h = binding::request_to_http(&p, "127.0.0.1:8080").unwrap();
    assert_eq!(h.uri().path(), "/~/id-in/cse-in/ae");
    let back = binding::request_from_http(h.method(), h.uri(), h.headers(), h.body()).unwrap();
    assert_eq!(back, p);

    let mut c = RequestPrimitive::new(Operation::Create, "cse-in/ae", Some("Cae".into()), "8");
    c.ty = Some(4);
    c.pc = Some(serde_json::json!({"m2m:cin": {"con": "1"}}));
    let h = binding::request_to_http(&c, "127.0.0.1:8080").unwrap();
    assert_eq!(binding::request_from_http(h.method(), h.uri(), h.headers(), h.body()).unwrap(), c);
}

proptest! {
    #[test]
    fn timestamps_round_trip(us in -2_000_000_000_000_000i64..4_000_000_000_000_000i64) {
        let s = onem2m::time::format(us);
        prop_assert_eq!(onem2m::time::parse(&s), Some(us));
    }

    #[test]
    fn binding_never_panics(path in "/[ -~]{0,40}", q in "[ -~]{0,40}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let uri = format!("{}?{}", path.replace(' ', "%20").replace('#', ""), q.replace([' ', '#'], ""));
        if let Ok(u) = uri.parse::<http::Uri>() {
            let mut h = http::HeaderMap::new();
            h.insert("x-m2m-ri", "1".parse().unwrap());
            h.insert("x-m2m-rvi", "3".parse().unwrap());
            h.insert("content-type", "application/json;ty=4".parse().unwrap());
            let _ = binding::request_from_http(&http::Method::POST, &u, &h, &body);
        }
    }
}
