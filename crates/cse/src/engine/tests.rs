//! Unit tests of the engine, driven with explicit time (no clock, no I/O).

use onem2m::{Operation, RequestPrimitive, ResultContent, Rsc};
use serde_json::{Value, json};

use super::Engine;
use crate::CseConfig;

const T0: i64 = 1_800_000_000_000_000;

fn engine() -> Engine {
    let mut e = Engine::new(CseConfig::default(), Vec::new(), T0).unwrap();
    let _ = e.take_effects();
    e
}

fn create(e: &mut Engine, to: &str, fr: &str, ty: u16, pc: Value, now: i64) -> (Rsc, Value) {
    let mut r = RequestPrimitive::new(Operation::Create, to, Some(fr.into()), "1");
    r.ty = Some(ty);
    r.pc = Some(pc);
    let (rsp, _) = e.handle(&r, now);
    (rsp.rsc, rsp.pc.unwrap_or(Value::Null))
}

fn get(e: &mut Engine, to: &str, fr: &str, now: i64) -> (Rsc, Value) {
    let r = RequestPrimitive::new(Operation::Retrieve, to, Some(fr.into()), "1");
    let (rsp, _) = e.handle(&r, now);
    (rsp.rsc, rsp.pc.unwrap_or(Value::Null))
}

fn setup(e: &mut Engine) {
    let ae = json!({"m2m:ae": {"rn": "a", "api": "Nx", "rr": true, "srv": ["3"]}});
    assert_eq!(create(e, "cse-in", "Ca", 2, ae, T0).0, Rsc::Created);
    assert_eq!(create(e, "cse-in/a", "Ca", 3, json!({"m2m:cnt": {"rn": "c"}}), T0).0, Rsc::Created);
}

#[test]
fn expiration_removes_resources_at_et() {
    let mut e = engine();
    setup(&mut e);
    let et = onem2m::time::format(T0 + 10_000_000);
    let (rsc, _) = create(&mut e, "cse-in/a/c", "Ca", 3, json!({"m2m:cnt": {"rn": "tmp", "et": et}}), T0);
    assert_eq!(rsc, Rsc::Created);
    assert_eq!(get(&mut e, "cse-in/a/c/tmp", "Ca", T0 + 9_000_000).0, Rsc::Ok);
    assert_eq!(get(&mut e, "cse-in/a/c/tmp", "Ca", T0 + 10_000_000).0, Rsc::NotFound);
}

#[test]
fn mia_drops_old_content_instances() {
    let mut e = engine();
    setup(&mut e);
    assert_eq!(
        create(&mut e, "cse-in/a", "Ca", 3, json!({"m2m:cnt": {"rn": "m", "mia": 5}}), T0).0,
        Rsc::Created
    );
    assert_eq!(create(&mut e, "cse-in/a/m", "Ca", 4, json!({"m2m:cin": {"con": "old"}}), T0).0, Rsc::Created);
    let later = T0 + 6_000_000;
    assert_eq!(
        create(&mut e, "cse-in/a/m", "Ca", 4, json!({"m2m:cin": {"con": "new"}}), later).0,
        Rsc::Created
    );
    let (_, cnt) = get(&mut e, "cse-in/a/m", "Ca", later);
    assert_eq!(cnt["m2m:cnt"]["cni"], 1);
    assert_eq!(get(&mut e, "cse-in/a/m/ol", "Ca", later).1["m2m:cin"]["con"], "new");
}

