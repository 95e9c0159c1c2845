//! Codec golden vectors (LwM2M TS examples) and round-trip properties over every multi-value format.

use std::collections::BTreeMap;

use lwm2m::codec::{self, CodecError, Record};
use lwm2m::{ContentFormat, LwM2mPath, Registry, Value};
use proptest::prelude::*;

fn p(s: &str) -> LwM2mPath {
    s.parse().expect("valid path")
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("hex")).collect()
}

/// The Device object instance of LwM2M TS 1.0 §6.4.3.1 (Read /3/0 in TLV).
const DEVICE_TLV: &str = "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65 \
    C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74 \
    C8 02 09 33 34 35 30 30 30 31 32 33 C3 03 31 2E 30 86 06 41 00 01 41 01 05 \
    88 07 08 42 00 0E D8 42 01 13 88 87 08 41 00 7D 42 01 03 84 C1 09 64 C1 0A 0F \
    83 0B 41 00 00 C4 0D 51 82 42 8F C6 0E 2B 30 32 3A 30 30 C1 10 55";

#[test]
fn tlv_device_golden_vector() {
    let reg = Registry::builtin();
    let recs = codec::decode(ContentFormat::TLV, &hex(DEVICE_TLV), &p("/3/0"), &reg).unwrap();
    let show: Vec<String> = recs.iter().map(|r| format!("{}={:?}", r.path, r.value)).collect();
    assert_eq!(
        show,
        [
            "/3/0/0=String(\"Open Mobile Alliance\")",
            "/3/0/1=String(\"Lightweight M2M Client\")",
            "/3/0/2=String(\"345000123\")",
            "/3/0/3=String(\"1.0\")",
            "/3/0/6/0=Integer(1)",
            "/3/0/6/1=Integer(5)",
            "/3/0/7/0=Integer(3800)",
            "/3/0/7/1=Integer(5000)",
            "/3/0/8/0=Integer(125)",
            "/3/0/8/1=Integer(900)",
            "/3/0/9=Integer(100)",
            "/3/0/10=Integer(15)",
            "/3/0/11/0=Integer(0)",
            "/3/0/13=Time(1367491215)",
            "/3/0/14=String(\"+02:00\")",
            "/3/0/16=String(\"U\")",
        ]
    );
    // Encoding gives back the very same bytes.
    assert_eq!(codec::encode(ContentFormat::TLV, &recs, &p("/3/0")).unwrap(), hex(DEVICE_TLV));
    // The same content wrapped in an object-instance TLV, read on /3.
    let mut wrapped = vec![0x08, 0x00, hex(DEVICE_TLV).len() as u8];
    wrapped.extend(hex(DEVICE_TLV));
    let recs2 = codec::decode(ContentFormat::OLD_TLV, &wrapped, &p("/3"), &reg).unwrap();
    assert_eq!(recs, recs2);
    assert_eq!(codec::encode(ContentFormat::TLV, &recs, &p("/3")).unwrap(), wrapped);
}

