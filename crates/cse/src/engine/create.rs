//! CREATE: every resource type's creation, AE registration, and the container limits (`mni`, `mbs`, `mia`) a new
//! contentInstance enforces.

use onem2m::{RequestPrimitive, ResourceName, ResourceType, ResponsePrimitive, ResultContent, Rsc, time};
use serde_json::{Map, Value, json};

use super::notification::{DEFAULT_BATCH_DURATION, check_nct_net, net};
use super::resource::{Res, content_size};
use super::routing::Resolved;
use super::schema::{
    ACP_CREATE, AE_CREATE, CIN_CREATE, CNT_CREATE, SUB_CREATE, allowed_children, check_types,
};
use super::update::modified_attributes;
use super::{DEFAULT_ET_MICROS, Engine, Fail, fail};

impl Engine {
    pub(super) fn create(
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
    pub(super) fn enforce_limits(&mut self, cnt_ri: &str, now: i64) {
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
}
