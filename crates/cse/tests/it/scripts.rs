//! The Mca request scripts run against both ACME and the embedded CSE. Each step records an observation (label,
//! RSC, key attributes); the differential test compares the two lists.

#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Answer, Mca, Receiver};

/// One observed step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obs {
    pub(crate) label: String,
    pub(crate) rsc: u16,
    /// The spec's expected RSC for this step.
    pub(crate) expect: u16,
    pub(crate) key: Value,
}

pub(crate) struct Run<'a> {
    pub(crate) m: &'a Mca,
    pub(crate) out: Vec<Obs>,
}

impl Run<'_> {
    /// Records a step: the RSC, the resource type and the listed attributes of the answer.
    pub(crate) fn obs(&mut self, label: &str, expect: u16, a: &Answer, keys: &[&str]) -> Answer {
        let r = a.res();
        let mut k = serde_json::Map::new();
        if a.rsc < 4000 && !keys.is_empty() {
            k.insert("ty".into(), r.get("ty").cloned().unwrap_or(Value::Null));
            for key in keys {
                k.insert((*key).into(), r.get(*key).cloned().unwrap_or(Value::Null));
            }
        }
        self.out.push(Obs { label: label.into(), rsc: a.rsc, expect, key: Value::Object(k) });
        a.clone()
    }

    /// Records a free-form value.
    pub(crate) fn note(&mut self, label: &str, v: Value) {
        self.out.push(Obs { label: label.into(), rsc: 0, expect: 0, key: v });
    }

    #[allow(clippy::too_many_arguments)] // one argument per part of a CREATE keeps the scripts readable
    pub(crate) async fn create(
        &mut self,
        label: &str,
        expect: u16,
        path: &str,
        origin: &str,
        ty: u16,
        body: Value,
        keys: &[&str],
    ) -> Answer {
        let a = self.m.req("POST", path, Some(origin), Some(ty), Some(body)).await;
        self.obs(label, expect, &a, keys)
    }

    pub(crate) async fn get(
        &mut self,
        label: &str,
        expect: u16,
        path: &str,
        origin: &str,
        keys: &[&str],
    ) -> Answer {
        let a = self.m.req("GET", path, Some(origin), None, None).await;
        self.obs(label, expect, &a, keys)
    }

    pub(crate) async fn put(
        &mut self,
        label: &str,
        expect: u16,
        path: &str,
        origin: &str,
        body: Value,
        keys: &[&str],
    ) -> Answer {
        let a = self.m.req("PUT", path, Some(origin), None, Some(body)).await;
        self.obs(label, expect, &a, keys)
    }

    pub(crate) async fn delete(&mut self, label: &str, expect: u16, path: &str, origin: &str) -> Answer {
        let a = self.m.req("DELETE", path, Some(origin), None, None).await;
        self.obs(label, expect, &a, &[])
    }

    pub(crate) async fn register(&mut self, origin: &str, rn: &str, poa: Option<&str>) -> Answer {
        let mut ae = json!({"rn": rn, "api": "Nipechain.test", "rr": true, "srv": ["3"]});
        if let Some(p) = poa {
            ae["poa"] = json!([p]);
        }
        self.create(
            &format!("register {origin}"),
            2001,
            "/cse-in",
            origin,
            2,
            json!({"m2m:ae": ae}),
            &["rn", "api", "aei", "rr"],
        )
        .await
    }
}

pub(crate) async fn ae_registration(r: &mut Run<'_>) {
    r.register("Cdiff1", "weather", None).await;
    let ae = |rn: &str, api: &str| json!({"m2m:ae": {"rn": rn, "api": api, "rr": true, "srv": ["3"]}});
    r.create("re-register same originator", 4117, "/cse-in", "Cdiff1", 2, ae("weather2", "Nx"), &[]).await;
    r.create("api not N/R", 4000, "/cse-in", "Cdiff2", 2, ae("w3", "Xbad"), &[]).await;
    r.create("missing rr", 4000, "/cse-in", "Cdiff3", 2, json!({"m2m:ae": {"api": "Nx", "srv": ["3"]}}), &[])
        .await;
    r.create("missing api", 4000, "/cse-in", "Cdiff4", 2, json!({"m2m:ae": {"rr": true, "srv": ["3"]}}), &[])
        .await;
    r.create("name taken", 4105, "/cse-in", "Cdiff5", 2, ae("weather", "Nx"), &[]).await;
    r.create("originator not C/S", 4107, "/cse-in", "Xbad", 2, ae("w6", "Nx"), &[]).await;
    let a = r.m.req("POST", "/cse-in", None, Some(2), Some(ae("w7", "Nx"))).await;
    r.obs("no originator: CSE assigns an AE-ID", 2001, &a, &["rn", "api"]);
    r.note(
        "assigned AE-ID starts with C",
        json!(a.res().get("aei").and_then(Value::as_str).is_some_and(|s| s.starts_with('C'))),
    );
    let a = r.m.req("POST", "/cse-in", Some("C"), Some(2), Some(ae("w8", "Nx"))).await;
    r.obs("originator C: CSE assigns an AE-ID", 2001, &a, &["rn"]);
    r.note(
        "assigned AE-ID for C is longer",
        json!(a.res().get("aei").and_then(Value::as_str).is_some_and(|s| s.starts_with('C') && s.len() > 1)),
    );
    r.get("unregistered originator retrieves CSEBase", 4103, "/cse-in", "Cstranger", &[]).await;
    r.get("registered AE retrieves CSEBase", 2000, "/cse-in", "Cdiff1", &["rn", "csi", "cst", "srv", "ty"])
        .await;
    r.get("retrieve own AE", 2000, "/cse-in/weather", "Cdiff1", &["rn", "api", "aei", "rr", "srv"]).await;
    r.get("retrieve AE by SP-relative", 2000, "/~/id-in/cse-in/weather", "Cdiff1", &["rn"]).await;
    r.get("retrieve AE by unstructured ri", 2000, "/~/id-in/Cdiff1", "Cdiff1", &["rn"]).await;
    r.get("retrieve other's AE", 4103, "/cse-in/weather", "Cstranger", &[]).await;
    r.get("admin retrieves AE", 2000, "/cse-in/weather", "CAdmin", &["rn"]).await;
    r.put(
        "update AE lbl",
        2004,
        "/cse-in/weather",
        "Cdiff1",
        json!({"m2m:ae": {"lbl": ["a"]}}),
        &["lbl", "rr"],
    )
    .await;
    r.put(
        "update AE aei (read-only)",
        4000,
        "/cse-in/weather",
        "Cdiff1",
        json!({"m2m:ae": {"aei": "Cx"}}),
        &[],
    )
    .await;
    r.delete("delete own AE", 2002, "/cse-in/weather", "Cdiff1").await;
    r.get("retrieve deleted AE", 4004, "/cse-in/weather", "Cdiff1", &[]).await;
    r.register("Cdiff1", "weather", None).await;
}

