//! The IPE contract end to end over an in-memory state: registry, mapping, policy, both flows, translation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod credentials;
mod flows;
mod policy;
mod registry;
mod translation;

use contract::{Caller, Contract, ContractError, TxContext};
use ipe::{IpeConfig, IpeContract};
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StoreError, VersionedValue};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// A committed state: every successful invocation's writes are applied, as a block commit would.
#[derive(Default)]
struct Ledger {
    state: BTreeMap<String, VersionedValue>,
    block: u64,
    ts: i64,
    ipe: IpeContract,
}

impl StateSnapshot for Ledger {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        assert_eq!(ns, "ipe");
        Ok(self.state.get(key).cloned())
    }
    fn range(
        &self,
        _: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        Ok(self
            .state
            .range(start.to_owned()..)
            .filter(|(k, _)| end.is_empty() || k.as_str() < end)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

type Event = Option<(String, Json)>;

impl Ledger {
    fn new() -> Self {
        Ledger {
            ts: 1_700_000_000,
            ipe: IpeContract::new(IpeConfig { admin_msps: vec!["AdminMSP".into()], ..IpeConfig::default() }),
            ..Ledger::default()
        }
    }

    fn call_raw(&mut self, who: &Caller, f: &str, args: &[Vec<u8>]) -> (Result<Json, ContractError>, Event) {
        self.block += 1;
        self.ts += 1;
        let tx = format!("{:064x}", self.block);
        let mut ctx = TxContext::new("ipe", &*self, tx, self.ts, who);
        let out = self.ipe.invoke(&mut ctx, f, args);
        let (rw, ev) = ctx.into_results();
        let out = match out {
            Ok(bytes) => bytes,
            Err(e) => return (Err(e), None),
        };
        for w in rw.writes {
            if w.is_delete {
                self.state.remove(&w.key);
            } else {
                let version = Version { block_num: self.block, tx_num: 0 };
                self.state.insert(w.key, VersionedValue { value: w.value, version });
            }
        }
        let ev = ev.map(|(n, p)| {
            // Every event the contract emits parses as its typed form, and reads back to the same JSON.
            let typed = ipe::IpeEvent::parse(&n, &p).expect("event parses").expect("a known event name");
            assert_eq!(typed.name(), n);
            let json: Json = serde_json::from_slice(&p).expect("event payload is JSON");
            assert_eq!(serde_json::to_value(typed.to()).unwrap(), json["to"]);
            (n, json)
        });
        (Ok(serde_json::from_slice(&out).expect("answers are JSON")), ev)
    }

    fn call(&mut self, who: &Caller, f: &str, arg: Json) -> (Result<Json, ContractError>, Event) {
        self.call_raw(who, f, &[serde_json::to_vec(&arg).unwrap()])
    }

    fn ok(&mut self, who: &Caller, f: &str, arg: Json) -> (Json, (String, Json)) {
        let (r, ev) = self.call(who, f, arg);
        (r.unwrap_or_else(|e| panic!("{f} failed: {e}")), ev.expect("an event"))
    }

    fn query(&mut self, f: &str, arg: &str) -> Result<Json, ContractError> {
        let who = app_caller();
        self.call_raw(&who, f, &[arg.as_bytes().to_vec()]).0
    }

    fn status(&mut self, who: &Caller, f: &str, arg: Json) -> i32 {
        match self.call(who, f, arg).0 {
            Ok(_) => 200,
            Err(e) => e.status(),
        }
    }
}

fn caller(msp: &str, role: &str, subject: &str) -> Caller {
    Caller { msp_id: msp.into(), role: role.into(), subject: subject.into(), cert_der: vec![] }
}
fn gw1() -> Caller {
    caller("Org1MSP", "client", "gw1")
}
fn gw2() -> Caller {
    caller("Org2MSP", "client", "gw2")
}
fn admin() -> Caller {
    caller("Org1MSP", "admin", "Admin@org1")
}
fn app_caller() -> Caller {
    caller("Org2MSP", "client", "app1")
}

const EP: &str = "imei:356938035643809";
const AE: &str = "Cimei-356938035643809";

fn registered() -> Ledger {
    let mut l = Ledger::new();
    l.ok(
        &gw1(),
        "register_device",
        json!({"endpoint": EP, "lwm2m_version": "1.1", "lifetime": 300, "binding": "U",
               "links": "</>;rt=\"oma.lwm2m\";ct=\"110 112\",</1/0>,</3/0>,</3303/0>,</3311/0>,</5>"}),
    );
    l
}

fn grant_all(l: &mut Ledger) {
    l.ok(&admin(), "grant", json!({"id": "apps", "originators": ["Capp*"], "devices": ["*"], "ops": ["*"]}));
}
