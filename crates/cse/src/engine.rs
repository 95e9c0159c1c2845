//! The resource tree and the request logic, synchronous and free of I/O.
//!
//! The shell ([`crate::Cse`]) calls [`Engine::handle`] under a mutex with the current time; the engine returns the
//! response plus the storage writes and notifications the request caused (`Effects`). The shell queues the writes
//! for commit and answers only after they are durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use onem2m::{
    DiscResType, FilterCriteria, FilterUsage, Operation, RequestPrimitive, ResourceName, ResourceType,
    ResponsePrimitive, ResultContent, Rsc, Target, time,
};
use serde_json::{Map, Value, json};

use crate::store::Op;
use crate::{CseConfig, CseError};

type Fail = (Rsc, String);

fn fail<T>(rsc: Rsc, msg: impl Into<String>) -> Result<T, Fail> {
    Err((rsc, msg.into()))
}

/// One resource in the tree.
#[derive(Debug, Clone)]
pub(crate) struct Res {
    pub(crate) ty: ResourceType,
    pub(crate) ri: String,
    pub(crate) rn: String,
    pub(crate) pi: String,
    /// The originator that created it (the AE-ID for an AE, the admin for the CSEBase).
    pub(crate) owner: String,
    /// Creation order (children are kept in this order).
    pub(crate) seq: u64,
    /// The full representation (`ri`, `rn`, `pi`, `ty`, `ct`, ... and type-specific attributes).
    pub(crate) attrs: Map<String, Value>,
}

impl Res {
    /// The stored form: the JSON object `{"attrs","owner","pi","ri","rn","seq","ty"}` (keys in this order, as
    /// serde_json writes a map), written straight from the fields without copying them into a `Value` first.
    fn to_record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"attrs\":");
        // Writing a map with string keys, or a string, into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.attrs);
        for (k, v) in [("owner", &self.owner), ("pi", &self.pi), ("ri", &self.ri), ("rn", &self.rn)] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            let _ = serde_json::to_writer(&mut out, v.as_str());
        }
        out.extend_from_slice(format!(",\"seq\":{},\"ty\":{}}}", self.seq, self.ty.code()).as_bytes());
        out
    }

    fn from_record(b: &[u8]) -> Option<Res> {
        let v: Value = serde_json::from_slice(b).ok()?;
        Some(Res {
            ty: ResourceType::from_code(u16::try_from(v.get("ty")?.as_u64()?).ok()?)?,
            ri: v.get("ri")?.as_str()?.to_owned(),
            rn: v.get("rn")?.as_str()?.to_owned(),
            pi: v.get("pi")?.as_str()?.to_owned(),
            owner: v.get("owner")?.as_str()?.to_owned(),
            seq: v.get("seq")?.as_u64()?,
            attrs: v.get("attrs")?.as_object()?.clone(),
        })
    }

    fn et(&self) -> Option<i64> {
        self.attrs.get("et").and_then(Value::as_str).and_then(time::parse)
    }

    fn u64_attr(&self, k: &str) -> Option<u64> {
        self.attrs.get(k).and_then(Value::as_u64)
    }

    fn rep(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.ty.short_name().to_owned(), Value::Object(self.attrs.clone()));
        Value::Object(m)
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum NotifyTarget {
    /// An HTTP URL.
    Url(String),
    /// An in-process channel registered with [`crate::Cse::local_poa`] (`poa` = `local://<name>`).
    Local(String),
}

/// A notification to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub(crate) targets: Vec<NotifyTarget>,
    pub(crate) body: Value,
    /// The subscription (SP-relative) it belongs to.
    pub(crate) sur: String,
    /// The subscription's `bn`/`ln`: collect notifications per target and send them aggregated (`m2m:agn`).
    pub(crate) batch: Option<BatchPolicy>,
    /// For the creation of a child: the originator that created it (handed to in-process receivers only).
    pub(crate) creator: Option<String>,
}

/// A subscription's batchNotify (`bn`) and latestNotify (`ln`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPolicy {
    /// Send once this many are collected (`bn.num`; `None`: only the duration counts).
    pub(crate) num: Option<usize>,
    /// Send what is collected this long after the first one (`bn.dur`, 60 s if not given).
    pub(crate) dur: std::time::Duration,
    /// Send only the latest of what is collected (`ln`).
    pub(crate) latest: bool,
}

/// `bn.dur` when a subscription does not give one (ACME's default, `[resource.sub] batchNotifyDuration`).
const DEFAULT_BATCH_DURATION: std::time::Duration = std::time::Duration::from_secs(60);