#[test]
fn rcn_variants() {
    let mut e = engine();
    setup(&mut e);
    create(&mut e, "cse-in/a/c", "Ca", 4, json!({"m2m:cin": {"rn": "i", "con": "1"}}), T0);
    let mut r = RequestPrimitive::new(Operation::Retrieve, "cse-in/a/c", Some("Ca".into()), "1");
    for (rcn, key) in [
        (ResultContent::Attributes, "/m2m:cnt/rn"),
        (ResultContent::AttributesAndChildResources, "/m2m:cnt/m2m:cin/0/con"),
        (ResultContent::ChildResources, "/m2m:cnt/m2m:cin/0/con"),
        (ResultContent::AttributesAndChildResourceReferences, "/m2m:cnt/ch/0/nm"),
        (ResultContent::ChildResourceReferences, "/m2m:rrl/rrf/0/val"),
    ] {
        r.rcn = Some(rcn);
        let (rsp, _) = e.handle(&r, T0);
        assert_eq!(rsp.rsc, Rsc::Ok);
        assert!(rsp.pc.as_ref().and_then(|p| p.pointer(key)).is_some(), "{rcn:?}: {:?}", rsp.pc);
    }
    for (rcn, key) in [
        (ResultContent::HierarchicalAddress, "/m2m:uri"),
        (ResultContent::HierarchicalAddressAndAttributes, "/m2m:rce/uri"),
    ] {
        let mut c = RequestPrimitive::new(Operation::Create, "cse-in/a/c", Some("Ca".into()), "2");
        c.ty = Some(4);
        c.pc = Some(json!({"m2m:cin": {"con": "x"}}));
        c.rcn = Some(rcn);
        let (rsp, _) = e.handle(&c, T0);
        assert_eq!(rsp.rsc, Rsc::Created);
        assert!(rsp.pc.as_ref().and_then(|p| p.pointer(key)).is_some(), "{rcn:?}: {:?}", rsp.pc);
    }
    r.rcn = Some(ResultContent::HierarchicalAddress);
    assert_eq!(e.handle(&r, T0).0.rsc, Rsc::BadRequest, "rcn=2 is not allowed for RETRIEVE");
    let (rsp, fx) = {
        let mut c = RequestPrimitive::new(Operation::Create, "cse-in/a/c", Some("Ca".into()), "2");
        c.ty = Some(4);
        c.pc = Some(json!({"m2m:cin": {"con": "2"}}));
        c.rcn = Some(ResultContent::Nothing);
        e.handle(&c, T0)
    };
    assert_eq!(rsp.rsc, Rsc::Created);
    assert_eq!(rsp.pc, None);
    assert_eq!(fx.ops.len(), 2, "the cin and its container are written");
}

#[test]
fn failed_requests_write_nothing() {
    let mut e = engine();
    setup(&mut e);
    let mut r = RequestPrimitive::new(Operation::Create, "cse-in/a/c", Some("Ca".into()), "1");
    r.ty = Some(4);
    r.pc = Some(json!({"m2m:cin": {"con": "1", "bad": 2}}));
    let (rsp, fx) = e.handle(&r, T0);
    assert_eq!(rsp.rsc, Rsc::BadRequest);
    assert!(fx.ops.is_empty() && fx.notes.is_empty());
}

/// An assigned AE-ID never collides with one an AE chose itself (`C<n>` is a valid originator).
#[test]
fn assigned_ae_ids_skip_ids_taken_by_choice() {
    let mut e = engine();
    let chosen: Vec<String> = (50..60).map(|n| format!("C{n}")).collect();
    for id in &chosen {
        let ae = json!({"m2m:ae": {"rn": format!("x{id}"), "api": "Nx", "rr": false, "srv": ["3"]}});
        assert_eq!(create(&mut e, "cse-in", id, 2, ae, T0).0, Rsc::Created);
    }
    let mut assigned = std::collections::HashSet::new();
    for i in 0..70 {
        let mut r = RequestPrimitive::new(Operation::Create, "cse-in", None, "1");
        r.ty = Some(2);
        r.pc = Some(json!({"m2m:ae": {"rn": format!("y{i}"), "api": "Nx", "rr": false, "srv": ["3"]}}));
        let (rsp, _) = e.handle(&r, T0);
        assert_eq!(rsp.rsc, Rsc::Created, "registration {i}: {:?}", rsp.pc);
        let aei = rsp.pc.unwrap()["m2m:ae"]["aei"].as_str().unwrap().to_owned();
        assert!(!chosen.contains(&aei) && assigned.insert(aei.clone()), "{aei} assigned twice");
    }
}

