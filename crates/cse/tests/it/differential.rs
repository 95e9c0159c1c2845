//! The differential suite: every script runs against ACME and the embedded CSE; status codes, resource types and
//! key attributes must agree, except the deviations of ACME from the specification listed in
//! `docs/onem2m-acme-differences.md` (there the embedded CSE follows the specification, which is asserted).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code: report known deviations, fail on bad tables

use crate::common::{Acme, Embedded};
use crate::scripts::{self, Obs};

/// Steps where ACME answers differently from the specification: (script, step label, the specification's value
/// that the embedded CSE must give). Each entry is described in docs/onem2m-acme-differences.md.
const ACME_DEVIATIONS: &[(&str, &str, &str)] = &[
    // ACME loses counter updates under concurrent writes to one container (D1 in the doc). It may get it right by
    // chance, so only the embedded side is asserted.
    ("container_and_cin", "cni and st after 16 concurrent creates", r#"{"cni": 16, "st": 16}"#),
    // ACME answers 4117 (already registered) to an AE CREATE under an AE by a new originator (D2 in the doc).
    ("errors", "AE under AE (fresh originator): rsc", "4108"),
    // ACME removes expired resources only in a periodic sweep (every 60 s by default) and still serves them after
    // `et` (D3 in the doc).
    ("errors", "short-lived cnt after et: rsc", "4004"),
];

fn compare(script: &str, acme: &[Obs], ours: &[Obs]) -> Vec<String> {
    let mut diffs = Vec::new();
    for o in ours {
        if o.rsc != o.expect {
            diffs.push(format!(
                "{script}/{}: embedded answered {} but the spec says {}",
                o.label, o.rsc, o.expect
            ));
        }
    }
    for (a, o) in acme.iter().zip(ours) {
        assert_eq!(a.label, o.label, "scripts out of step");
        let known = ACME_DEVIATIONS.iter().find(|(s, l, _)| *s == script && *l == a.label);
        if let Some((_, _, spec)) = known {
            let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
            if o.key != spec {
                diffs.push(format!("{script}/{}: embedded gave {} but the spec says {spec}", o.label, o.key));
            }
            if a.key != spec {
                println!("known ACME deviation {script}/{}: ACME gave {}", a.label, a.key);
            }
        } else if a.rsc != o.rsc || a.key != o.key {
            diffs.push(format!(
                "{script}/{}: ACME rsc={} key={} | embedded rsc={} key={}",
                a.label, a.rsc, a.key, o.rsc, o.key
            ));
        }
    }
    if acme.len() != ours.len() {
        diffs.push(format!("{script}: ACME {} steps, embedded {}", acme.len(), ours.len()));
    }
    diffs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_answers_as_acme() {
    let acme = Acme::start().await;
    let mut all = Vec::new();
    for name in scripts::ALL {
        acme.reset().await;
        let a = scripts::run(name, &acme.mca).await;
        let e = Embedded::start(None).await;
        let o = scripts::run(name, &e.mca).await;
        e.stop().await;
        if std::env::var_os("DIFF_PRINT").is_some() {
            for (x, y) in a.iter().zip(&o) {
                println!("{name}/{}: ACME {} {} | embedded {} {}", x.label, x.rsc, x.key, y.rsc, y.key);
            }
        }
        all.extend(compare(name, &a, &o));
    }
    assert!(all.is_empty(), "differences:\n{}", all.join("\n"));
}