impl BatchPolicy {
    /// The policy of a subscription's attributes, if it has `bn` (checked by [`check_types`] when it was set).
    fn of(attrs: &Map<String, Value>) -> Option<BatchPolicy> {
        let bn = attrs.get("bn")?.as_object()?;
        let num = bn.get("num").and_then(Value::as_u64).filter(|n| *n > 0);
        let dur = bn.get("dur").and_then(Value::as_str).and_then(time::parse_duration);
        Some(BatchPolicy {
            num: num.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            dur: dur.map_or(DEFAULT_BATCH_DURATION, std::time::Duration::from_micros),
            latest: attrs.get("ln").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// What a request caused besides its response.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) ops: Vec<Op>,
    pub(crate) notes: Vec<Note>,
}

/// A resolved target.
enum Resolved {
    Res(String),
    Latest(String),
    Oldest(String),
}

/// Notification event types (`enc.net`).
mod net {
    pub(super) const UPDATE: u64 = 1;
    pub(super) const DELETE: u64 = 2;
    pub(super) const CREATE_CHILD: u64 = 3;
    pub(super) const DELETE_CHILD: u64 = 4;
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

const AE_CREATE: &[&str] = &[
    "rn", "api", "apn", "rr", "poa", "srv", "lbl", "acpi", "et", "at", "aa", "nl", "csz", "or", "daci",
    "regs", "trps", "scp",
];
const AE_UPDATE: &[&str] = &[
    "apn", "rr", "poa", "srv", "lbl", "acpi", "et", "at", "aa", "nl", "csz", "or", "daci", "regs", "trps",
    "scp",
];
const CNT_CREATE: &[&str] =
    &["rn", "lbl", "acpi", "et", "mni", "mbs", "mia", "cr", "at", "aa", "li", "or", "disr", "daci"];
const CNT_UPDATE: &[&str] =
    &["lbl", "acpi", "et", "mni", "mbs", "mia", "at", "aa", "li", "or", "disr", "daci"];
const CIN_CREATE: &[&str] = &["rn", "lbl", "et", "cnf", "con", "cr", "or", "at", "aa", "dcnt", "dgt"];
const SUB_CREATE: &[&str] = &[
    "rn", "lbl", "acpi", "et", "enc", "exc", "nu", "nct", "su", "cr", "gpi", "nfu", "bn", "rl", "psn", "pn",
    "nsp", "ln", "nec", "daci",
];
const SUB_UPDATE: &[&str] = &[
    "lbl", "acpi", "et", "enc", "exc", "nu", "nct", "gpi", "nfu", "bn", "rl", "psn", "pn", "nsp", "ln",
    "nec", "daci",
];
const ACP_CREATE: &[&str] = &["rn", "lbl", "et", "pv", "pvs", "at", "aa", "adri", "apri", "airi"];
const ACP_UPDATE: &[&str] = &["lbl", "et", "pv", "pvs", "at", "aa", "adri", "apri", "airi"];

/// Whether an access-control rule applies to a CREATE of `child` (TS-0004 `acod`: a rule with
/// accessControlObjectDetails applies to a CREATE only of the child types listed in one of their `chty`;
/// an `acod` entry without `chty` lists no restriction). Other operations are not restricted by `acod`.
fn child_type_allowed(rule: &Value, bit: u8, child: Option<ResourceType>) -> bool {
    let Some(acod) = rule.get("acod").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return true;
    };
    if bit != 1 {
        return true;
    }
    let Some(child) = child else { return false };
    acod.iter().any(|d| match d.get("chty").and_then(Value::as_array) {
        None => true,
        Some(types) => types.iter().any(|t| t.as_u64() == Some(u64::from(child.code()))),
    })
}

/// Whether `v` is a well-formed `pv`/`pvs`: `{"acr": [{"acor": [str..], "acop": 0..63, "acod"?: [{"chty"?: [ty..]}]}]}`.
fn valid_privileges(v: &Value) -> bool {
    fn list(v: Option<&Value>) -> Option<&[Value]> {
        v.and_then(Value::as_array).map(Vec::as_slice)
    }
    let Some(rules) = list(v.get("acr")) else { return false };
    let valid_acod = |d: &Value| match d.get("chty") {
        None => true,
        Some(c) => list(Some(c)).is_some_and(|c| c.iter().all(|t| t.as_u64().is_some_and(|t| t <= 65535))),
    };
    rules.iter().all(|r| {
        r.get("acop").and_then(Value::as_u64).is_some_and(|x| x <= 63)
            && list(r.get("acor")).is_some_and(|a| a.iter().all(Value::is_string))
            && (r.get("acod").is_none() || list(r.get("acod")).is_some_and(|ds| ds.iter().all(valid_acod)))
    })
}

fn allowed_children(parent: ResourceType) -> &'static [ResourceType] {
    use ResourceType as T;
    match parent {
        T::CseBase => &[T::Ae, T::Container, T::Subscription, T::AccessControlPolicy],
        T::Ae => &[T::Container, T::Subscription, T::AccessControlPolicy],
        T::Container => &[T::Container, T::ContentInstance, T::Subscription],
        T::AccessControlPolicy => &[T::Subscription],
        _ => &[],
    }
}

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

    /// The structured address (`cse-in/ae/cnt`) of a resource.
    fn structured(&self, ri: &str) -> String {
        let mut parts = Vec::new();
        let mut cur = self.res.get(ri);
        while let Some(r) = cur {
            parts.push(r.rn.as_str());
            cur = if r.pi.is_empty() { None } else { self.res.get(&r.pi) };
        }
        parts.reverse();
        parts.join("/")
    }

    fn sp_relative(&self, ri: &str) -> String {
        format!("/{}/{}", self.cfg.cse_id, ri)
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

    fn resolve(&self, to: &str) -> Result<Resolved, Fail> {
        let t = Target::parse(to).map_err(|e| (Rsc::BadRequest, format!("bad target {to:?}: {e}")))?;
        if let Target::Absolute { sp_id, .. } = &t
            && *sp_id != self.cfg.sp_id
        {
            return fail(Rsc::NotFound, format!("unknown service provider {sp_id:?}"));
        }
        let (cse, rest) = t.local_part();
        if let Some(c) = cse
            && c != self.cfg.cse_id
        {
            return fail(Rsc::NotFound, format!("unknown CSE /{c}"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Ok(Resolved::Res(self.base_ri.clone()));
        }
        let mut segs = rest.split('/');
        let first = segs.next().unwrap_or_default();
        let mut cur = if first == self.cfg.rn {
            self.base_ri.clone()
        } else if self.res.contains_key(first) {
            first.to_owned()
        } else {
            return fail(Rsc::NotFound, format!("resource {to:?} not found"));
        };
        let segs: Vec<&str> = segs.collect();
        for (i, s) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let is_cnt = self.res.get(&cur).is_some_and(|r| r.ty == ResourceType::Container);
            if last
                && is_cnt
                && (*s == "la" || *s == "ol")
                && !self.names.contains_key(&(cur.clone(), (*s).to_owned()))
            {
                return Ok(if *s == "la" { Resolved::Latest(cur) } else { Resolved::Oldest(cur) });
            }
            match self.names.get(&(cur.clone(), (*s).to_owned())) {
                Some(ri) => cur = ri.clone(),
                None => return fail(Rsc::NotFound, format!("resource {to:?} not found")),
            }
        }
        Ok(Resolved::Res(cur))
    }

    fn cins(&self, cnt: &str) -> impl DoubleEndedIterator<Item = &Res> {
        self.children
            .get(cnt)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|ri| self.res.get(ri))
            .filter(|r| r.ty == ResourceType::ContentInstance)
    }

    /// Access control: admin, the owner of the target or of an ancestor, else the nearest `acpi`.
    fn permitted(&self, origin: &str, ri: &str, bit: u8) -> bool {
        self.permitted_child(origin, ri, bit, None)
    }

    /// [`Self::permitted`]; for a CREATE, `child` is the type of the resource to create, which rules with
    /// `acod` (accessControlObjectDetails) restrict by their `chty` lists.
    fn permitted_child(&self, origin: &str, ri: &str, bit: u8, child: Option<ResourceType>) -> bool {
        if origin == self.cfg.admin {
            return true;
        }
        let mut cur = self.res.get(ri);
        let mut acp_decided: Option<bool> = None;
        while let Some(r) = cur {
            if r.owner == origin && r.ty != ResourceType::CseBase {
                return true;
            }
            if acp_decided.is_none() {
                let acpi: Vec<&str> = if r.ty == ResourceType::AccessControlPolicy {
                    vec![r.ri.as_str()]
                } else {
                    r.attrs
                        .get("acpi")
                        .and_then(Value::as_array)
                        .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
                };
                if !acpi.is_empty() {
                    let key = if r.ty == ResourceType::AccessControlPolicy { "pvs" } else { "pv" };
                    acp_decided = Some(acpi.iter().any(|a| self.acp_grants(a, key, origin, bit, child)));
                }
            }
            cur = if r.pi.is_empty() { None } else { self.res.get(&r.pi) };
        }
        acp_decided.unwrap_or(false)
    }

    fn acp_grants(
        &self,
        acp_ri: &str,
        key: &str,
        origin: &str,
        bit: u8,
        child: Option<ResourceType>,
    ) -> bool {
        // `acpi` holds resource identifiers, or any other address form of the policy (checked at CREATE/UPDATE).
        let acp = self.res.get(acp_ri).or_else(|| match self.resolve(acp_ri) {
            Ok(Resolved::Res(ri)) => self.res.get(&ri),
            _ => None,
        });
        let Some(acp) = acp.filter(|a| a.ty == ResourceType::AccessControlPolicy) else { return false };
        let rules = acp.attrs.get(key).and_then(|p| p.get("acr")).and_then(Value::as_array);
        rules.into_iter().flatten().any(|rule| {
            let op = rule.get("acop").and_then(Value::as_u64).unwrap_or(0);
            let who = rule.get("acor").and_then(Value::as_array);
            op & u64::from(bit) != 0
                && child_type_allowed(rule, bit, child)
                && who.into_iter().flatten().filter_map(Value::as_str).any(|o| {
                    o == "all"
                        || o == "*"
                        || o == origin
                        || o.strip_suffix('*').is_some_and(|p| origin.starts_with(p))
                })
        })
    }

    /// Runs one request.
    pub(crate) fn handle(&mut self, req: &RequestPrimitive, now: i64) -> (ResponsePrimitive, Effects) {
        self.expire(now);
        let result = self.dispatch(req, now, false);
        self.reserved_ri = None;
        let rsp = match result {
            Ok(mut r) => {
                r.rqi.clone_from(&req.rqi);
                r.rvi.clone_from(&req.rvi);
                r
            }
            Err((rsc, msg)) => {
                let mut r = ResponsePrimitive::error(rsc, req.rqi.clone(), msg);
                r.rvi.clone_from(&req.rvi);
                r
            }
        };
        (rsp, self.take_fx())
    }

    /// For a subscription CREATE: removes expired resources (as every request does first; their deletions and
    /// notifications wait in [`Engine::take_effects`]), then runs every check of the CREATE without changing
    /// anything and returns the targets that must be verified first (URLs that are not the originator itself).
    pub(crate) fn precheck_subscription(
        &mut self,
        req: &RequestPrimitive,
        now: i64,
    ) -> Result<Vec<NotifyTarget>, ResponsePrimitive> {
        self.expire(now);
        let mut r = match self.dispatch(req, now, true) {
            Ok(_) => {
                let nu = req.pc.as_ref().and_then(|p| p.get("m2m:sub")).and_then(|s| s.get("nu"));
                let fr = req.fr.clone().unwrap_or_default();
                let nus = nu.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
                match self.targets_to_verify(nus.filter(|n| *n != fr)) {
                    Ok(out) => return Ok(out),
                    Err(why) => ResponsePrimitive::error(
                        Rsc::SubscriptionVerificationInitiationFailed,
                        req.rqi.clone(),
                        why,
                    ),
                }
            }
            Err((rsc, msg)) => ResponsePrimitive::error(rsc, req.rqi.clone(), msg),
        };
        r.rvi.clone_from(&req.rvi);
        Err(r)
    }

    /// For an UPDATE of a subscription's `nu` by a permitted originator: the subscription and the new notification
    /// targets (not in the old `nu`, not the originator) that must be verified before the update.
    /// `Err` names an entry that cannot be reached.
    #[allow(clippy::type_complexity)] // (subscription, targets or why not)
    pub(crate) fn update_nu_targets(
        &self,
        req: &RequestPrimitive,
    ) -> Option<(String, Result<Vec<NotifyTarget>, String>)> {
        if req.op != Operation::Update {
            return None;
        }
        let nu = req.pc.as_ref()?.get("m2m:sub")?.get("nu")?.as_array()?;
        let Ok(Resolved::Res(ri)) = self.resolve(&req.to) else { return None };
        let sub = self.res.get(&ri).filter(|r| r.ty == ResourceType::Subscription)?;
        let fr = req.fr.as_deref()?;
        if !self.permitted(fr, &ri, 4) {
            return None;
        }
        let old: Vec<&str> = sub
            .attrs
            .get("nu")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
        let targets = self
            .targets_to_verify(nu.iter().filter_map(Value::as_str).filter(|n| *n != fr && !old.contains(n)));
        Some((ri, targets))
    }

    /// The targets of `nu` entries that must be verified, or why one of them cannot be reached at all: such a
    /// subscription would never deliver anything, so it is refused (5204) as an unreachable URL is.
    fn targets_to_verify<'a>(&self, nus: impl Iterator<Item = &'a str>) -> Result<Vec<NotifyTarget>, String> {
        let mut out = Vec::new();
        for n in nus {
            out.extend(self.nu_targets(n)?);
        }
        Ok(out)
    }

    fn dispatch(&mut self, req: &RequestPrimitive, now: i64, dry: bool) -> Result<ResponsePrimitive, Fail> {
        if let Some(rcn) = req.rcn {
            let discovery = req.fc.fu == Some(FilterUsage::Discovery);
            if !rcn.valid_for(req.op, discovery) {
                return fail(
                    Rsc::BadRequest,
                    format!("rcn={} is not allowed for this operation", rcn.code()),
                );
            }
        }
        let target = self.resolve(&req.to)?;
        match req.op {
            Operation::Create => self.create(req, target, now, dry),
            Operation::Retrieve => self.retrieve(req, target, now),
            Operation::Update => self.update(req, target, now),
            Operation::Delete => self.delete(req, target, now),
            Operation::Notify => fail(
                Rsc::BadRequest,
                "POST without ty= in Content-Type: a CREATE needs the resource type; this CSE does not take NOTIFY",
            ),
        }
    }

    fn origin<'a>(&self, req: &'a RequestPrimitive) -> Result<&'a str, Fail> {
        match req.fr.as_deref() {
            Some(f) => Ok(f),
            None => fail(Rsc::BadRequest, "missing originator (X-M2M-Origin)"),
        }
    }

    // ---------------------------------------------------------------- CREATE

    fn create(
        &mut self,
        req: &RequestPrimitive,
        target: Resolved,
        now: i64,
        dry: bool,
    ) -> Result<ResponsePrimitive, Fail> {
        let Resolved::Res(parent_ri) = target else {
            return fail(Rsc::OperationNotAllowed, "CREATE is not allowed on a virtual resource (la/ol)");
        };
        let ty_code = req.ty.unwrap_or(0);
        let Some(ty) = ResourceType::from_code(ty_code) else {
            return fail(Rsc::BadRequest, format!("unknown or unsupported resource type ty={ty_code}"));
        };
        let Some(pc) = req.pc.as_ref().and_then(Value::as_object) else {
            return fail(Rsc::BadRequest, "CREATE needs a JSON object as content");
        };
        let (key, body) = match pc.iter().next() {
            Some((k, v)) if pc.len() == 1 => (k.as_str(), v),
            _ => return fail(Rsc::BadRequest, "content must have exactly one member, the resource"),
        };
        if ResourceType::from_short_name(key) != Some(ty) {
            return fail(
                Rsc::BadRequest,
                format!("content {key:?} does not match ty={ty_code} ({})", ty.short_name()),
            );
        }
        let Some(body) = body.as_object() else {
            return fail(Rsc::BadRequest, format!("{key} must be a JSON object"));
        };
        let parent = self.res.get(&parent_ri).ok_or((Rsc::NotFound, "parent not found".to_owned()))?;
        let parent_ty = parent.ty;
        if ty == ResourceType::Subscription && parent_ty == ResourceType::ContentInstance {
            return fail(Rsc::TargetNotSubscribable, "a contentInstance is not subscribable");
        }
        if !allowed_children(parent_ty).contains(&ty) {
            if matches!(
                ty,
                ResourceType::Ae
                    | ResourceType::Container
                    | ResourceType::ContentInstance
                    | ResourceType::Subscription
                    | ResourceType::AccessControlPolicy
            ) {
                return fail(
                    Rsc::InvalidChildResourceType,
                    format!("a {} cannot be a child of a {}", ty.short_name(), parent_ty.short_name()),
                );
            }
            return fail(Rsc::NotImplemented, format!("resource type {} is not supported", ty.short_name()));
        }
        let allowed = match ty {
            ResourceType::Ae => AE_CREATE,
            ResourceType::Container => CNT_CREATE,
            ResourceType::ContentInstance => CIN_CREATE,
            ResourceType::Subscription => SUB_CREATE,
            _ => ACP_CREATE,
        };
        if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
            return fail(
                Rsc::BadRequest,
                format!("attribute {k:?} is unknown or not allowed in CREATE of {key}"),
            );
        }
        check_types(body, now)?;

        // Originator and privileges.
        let owner = if ty == ResourceType::Ae {
            self.check_registration(req, body)?
        } else {
            let o = self.origin(req)?.to_owned();
            if !self.permitted_child(&o, &parent_ri, 1, Some(ty)) {
                return fail(
                    Rsc::OriginatorHasNoPrivilege,
                    format!("originator {o} may not CREATE a {} here", ty.short_name()),
                );
            }
            o
        };

        let rn = match body.get("rn") {
            Some(v) => {
                let s = v.as_str().unwrap_or_default();
                ResourceName::new(s).map_err(|e| (Rsc::BadRequest, format!("bad rn {s:?}: {e}")))?;
                if parent_ty == ResourceType::Container && (s == "la" || s == "ol") {
                    return fail(Rsc::BadRequest, "rn la/ol is reserved in a container");
                }
                s.to_owned()
            }
            None => match ty {
                ResourceType::Ae => owner.clone(),
                _ => format!("{}_{}", ty.ri_prefix(), self.seq + 1),
            },
        };
        if self.names.contains_key(&(parent_ri.clone(), rn.clone())) {
            return fail(Rsc::Conflict, format!("a resource named {rn:?} already exists here"));
        }
        self.check_acpi(body)?;
        // Type specific checks (before any change).
        let mut cin_size = 0u64;
        match ty {
            ResourceType::ContentInstance => {
                // `con` is optional since Release 4 (cardinality 0..1).
                cin_size = body.get("con").map_or(0, content_size);
                let parent =
                    self.res.get(&parent_ri).ok_or((Rsc::NotFound, "parent not found".to_owned()))?;
                if let Some(mbs) = parent.u64_attr("mbs")
                    && cin_size > mbs
                {
                    return fail(
                        Rsc::NotAcceptable,
                        format!("content size {cin_size} exceeds the container's mbs {mbs}"),
                    );
                }
            }
            ResourceType::Subscription => {
                check_nct_net(body)?;
                let nu = body.get("nu").and_then(Value::as_array);
                if nu.is_none_or(|a| a.is_empty()) {
                    return fail(Rsc::BadRequest, "subscription needs a non-empty nu");
                }
                if matches!(parent_ty, ResourceType::ContentInstance) {
                    return fail(Rsc::TargetNotSubscribable, "target is not subscribable");
                }
            }
            ResourceType::AccessControlPolicy if !body.contains_key("pv") || !body.contains_key("pvs") => {
                return fail(Rsc::BadRequest, "accessControlPolicy needs pv and pvs");
            }
            _ => {}
        }
        if dry {
            return Ok(ResponsePrimitive::new(Rsc::Ok, "", None));
        }

        // Build it.
        let seq = self.next_seq();
        let ri = match (ty, self.reserved_ri.take()) {
            (ResourceType::Ae, _) => owner.clone(),
            (_, Some(ri)) => ri,
            _ => format!("{}{}", ty.ri_prefix(), seq),
        };
        if self.res.contains_key(&ri) {
            return fail(Rsc::Conflict, format!("resource identifier {ri:?} is taken"));
        }
        let ts = time::format(now);
        let mut a = body.clone();
        a.insert("ty".into(), json!(ty.code()));
        a.insert("ri".into(), json!(ri));
        a.insert("rn".into(), json!(rn));
        a.insert("pi".into(), json!(parent_ri));
        a.insert("ct".into(), json!(ts));
        a.insert("lt".into(), json!(ts));
        if !a.contains_key("et") {
            a.insert("et".into(), json!(time::format(now.saturating_add(DEFAULT_ET_MICROS))));
        }
        if a.get("cr").is_some_and(Value::is_null) {
            a.insert("cr".into(), json!(owner));
        }
        match ty {
            ResourceType::Ae => {
                a.insert("aei".into(), json!(owner));
            }
            ResourceType::Container => {
                a.insert("cni".into(), json!(0));
                a.insert("cbs".into(), json!(0));
                a.insert("st".into(), json!(0));
            }
            ResourceType::ContentInstance => {
                a.insert("cs".into(), json!(cin_size));
                let st = self.res.get(&parent_ri).and_then(|p| p.u64_attr("st")).unwrap_or(0) + 1;
                a.insert("st".into(), json!(st));
            }
            ResourceType::Subscription => {
                if !a.contains_key("nct") {
                    a.insert("nct".into(), json!(1));
                }
                // The effective batch duration is shown, as ACME does.
                if let Some(bn) = a.get_mut("bn").and_then(Value::as_object_mut)
                    && !bn.contains_key("dur")
                {
                    bn.insert("dur".into(), json!(format!("PT{}S", DEFAULT_BATCH_DURATION.as_secs())));
                }
                if !a.contains_key("enc") {
                    a.insert("enc".into(), json!({"net": [net::UPDATE]}));
                }
            }
            _ => {}
        }
        let r = Res { ty, ri: ri.clone(), rn, pi: parent_ri.clone(), owner, seq, attrs: a };
        // Notify before indexing, so a new subscription is not told about its own creation.
        if self.watched(&parent_ri) {
            let rep = r.rep();
            self.notify_event(&parent_ri, net::CREATE_CHILD, &rep, None, Some(&r.owner), now);
        }
        self.put(r);
        if ty == ResourceType::ContentInstance {
            self.after_cin_added(&parent_ri, cin_size, now);
        }

        let mut rsp = match req.rcn {
            Some(ResultContent::ModifiedAttributes) => {
                let after = self.res.get(&ri).map(|r| r.attrs.clone()).unwrap_or_default();
                modified_attributes(ty, &Map::new(), &after, body, Rsc::Created)
            }
            rcn => self.result(rcn.unwrap_or(ResultContent::Attributes), &ri, Rsc::Created)?,
        };
        rsp.content_location = Some(self.structured(&ri));
        Ok(rsp)
    }

    fn check_acpi(&self, body: &Map<String, Value>) -> Result<(), Fail> {
        if let Some(acpi) = body.get("acpi").and_then(Value::as_array) {
            for a in acpi.iter().filter_map(Value::as_str) {
                let ok = self.resolve(a).ok().and_then(|r| match r {
                    Resolved::Res(ri) => self.res.get(&ri),
                    _ => None,
                });
                if ok.is_none_or(|r| r.ty != ResourceType::AccessControlPolicy) {
                    return fail(Rsc::BadRequest, format!("acpi {a:?} is not an accessControlPolicy"));
                }
            }
        }
        Ok(())
    }

    fn check_registration(&self, req: &RequestPrimitive, body: &Map<String, Value>) -> Result<String, Fail> {
        let aei = match req.fr.as_deref() {
            None | Some("C") | Some("S") => {
                // An assigned AE-ID; skip numbers an AE took by registering with that originator itself.
                let prefix = req.fr.as_deref().unwrap_or("C");
                (self.seq + 1..)
                    .map(|n| format!("{prefix}{n}"))
                    .find(|id| !self.aes.contains_key(id) && !self.res.contains_key(id))
                    .unwrap_or_default()
            }
            Some(f) if f.starts_with('C') || f.starts_with('S') => f.to_owned(),
            Some(f) => {
                return fail(
                    Rsc::SecurityAssociationRequired,
                    format!(
                        "AE originator {f:?} must start with C or S (or be empty to get an assigned AE-ID)"
                    ),
                );
            }
        };
        if aei.contains('/') {
            return fail(Rsc::BadRequest, "AE-ID must not contain '/'");
        }
        match body.get("api").and_then(Value::as_str) {
            None => return fail(Rsc::BadRequest, "api is mandatory"),
            Some(api) if !(api.starts_with('N') || api.starts_with('R')) => {
                return fail(Rsc::BadRequest, format!("api {api:?} must start with N or R"));
            }
            Some(_) => {}
        }
        if !body.contains_key("rr") {
            return fail(Rsc::BadRequest, "rr is mandatory");
        }
        if !body.contains_key("srv") {
            return fail(Rsc::BadRequest, "srv is mandatory");
        }
        if self.aes.contains_key(&aei) || self.res.contains_key(&aei) {
            return fail(
                Rsc::OriginatorHasAlreadyRegistered,
                format!("originator {aei} has already registered"),
            );
        }
        Ok(aei)
    }

    fn after_cin_added(&mut self, cnt_ri: &str, size: u64, now: i64) {
        let Some(cnt) = self.res.get_mut(cnt_ri) else { return };
        let cni = cnt.u64_attr("cni").unwrap_or(0) + 1;
        let cbs = cnt.u64_attr("cbs").unwrap_or(0) + size;
        let st = cnt.u64_attr("st").unwrap_or(0) + 1;
        cnt.attrs.insert("cni".into(), json!(cni));
        cnt.attrs.insert("cbs".into(), json!(cbs));
        cnt.attrs.insert("st".into(), json!(st));
        self.touch(cnt_ri);
        self.enforce_limits(cnt_ri, now);
    }

    /// Drops the oldest contentInstances while `mni`, `mbs` or `mia` are exceeded.
    fn enforce_limits(&mut self, cnt_ri: &str, now: i64) {
        let Some(cnt) = self.res.get(cnt_ri) else { return };
        let (mni, mbs, mia) = (cnt.u64_attr("mni"), cnt.u64_attr("mbs"), cnt.u64_attr("mia"));
        loop {
            let Some(cnt) = self.res.get(cnt_ri) else { return };
            let (cni, cbs) = (cnt.u64_attr("cni").unwrap_or(0), cnt.u64_attr("cbs").unwrap_or(0));
            let Some(oldest) = self.cins(cnt_ri).next() else { return };
            let too_old = mia.is_some_and(|mia| {
                let ct = oldest.attrs.get("ct").and_then(Value::as_str).and_then(time::parse).unwrap_or(now);
                now.saturating_sub(ct) > i64::try_from(mia).unwrap_or(i64::MAX).saturating_mul(1_000_000)
            });
            if !(mni.is_some_and(|m| cni > m) || mbs.is_some_and(|m| cbs > m) || too_old) {
                return;
            }
            let ri = oldest.ri.clone();
            self.delete_tree(&ri, now, false);
        }
    }

    // ---------------------------------------------------------------- RETRIEVE

    fn retrieve(
        &mut self,
        req: &RequestPrimitive,
        target: Resolved,
        now: i64,
    ) -> Result<ResponsePrimitive, Fail> {
        let origin = self.origin(req)?.to_owned();
        let latest = matches!(target, Resolved::Latest(_));
        let ri = match target {
            Resolved::Res(ri) => ri,
            Resolved::Latest(c) | Resolved::Oldest(c) => {
                if !self.permitted(&origin, &c, 2) {
                    return fail(
                        Rsc::OriginatorHasNoPrivilege,
                        format!("originator {origin} may not RETRIEVE this"),
                    );
                }
                self.enforce_limits(&c, now);
                let mut it = self.cins(&c);
                let cin = if latest { it.next_back() } else { it.next() };
                let Some(cin) = cin else {
                    return fail(Rsc::NotFound, "the container has no contentInstance");
                };
                return Ok(ResponsePrimitive::new(Rsc::Ok, "", Some(cin.rep())));
            }
        };
        if req.fc.fu == Some(FilterUsage::Discovery) {
            // No privilege is needed on the target itself (the CSEBase has none for applications): the answer
            // lists the resources below it that the originator may discover, empty for a stranger, as ACME does.
            let found = self.discover(&origin, &ri, &req.fc, req.drt);
            if req.rcn == Some(ResultContent::ChildResourceReferences) {
                let rrf: Vec<Value> = found
                    .iter()
                    .filter_map(|a| {
                        let r = match self.resolve(a) {
                            Ok(Resolved::Res(ri)) => self.res.get(&ri)?,
                            _ => return None,
                        };
                        // SP-relative, as ACME writes them: `/id-in/cse-in/…` or `/id-in/<ri>`.
                        let val = match req.drt {
                            DiscResType::Structured => format!("/{}/{a}", self.cfg.cse_id),
                            DiscResType::Unstructured => a.clone(),
                        };
                        Some(json!({"nm": r.rn, "typ": r.ty.code(), "val": val}))
                    })
                    .collect();
                return Ok(ResponsePrimitive::new(Rsc::Ok, "", Some(json!({"m2m:rrl": {"rrf": rrf}}))));
            }
            return Ok(ResponsePrimitive::new(Rsc::Ok, "", Some(json!({"m2m:uril": found}))));
        }
        let public = ri == self.base_ri && (self.cfg.public_cse_base || self.aes.contains_key(&origin));
        if !(public || self.permitted(&origin, &ri, 2)) {
            return fail(Rsc::OriginatorHasNoPrivilege, format!("originator {origin} may not RETRIEVE this"));
        }
        if self.res.get(&ri).is_some_and(|r| r.ty == ResourceType::Container) {
            self.enforce_limits(&ri, now);
        }
        if req.fc.fu == Some(FilterUsage::ConditionalRetrieval) || req.fc.has_conditions() {
            let r = self.res.get(&ri).ok_or((Rsc::NotFound, "not found".to_owned()))?;
            if !matches_filter(r, &req.fc) {
                return fail(Rsc::NotFound, "the target does not match the filter criteria");
            }
        }
        self.result(req.rcn.unwrap_or(ResultContent::Attributes), &ri, Rsc::Ok)
    }

    fn discover(&self, origin: &str, ri: &str, fc: &FilterCriteria, drt: DiscResType) -> Vec<String> {
        let mut out = Vec::new();
        if fc.lim == Some(0) {
            return out;
        }
        let mut stack = vec![(ri.to_owned(), 0usize)];
        let skip = fc.ofst.unwrap_or(1).saturating_sub(1);
        let mut matched = 0usize;
        while let Some((cur, depth)) = stack.pop() {
            // The target itself is not a result, only what lies below it (as ACME answers).
            if depth > 0
                && let Some(r) = self.res.get(&cur)
                && matches_filter(r, fc)
                && (self.permitted(origin, &cur, 32) || self.permitted(origin, &cur, 2))
            {
                matched += 1;
                if matched > skip {
                    out.push(match drt {
                        DiscResType::Structured => self.structured(&cur),
                        // SP-relative (`/id-in/<ri>`), as ACME answers.
                        DiscResType::Unstructured => self.sp_relative(&cur),
                    });
                    if fc.lim.is_some_and(|l| out.len() >= l) {
                        break;
                    }
                }
            }
            if fc.lvl.is_some_and(|l| depth >= l) {
                continue;
            }
            if let Some(ch) = self.children.get(&cur) {
                for c in ch.values().rev() {
                    stack.push((c.clone(), depth + 1));
                }
            }
        }
        out
    }

    fn result(&self, rcn: ResultContent, ri: &str, rsc: Rsc) -> Result<ResponsePrimitive, Fail> {
        let r = self.res.get(ri).ok_or((Rsc::NotFound, "not found".to_owned()))?;
        let child_refs = || -> Vec<Value> {
            self.children
                .get(ri)
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|c| self.res.get(c))
                .map(|c| {
                    let val = format!("/{}/{}", self.cfg.cse_id, self.structured(&c.ri));
                    json!({"nm": c.rn, "typ": c.ty.code(), "val": val})
                })
                .collect()
        };
        let pc = match rcn {
            ResultContent::Nothing => None,
            ResultContent::Attributes
            | ResultContent::ModifiedAttributes
            | ResultContent::DiscoveryResultReferences => Some(r.rep()),
            ResultContent::OriginalResource => {
                return fail(Rsc::BadRequest, format!("{} is not an announced resource", r.ri));
            }
            ResultContent::HierarchicalAddress => Some(json!({"m2m:uri": self.structured(ri)})),
            ResultContent::HierarchicalAddressAndAttributes => {
                let mut rce = r.rep();
                if let Some(o) = rce.as_object_mut() {
                    o.insert("uri".into(), json!(self.structured(ri)));
                }
                Some(json!({"m2m:rce": rce}))
            }
            ResultContent::AttributesAndChildResources | ResultContent::ChildResources => {
                let mut base =
                    if rcn == ResultContent::ChildResources { Map::new() } else { r.attrs.clone() };
                for c in
                    self.children.get(ri).into_iter().flat_map(|m| m.values()).filter_map(|c| self.res.get(c))
                {
                    let e = base.entry(c.ty.short_name().to_owned()).or_insert_with(|| json!([]));
                    if let Some(a) = e.as_array_mut() {
                        a.push(Value::Object(c.attrs.clone()));
                    }
                }
                let mut m = Map::new();
                m.insert(r.ty.short_name().to_owned(), Value::Object(base));
                Some(Value::Object(m))
            }
            ResultContent::AttributesAndChildResourceReferences => {
                let mut a = r.attrs.clone();
                a.insert("ch".into(), Value::Array(child_refs()));
                let mut m = Map::new();
                m.insert(r.ty.short_name().to_owned(), Value::Object(a));
                Some(Value::Object(m))
            }
            ResultContent::ChildResourceReferences => Some(json!({"m2m:rrl": {"rrf": child_refs()}})),
        };
        Ok(ResponsePrimitive::new(rsc, "", pc))
    }

    // ---------------------------------------------------------------- UPDATE

    fn update(
        &mut self,
        req: &RequestPrimitive,
        target: Resolved,
        now: i64,
    ) -> Result<ResponsePrimitive, Fail> {
        let origin = self.origin(req)?.to_owned();
        let Resolved::Res(ri) = target else {
            return fail(Rsc::OperationNotAllowed, "UPDATE is not allowed on la/ol");
        };
        let r = self.res.get(&ri).ok_or((Rsc::NotFound, "not found".to_owned()))?;
        let allowed = match r.ty {
            ResourceType::Ae => AE_UPDATE,
            ResourceType::Container => CNT_UPDATE,
            ResourceType::Subscription => SUB_UPDATE,
            ResourceType::AccessControlPolicy => ACP_UPDATE,
            _ => {
                return fail(
                    Rsc::OperationNotAllowed,
                    format!("UPDATE of a {} is not allowed", r.ty.short_name()),
                );
            }
        };
        if !self.permitted(&origin, &ri, 4) {
            return fail(Rsc::OriginatorHasNoPrivilege, format!("originator {origin} may not UPDATE this"));
        }
        let Some(pc) = req.pc.as_ref().and_then(Value::as_object) else {
            return fail(Rsc::BadRequest, "UPDATE needs a JSON object as content");
        };
        let body = match pc.iter().next() {
            Some((k, v)) if pc.len() == 1 && k == r.ty.short_name() => {
                v.as_object().ok_or((Rsc::BadRequest, format!("{k} must be an object")))?
            }
            _ => {
                return fail(
                    Rsc::ContentsUnacceptable,
                    format!("content must be {{\"{}\": {{...}}}}", r.ty.short_name()),
                );
            }
        };
        if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
            return fail(Rsc::BadRequest, format!("attribute {k:?} is unknown or may not be updated"));
        }
        let non_null: Map<String, Value> =
            body.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        check_types(&non_null, now)?;
        self.check_acpi(&non_null)?;
        if r.ty == ResourceType::Subscription
            && body.get("nu").is_some_and(|v| v.as_array().is_none_or(|a| a.is_empty()))
        {
            return fail(Rsc::BadRequest, "nu must be a non-empty list");
        }
        let before = r.attrs.clone();
        let mut r = r.clone();
        for (k, v) in body {
            if v.is_null() {
                r.attrs.remove(k);
            } else {
                r.attrs.insert(k.clone(), v.clone());
            }
        }
        r.attrs.insert("lt".into(), json!(time::format(now)));
        if r.ty == ResourceType::Container {
            let st = r.u64_attr("st").unwrap_or(0) + 1;
            r.attrs.insert("st".into(), json!(st));
        }
        let mut modified = Map::new();
        for k in body.keys() {
            modified.insert(k.clone(), r.attrs.get(k).cloned().unwrap_or(Value::Null));
        }
        let rep = r.rep();
        let ty = r.ty;
        self.put(r);
        if ty == ResourceType::Container {
            self.enforce_limits(&ri, now);
        }
        let mut modrep = Map::new();
        modrep.insert(ty.short_name().to_owned(), Value::Object(modified.clone()));
        self.notify_event(&ri, net::UPDATE, &rep, Some(&Value::Object(modrep)), None, now);
        let rcn = req.rcn.unwrap_or(ResultContent::Attributes);
        if rcn == ResultContent::ModifiedAttributes {
            let after = self.res.get(&ri).map(|r| r.attrs.clone()).unwrap_or_default();
            return Ok(modified_attributes(ty, &before, &after, body, Rsc::Updated));
        }
        self.result(rcn, &ri, Rsc::Updated)
    }

    // ---------------------------------------------------------------- DELETE

    fn delete(
        &mut self,
        req: &RequestPrimitive,
        target: Resolved,
        now: i64,
    ) -> Result<ResponsePrimitive, Fail> {
        let origin = self.origin(req)?.to_owned();
        let latest = matches!(target, Resolved::Latest(_));
        let ri = match target {
            Resolved::Res(ri) => ri,
            Resolved::Latest(c) | Resolved::Oldest(c) => {
                let mut it = self.cins(&c);
                let cin = if latest { it.next_back() } else { it.next() };
                match cin {
                    Some(cin) => cin.ri.clone(),
                    None => return fail(Rsc::NotFound, "the container has no contentInstance"),
                }
            }
        };
        if ri == self.base_ri {
            return fail(Rsc::OperationNotAllowed, "the CSEBase cannot be deleted");
        }
        if !self.permitted(&origin, &ri, 8) {
            return fail(Rsc::OriginatorHasNoPrivilege, format!("originator {origin} may not DELETE this"));
        }
        let rsp = match req.rcn.unwrap_or(ResultContent::Nothing) {
            ResultContent::Nothing => ResponsePrimitive::new(Rsc::Deleted, "", None),
            rcn => self.result(rcn, &ri, Rsc::Deleted)?,
        };
        self.delete_tree(&ri, now, true);
        Ok(rsp)
    }

    /// Deletes a resource and its subtree, sends the deletion notifications, and fixes container counters.
    fn delete_tree(&mut self, ri: &str, now: i64, notify_parent: bool) {
        let Some(top) = self.res.get(ri).cloned() else { return };
        // Collect the subtree (depth first, children before parents).
        let mut order = Vec::new();
        let mut stack = vec![ri.to_owned()];
        while let Some(c) = stack.pop() {
            if let Some(ch) = self.children.get(&c) {
                stack.extend(ch.values().cloned());
            }
            order.push(c);
        }
        // First the "resource deleted" notifications (net 2), while the subscriptions still exist, parents first.
        for c in &order {
            if !self.watched(c) {
                continue;
            }
            if let Some(r) = self.res.get(c)
                && r.ty != ResourceType::Subscription
            {
                let rep = r.rep();
                self.notify_event(c, net::DELETE, &rep, None, None, now);
            }
        }
        for c in order.iter().rev() {
            let Some(r) = self.res.remove(c) else { continue };
            if r.ty == ResourceType::Subscription {
                self.subscription_deleted(&r);
            }
            self.children.remove(c);
            self.subs.remove(c);
            if r.ty == ResourceType::Subscription
                && let Some(m) = self.subs.get_mut(&r.pi)
            {
                m.remove(&r.seq);
            }
            if let Some(m) = self.children.get_mut(&r.pi) {
                m.remove(&r.seq);
            }
            self.names.remove(&(r.pi.clone(), r.rn.clone()));
            if let Some(et) = r.et() {
                self.expiry.remove(&(et, c.clone()));
            }
            if r.ty == ResourceType::Ae
                && let Some(aei) = r.attrs.get("aei").and_then(Value::as_str)
            {
                self.aes.remove(aei);
            }
            self.touched.push((c.clone(), false));
        }
        if top.ty == ResourceType::ContentInstance
            && let Some(cnt) = self.res.get_mut(&top.pi)
        {
            let size = top.u64_attr("cs").unwrap_or(0);
            let cni = cnt.u64_attr("cni").unwrap_or(0).saturating_sub(1);
            let cbs = cnt.u64_attr("cbs").unwrap_or(0).saturating_sub(size);
            cnt.attrs.insert("cni".into(), json!(cni));
            cnt.attrs.insert("cbs".into(), json!(cbs));
            self.touch(&top.pi);
        }
        if notify_parent && self.watched(&top.pi) {
            self.notify_event(&top.pi, net::DELETE_CHILD, &top.rep(), None, None, now);
        }
    }

    // ---------------------------------------------------------------- notifications

    /// The notification targets of one `nu` entry: a URL, or an AE-ID (or AE address) resolved via its `poa`.
    /// `Err` says why the entry has none: it names no registered AE, or the AE has no `poa` this CSE can send to.
    fn nu_targets(&self, nu: &str) -> Result<Vec<NotifyTarget>, String> {
        if nu.starts_with("http://") || nu.starts_with("https://") {
            return Ok(vec![NotifyTarget::Url(nu.to_owned())]);
        }
        if let Some(name) = nu.strip_prefix("local://") {
            return Ok(vec![NotifyTarget::Local(name.to_owned())]);
        }
        let ae_ri = self.aes.get(nu).cloned().or_else(|| match self.resolve(nu) {
            Ok(Resolved::Res(ri)) => Some(ri),
            _ => None,
        });
        let Some(ae) = ae_ri.and_then(|ri| self.res.get(&ri)) else {
            return Err(format!(
                "notification target {nu:?} is neither an http:// URL nor the ID of a registered AE"
            ));
        };
        let aei = ae.attrs.get("aei").and_then(Value::as_str).unwrap_or(&ae.ri).to_owned();
        let targets: Vec<NotifyTarget> = ae
            .attrs
            .get("poa")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|p| {
                if let Some(name) = p.strip_prefix("local://") {
                    Some(NotifyTarget::Local(name.to_owned()))
                } else if p.starts_with("http://") || p.starts_with("https://") {
                    Some(NotifyTarget::Url(format!("{}/{aei}", p.trim_end_matches('/'))))
                } else {
                    None
                }
            })
            .collect();
        if targets.is_empty() {
            return Err(format!(
                "notification target {nu:?} has no poa this CSE can send to (http://, https:// or local://)"
            ));
        }
        Ok(targets)
    }

    fn notify_event(
        &mut self,
        subject_ri: &str,
        event: u64,
        rep: &Value,
        modified: Option<&Value>,
        creator: Option<&str>,
        now: i64,
    ) {
        let subs: Vec<String> =
            self.subs.get(subject_ri).map(|m| m.values().cloned().collect()).unwrap_or_default();
        for sub_ri in subs {
            let Some(sub) = self.res.get(&sub_ri) else { continue };
            let nets: Vec<u64> = sub
                .attrs
                .get("enc")
                .and_then(|e| e.get("net"))
                .and_then(Value::as_array)
                .map_or_else(|| vec![net::UPDATE], |a| a.iter().filter_map(Value::as_u64).collect());
            if !nets.contains(&event) {
                continue;
            }
            let nct = sub.u64_attr("nct").unwrap_or(1);
            let rep_v = match (nct, modified) {
                (2, Some(m)) => m.clone(),
                (3, _) => {
                    let ri =
                        rep.as_object().and_then(|o| o.values().next()).and_then(|v| v.get("ri")).cloned();
                    json!({"m2m:uri": ri.and_then(|v| v.as_str().map(|s| self.sp_relative(s))).unwrap_or_default()})
                }
                _ => rep.clone(),
            };
            let sur = self.sp_relative(&sub_ri);
            let mut sgn = json!({"nev": {"net": event, "rep": rep_v}, "sur": sur});
            if let Some(cr) = sub.attrs.get("cr").and_then(Value::as_str) {
                sgn["cr"] = json!(cr);
            }
            let targets: Vec<NotifyTarget> = sub
                .attrs
                .get("nu")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|n| self.nu_targets(n).unwrap_or_default())
                .collect();
            let batch = BatchPolicy::of(&sub.attrs);
            let creator = creator.map(str::to_owned);
            self.fx.notes.push(Note { targets, body: json!({"m2m:sgn": sgn}), sur, batch, creator });
            // Expiration counter.
            if let Some(exc) = sub.u64_attr("exc") {
                if exc <= 1 {
                    self.delete_tree(&sub_ri, now, true);
                } else {
                    let mut s = sub.clone();
                    s.attrs.insert("exc".into(), json!(exc - 1));
                    self.put(s);
                }
            }
        }
    }

    fn subscription_deleted(&mut self, sub: &Res) {
        let Some(su) = sub.attrs.get("su").and_then(Value::as_str) else { return };
        let targets = self.nu_targets(su).unwrap_or_default();
        let sur = self.sp_relative(&sub.ri);
        self.fx.notes.push(Note {
            targets,
            body: json!({"m2m:sgn": {"sud": true, "sur": sur}}),
            sur,
            batch: None,
            creator: None,
        });
    }

    /// Reserves a resource identifier for the subscription about to be verified and created.
    pub(crate) fn reserve_sub_ri(&mut self) -> String {
        let seq = self.next_seq();
        format!("{}{seq}", ResourceType::Subscription.ri_prefix())
    }

    /// Uses `ri` for the next CREATE.
    pub(crate) fn use_reserved_ri(&mut self, ri: String) {
        self.reserved_ri = Some(ri);
    }

    /// The body of a verification request for the subscription `ri` being created.
    pub(crate) fn verification_body(&self, ri: &str, creator: &str) -> Value {
        json!({"m2m:sgn": {"vrq": true, "sur": self.sp_relative(ri), "cr": creator}})
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

/// The `nct`/`enc.net` combinations TS-0004 allows: modified attributes (2) only for updates (net 1).
fn check_nct_net(body: &Map<String, Value>) -> Result<(), Fail> {
    let nct = body.get("nct").and_then(Value::as_u64).unwrap_or(1);
    let nets: Vec<u64> = body
        .get("enc")
        .and_then(|e| e.get("net"))
        .and_then(Value::as_array)
        .map_or_else(|| vec![net::UPDATE], |a| a.iter().filter_map(Value::as_u64).collect());
    let ok = match nct {
        1 | 3 => nets.iter().all(|n| (1..=4).contains(n)),
        2 => nets.iter().all(|n| *n == net::UPDATE),
        _ => false,
    };
    if ok { Ok(()) } else { fail(Rsc::BadRequest, format!("nct={nct} is not allowed with enc/net={nets:?}")) }
}

/// `rcn=9`: the attributes that the operation changed other than as the request asked (e.g. `lt`, `st`, or a value
/// the CSE adjusted), as TS-0004 defines "modified attributes".
fn modified_attributes(
    ty: ResourceType,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    request: &Map<String, Value>,
    rsc: Rsc,
) -> ResponsePrimitive {
    let changed: Map<String, Value> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v) && request.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut m = Map::new();
    m.insert(ty.short_name().to_owned(), Value::Object(changed));
    ResponsePrimitive::new(rsc, "", Some(Value::Object(m)))
}