/// A subscription CREATE refused in its pre-check still leaves the removal of what expired on the way (store
/// ops and notifications) for the caller to write: the resource is gone from memory either way.
#[test]
fn a_refused_subscription_keeps_the_effects_of_expiry() {
    let mut e = engine();
    setup(&mut e);
    let sub = json!({"m2m:sub": {"rn": "s", "nu": ["local://x"], "enc": {"net": [4]}}});
    assert_eq!(create(&mut e, "cse-in/a/c", "Ca", 23, sub, T0).0, Rsc::Created);
    let et = onem2m::time::format(T0 + 10_000_000);
    let (rsc, tmp) = create(&mut e, "cse-in/a/c", "Ca", 4, json!({"m2m:cin": {"con": "1", "et": et}}), T0);
    assert_eq!(rsc, Rsc::Created);
    let tmp_ri = tmp["m2m:cin"]["ri"].as_str().unwrap().to_owned();
    let _ = e.take_effects();
    let mut r = RequestPrimitive::new(Operation::Create, "cse-in/a/nothing", Some("Ca".into()), "1");
    r.ty = Some(23);
    r.pc = Some(json!({"m2m:sub": {"nu": ["local://y"]}}));
    let refused = e.precheck_subscription(&r, T0 + 11_000_000).unwrap_err();
    assert_eq!(refused.rsc, Rsc::NotFound);
    let fx = e.take_effects();
    assert!(
        fx.ops.iter().any(|op| matches!(op, crate::store::Op::Del(k) if *k == tmp_ri)),
        "the expired contentInstance's removal is written: {:?}",
        fx.ops
    );
    assert_eq!(fx.notes.len(), 1, "the subscription on its container is told");
}

#[test]
fn stored_records_rebuild_the_same_tree() {
    let mut e = Engine::new(CseConfig::default(), Vec::new(), T0).unwrap();
    let mut rows = std::collections::BTreeMap::new();
    let apply = |fx: super::Effects, rows: &mut std::collections::BTreeMap<String, Vec<u8>>| {
        for op in fx.ops {
            match op {
                crate::store::Op::Put(k, v) => {
                    rows.insert(k, v);
                }
                crate::store::Op::Del(k) => {
                    rows.remove(&k);
                }
            }
        }
    };
    apply(e.take_effects(), &mut rows);
    let ae = json!({"m2m:ae": {"rn": "a", "api": "Nx", "rr": true, "srv": ["3"]}});
    let mut r = RequestPrimitive::new(Operation::Create, "cse-in", Some("Ca".into()), "1");
    r.ty = Some(2);
    r.pc = Some(ae);
    let (_, fx) = e.handle(&r, T0);
    apply(fx, &mut rows);
    let mut again = Engine::new(CseConfig::default(), rows.into_iter().collect(), T0).unwrap();
    assert!(again.take_effects().ops.is_empty());
    assert_eq!(again.len(), e.len());
    assert_eq!(get(&mut again, "cse-in/a", "Ca", T0).1, get(&mut e, "cse-in/a", "Ca", T0).1);
}

#[test]
fn records_are_written_as_before() {
    // `to_record` writes the fields directly; the bytes must stay those of the `json!` object it replaced, so
    // data written by earlier versions and by this one read the same.
    let mut attrs = serde_json::Map::new();
    attrs.insert("con".into(), json!("quote \" backslash \\ newline \n é \u{1}"));
    attrs.insert("lbl".into(), json!(["a", "b"]));
    attrs.insert("cs".into(), json!(42));
    let r = super::Res {
        ty: onem2m::ResourceType::ContentInstance,
        ri: "cin\"7".into(),
        rn: "n/é".into(),
        pi: "cnt3".into(),
        owner: "C\\x".into(),
        seq: u64::MAX,
        attrs,
    };
    let old = serde_json::to_vec(&json!({"ty": r.ty.code(), "ri": r.ri, "rn": r.rn, "pi": r.pi,
        "owner": r.owner, "seq": r.seq, "attrs": r.attrs}))
    .unwrap();
    assert_eq!(String::from_utf8(r.to_record()).unwrap(), String::from_utf8(old).unwrap());
    let back = super::Res::from_record(&r.to_record()).unwrap();
    assert_eq!(
        (back.ri, back.rn, back.pi, back.owner, back.seq, back.attrs),
        (r.ri, r.rn, r.pi, r.owner, r.seq, r.attrs)
    );
}

