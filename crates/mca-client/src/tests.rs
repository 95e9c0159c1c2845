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

#[test]
fn urls_name_the_scheme_and_the_authority() {
    let c = McaConfig::from_url("https://127.0.0.1:8443/cse-in", "Cipe", None).unwrap();
    assert_eq!((c.authority.as_str(), c.https), ("127.0.0.1:8443", true));
    let c = McaConfig::from_url("http://localhost:8080", "Cipe", None).unwrap();
    assert_eq!((c.authority.as_str(), c.https), ("localhost:8080", false));
    for bad in ["ftp://h:1/cse-in", "https:///cse-in", "127.0.0.1:8080", ""] {
        assert!(McaConfig::from_url(bad, "Cipe", None).is_none(), "{bad}");
    }
}

#[test]
fn cse_urls_are_read_by_http_uri() {
    use crate::{CseUrl, UrlError};
    let u = CseUrl::parse("https://127.0.0.1:8443/cse-in/").unwrap();
    assert_eq!(u, CseUrl { https: true, authority: "127.0.0.1:8443".into(), path: "cse-in".into() });
    let u = CseUrl::parse("HTTP://[::1]:8080?x=1").unwrap();
    assert_eq!(u, CseUrl { https: false, authority: "[::1]:8080".into(), path: String::new() });
    assert_eq!(CseUrl::parse("http://h:1/a/b").unwrap().path, "a/b");
    assert_eq!(CseUrl::parse("ftp://h:1/cse-in"), Err(UrlError::Scheme));
    assert_eq!(CseUrl::parse("/cse-in"), Err(UrlError::Scheme));
    for bad in ["https:///cse-in", "http://", "http://h 1/", ""] {
        assert!(matches!(CseUrl::parse(bad), Err(UrlError::Syntax(_) | UrlError::NoHost)), "{bad}");
    }
}

/// Bad TLS material is a typed error naming the material, never a panic.
#[test]
fn bad_tls_material_is_an_error() {
    use crate::tls::{PemIdentity, TlsClient, TlsError, TlsServer};
    let no_cert = TlsClient { ca_pems: vec![b"not a certificate".to_vec()], identity: None };
    assert!(matches!(no_cert.rustls_config(), Err(TlsError::Pem { what: "client CA", .. })));
    let torn = b"-----BEGIN CERTIFICATE-----\nAAAA\n".to_vec();
    assert!(matches!(
        TlsClient { ca_pems: vec![torn], identity: None }.rustls_config(),
        Err(TlsError::Pem { .. })
    ));
    let no_key = TlsServer {
        identity: PemIdentity { cert_pem: b"x".to_vec(), key_pem: b"y".to_vec() },
        client_ca_pems: vec![],
    };
    assert!(matches!(no_key.rustls_config(), Err(TlsError::Pem { what: "server certificate", .. })));
    // No CA at all is allowed for a client (every https:// server is then refused).
    assert!(TlsClient::default().rustls_config().is_ok());
}