fn content_size(con: &Value) -> u64 {
    let n = match con {
        Value::String(s) => s.len(),
        v => serde_json::to_string(v).map_or(0, |s| s.len()),
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn matches_filter(r: &Res, fc: &FilterCriteria) -> bool {
    let ts = |k: &str| r.attrs.get(k).and_then(Value::as_str).and_then(time::parse);
    let mut conds: Vec<bool> = Vec::new();
    if !fc.ty.is_empty() {
        conds.push(fc.ty.contains(&r.ty.code()));
    }
    if !fc.lbl.is_empty() {
        let lbls: Vec<&str> = r
            .attrs
            .get("lbl")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
        conds.push(fc.lbl.iter().any(|l| lbls.contains(&l.as_str())));
    }
    let cmp = |v: &Option<String>, k: &str, after: bool| -> Option<bool> {
        let want = time::parse(v.as_deref()?)?;
        let have = ts(k)?;
        Some(if after { have > want } else { have < want })
    };
    if fc.cra.is_some() {
        conds.push(cmp(&fc.cra, "ct", true).unwrap_or(false));
    }
    if fc.crb.is_some() {
        conds.push(cmp(&fc.crb, "ct", false).unwrap_or(false));
    }
    if fc.ms.is_some() {
        conds.push(cmp(&fc.ms, "lt", true).unwrap_or(false));
    }
    if fc.us.is_some() {
        conds.push(cmp(&fc.us, "lt", false).unwrap_or(false));
    }
    if let Some(s) = fc.sts {
        conds.push(r.u64_attr("st").is_some_and(|st| st < s));
    }
    if let Some(b) = fc.stb {
        conds.push(r.u64_attr("st").is_some_and(|st| st > b));
    }
    if conds.is_empty() {
        return true;
    }
    if fc.fo_and { conds.iter().all(|c| *c) } else { conds.iter().any(|c| *c) }
}

/// Checks the JSON types of the attributes a request may set.
fn check_types(body: &Map<String, Value>, now: i64) -> Result<(), Fail> {
    let bad = |k: &str, want: &str| (Rsc::BadRequest, format!("attribute {k:?} must be {want}"));
    for (k, v) in body {
        let ok = match k.as_str() {
            "rn" | "api" | "apn" | "cnf" | "su" | "or" | "li" | "csz" => v.is_string(),
            "lbl" | "acpi" | "poa" | "srv" | "nu" | "at" => {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            }
            "rr" | "aa" | "disr" => v.is_boolean() || (k == "aa" && v.is_array()),
            "mni" | "mbs" | "mia" | "exc" | "nec" => v.is_u64(),
            "ln" => v.is_boolean(),
            "bn" => v.as_object().is_some_and(|o| {
                o.keys().all(|k| k == "num" || k == "dur")
                    && o.get("num").is_none_or(Value::is_u64)
                    && o.get("dur").is_none_or(|d| {
                        d.as_str().and_then(time::parse_duration).is_some_and(|us| us >= 1_000_000)
                    })
            }),
            "rl" | "pn" | "nsp" | "nfu" | "psn" => {
                return Err((
                    Rsc::NotImplemented,
                    format!(
                        "attribute {k:?} ({}) is not supported by this CSE",
                        match k.as_str() {
                            "rl" => "rateLimit",
                            "pn" => "pendingNotification",
                            "nsp" => "notificationStoragePriority",
                            "nfu" => "notificationForwardingURI",
                            _ => "preSubscriptionNotify",
                        }
                    ),
                ));
            }
            "nct" => v.as_u64().is_some_and(|n| (1..=4).contains(&n)),
            "et" => {
                let Some(t) = v.as_str().and_then(time::parse) else {
                    return Err(bad(k, "a oneM2M timestamp"));
                };
                if t <= now {
                    return Err((Rsc::BadRequest, "et is in the past".to_owned()));
                }
                true
            }
            "enc" => v.as_object().is_some_and(|o| {
                o.get("net").is_none_or(|n| {
                    n.as_array()
                        .is_some_and(|a| a.iter().all(|x| x.as_u64().is_some_and(|x| (1..=8).contains(&x))))
                })
            }),
            "pv" | "pvs" => valid_privileges(v),
            "cr" => v.is_null(),
            _ => true,
        };
        if !ok {
            let want = match k.as_str() {
                "cr" => "null (the CSE fills it in)",
                "nct" => "1, 2, 3 or 4",
                "enc" => "an object with net: [1..8]",
                "pv" | "pvs" => {
                    "{\"acr\": [{\"acor\": [..], \"acop\": 0..63, \"acod\"?: [{\"chty\"?: [ty, ..]}]}]}"
                }
                "mni" | "mbs" | "mia" | "exc" | "nec" => "a non-negative integer",
                "rr" | "disr" | "ln" => "a boolean",
                "bn" => "{\"num\"?: a non-negative integer, \"dur\"?: an ISO 8601 duration of at least 1 s}",
                "lbl" | "acpi" | "poa" | "srv" | "nu" | "at" => "a list of strings",
                _ => "a string",
            };
            return Err(bad(k, want));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
