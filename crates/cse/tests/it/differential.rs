//! The differential suite: every script runs against ACME and the embedded CSE; status codes, resource types and
//! key attributes must agree, except the deviations of ACME from the specification listed in
//! `docs/onem2m-acme-differences.md` (there the embedded CSE follows the specification, which is asserted).

use crate::common::{Acme, Embedded};
use crate::scripts::{self, Obs};

/// Steps where ACME answers differently from the specification: (script, step label, what ACME does).
/// Each entry is described in docs/onem2m-acme-differences.md.
const ACME_DEVIATIONS: &[(&str, &str)] = &[];

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
        let known = ACME_DEVIATIONS.iter().any(|(s, l)| *s == script && *l == a.label);
        if (a.rsc != o.rsc || a.key != o.key) && !known {
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
        all.extend(compare(name, &a, &o));
    }
    assert!(all.is_empty(), "differences:\n{}", all.join("\n"));
}
