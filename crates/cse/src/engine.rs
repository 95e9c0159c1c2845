//! The resource tree and the request logic, synchronous and free of I/O.
//!
//! The shell ([`crate::Cse`]) calls [`Engine::handle`] under a mutex with the current time; the engine returns the
//! response plus the storage writes and notifications the request caused (`Effects`). The shell queues the writes
//! for commit and answers only after they are durable.
//!
//! This module holds the tree itself (indexes, expiry, the writes of a request); the request logic is split by
//! seam, each module adding methods to [`Engine`]:
//!
//! - `routing`: target resolution and dispatch of an operation ([`Engine::handle`]);
//! - `access`: ACP privileges and originator checks;
//! - `create`, `retrieve` (with discovery), `update`, `delete`: the operations, every resource type each;
//! - `schema`: the attributes each resource type accepts and their types, allowed children;
//! - `notification`: subscriptions, their targets and the notifications a change causes;
//! - `resource`: one resource (`Res`) and its stored record.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use onem2m::{ResourceType, Rsc, time};
use serde_json::{Map, Value, json};

use crate::store::Op;
use crate::{CseConfig, CseError};

mod access;
mod create;
mod delete;
mod notification;
mod resource;
mod retrieve;
mod routing;
mod schema;
mod update;

pub(crate) use notification::{BatchPolicy, Note, NotifyTarget};
use resource::Res;

type Fail = (Rsc, String);

fn fail<T>(rsc: Rsc, msg: impl Into<String>) -> Result<T, Fail> {
    Err((rsc, msg.into()))
}

/// What a request caused besides its response.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) ops: Vec<Op>,
    pub(crate) notes: Vec<Note>,
}

/// The resource tree.
pub(crate) struct Engine {
    cfg: CseConfig,
    base_ri: String,
    res: HashMap<String, Res>,
    children: HashMap<String, BTreeMap<u64, String>>,
    names: HashMap<(String, String), String>,
    aes: HashMap<String, String>,
    expiry: BTreeSet<(i64, String)>,
    /// Subscriptions per subscribed resource, in creation order.
    subs: HashMap<String, BTreeMap<u64, String>>,
    seq: u64,
    fx: Effects,
    /// Keys the current request wrote, in order (`true`: put, `false`: delete). [`Engine::take_fx`] turns them into
    /// store ops: one per key, its final state, serialized once.
    touched: Vec<(String, bool)>,
    /// The resource identifier reserved for the next CREATE (a subscription whose `sur` was already verified).
    reserved_ri: Option<String>,
}

const DEFAULT_ET_MICROS: i64 = 5 * 365 * 86_400 * 1_000_000;

impl Engine {
    /// A fresh tree with only the CSEBase, or the tree rebuilt from stored records.
    pub(crate) fn new(cfg: CseConfig, records: Vec<(String, Vec<u8>)>, now: i64) -> Result<Self, CseError> {
        let mut e = Engine {
            base_ri: cfg.cse_id.clone(),
            cfg,
            res: HashMap::new(),
            children: HashMap::new(),
            names: HashMap::new(),
            aes: HashMap::new(),
            expiry: BTreeSet::new(),
            subs: HashMap::new(),
            seq: 0,
            fx: Effects::default(),
            touched: Vec::new(),
            reserved_ri: None,
        };
        let mut loaded: Vec<Res> = Vec::with_capacity(records.len());
        for (k, v) in records {
            let r = Res::from_record(&v)
                .ok_or_else(|| CseError::Corrupt(format!("corrupt stored resource {k:?}")))?;
            loaded.push(r);
        }
        loaded.sort_by_key(|r| r.seq);
        // Every resource's address and the AEs' registrations hang on the CSE-ID and the CSEBase name: a
        // stored tree is served only under the identity it was created with.
        if let Some(base) = loaded.iter().find(|r| r.ty == ResourceType::CseBase)
            && (base.ri != e.cfg.cse_id || base.rn != e.cfg.rn)
        {
            return Err(CseError::Identity(format!(
                "the stored CSE is CSE-ID {:?} with CSEBase {:?}, configured are {:?} and {:?}",
                base.ri, base.rn, e.cfg.cse_id, e.cfg.rn
            )));
        }
        if !loaded.iter().any(|r| r.ty == ResourceType::CseBase) {
            let ts = time::format(now);
            let mut a = Map::new();
            a.insert("ty".into(), json!(5));
            a.insert("ri".into(), json!(e.base_ri));
            a.insert("rn".into(), json!(e.cfg.rn));
            a.insert("pi".into(), json!(""));
            a.insert("ct".into(), json!(ts));
            a.insert("lt".into(), json!(ts));
            a.insert("cst".into(), json!(1));
            a.insert("csi".into(), json!(format!("/{}", e.cfg.cse_id)));
            a.insert("srt".into(), json!([1, 2, 3, 4, 5, 23]));
            a.insert("srv".into(), json!(["2a", "3", "4", "5"]));
            a.insert("poa".into(), json!(e.cfg.poa));
            a.insert("acpi".into(), json!([]));
            let base = Res {
                ty: ResourceType::CseBase,
                ri: e.base_ri.clone(),
                rn: e.cfg.rn.clone(),
                pi: String::new(),
                owner: e.cfg.admin.clone(),
                seq: 0,
                attrs: a,
            };
            e.fx.ops.push(Op::Put(base.ri.clone(), base.to_record()));
            loaded.insert(0, base);
        }
        for mut r in loaded {
            e.seq = e.seq.max(r.seq);
            // The CSEBase shows the configured points of access, also when they changed since the last run.
            if r.ty == ResourceType::CseBase && r.attrs.get("poa") != Some(&json!(e.cfg.poa)) {
                r.attrs.insert("poa".into(), json!(e.cfg.poa));
                e.fx.ops.push(Op::Put(r.ri.clone(), r.to_record()));
            }
            e.index(r);
        }
        Ok(e)
    }

