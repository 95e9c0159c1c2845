//! RETRIEVE and DISCOVERY: result content (`rcn`), filter criteria.

use onem2m::{
    DiscResType, FilterCriteria, FilterUsage, RequestPrimitive, ResourceType, ResponsePrimitive,
    ResultContent, Rsc, time,
};
use serde_json::{Map, Value, json};

use super::resource::Res;
use super::routing::Resolved;
use super::{Engine, Fail, fail};

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

impl Engine {
    pub(super) fn cins(&self, cnt: &str) -> impl DoubleEndedIterator<Item = &Res> {
        self.children
            .get(cnt)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|ri| self.res.get(ri))
            .filter(|r| r.ty == ResourceType::ContentInstance)
    }

    pub(super) fn retrieve(
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

    pub(super) fn result(&self, rcn: ResultContent, ri: &str, rsc: Rsc) -> Result<ResponsePrimitive, Fail> {
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
}