#[test]
fn tlv_untyped_and_malformed() {
    let reg = Registry::builtin();
    // Vendor object 31024: unknown, carried as opaque bytes.
    let recs = codec::decode(ContentFormat::TLV, &hex("C1 01 2A"), &p("/31024/0"), &reg).unwrap();
    assert_eq!(recs, vec![Record::new(p("/31024/0/1"), Value::Opaque(vec![42]))]);
    for bad in ["C8 00 14 4F", "E4 16", "C3 09 01 02", "C2 09 00", "86 06 C1 00 01"] {
        assert!(
            matches!(
                codec::decode(ContentFormat::TLV, &hex(bad), &p("/3/0"), &reg),
                Err(CodecError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    // The same resource twice (found by fuzzing): ambiguous, refused.
    for dup in ["C0 96 C0 96", "02 2C C0 C0 C0 C0 C0 C0", "08 00 04 C0 01 C0 01", "83 00 60 00 00 C0 00"] {
        assert!(codec::decode(ContentFormat::TLV, &hex(dup), &p("/3/0"), &reg).is_err(), "{dup}");
        assert!(codec::decode(ContentFormat::TLV, &hex(dup), &p("/3"), &reg).is_err(), "{dup}");
    }
    // A value-less integer of 3 bytes is malformed for an Integer resource.
    assert!(codec::decode(ContentFormat::TLV, &hex("C3 09 01 02 03"), &p("/3/0"), &reg).is_err());
}

#[test]
fn senml_json_golden() {
    let reg = Registry::builtin();
    let doc = br#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"9","v":95},{"n":"13","v":1367491215},
        {"bn":"/3303/0/","bt":1700000000,"n":"5700","v":21.5,"t":-5},{"n":"5701","vs":"Cel"},
        {"bn":"/31024/1/","n":"2","vd":"AQID"},{"n":"3","vlo":"3:0"},{"bn":"/3311/0/","n":"5850","vb":true}]"#;
    let recs = codec::decode(ContentFormat::SENML_JSON, doc, &LwM2mPath::ROOT, &reg).unwrap();
    let show: Vec<String> = recs.iter().map(|r| format!("{}={:?}@{:?}", r.path, r.value, r.time)).collect();
    assert_eq!(
        show,
        [
            "/3/0/0=String(\"Open Mobile Alliance\")@None",
            "/3/0/9=Integer(95)@None",
            "/3/0/13=Time(1367491215)@None",
            "/3303/0/5700=Float(21.5)@Some(1699999995.0)",
            "/3303/0/5701=String(\"Cel\")@Some(1700000000.0)",
            "/31024/1/2=Opaque([1, 2, 3])@Some(1700000000.0)",
            "/31024/1/3=Objlnk(3, 0)@Some(1700000000.0)",
            "/3311/0/5850=Boolean(true)@Some(1700000000.0)",
        ]
    );
    let out = codec::encode(ContentFormat::SENML_JSON, &recs[..2], &p("/3/0")).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"9","v":95}]"#
    );
    let single = codec::encode(ContentFormat::SENML_JSON, &recs[1..2], &p("/3/0/9")).unwrap();
    assert_eq!(String::from_utf8(single).unwrap(), r#"[{"bn":"/3/0/9","v":95}]"#);
    for bad in [
        &b"{}"[..],
        b"[1]",
        b"[{\"n\":\"/x\",\"v\":1}]",
        b"[{\"n\":\"/3\",\"v\":1}]",
        b"[{\"n\":\"/3/0/1\",\"v\":\"s\"}]",
    ] {
        assert!(codec::decode(ContentFormat::SENML_JSON, bad, &LwM2mPath::ROOT, &reg).is_err());
    }
}

#[test]
fn senml_cbor_golden() {
    let reg = Registry::builtin();
    // [{-2: "/3/0/", 0: "0", 3: "ACME"}, {0: "9", 2: 95}]
    let bytes = hex("82 A3 21 65 2F 33 2F 30 2F 00 61 30 03 64 41 43 4D 45 A2 00 61 39 02 18 5F");
    let recs = codec::decode(ContentFormat::SENML_CBOR, &bytes, &LwM2mPath::ROOT, &reg).unwrap();
    assert_eq!(
        recs,
        vec![
            Record::new(p("/3/0/0"), Value::String("ACME".into())),
            Record::new(p("/3/0/9"), Value::Integer(95)),
        ]
    );
    assert_eq!(codec::encode(ContentFormat::SENML_CBOR, &recs, &p("/3/0")).unwrap(), bytes);
    assert!(codec::decode(ContentFormat::SENML_CBOR, &[0x82, 0xA1], &LwM2mPath::ROOT, &reg).is_err());
}

#[test]
fn lwm2m_json_golden() {
    let reg = Registry::builtin();
    let doc = br#"{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"9","v":95},{"n":"6/0","v":1},{"n":"22/0","ov":"31024:1"}]}"#;
    let recs = codec::decode(ContentFormat::JSON, doc, &p("/3/0"), &reg).unwrap();
    assert_eq!(recs[2], Record::new(p("/3/0/6/0"), Value::Integer(1)));
    assert_eq!(recs[3], Record::new(p("/3/0/22/0"), Value::Objlnk(31024, 1)));
    assert_eq!(codec::encode(ContentFormat::JSON, &recs, &p("/3/0")).unwrap(), doc.to_vec());
    let single = codec::encode(ContentFormat::JSON, &recs[1..2], &p("/3/0/9")).unwrap();
    assert_eq!(String::from_utf8(single).unwrap(), r#"{"bn":"/3/0/9","e":[{"v":95}]}"#);
}

#[test]
fn lwm2m_cbor_golden() {
    let reg = Registry::builtin();
    // {3: {0: {0: "ACME", 9: 95}}}
    let bytes = hex("A1 03 A1 00 A2 00 64 41 43 4D 45 09 18 5F");
    let recs = codec::decode(ContentFormat::LWM2M_CBOR, &bytes, &p("/3/0"), &reg).unwrap();
    assert_eq!(recs[1], Record::new(p("/3/0/9"), Value::Integer(95)));
    assert_eq!(codec::encode(ContentFormat::LWM2M_CBOR, &recs, &p("/3/0")).unwrap(), bytes);
    // Array keys stand for several levels: {[3, 0]: {0: "ACME"}}
    let compact = hex("A1 82 03 00 A1 00 64 41 43 4D 45");
    let recs = codec::decode(ContentFormat::LWM2M_CBOR, &compact, &p("/3/0"), &reg).unwrap();
    assert_eq!(recs, vec![Record::new(p("/3/0/0"), Value::String("ACME".into()))]);
}

#[test]
fn node_tree_shapes() {
    use lwm2m::node::{Node, Resource};
    let reg = Registry::builtin();
    let recs = codec::decode(ContentFormat::TLV, &hex(DEVICE_TLV), &p("/3/0"), &reg).unwrap();
    let Node::Instance(0, inst) = Node::from_records(&p("/3/0"), &recs).unwrap() else { panic!("instance") };
    assert_eq!(inst[&0], Resource::Single(Value::String("Open Mobile Alliance".into())));
    assert!(matches!(&inst[&7], Resource::Multiple(m) if m[&1] == Value::Integer(5000)));
    let six: Vec<Record> = recs.iter().filter(|r| r.path.starts_with(&p("/3/0/6"))).cloned().collect();
    assert!(matches!(
        Node::from_records(&p("/3/0/6"), &six).unwrap(),
        Node::Resource(6, Resource::Multiple(_))
    ));
    assert_eq!(
        Node::from_records(&p("/3/0/6/1"), &six[1..]).unwrap(),
        Node::ResourceInstance(1, Value::Integer(5))
    );
    assert!(Node::from_records(&p("/4/0"), &recs).is_err(), "records outside the path");
    let mixed =
        vec![Record::new(p("/3/0/6"), Value::Integer(1)), Record::new(p("/3/0/6/0"), Value::Integer(1))];
    assert!(Node::from_records(&p("/3/0"), &mixed).is_err());
}

#[test]
fn text_and_opaque() {
    let reg = Registry::builtin();
    let r = codec::decode(ContentFormat::TEXT, b"21.5", &p("/3303/0/5700"), &reg).unwrap();
    assert_eq!(r[0].value, Value::Float(21.5));
    let r = codec::decode(ContentFormat::TEXT, b"1", &p("/3311/0/5850"), &reg).unwrap();
    assert_eq!(r[0].value, Value::Boolean(true));
    assert!(codec::decode(ContentFormat::TEXT, b"warm", &p("/3303/0/5700"), &reg).is_err());
    assert!(matches!(
        codec::decode(ContentFormat::TEXT, b"1", &p("/3/0"), &reg),
        Err(CodecError::NotSingle(_))
    ));
    let r = codec::decode(ContentFormat::TEXT, b"x", &p("/31024/0/1"), &reg).unwrap();
    assert_eq!(r[0].value, Value::String("x".into()));
    let r = codec::decode(ContentFormat::OPAQUE, &[0, 255], &p("/5/0/0"), &reg).unwrap();
    assert_eq!(codec::encode(ContentFormat::OPAQUE, &r, &p("/5/0/0")).unwrap(), vec![0, 255]);
    assert_eq!(
        codec::encode(ContentFormat::TEXT, &[Record::new(p("/3/0/9"), Value::Integer(7))], &p("/3/0/9"))
            .unwrap(),
        b"7"
    );
}

/// An object with one resource of each type (and a multiple resource), loaded from OMA XML.
fn typed_registry() -> Registry {
    let mut reg = Registry::builtin();
    let item = |id: u16, ty: &str, multiple: &str| {
        format!(
            "<Item ID=\"{id}\"><Name>r{id}</Name><Operations>RW</Operations><MultipleInstances>{multiple}</MultipleInstances>\
             <Mandatory>Optional</Mandatory><Type>{ty}</Type><Units></Units></Item>"
        )
    };
    let items: String =
        ["String", "Integer", "Unsigned Integer", "Float", "Boolean", "Opaque", "Time", "Objlnk"]
            .iter()
            .enumerate()
            .map(|(i, t)| item(i as u16, t, "Single"))
            .chain([item(8, "Integer", "Multiple")])
            .collect();
    let xml = format!(
        "<?xml version=\"1.0\"?><LWM2M><Object ObjectType=\"MODefinition\"><Name>Test</Name><ObjectID>40000</ObjectID>\
         <ObjectVersion>1.1</ObjectVersion><MultipleInstances>Multiple</MultipleInstances><Resources>{items}</Resources>\
         </Object></LWM2M>"
    );
    assert_eq!(reg.load_xml(&xml).expect("test XML loads"), vec![40000]);
    reg
}

fn value_for(res: u16) -> BoxedStrategy<Value> {
    match res {
        0 => "\\PC{0,12}".prop_map(Value::String).boxed(),
        1 | 8 => any::<i64>().prop_map(Value::Integer).boxed(),
        2 => any::<u64>().prop_map(Value::Unsigned).boxed(),
        3 => prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            (-1000i32..1000).prop_map(|i| f64::from(i) / 4.0)
        ]
        .prop_map(Value::Float)
        .boxed(),
        4 => any::<bool>().prop_map(Value::Boolean).boxed(),
        5 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Opaque).boxed(),
        6 => any::<i64>().prop_map(Value::Time).boxed(),
        _ => (0u16..=65534, 0u16..=65534).prop_map(|(a, b)| Value::Objlnk(a, b)).boxed(),
    }
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    let one = (0u16..3, 0u16..9, 0u16..4)
        .prop_flat_map(|(i, r, ri)| (Just((i, r, ri)), value_for(r)))
        .prop_map(|((i, r, ri), v)| {
            let path =
                if r == 8 { LwM2mPath::new(&[40000, i, r, ri]) } else { LwM2mPath::new(&[40000, i, r]) };
            (path.expect("valid"), v)
        });
    proptest::collection::vec(one, 1..12).prop_map(|v| {
        let m: BTreeMap<LwM2mPath, Value> = v.into_iter().collect();
        m.into_iter().map(|(p, v)| Record::new(p, v)).collect()
    })
}

