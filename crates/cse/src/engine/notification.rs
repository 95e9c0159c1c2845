//! Subscriptions and notifications: targets (`nu`), the notifications a change causes, batching (`bn`/`ln`),
//! verification of a new subscription's targets.

use onem2m::{Operation, RequestPrimitive, ResourceType, ResponsePrimitive, Rsc, time};
use serde_json::{Map, Value, json};

use super::resource::Res;
use super::routing::Resolved;
use super::{Engine, Fail, fail};

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
pub(super) const DEFAULT_BATCH_DURATION: std::time::Duration = std::time::Duration::from_secs(60);

impl BatchPolicy {
    /// The policy of a subscription's attributes, if it has `bn` (checked by [`check_types`] when it was set).
    pub(super) fn of(attrs: &Map<String, Value>) -> Option<BatchPolicy> {
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

/// Notification event types (`enc.net`).
pub(super) mod net {
    pub(in crate::engine) const UPDATE: u64 = 1;
    pub(in crate::engine) const DELETE: u64 = 2;
    pub(in crate::engine) const CREATE_CHILD: u64 = 3;
    pub(in crate::engine) const DELETE_CHILD: u64 = 4;
}

/// The `nct`/`enc.net` combinations TS-0004 allows: modified attributes (2) only for updates (net 1).
pub(super) fn check_nct_net(body: &Map<String, Value>) -> Result<(), Fail> {
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

impl Engine {
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

    pub(super) fn notify_event(
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

    pub(super) fn subscription_deleted(&mut self, sub: &Res) {
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
}