#[test]
fn a_create_at_mni_writes_each_key_once_and_rebuilds_the_same_tree() {
    let mut e = Engine::new(CseConfig::default(), Vec::new(), T0).unwrap();
    let mut rows = std::collections::BTreeMap::new();
    let apply = |fx: super::Effects, rows: &mut std::collections::BTreeMap<String, Vec<u8>>| {
        let mut keys = std::collections::HashSet::new();
        for op in fx.ops {
            match op {
                crate::store::Op::Put(k, v) => {
                    assert!(keys.insert(k.clone()), "{k} written twice in one batch");
                    rows.insert(k, v);
                }
                crate::store::Op::Del(k) => {
                    assert!(keys.insert(k.clone()), "{k} written twice in one batch");
                    rows.remove(&k);
                }
            }
        }
        keys.len()
    };
    apply(e.take_effects(), &mut rows);
    let mut run = |e: &mut Engine, op: Operation, to: &str, ty: Option<u16>, pc: Option<Value>| {
        let mut r = RequestPrimitive::new(op, to, Some("Ca".into()), "1");
        r.ty = ty;
        r.pc = pc;
        let (rsp, fx) = e.handle(&r, T0);
        (rsp.rsc, apply(fx, &mut rows))
    };
    let ae = json!({"m2m:ae": {"rn": "a", "api": "Nx", "rr": true, "srv": ["3"]}});
    assert_eq!(run(&mut e, Operation::Create, "cse-in", Some(2), Some(ae)).0, Rsc::Created);
    let cnt = json!({"m2m:cnt": {"rn": "c", "mni": 2}});
    assert_eq!(run(&mut e, Operation::Create, "cse-in/a", Some(3), Some(cnt)).0, Rsc::Created);
    for i in 0..5 {
        let cin = json!({"m2m:cin": {"rn": format!("i{i}"), "con": format!("v{i}")}});
        let (rsc, keys) = run(&mut e, Operation::Create, "cse-in/a/c", Some(4), Some(cin));
        assert_eq!(rsc, Rsc::Created);
        // The new contentInstance and the container, plus the oldest contentInstance once mni is reached.
        assert_eq!(keys, if i < 2 { 2 } else { 3 }, "create {i}");
    }
    assert_eq!(run(&mut e, Operation::Delete, "cse-in/a/c/i4", None, None).0, Rsc::Deleted);
    let mut again = Engine::new(CseConfig::default(), rows.into_iter().collect(), T0).unwrap();
    assert!(again.take_effects().ops.is_empty());
    assert_eq!(again.len(), e.len());
    for to in ["cse-in/a/c", "cse-in/a/c/la", "cse-in/a/c/ol"] {
        assert_eq!(get(&mut again, to, "Ca", T0), get(&mut e, to, "Ca", T0), "{to}");
    }
    let (_, cnt) = get(&mut again, "cse-in/a/c", "Ca", T0);
    assert_eq!((cnt["m2m:cnt"]["cni"].clone(), cnt["m2m:cnt"]["cbs"].clone()), (json!(1), json!(2)));
}

mod never_panics {
    //! Random requests (targets, types, JSON bodies) never panic the engine, and refused requests write nothing.

    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9 /:._-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("rn".to_owned()),
                        Just("con".to_owned()),
                        Just("mni".to_owned()),
                        Just("mbs".to_owned()),
                        Just("nu".to_owned()),
                        Just("enc".to_owned()),
                        Just("acpi".to_owned()),
                        Just("pv".to_owned()),
                        Just("et".to_owned()),
                        Just("lbl".to_owned()),
                        Just("api".to_owned()),
                        Just("rr".to_owned()),
                        Just("srv".to_owned()),
                        "[a-z]{1,4}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_requests(
            op in 0u8..4,
            to in prop_oneof![Just("cse-in".to_owned()), Just("cse-in/a".to_owned()), Just("cse-in/a/c".to_owned()),
                Just("cse-in/a/c/la".to_owned()), Just("/id-in/Ca".to_owned()), "[a-z/~_-]{0,16}"],
            ty in prop_oneof![Just(None), (0u16..30).prop_map(Some)],
            wrapper in prop_oneof![Just("m2m:ae"), Just("m2m:cnt"), Just("m2m:cin"), Just("m2m:sub"), Just("m2m:acp"), Just("x")],
            body in json_value(),
            fr in prop_oneof![Just(None), Just(Some("Ca".to_owned())), Just(Some("CAdmin".to_owned())), Just(Some("Cz".to_owned()))],
        ) {
            let mut e = engine();
            setup(&mut e);
            let op = [Operation::Create, Operation::Retrieve, Operation::Update, Operation::Delete][usize::from(op)];
            let mut r = RequestPrimitive::new(op, to, fr, "p");
            r.ty = ty;
            let mut m = Map::new();
            m.insert(wrapper.to_owned(), body);
            r.pc = Some(Value::Object(m));
            let before = e.len();
            let (rsp, fx) = e.handle(&r, T0);
            if !rsp.rsc.is_success() {
                prop_assert!(fx.ops.is_empty(), "refused request wrote {:?}", fx.ops);
                prop_assert_eq!(e.len(), before);
                prop_assert!(rsp.debug_message().is_some_and(|m| !m.is_empty()));
            }
        }
    }
}

