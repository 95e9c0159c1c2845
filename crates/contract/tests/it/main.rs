//! Tests of the transaction context against an in-memory snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use contract::samples::KvContract;
use contract::{Caller, Contract, ContractError, TxContext};
use ledger_types::proto::Version;
use ledger_types::store::{StateSnapshot, StoreError, VersionedValue};
use std::collections::BTreeMap;

#[derive(Default)]
struct Snap(BTreeMap<(String, String), VersionedValue>);

impl Snap {
    fn with(mut self, ns: &str, k: &str, v: &str, block: u64) -> Self {
        self.0.insert(
            (ns.into(), k.into()),
            VersionedValue { value: v.as_bytes().to_vec(), version: Version { block_num: block, tx_num: 0 } },
        );
        self
    }
}

impl StateSnapshot for Snap {
    fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StoreError> {
        Ok(self.0.get(&(ns.to_owned(), key.to_owned())).cloned())
    }
    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StoreError> {
        Ok(self
            .0
            .iter()
            .filter(|((n, k), _)| n == ns && k.as_str() >= start && (end.is_empty() || k.as_str() < end))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

fn caller() -> Caller {
    Caller { msp_id: "Org1MSP".into(), role: "client".into(), subject: "app".into(), cert_der: vec![] }
}

#[test]
fn reads_record_versions_and_own_writes_are_visible() {
    let snap = Snap::default().with("kv", "a", "1", 3).with("other", "a", "x", 1);
    let c = caller();
    let mut ctx = TxContext::new("kv", &snap, "t".into(), 7, &c);
    assert_eq!(ctx.get_state("a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(ctx.get_state("missing").unwrap(), None);
    ctx.put_state("b", b"2".to_vec()).unwrap();
    assert_eq!(ctx.get_state("b").unwrap(), Some(b"2".to_vec()), "own write visible");
    ctx.delete_state("a").unwrap();
    assert_eq!(ctx.get_state("a").unwrap(), None, "own delete visible");
    assert_eq!(ctx.timestamp(), 7);
    let (rw, ev) = ctx.into_results();
    assert!(ev.is_none());
    let reads: Vec<_> = rw.reads.iter().map(|r| (r.key.as_str(), r.version.map(|v| v.block_num))).collect();
    assert_eq!(reads, vec![("a", Some(3)), ("missing", None)], "b was never read from state");
    let writes: Vec<_> = rw.writes.iter().map(|w| (w.key.as_str(), w.is_delete)).collect();
    assert_eq!(writes, vec![("a", true), ("b", false)]);
}

#[test]
fn range_queries_are_recorded_with_exhaustion() {
    let snap = Snap::default().with("kv", "k1", "1", 1).with("kv", "k2", "2", 2).with("kv", "k3", "3", 3);
    let c = caller();
    let mut ctx = TxContext::new("kv", &snap, "t".into(), 0, &c);
    assert_eq!(ctx.get_range("k1", "k3", 10).unwrap().len(), 2);
    assert_eq!(ctx.get_range("k", "", 1).unwrap().len(), 1);
    let (rw, _) = ctx.into_results();
    assert!(rw.range_queries[0].itr_exhausted);
    assert_eq!(rw.range_queries[0].reads.len(), 2);
    assert!(!rw.range_queries[1].itr_exhausted, "stopped early at the limit");
}

#[test]
fn bad_keys_are_refused() {
    let snap = Snap::default();
    let c = caller();
    let mut ctx = TxContext::new("kv", &snap, "t".into(), 0, &c);
    assert!(matches!(ctx.put_state("", vec![]), Err(ContractError::BadRequest(_))));
    assert!(matches!(ctx.get_state(&"x".repeat(2000)), Err(ContractError::BadRequest(_))));
    // NUL bytes are allowed: Fabric's composite keys are `\0type\0attr\0`.
    ctx.put_state("\0color~id\0red\0a1\0", vec![0]).unwrap();
    assert_eq!(ctx.get_state("\0color~id\0red\0a1\0").unwrap(), Some(vec![0]));
}

#[test]
fn kv_sample_contract() {
    let snap = Snap::default().with("kv", "n", "41", 1);
    let c = caller();
    let mut ctx = TxContext::new("kv", &snap, "t".into(), 0, &c);
    assert_eq!(KvContract.invoke(&mut ctx, "incr", &[b"n".to_vec()]).unwrap(), b"42");
    assert_eq!(KvContract.invoke(&mut ctx, "incr", &[b"n".to_vec()]).unwrap(), b"43");
    let e = KvContract.invoke(&mut ctx, "get", &[b"zz".to_vec()]).unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(KvContract.invoke(&mut ctx, "nope", &[]).unwrap_err().status(), 400);
    assert_eq!(KvContract.invoke(&mut ctx, "put", &[b"k".to_vec()]).unwrap_err().status(), 400);
    let (rw, ev) = ctx.into_results();
    assert_eq!(ev.unwrap().0, "incr");
    assert_eq!(rw.writes[0].value, b"43");
}