pub(crate) async fn container_and_cin(r: &mut Run<'_>) {
    r.register("Capp", "app", None).await;
    let keys = &["rn", "mni", "cni", "cbs", "st"];
    r.create(
        "create cnt",
        2001,
        "/cse-in/app",
        "Capp",
        3,
        json!({"m2m:cnt": {"rn": "data", "mni": 3}}),
        keys,
    )
    .await;
    for i in 0..5 {
        r.create(
            &format!("cin {i}"),
            2001,
            "/cse-in/app/data",
            "Capp",
            4,
            json!({"m2m:cin": {"con": format!("v{i}"), "cnf": "text/plain:0"}}),
            &["con", "cs", "cnf", "st"],
        )
        .await;
    }
    r.get("cnt after 5 cins, mni 3", 2000, "/cse-in/app/data", "Capp", keys).await;
    r.get("la", 2000, "/cse-in/app/data/la", "Capp", &["con", "cs"]).await;
    r.get("ol", 2000, "/cse-in/app/data/ol", "Capp", &["con", "cs"]).await;
    let a = r.m.req("GET", "/cse-in/app/data?rcn=6", Some("Capp"), None, None).await;
    let n = a.pc.pointer("/m2m:rrl/rrf").and_then(Value::as_array).map(Vec::len);
    r.obs("rcn=6 child refs", 2000, &a, &[]);
    r.note("rcn=6 number of refs", json!(n));
    let a = r.m.req("GET", "/cse-in/app/data?rcn=4", Some("Capp"), None, None).await;
    let cins: Vec<Value> = a
        .res()
        .get("m2m:cin")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(|c| c["con"].clone()).collect())
        .unwrap_or_default();
    r.obs("rcn=4 attributes and children", 2000, &a, &["rn", "cni"]);
    r.note("rcn=4 child cons", json!(cins));
    let a = r.m.req("GET", "/cse-in/app/data?rcn=5", Some("Capp"), None, None).await;
    let mut ch: Vec<Value> = a
        .res()
        .get("ch")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(|x| x["typ"].clone()).collect())
        .unwrap_or_default();
    ch.sort_by_key(Value::to_string);
    r.obs("rcn=5 attributes and child references", 2000, &a, &["rn", "cni"]);
    r.note("rcn=5 child types", json!(ch));
    let a = r.m.req("GET", "/cse-in/app/data?rcn=8", Some("Capp"), None, None).await;
    let n = a.res().get("m2m:cin").and_then(Value::as_array).map(Vec::len);
    r.obs("rcn=8 child resources", 2000, &a, &[]);
    r.note("rcn=8 child cins", json!(n));
    let a = r.m.req("DELETE", "/cse-in/app/data/ol?rcn=1", Some("Capp"), None, None).await;
    r.obs("DELETE ol with rcn=1 returns it", 2002, &a, &["con"]);
    let a = r
        .m
        .req("PUT", "/cse-in/app/data?rcn=9", Some("Capp"), None, Some(json!({"m2m:cnt": {"lbl": ["m"]}})))
        .await;
    r.obs("UPDATE with rcn=9", 2004, &a, &["lbl"]);
    r.note("rcn=9 leaves out unmodified attributes", json!(a.res().get("rn").is_none()));
    let mut keys: Vec<String> = a.res().as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    r.note("rcn=9 attribute names", json!(keys));
    r.put(
        "update mni 1",
        2004,
        "/cse-in/app/data",
        "Capp",
        json!({"m2m:cnt": {"mni": 1}}),
        &["mni", "cni", "cbs", "st"],
    )
    .await;
    r.get("cnt after mni 1", 2000, "/cse-in/app/data", "Capp", &["mni", "cni", "cbs", "st"]).await;
    r.delete("delete la", 2002, "/cse-in/app/data/la", "Capp").await;
    r.get("la of empty cnt", 4004, "/cse-in/app/data/la", "Capp", &[]).await;
    r.get("cnt after delete la", 2000, "/cse-in/app/data", "Capp", &["cni", "cbs"]).await;
    r.create(
        "cnt with mbs 10",
        2001,
        "/cse-in/app",
        "Capp",
        3,
        json!({"m2m:cnt": {"rn": "small", "mbs": 10}}),
        &["mbs"],
    )
    .await;
    r.create(
        "cin larger than mbs",
        5207,
        "/cse-in/app/small",
        "Capp",
        4,
        json!({"m2m:cin": {"con": "0123456789A"}}),
        &[],
    )
    .await;
    r.create(
        "cin that fits",
        2001,
        "/cse-in/app/small",
        "Capp",
        4,
        json!({"m2m:cin": {"con": "0123456789"}}),
        &["con", "cs"],
    )
    .await;
    r.create(
        "second cin pushes first out",
        2001,
        "/cse-in/app/small",
        "Capp",
        4,
        json!({"m2m:cin": {"rn": "sec", "con": "abc"}}),
        &["con"],
    )
    .await;
    r.get("small after mbs eviction", 2000, "/cse-in/app/small", "Capp", &["cni", "cbs"]).await;
    r.create(
        "cin under cin",
        4108,
        "/cse-in/app/small/sec",
        "Capp",
        4,
        json!({"m2m:cin": {"con": "x"}}),
        &[],
    )
    .await;
    r.create(
        "cin without con (optional since R4)",
        2001,
        "/cse-in/app/small",
        "Capp",
        4,
        json!({"m2m:cin": {"cnf": "text/plain:0"}}),
        &[],
    )
    .await;
    r.create("cin directly under AE", 4108, "/cse-in/app", "Capp", 4, json!({"m2m:cin": {"con": "x"}}), &[])
        .await;
    r.create("nested cnt", 2001, "/cse-in/app/data", "Capp", 3, json!({"m2m:cnt": {"rn": "sub"}}), &["rn"])
        .await;
    r.get("nested cnt", 2000, "/cse-in/app/data/sub", "Capp", &["rn", "cni"]).await;
    let a =
        r.m.req(
            "POST",
            "/cse-in/app/small?rcn=0",
            Some("Capp"),
            Some(4),
            Some(json!({"m2m:cin": {"con": "r0"}})),
        )
        .await;
    r.obs("create rcn=0", 2001, &a, &[]);
    r.note("rcn=0 has no content", json!(a.pc.is_null()));
    let a =
        r.m.req(
            "POST",
            "/cse-in/app/small?rcn=2",
            Some("Capp"),
            Some(4),
            Some(json!({"m2m:cin": {"rn": "r2", "con": "r2"}})),
        )
        .await;
    r.obs("create rcn=2", 2001, &a, &[]);
    r.note(
        "rcn=2 gives the address",
        json!(a.pc.get("m2m:uri").and_then(Value::as_str).is_some_and(|u| u.ends_with("app/small/r2"))),
    );
    r.create(
        "cin with et in the past",
        4000,
        "/cse-in/app/small",
        "Capp",
        4,
        json!({"m2m:cin": {"con": "x", "et": "20000101T000000"}}),
        &[],
    )
    .await;
    r.create(
        "sub under cin",
        5203,
        "/cse-in/app/small/r2",
        "Capp",
        23,
        json!({"m2m:sub": {"nu": ["Capp"]}}),
        &[],
    )
    .await;
    r.put("update cin", 4005, "/cse-in/app/small/la", "Capp", json!({"m2m:cin": {"con": "y"}}), &[]).await;
    r.create(
        "cnt for concurrent writers",
        2001,
        "/cse-in/app",
        "Capp",
        3,
        json!({"m2m:cnt": {"rn": "busy"}}),
        &[],
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let m = r.m.clone();
        tasks.push(tokio::spawn(async move {
            let cin = json!({"m2m:cin": {"con": format!("{i}")}});
            m.req("POST", "/cse-in/app/busy", Some("Capp"), Some(4), Some(cin)).await.rsc
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    r.note("16 concurrent creates all 2001", json!(codes.iter().all(|c| *c == 2001)));
    let a = r.get("retrieve after 16 concurrent creates", 2000, "/cse-in/app/busy", "Capp", &[]).await;
    r.note("cni and st after 16 concurrent creates", json!({"cni": a.res()["cni"], "st": a.res()["st"]}));
    r.delete("delete cnt", 2002, "/cse-in/app/data", "Capp").await;
    r.get("nested cnt gone with parent", 4004, "/cse-in/app/data/sub", "Capp", &[]).await;
}

pub(crate) async fn subscription(r: &mut Run<'_>) {
    let mut url_rx = Receiver::start().await;
    let mut poa_rx = Receiver::start().await;
    r.register("Csub", "subapp", Some(&poa_rx.url)).await;
    r.create("cnt", 2001, "/cse-in/subapp", "Csub", 3, json!({"m2m:cnt": {"rn": "c"}}), &["rn"]).await;
    let sub = json!({"m2m:sub": {"rn": "s1", "nu": [url_rx.url], "enc": {"net": [3]}, "su": url_rx.url}});
    r.create("sub with URL nu", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["rn", "enc", "nct"]).await;
    let v = url_rx.next().await;
    r.note("verification request", json!({"vrq": v.pointer("/m2m:sgn/vrq"), "cr": v.pointer("/m2m:sgn/cr")}));
    let sub = json!({"m2m:sub": {"rn": "s2", "nu": ["Csub"], "enc": {"net": [1, 3]}, "nct": 1}});
    r.create("sub with AE-ID nu", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["rn", "nu", "enc"]).await;
    r.create("cin", 2001, "/cse-in/subapp/c", "Csub", 4, json!({"m2m:cin": {"con": "hello"}}), &["con"])
        .await;
    let n = url_rx.next_cin().await;
    r.note(
        "URL notification",
        json!({"net": n.pointer("/m2m:sgn/nev/net"), "con": n.pointer("/m2m:sgn/nev/rep/m2m:cin/con")}),
    );
    let n = poa_rx.next_cin().await;
    r.note(
        "poa notification",
        json!({"net": n.pointer("/m2m:sgn/nev/net"), "con": n.pointer("/m2m:sgn/nev/rep/m2m:cin/con")}),
    );
    r.put("update cnt lbl", 2004, "/cse-in/subapp/c", "Csub", json!({"m2m:cnt": {"lbl": ["x"]}}), &["lbl"])
        .await;
    let n = poa_rx.next().await;
    r.note(
        "update notification",
        json!({"net": n.pointer("/m2m:sgn/nev/net"), "lbl": n.pointer("/m2m:sgn/nev/rep/m2m:cnt/lbl")}),
    );
    let mut other_rx = Receiver::start().await;
    r.register("Cother", "otherapp", Some(&other_rx.url)).await;
    let sub = json!({"m2m:sub": {"rn": "s8", "nu": ["Cother"], "enc": {"net": [3]}}});
    r.create("sub with another AE's AE-ID as nu", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["rn"]).await;
    let v = other_rx.next().await;
    r.note(
        "verification sent to the other AE's poa",
        json!({"vrq": v.pointer("/m2m:sgn/vrq"), "cr": v.pointer("/m2m:sgn/cr")}),
    );
    r.delete("delete s8", 2002, "/cse-in/subapp/c/s8", "Csub").await;
    let bad = json!({"m2m:sub": {"rn": "s3", "nu": ["http://127.0.0.1:1/nowhere"]}});
    r.create("sub with unreachable nu", 5204, "/cse-in/subapp/c", "Csub", 23, bad, &[]).await;
    r.get("failed sub not created", 4004, "/cse-in/subapp/c/s3", "Csub", &[]).await;
    // nu entries that can never be reached are refused like an unreachable URL, not accepted silently.
    let bad = json!({"m2m:sub": {"rn": "s3", "nu": ["Cnobody"]}});
    r.create("sub with an unknown AE-ID as nu", 5204, "/cse-in/subapp/c", "Csub", 23, bad, &[]).await;
    r.register("Cnopoa", "nopoaapp", None).await;
    let bad = json!({"m2m:sub": {"rn": "s3", "nu": ["Cnopoa"]}});
    r.create("sub with nu of an AE without poa", 5204, "/cse-in/subapp/c", "Csub", 23, bad, &[]).await;
    r.get("refused subs not created", 4004, "/cse-in/subapp/c/s3", "Csub", &[]).await;
    let upd = json!({"m2m:sub": {"nu": [url_rx.url, "Cnobody"]}});
    r.put("update sub nu with an unknown AE-ID", 5204, "/cse-in/subapp/c/s1", "Csub", upd, &[]).await;
    let upd = json!({"m2m:sub": {"nu": [url_rx.url, "http://127.0.0.1:1/nowhere"]}});
    r.put("update sub nu with an unreachable target", 5204, "/cse-in/subapp/c/s1", "Csub", upd, &[]).await;
    r.get("sub nu unchanged after failed update", 2000, "/cse-in/subapp/c/s1", "Csub", &["rn"]).await;
    r.create("sub without nu", 4000, "/cse-in/subapp/c", "Csub", 23, json!({"m2m:sub": {"rn": "s4"}}), &[])
        .await;
    r.delete("delete sub with su", 2002, "/cse-in/subapp/c/s1", "Csub").await;
    let mut n = url_rx.next().await;
    while n.pointer("/m2m:sgn/sud").is_none() {
        n = url_rx.next().await;
    }
    r.note("deletion notice", json!({"sud": n.pointer("/m2m:sgn/sud")}));
    let sub = json!({"m2m:sub": {"rn": "s5", "nu": ["Csub"], "enc": {"net": [3]}, "exc": 1}});
    r.create("sub with exc 1", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["exc"]).await;
    r.create("cin 2", 2001, "/cse-in/subapp/c", "Csub", 4, json!({"m2m:cin": {"con": "two"}}), &["con"])
        .await;
    let got = poa_rx.drain(Duration::from_millis(1500)).await;
    let mut cons: Vec<Value> =
        got.iter().filter_map(|n| n.pointer("/m2m:sgn/nev/rep/m2m:cin/con").cloned()).collect();
    cons.sort_by_key(Value::to_string);
    r.note("notifications for cin 2 (s2 and s5)", json!(cons));
    r.get("sub with exc 1 gone after one notification", 4004, "/cse-in/subapp/c/s5", "Csub", &[]).await;
    r.delete("delete s2", 2002, "/cse-in/subapp/c/s2", "Csub").await;
    let _ = poa_rx.drain(Duration::from_millis(300)).await;
    let bad = json!({"m2m:sub": {"rn": "s6", "nu": ["Csub"], "enc": {"net": [1, 2, 4]}, "nct": 2}});
    r.create("nct 2 with net 2/4 not allowed", 4000, "/cse-in/subapp/c", "Csub", 23, bad, &[]).await;
    let sub = json!({"m2m:sub": {"rn": "s6", "nu": ["Csub"], "enc": {"net": [1]}, "nct": 2}});
    r.create("sub for updates, nct 2", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["enc", "nct"]).await;
    r.put("update cnt mni", 2004, "/cse-in/subapp/c", "Csub", json!({"m2m:cnt": {"mni": 10}}), &["mni"])
        .await;
    let n = poa_rx.next_or_null().await;
    let rep = n.pointer("/m2m:sgn/nev/rep/m2m:cnt").cloned().unwrap_or(Value::Null);
    r.note("nct 2 notification carries the modified attribute", json!({"net": n.pointer("/m2m:sgn/nev/net"), "mni": rep.get("mni"), "has_rn": rep.get("rn").is_some()}));
    r.delete("delete s6", 2002, "/cse-in/subapp/c/s6", "Csub").await;
    let sub = json!({"m2m:sub": {"rn": "s7", "nu": ["Csub"], "enc": {"net": [2, 4]}}});
    r.create("sub for delete events", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["enc", "nct"]).await;
    let _ = poa_rx.drain(Duration::from_millis(300)).await;
    r.delete("delete la (net 4)", 2002, "/cse-in/subapp/c/la", "Csub").await;
    let n = poa_rx.next_or_null().await;
    r.note("delete child notification", json!({"net": n.pointer("/m2m:sgn/nev/net")}));
    // Deleting the subscribed container: net 2 to the subscriber, then the deletion notice to su.
    let sub = json!({"m2m:sub": {"rn": "s9", "nu": ["Csub"], "enc": {"net": [2]}, "su": url_rx.url}});
    r.create("sub for deletion of the container", 2001, "/cse-in/subapp/c", "Csub", 23, sub, &["enc"]).await;
    let _ = poa_rx.drain(Duration::from_millis(300)).await;
    let _ = url_rx.drain(Duration::from_millis(300)).await;
    r.delete("delete the subscribed container", 2002, "/cse-in/subapp/c", "Csub").await;
    let got = poa_rx.drain(Duration::from_millis(1500)).await;
    let nets: Vec<Value> = got.iter().filter_map(|n| n.pointer("/m2m:sgn/nev/net").cloned()).collect();
    r.note("net 2 notifications on container deletion", json!(nets));
    let got = url_rx.drain(Duration::from_millis(1500)).await;
    let suds: Vec<Value> = got.iter().filter_map(|n| n.pointer("/m2m:sgn/sud").cloned()).collect();
    r.note("deletion notices to su when the parent is deleted", json!(suds));
    batch_notify(r).await;
}

/// `bn` (batchNotify) and `ln` (latestNotify): aggregated notifications (`m2m:agn`).
async fn batch_notify(r: &mut Run<'_>) {
    let mut rx = Receiver::start().await;
    r.create("cnt for batches", 2001, "/cse-in/subapp", "Csub", 3, json!({"m2m:cnt": {"rn": "bc"}}), &["rn"])
        .await;
    let agn = |n: &Value| {
        let sgns = n.pointer("/m2m:agn/m2m:sgn").and_then(Value::as_array).cloned().unwrap_or_default();
        let cons: Vec<Value> =
            sgns.iter().filter_map(|s| s.pointer("/nev/rep/m2m:cin/con").cloned()).collect();
        json!({"count": sgns.len(), "cons": cons})
    };
    let cin = |con: &str| json!({"m2m:cin": {"con": con}});
    let steps: [(&str, Value, &[&str]); 3] = [
        ("num 2", json!({"num": 2, "dur": "PT30S"}), &["b1", "b2"]),
        ("num 2 and ln", json!({"num": 2, "dur": "PT30S"}), &["l1", "l2"]),
        ("dur 1 s", json!({"num": 10, "dur": "PT1S"}), &["d1"]),
    ];
    for (i, (what, bn, cons)) in steps.into_iter().enumerate() {
        let mut sub =
            json!({"m2m:sub": {"rn": format!("b{i}"), "nu": [rx.url], "enc": {"net": [3]}, "bn": bn}});
        if what.ends_with("ln") {
            sub["m2m:sub"]["ln"] = json!(true);
        }
        r.create(&format!("sub with bn {what}"), 2001, "/cse-in/subapp/bc", "Csub", 23, sub, &["rn", "bn"])
            .await;
        let v = rx.next().await;
        r.note(&format!("bn {what}: verification request"), json!({"vrq": v.pointer("/m2m:sgn/vrq")}));
        for con in cons {
            r.create(
                &format!("bn {what}: cin {con}"),
                2001,
                "/cse-in/subapp/bc",
                "Csub",
                4,
                cin(con),
                &["con"],
            )
            .await;
        }
        let n = rx.next().await;
        r.note(&format!("bn {what}: aggregated notification"), agn(&n));
        r.delete(&format!("delete sub bn {what}"), 2002, &format!("/cse-in/subapp/bc/b{i}"), "Csub").await;
        let _ = rx.drain(Duration::from_millis(300)).await;
    }
    let bad = json!({"m2m:sub": {"rn": "bx", "nu": [rx.url], "bn": {"num": "two"}}});
    r.create("sub with a bn that is not a batchNotify", 4000, "/cse-in/subapp/bc", "Csub", 23, bad, &[])
        .await;
    let bad = json!({"m2m:sub": {"rn": "bx", "nu": [rx.url], "ln": 1}});
    r.create("sub with ln not a boolean", 4000, "/cse-in/subapp/bc", "Csub", 23, bad, &[]).await;
}

pub(crate) async fn discovery(r: &mut Run<'_>) {
    r.register("Cdisc", "disc", None).await;
    r.create(
        "cnt a",
        2001,
        "/cse-in/disc",
        "Cdisc",
        3,
        json!({"m2m:cnt": {"rn": "a", "lbl": ["x", "room"]}}),
        &["lbl"],
    )
    .await;
    r.create("cnt b", 2001, "/cse-in/disc", "Cdisc", 3, json!({"m2m:cnt": {"rn": "b"}}), &[]).await;
    r.create(
        "cin",
        2001,
        "/cse-in/disc/a",
        "Cdisc",
        4,
        json!({"m2m:cin": {"rn": "i1", "con": "1", "lbl": ["x"]}}),
        &[],
    )
    .await;
    for (label, q) in [
        ("ty=3", "fu=1&ty=3"),
        ("ty=4", "fu=1&ty=4"),
        ("lbl=x", "fu=1&lbl=x"),
        ("ty=3 and lbl=x", "fu=1&ty=3&lbl=x"),
        ("ty=3 or lbl=x", "fu=1&ty=3&lbl=x&fo=2"),
        ("lbl=room", "fu=1&lbl=room"),
        ("lim=1 ty=3", "fu=1&ty=3&lim=1"),
        ("ty=3+4 (several ty)", "fu=1&ty=3+4"),
        ("ty=3&ty=4 (repeated ty)", "fu=1&ty=3&ty=4"),
        ("ty=3 lim=1 ofst=2", "fu=1&ty=3&lim=1&ofst=2"),
        ("nothing matches", "fu=1&lbl=none"),
    ] {
        let a = r.m.req("GET", &format!("/cse-in/disc?{q}"), Some("Cdisc"), None, None).await;
        r.obs(&format!("discovery {label}"), 2000, &a, &[]);
        let mut uris: Vec<String> =
            a.pc.get("m2m:uril")
                .and_then(Value::as_array)
                .map(|u| u.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
        uris.sort();
        r.note(&format!("discovered {label}"), json!(uris));
    }
    let a = r.m.req("GET", "/cse-in/disc?fu=1&ty=3&drt=2", Some("Cdisc"), None, None).await;
    let n = a.pc.get("m2m:uril").and_then(Value::as_array).map_or(0, Vec::len);
    r.obs("discovery drt=2", 2000, &a, &[]);
    r.note("drt=2 count", json!(n));
    // Created-after / created-before around the creation time of container a (read from the CSE itself).
    let ct = r.m.req("GET", "/cse-in/disc/a", Some("Cdisc"), None, None).await.res()["ct"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let secs = ct.get(..15).unwrap_or("");
    for (label, q) in [
        ("cra before a", format!("fu=1&ty=3&cra={}", shift(secs, -5))),
        ("crb before a", format!("fu=1&ty=3&crb={}", shift(secs, -5))),
        ("crb after a", format!("fu=1&ty=3&crb={}", shift(secs, 5))),
    ] {
        let a = r.m.req("GET", &format!("/cse-in/disc?{q}"), Some("Cdisc"), None, None).await;
        r.obs(&format!("discovery {label}"), 2000, &a, &[]);
        let mut uris: Vec<String> =
            a.pc.get("m2m:uril")
                .and_then(Value::as_array)
                .map(|u| u.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
        uris.sort();
        r.note(&format!("discovered {label}"), json!(uris));
    }
    // Conditional retrieval (fu=2): the target itself is returned only if it matches.
    let a = r.m.req("GET", "/cse-in/disc/a?fu=2&lbl=room", Some("Cdisc"), None, None).await;
    r.obs("conditional retrieval matching", 2000, &a, &["rn"]);
    // Another application's AE with one container everyone may discover (ACP `acop` 32) and one only its owner.
    r.register("Cdisc2", "disc2", None).await;
    r.create(
        "acp discover-all",
        2001,
        "/cse-in/disc2",
        "Cdisc2",
        1,
        json!({"m2m:acp": {"rn": "acpDisc", "pv": {"acr": [{"acor": ["all"], "acop": 32}]},
            "pvs": {"acr": [{"acor": ["Cdisc2"], "acop": 63}]}}}),
        &[],
    )
    .await;
    r.create(
        "cnt open",
        2001,
        "/cse-in/disc2",
        "Cdisc2",
        3,
        json!({"m2m:cnt": {"rn": "open", "acpi": ["cse-in/disc2/acpDisc"], "lbl": ["x"]}}),
        &[],
    )
    .await;
    r.create("cnt closed", 2001, "/cse-in/disc2", "Cdisc2", 3, json!({"m2m:cnt": {"rn": "closed"}}), &[])
        .await;
    // Discovery from the CSEBase (issue 13): 2000 with what the originator may discover, for a registered AE and
    // for a stranger alike; the target itself is not a result.
    for (label, origin, q) in [
        ("CSEBase ty=3 (registered AE)", "Cdisc", "/cse-in?fu=1&ty=3"),
        ("CSEBase ty=2 (registered AE)", "Cdisc", "/cse-in?fu=1&ty=2"),
        ("CSEBase ty=4 (registered AE)", "Cdisc", "/cse-in?fu=1&ty=4"),
        ("CSEBase lbl=x (registered AE)", "Cdisc", "/cse-in?fu=1&lbl=x"),
        ("CSEBase ty=3 or lbl=x (registered AE)", "Cdisc", "/cse-in?fu=1&ty=3&lbl=x&fo=2"),
        ("CSEBase lvl=1 (registered AE)", "Cdisc", "/cse-in?fu=1&lvl=1"),
        ("CSEBase no condition (registered AE)", "Cdisc", "/cse-in?fu=1"),
        ("CSEBase ty=3 (the other AE)", "Cdisc2", "/cse-in?fu=1&ty=3"),
        ("CSEBase ty=1 (the other AE)", "Cdisc2", "/cse-in?fu=1&ty=1"),
        ("CSEBase ty=3 (stranger)", "Cstranger", "/cse-in?fu=1&ty=3"),
        ("CSEBase ty=2 (stranger)", "Cstranger", "/cse-in?fu=1&ty=2"),
        ("CSEBase ty=5 (stranger)", "Cstranger", "/cse-in?fu=1&ty=5"),
        ("another's AE ty=3", "Cdisc", "/cse-in/disc2?fu=1&ty=3"),
        ("own AE ty=2 (not itself)", "Cdisc", "/cse-in/disc?fu=1&ty=2"),
        ("own container ty=3 (not itself)", "Cdisc", "/cse-in/disc/a?fu=1&ty=3"),
        ("stranger on an AE", "Cstranger", "/cse-in/disc?fu=1&ty=3"),
    ] {
        let a = r.m.req("GET", q, Some(origin), None, None).await;
        r.obs(&format!("discovery {label}"), 2000, &a, &[]);
        let mut uris: Vec<String> =
            a.pc.get("m2m:uril")
                .and_then(Value::as_array)
                .map(|u| u.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
        uris.sort();
        r.note(&format!("discovered {label}"), json!(uris));
    }
    // Result forms: unstructured (drt=2) ids are SP-relative; references (rcn=6) are SP-relative structured
    // addresses.
    let a = r.m.req("GET", "/cse-in?fu=1&ty=3&drt=2", Some("Cdisc"), None, None).await;
    r.obs("discovery CSEBase drt=2", 2000, &a, &[]);
    let ids: Vec<String> = a.pc["m2m:uril"]
        .as_array()
        .map(|u| u.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    r.note(
        "drt=2: three SP-relative ids",
        json!(ids.len() == 3 && ids.iter().all(|i| i.starts_with("/id-in/") && i.matches('/').count() == 2)),
    );
    for (label, q) in [
        ("discovery rcn=6", "/cse-in?fu=1&ty=3&rcn=6"),
        ("discovery rcn=6 lbl=x", "/cse-in?fu=1&lbl=x&rcn=6"),
    ] {
        let a = r.m.req("GET", q, Some("Cdisc"), None, None).await;
        r.obs(label, 2000, &a, &[]);
        let mut rrf: Vec<Value> =
            a.pc.pointer("/m2m:rrl/rrf").and_then(Value::as_array).cloned().unwrap_or_default();
        rrf.sort_by_key(Value::to_string);
        r.note(&format!("{label} references"), json!(rrf));
    }
    let a = r.m.req("GET", "/cse-in?fu=1&ty=3&drt=2", Some("Cstranger"), None, None).await;
    r.obs("discovery CSEBase drt=2 (stranger)", 2000, &a, &[]);
    r.note(
        "CSEBase drt=2 count (stranger)",
        json!(a.pc.get("m2m:uril").and_then(Value::as_array).map_or(0, Vec::len)),
    );
    let a = r.m.req("GET", "/cse-in?fu=1&ty=3", None, None, None).await;
    r.obs("discovery CSEBase without originator", 4000, &a, &[]);
}

pub(crate) async fn access_control(r: &mut Run<'_>) {
    r.register("Cowner", "owned", None).await;
    r.create("cnt", 2001, "/cse-in/owned", "Cowner", 3, json!({"m2m:cnt": {"rn": "c"}}), &[]).await;
    r.get("stranger retrieves cnt", 4103, "/cse-in/owned/c", "Cstranger", &[]).await;
    r.create(
        "stranger creates under AE",
        4103,
        "/cse-in/owned",
        "Cstranger",
        3,
        json!({"m2m:cnt": {"rn": "x"}}),
        &[],
    )
    .await;
    r.delete("stranger deletes cnt", 4103, "/cse-in/owned/c", "Cstranger").await;
    let acp = json!({"m2m:acp": {"rn": "acp1",
        "pv": {"acr": [{"acor": ["Cfriend"], "acop": 2}]},
        "pvs": {"acr": [{"acor": ["Cowner"], "acop": 63}]}}});
    let a = r.create("create acp", 2001, "/cse-in/owned", "Cowner", 1, acp, &["rn", "pv", "pvs"]).await;
    let acp_ri = a.res().get("ri").and_then(Value::as_str).unwrap_or("none").to_owned();
    r.put("set acpi", 2004, "/cse-in/owned/c", "Cowner", json!({"m2m:cnt": {"acpi": [acp_ri]}}), &[]).await;
    r.get("friend retrieves", 2000, "/cse-in/owned/c", "Cfriend", &["rn"]).await;
    r.delete("friend may not delete", 4103, "/cse-in/owned/c", "Cfriend").await;
    r.get("stranger still denied", 4103, "/cse-in/owned/c", "Cstranger", &[]).await;
    r.put(
        "acpi to a missing acp",
        4000,
        "/cse-in/owned/c",
        "Cowner",
        json!({"m2m:cnt": {"acpi": ["nosuchacp"]}}),
        &[],
    )
    .await;
}

pub(crate) async fn errors(r: &mut Run<'_>) {
    r.register("Cerr", "err", None).await;
    // Expiration: a container whose et is 2 s ahead (taken from the CSE's own clock) is gone 4 s later.
    let ct = r.m.req("GET", "/cse-in/err", Some("Cerr"), None, None).await.res()["ct"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let now =
        r.m.req("PUT", "/cse-in/err", Some("Cerr"), None, Some(json!({"m2m:ae": {"lbl": ["t"]}})))
            .await
            .res()["lt"]
            .as_str()
            .unwrap_or(&ct)
            .to_owned();
    let et = shift(now.get(..15).unwrap_or(""), 3);
    r.create(
        "cnt with et 3 s ahead",
        2001,
        "/cse-in/err",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "short", "et": et}}),
        &["rn"],
    )
    .await;
    r.get("short-lived cnt before et", 2000, "/cse-in/err/short", "Cerr", &["rn"]).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let a = r.m.req("GET", "/cse-in/err/short", Some("Cerr"), None, None).await;
    r.note("short-lived cnt after et: rsc", json!(a.rsc));
    r.get("unknown resource", 4004, "/cse-in/nothing/here", "Cerr", &[]).await;
    r.create("wrong ty for content", 4000, "/cse-in/err", "Cerr", 3, json!({"m2m:cin": {"con": "x"}}), &[])
        .await;
    r.create(
        "unknown attribute",
        4000,
        "/cse-in/err",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "u", "bogus": 1}}),
        &[],
    )
    .await;
    r.create(
        "read-only attribute",
        4000,
        "/cse-in/err",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "u", "cni": 5}}),
        &[],
    )
    .await;
    r.create(
        "wrong attribute type",
        4000,
        "/cse-in/err",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "u", "mni": "many"}}),
        &[],
    )
    .await;
    r.create("cnt", 2001, "/cse-in/err", "Cerr", 3, json!({"m2m:cnt": {"rn": "c"}}), &[]).await;
    r.create("duplicate rn", 4105, "/cse-in/err", "Cerr", 3, json!({"m2m:cnt": {"rn": "c"}}), &[]).await;
    r.put("update read-only cni", 4000, "/cse-in/err/c", "Cerr", json!({"m2m:cnt": {"cni": 3}}), &[]).await;
    r.put(
        "update with wrong type name",
        4102,
        "/cse-in/err/c",
        "Cerr",
        json!({"m2m:ae": {"lbl": ["a"]}}),
        &[],
    )
    .await;
    r.delete("delete CSEBase", 4005, "/cse-in", "CAdmin").await;
    let a =
        r.m.raw(
            "POST",
            "/cse-in/err",
            &[
                ("X-M2M-Origin", "Cerr".into()),
                ("X-M2M-RI", "1".into()),
                ("X-M2M-RVI", "3".into()),
                ("Content-Type", "application/json;ty=3".into()),
            ],
            b"{\"m2m:cnt\": {".to_vec(),
        )
        .await;
    r.obs("malformed JSON", 4000, &a, &[]);
    let a = r
        .m
        .raw("GET", "/cse-in/err", &[("X-M2M-Origin", "Cerr".into()), ("X-M2M-RVI", "3".into())], Vec::new())
        .await;
    r.obs("missing X-M2M-RI", 4000, &a, &[]);
    let a = r
        .m
        .raw("GET", "/cse-in/err", &[("X-M2M-Origin", "Cerr".into()), ("X-M2M-RI", "1".into())], Vec::new())
        .await;
    r.obs("missing X-M2M-RVI", 4001, &a, &[]);
    let a =
        r.m.raw(
            "POST",
            "/cse-in/err",
            &[
                ("X-M2M-Origin", "Cerr".into()),
                ("X-M2M-RI", "1".into()),
                ("X-M2M-RVI", "3".into()),
                ("Content-Type", "application/json;ty=999".into()),
            ],
            b"{\"m2m:xyz\": {}}".to_vec(),
        )
        .await;
    r.obs("unknown ty", 4000, &a, &[]);
    let a =
        r.m.raw("GET", "/cse-in/err", &[("X-M2M-RI", "1".into()), ("X-M2M-RVI", "3".into())], Vec::new())
            .await;
    r.obs("missing X-M2M-Origin on RETRIEVE", 4000, &a, &[]);
    r.create(
        "create under a missing parent",
        4004,
        "/cse-in/err/nope",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "u"}}),
        &[],
    )
    .await;
    let a = r.m.req("GET", "/cse-in/err/c?rcn=9", Some("Cerr"), None, None).await;
    r.obs("RETRIEVE with rcn=9", 4000, &a, &[]);
    let a = r.m.req("GET", "/cse-in/err/c?rcn=0", Some("Cerr"), None, None).await;
    r.obs("RETRIEVE with rcn=0", 4000, &a, &[]);
    let a = r.m.req("GET", "/cse-in/err/c?zzz=1", Some("Cerr"), None, None).await;
    r.obs("unknown query parameter", 4000, &a, &[]);
    let a = r.m.req("GET", "/cse-in/err/c?fu=1&lim=0", Some("Cerr"), None, None).await;
    r.obs("discovery lim=0", 2000, &a, &[]);
    r.note("lim=0 gives an empty list", json!(a.pc.get("m2m:uril").and_then(Value::as_array).map(Vec::len)));
    r.create("rn with a space", 4000, "/cse-in/err", "Cerr", 3, json!({"m2m:cnt": {"rn": "a b"}}), &[]).await;
    r.create(
        "mni negative",
        4000,
        "/cse-in/err",
        "Cerr",
        3,
        json!({"m2m:cnt": {"rn": "neg", "mni": -1}}),
        &[],
    )
    .await;
    r.create(
        "acp without pvs",
        4000,
        "/cse-in/err",
        "Cerr",
        1,
        json!({"m2m:acp": {"rn": "p", "pv": {"acr": []}}}),
        &[],
    )
    .await;
    let ae = json!({"m2m:ae": {"rn": "x", "api": "Nx", "rr": true, "srv": ["3"]}});
    let a = r.m.req("POST", "/cse-in/err", Some("Cnewae"), Some(2), Some(ae)).await;
    r.note("AE under AE (fresh originator): rsc", json!(a.rsc));
    r.get("cnt unchanged after errors", 2000, "/cse-in/err/c", "Cerr", &["rn", "cni", "st"]).await;
}

/// A oneM2M timestamp `YYYYMMDDTHHMMSS` moved by `secs` seconds.
fn shift(ts: &str, secs: i64) -> String {
    let t = onem2m::time::parse(ts).unwrap_or(0) + secs * 1_000_000;
    onem2m::time::format(t).get(..15).unwrap_or("").to_owned()
}

/// Every script, by name.
pub(crate) const ALL: &[&str] =
    &["ae_registration", "container_and_cin", "subscription", "discovery", "access_control", "errors"];

pub(crate) async fn run(name: &str, m: &Mca) -> Vec<Obs> {
    let mut r = Run { m, out: Vec::new() };
    match name {
        "ae_registration" => ae_registration(&mut r).await,
        "container_and_cin" => container_and_cin(&mut r).await,
        "subscription" => subscription(&mut r).await,
        "discovery" => discovery(&mut r).await,
        "access_control" => access_control(&mut r).await,
        "errors" => errors(&mut r).await,
        other => panic!("unknown script {other}"),
    }
    r.out
}