    /// Writes produced while building (the new CSEBase) that must be stored.
    pub(crate) fn take_effects(&mut self) -> Effects {
        self.take_fx()
    }

    /// The effects so far, with the store ops of the touched keys: for each key only its last write counts (a
    /// batch is written in one WAL record, so intermediate states are never visible), and a put stores the
    /// resource as it is now. A request that changes a container twice (a new contentInstance, then the oldest
    /// one dropped for `mni`) thus writes it once.
    fn take_fx(&mut self) -> Effects {
        let mut fx = std::mem::take(&mut self.fx);
        let touched = std::mem::take(&mut self.touched);
        let mut last = vec![false; touched.len()];
        {
            let mut seen = std::collections::HashSet::with_capacity(touched.len());
            for (i, (k, _)) in touched.iter().enumerate().rev() {
                last[i] = seen.insert(k.as_str());
            }
        }
        for ((k, put), last) in touched.into_iter().zip(last) {
            if !last {
                continue;
            }
            match self.res.get(&k) {
                Some(r) if put => fx.ops.push(Op::Put(k, r.to_record())),
                _ => fx.ops.push(Op::Del(k)),
            }
        }
        fx
    }

    /// Whether any subscription watches `ri` (so that notification bodies are built only when needed).
    fn watched(&self, ri: &str) -> bool {
        self.subs.get(ri).is_some_and(|m| !m.is_empty())
    }

    /// Records that the resource `ri` was changed in place (counters only: nothing the indexes use).
    fn touch(&mut self, ri: &str) {
        self.touched.push((ri.to_owned(), true));
    }

    fn index(&mut self, r: Res) {
        if r.ty != ResourceType::CseBase {
            self.children.entry(r.pi.clone()).or_default().insert(r.seq, r.ri.clone());
            self.names.insert((r.pi.clone(), r.rn.clone()), r.ri.clone());
        }
        if r.ty == ResourceType::Ae
            && let Some(aei) = r.attrs.get("aei").and_then(Value::as_str)
        {
            self.aes.insert(aei.to_owned(), r.ri.clone());
        }
        if let Some(et) = r.et() {
            self.expiry.insert((et, r.ri.clone()));
        }
        if r.ty == ResourceType::Subscription {
            self.subs.entry(r.pi.clone()).or_default().insert(r.seq, r.ri.clone());
        }
        self.res.insert(r.ri.clone(), r);
    }

    fn put(&mut self, r: Res) {
        self.touched.push((r.ri.clone(), true));
        if let Some(old) = self.res.get(&r.ri)
            && let Some(et) = old.et()
        {
            self.expiry.remove(&(et, r.ri.clone()));
        }
        self.index(r);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Removes expired resources.
    pub(crate) fn expire(&mut self, now: i64) {
        while let Some((et, ri)) = self.expiry.first().cloned() {
            if et > now {
                break;
            }
            self.expiry.pop_first();
            if self.res.get(&ri).is_some_and(|r| r.et() == Some(et)) {
                self.delete_tree(&ri, now, true);
            }
        }
    }

    /// The CSE-ID with a leading slash, the originator of notifications.
    pub(crate) fn csi(&self) -> String {
        format!("/{}", self.cfg.cse_id)
    }

    /// Number of resources (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.res.len()
    }

    /// The originator that created the resource `ri` (the `X-M2M-Origin` of its CREATE), whether or not the
    /// resource shows it as `cr`.
    pub(crate) fn creator_of(&self, ri: &str) -> Option<&str> {
        self.res.get(ri).map(|r| r.owner.as_str())
    }
}

#[cfg(test)]
mod tests;