fn round_trip(format: ContentFormat, recs: &[Record]) -> Vec<Record> {
    let reg = typed_registry();
    let base = p("/40000");
    let bytes = codec::encode(format, recs, &base).expect("encodes");
    let mut back = codec::decode(format, &bytes, &base, &reg).expect("decodes");
    back.sort_by_key(|r| r.path);
    back
}

proptest! {
    #[test]
    fn node_tree_round_trip(recs in records()) {
        let base = p("/40000");
        let node = lwm2m::node::Node::from_records(&base, &recs).unwrap();
        prop_assert_eq!(node.to_records(&base).unwrap(), recs);
    }

    #[test]
    fn tlv_round_trip(recs in records()) {
        prop_assert_eq!(round_trip(ContentFormat::TLV, &recs), recs);
    }

    #[test]
    fn senml_json_round_trip(recs in records()) {
        prop_assert_eq!(round_trip(ContentFormat::SENML_JSON, &recs), recs);
    }

    #[test]
    fn senml_cbor_round_trip(recs in records()) {
        prop_assert_eq!(round_trip(ContentFormat::SENML_CBOR, &recs), recs);
    }

    #[test]
    fn lwm2m_json_round_trip(recs in records()) {
        prop_assert_eq!(round_trip(ContentFormat::JSON, &recs), recs);
    }

    #[test]
    fn lwm2m_cbor_round_trip(recs in records()) {
        prop_assert_eq!(round_trip(ContentFormat::LWM2M_CBOR, &recs), recs);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let reg = Registry::builtin();
        for f in ContentFormat::SUPPORTED {
            let _ = codec::decode(f, &bytes, &p("/3/0"), &reg);
        }
        let _ = lwm2m::link::parse(&String::from_utf8_lossy(&bytes));
    }
}