#[test]
fn acod_chty_limits_which_children_a_rule_lets_create() {
    let mut e = engine();
    setup(&mut e);
    let b = json!({"m2m:ae": {"rn": "b", "api": "Nx", "rr": true, "srv": ["3"]}});
    assert_eq!(create(&mut e, "cse-in", "Cb", 2, b, T0).0, Rsc::Created);
    // Everyone may read, and create subscriptions only.
    let acp = json!({"m2m:acp": {"rn": "p",
        "pv": {"acr": [{"acor": ["all"], "acop": 34}, {"acor": ["all"], "acop": 1, "acod": [{"chty": [23]}]}]},
        "pvs": {"acr": [{"acor": ["Ca"], "acop": 63}]}}});
    let (rsc, pc) = create(&mut e, "cse-in/a", "Ca", 1, acp, T0);
    assert_eq!(rsc, Rsc::Created, "{pc}");
    let acp_ri = pc["m2m:acp"]["ri"].as_str().unwrap().to_owned();
    let cnt = json!({"m2m:cnt": {"rn": "rsp", "acpi": [acp_ri]}});
    assert_eq!(create(&mut e, "cse-in/a", "Ca", 3, cnt, T0).0, Rsc::Created);
    let cin = json!({"m2m:cin": {"con": "forged"}});
    assert_eq!(create(&mut e, "cse-in/a/rsp", "Cb", 4, cin.clone(), T0).0, Rsc::OriginatorHasNoPrivilege);
    let sub = json!({"m2m:sub": {"rn": "s", "nu": ["Cb"], "enc": {"net": [3]}}});
    assert_eq!(create(&mut e, "cse-in/a/rsp", "Cb", 23, sub, T0).0, Rsc::Created);
    assert_eq!(get(&mut e, "cse-in/a/rsp", "Cb", T0).0, Rsc::Ok);
    assert_eq!(create(&mut e, "cse-in/a/rsp", "Ca", 4, cin, T0).0, Rsc::Created, "the owner still may");
    // A malformed acod is refused.
    let bad = json!({"m2m:acp": {"rn": "q", "pv": {"acr": [{"acor": ["all"], "acop": 1, "acod": [{"chty": ["x"]}]}]},
        "pvs": {"acr": [{"acor": ["Ca"], "acop": 63}]}}});
    assert_eq!(create(&mut e, "cse-in/a", "Ca", 1, bad, T0).0, Rsc::BadRequest);
}

#[test]
fn a_stored_tree_opens_only_under_its_own_identity() {
    let mut e = Engine::new(CseConfig::default(), Vec::new(), T0).unwrap();
    let rows: Vec<(String, Vec<u8>)> = e
        .take_effects()
        .ops
        .into_iter()
        .filter_map(|op| match op {
            crate::store::Op::Put(k, v) => Some((k, v)),
            crate::store::Op::Del(_) => None,
        })
        .collect();
    let admin = CseConfig { admin: "CRoot".into(), sp_id: "sp.example".into(), ..CseConfig::default() };
    Engine::new(admin, rows.clone(), T0).expect("the admin and SP-ID may change");
    for other in [
        CseConfig { cse_id: "id-other".into(), ..CseConfig::default() },
        CseConfig { rn: "base-other".into(), ..CseConfig::default() },
    ] {
        let Err(crate::CseError::Identity(msg)) = Engine::new(other, rows.clone(), T0) else {
            panic!("another CSE-ID or CSEBase name is refused")
        };
        assert!(msg.contains("\"id-in\"") && msg.contains("\"cse-in\""), "{msg}");
    }
}
