//! DELETE of a resource and its subtree, with the notifications that go with it.

use onem2m::{RequestPrimitive, ResourceType, ResponsePrimitive, ResultContent, Rsc};
use serde_json::{Value, json};

use super::notification::net;
use super::routing::Resolved;
use super::{Engine, Fail, fail};

impl Engine {
    pub(super) fn delete(
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
    pub(super) fn delete_tree(&mut self, ri: &str, now: i64, notify_parent: bool) {
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
}
