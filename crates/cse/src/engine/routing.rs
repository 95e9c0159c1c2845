//! Request routing: a request's target resolved (structured, unstructured, SP-relative, `la`/`ol`) and the
//! operation dispatched to its handler.

use onem2m::{FilterUsage, Operation, RequestPrimitive, ResourceType, ResponsePrimitive, Rsc, Target};

use super::{Effects, Engine, Fail, fail};

/// A resolved target.
pub(super) enum Resolved {
    Res(String),
    Latest(String),
    Oldest(String),
}

impl Engine {
    /// The structured address (`cse-in/ae/cnt`) of a resource.
    pub(super) fn structured(&self, ri: &str) -> String {
        let mut parts = Vec::new();
        let mut cur = self.res.get(ri);
        while let Some(r) = cur {
            parts.push(r.rn.as_str());
            cur = if r.pi.is_empty() { None } else { self.res.get(&r.pi) };
        }
        parts.reverse();
        parts.join("/")
    }

    pub(super) fn sp_relative(&self, ri: &str) -> String {
        format!("/{}/{}", self.cfg.cse_id, ri)
    }

    pub(super) fn resolve(&self, to: &str) -> Result<Resolved, Fail> {
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

    /// Runs one request.
    pub(crate) fn handle(&mut self, req: &RequestPrimitive, now: i64) -> (ResponsePrimitive, Effects) {
        self.expire(now);
        let rsp = self.answer(req, now);
        (rsp, self.take_fx())
    }

    /// Runs requests in order, up to and including the first answer `proceed` refuses, and returns their answers
    /// with the effects of all of them in one batch: each key is stored once, as it is after the last request (a
    /// container that gets two contentInstances is written once), and the notifications keep the requests' order.
    pub(crate) fn handle_in_order(
        &mut self,
        reqs: &[RequestPrimitive],
        now: i64,
        proceed: impl Fn(&ResponsePrimitive) -> bool,
    ) -> (Vec<ResponsePrimitive>, Effects) {
        self.expire(now);
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            let rsp = self.answer(req, now);
            let go = proceed(&rsp);
            out.push(rsp);
            if !go {
                break;
            }
        }
        (out, self.take_fx())
    }

    /// The answer to one request, its effects left in `self.fx`.
    fn answer(&mut self, req: &RequestPrimitive, now: i64) -> ResponsePrimitive {
        let result = self.dispatch(req, now, false);
        self.reserved_ri = None;
        match result {
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
        }
    }

    pub(super) fn dispatch(
        &mut self,
        req: &RequestPrimitive,
        now: i64,
        dry: bool,
    ) -> Result<ResponsePrimitive, Fail> {
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

    pub(super) fn origin<'a>(&self, req: &'a RequestPrimitive) -> Result<&'a str, Fail> {
        match req.fr.as_deref() {
            Some(f) => Ok(f),
            None => fail(Rsc::BadRequest, "missing originator (X-M2M-Origin)"),
        }
    }

    // ---------------------------------------------------------------- CREATE
}
