//! Device registry and access-policy functions of the contract.

use contract::{ContractError, TxContext};
use lwm2m::registration::ObjectLinks;

use crate::events::{DeviceEvent, PolicyChangedEvent};
use crate::mapping::{self, ResourceTree};
use crate::model::{Address, DeregisterArgs, Device, GatewayRef, ListDevicesArgs, RegisterArgs, UpdateArgs};
use crate::policy::{Policy, Rule};
use crate::{IpeContract, bad, emit, events, load, store, to_json};

/// The most objects and instances a registration may declare.
pub(crate) const MAX_OBJECT_LINKS: usize = 1024;
/// The most rules the policy may hold.
pub(crate) const MAX_RULES: usize = 4096;

/// State key of the policy.
pub(crate) const POLICY_KEY: &str = "pol/policy";

pub(crate) fn dev_key(ep: &str) -> String {
    format!("dev/{ep}")
}

fn ae_key(ae: &str) -> String {
    format!("ae/{ae}")
}

fn check_endpoint(ep: &str) -> Result<(), ContractError> {
    if ep.is_empty() || ep.len() > 255 || ep.chars().any(char::is_control) {
        return Err(bad("endpoint name must be 1..=255 bytes without control characters"));
    }
    Ok(())
}

fn check_binding(b: &str) -> Result<(), ContractError> {
    if b.is_empty() || b.len() > 8 || !b.chars().all(|c| "UMHTSNQ".contains(c)) {
        return Err(bad(format!("binding {b:?}: letters of U, M, H, T, S, N, Q expected")));
    }
    Ok(())
}

fn parse_links(links: &str) -> Result<(Vec<String>, Vec<u16>), ContractError> {
    let parsed = ObjectLinks::parse(links.as_bytes()).map_err(|e| bad(format!("links: {e}")))?;
    if parsed.objects.len() > MAX_OBJECT_LINKS {
        return Err(bad(format!("{} object links, at most {MAX_OBJECT_LINKS}", parsed.objects.len())));
    }
    let objects = parsed.objects.iter().map(|o| o.path.to_string()).collect();
    let formats = parsed.supported_formats.iter().map(|f| f.0).collect();
    Ok((objects, formats))
}

/// The caller as a gateway reference.
pub(crate) fn caller_gateway(ctx: &TxContext<'_>) -> GatewayRef {
    GatewayRef { org: ctx.caller().msp_id.clone(), id: ctx.caller().subject.clone() }
}

/// Whether the caller is the gateway `gw`.
pub(crate) fn is_gateway(ctx: &TxContext<'_>, gw: &GatewayRef) -> bool {
    ctx.caller().msp_id == gw.org && ctx.caller().subject == gw.id
}

/// Finds a device by endpoint name or AE-ID.
pub(crate) fn find_device(ctx: &mut TxContext<'_>, name: &str) -> Result<Device, ContractError> {
    if name.is_empty() {
        return Err(bad("empty endpoint name"));
    }
    if let Some(d) = load::<Device>(ctx, &dev_key(name))? {
        return Ok(d);
    }
    if let Some(ep) = load::<String>(ctx, &ae_key(name))?
        && let Some(d) = load::<Device>(ctx, &dev_key(&ep))?
    {
        return Ok(d);
    }
    Err(ContractError::NotFound(format!("device {name:?} is not registered")))
}

fn device_event(device: &Device, tree: ResourceTree, removed: Vec<String>) -> DeviceEvent {
    DeviceEvent { to: Address::Onem2m, device: device.clone(), tree, removed, reason: None }
}

impl IpeContract {
    fn free_ae_id(&self, ctx: &mut TxContext<'_>, ep: &str) -> Result<String, ContractError> {
        let first = mapping::ae_id_for(ep);
        let second = mapping::with_hash(&first, ep);
        for candidate in [first, second] {
            match load::<String>(ctx, &ae_key(&candidate))? {
                Some(owner) if owner != ep => continue,
                _ => return Ok(candidate),
            }
        }
        Err(ContractError::Conflict(format!("no free AE-ID for endpoint {ep:?}")))
    }

    pub(crate) fn register_device(
        &self,
        ctx: &mut TxContext<'_>,
        a: RegisterArgs,
    ) -> Result<Vec<u8>, ContractError> {
        check_endpoint(&a.endpoint)?;
        let version = a.lwm2m_version.unwrap_or_else(|| "1.0".into());
        if version != "1.0" && version != "1.1" {
            return Err(bad(format!("LwM2M version {version:?}: 1.0 or 1.1 expected")));
        }
        let lifetime = a.lifetime.unwrap_or(86_400);
        if lifetime == 0 {
            return Err(bad("lifetime must be positive"));
        }
        let binding = a.binding.unwrap_or_else(|| "U".into());
        check_binding(&binding)?;
        let (objects, formats) = parse_links(&a.links)?;
        let now = ctx.timestamp();
        let gateway = caller_gateway(ctx);
        let old: Option<Device> = load(ctx, &dev_key(&a.endpoint))?;
        if let Some(old) = &old {
            let expired = now > old.updated_at.saturating_add(i64::from(old.lifetime));
            if old.gateway.org != gateway.org && !expired && !self.is_admin(ctx.caller()) {
                return Err(ContractError::Forbidden(format!(
                    "{:?} is served by {}/{} until its registration expires",
                    a.endpoint, old.gateway.org, old.gateway.id
                )));
            }
        }
        let ae_id = match &old {
            Some(o) => o.ae_id.clone(),
            None => self.free_ae_id(ctx, &a.endpoint)?,
        };
        let device = Device {
            endpoint: a.endpoint.clone(),
            ae_id: ae_id.clone(),
            lwm2m_version: version,
            lifetime,
            binding,
            queue_mode: a.queue_mode,
            objects,
            formats,
            links: a.links,
            mode: a.mode.unwrap_or(self.config.default_mode),
            gateway,
            registered_at: old.as_ref().map_or(now, |o| o.registered_at),
            updated_at: now,
        };
        let tree = mapping::resource_tree(&device, &self.config.registry);
        let removed = old
            .as_ref()
            .map(|o| mapping::removed_containers(&mapping::resource_tree(o, &self.config.registry), &tree))
            .unwrap_or_default();
        store(ctx, &dev_key(&device.endpoint), &device)?;
        store(ctx, &ae_key(&ae_id), &device.endpoint)?;
        emit(ctx, events::DEVICE_REGISTERED, &device_event(&device, tree, removed))?;
        to_json(&device)
    }

    fn served_device(&self, ctx: &mut TxContext<'_>, ep: &str) -> Result<Device, ContractError> {
        check_endpoint(ep)?;
        let device: Device = load(ctx, &dev_key(ep))?
            .ok_or_else(|| ContractError::NotFound(format!("device {ep:?} is not registered")))?;
        if !is_gateway(ctx, &device.gateway) && !self.is_admin(ctx.caller()) {
            return Err(ContractError::Forbidden(format!(
                "{ep:?} is served by {}/{}",
                device.gateway.org, device.gateway.id
            )));
        }
        Ok(device)
    }

    pub(crate) fn update_device(
        &self,
        ctx: &mut TxContext<'_>,
        a: UpdateArgs,
    ) -> Result<Vec<u8>, ContractError> {
        let old = self.served_device(ctx, &a.endpoint)?;
        let mut device = old.clone();
        if let Some(lt) = a.lifetime {
            if lt == 0 {
                return Err(bad("lifetime must be positive"));
            }
            device.lifetime = lt;
        }
        if let Some(b) = a.binding {
            check_binding(&b)?;
            device.binding = b;
        }
        if let Some(q) = a.queue_mode {
            device.queue_mode = q;
        }
        if let Some(links) = a.links {
            let (objects, formats) = parse_links(&links)?;
            device.objects = objects;
            if !formats.is_empty() {
                device.formats = formats;
            }
            device.links = links;
        }
        device.updated_at = ctx.timestamp();
        let tree = mapping::resource_tree(&device, &self.config.registry);
        let removed =
            mapping::removed_containers(&mapping::resource_tree(&old, &self.config.registry), &tree);
        store(ctx, &dev_key(&device.endpoint), &device)?;
        emit(ctx, events::DEVICE_UPDATED, &device_event(&device, tree, removed))?;
        to_json(&device)
    }

    pub(crate) fn deregister_device(
        &self,
        ctx: &mut TxContext<'_>,
        a: DeregisterArgs,
    ) -> Result<Vec<u8>, ContractError> {
        let reason = a.reason.unwrap_or_else(|| "deregistered".into());
        if reason != "deregistered" && reason != "expired" {
            return Err(bad(format!("reason {reason:?}: deregistered or expired expected")));
        }
        let device = self.served_device(ctx, &a.endpoint)?;
        let tree = mapping::resource_tree(&device, &self.config.registry);
        ctx.delete_state(&dev_key(&device.endpoint))?;
        ctx.delete_state(&ae_key(&device.ae_id))?;
        let mut ev = device_event(&device, tree, Vec::new());
        ev.reason = Some(reason);
        emit(ctx, events::DEVICE_DEREGISTERED, &ev)?;
        to_json(&device)
    }

    pub(crate) fn get_device(&self, ctx: &mut TxContext<'_>, name: &str) -> Result<Vec<u8>, ContractError> {
        to_json(&find_device(ctx, name)?)
    }

    pub(crate) fn get_mapping(&self, ctx: &mut TxContext<'_>, name: &str) -> Result<Vec<u8>, ContractError> {
        let device = find_device(ctx, name)?;
        to_json(&mapping::resource_tree(&device, &self.config.registry))
    }

    /// `list_devices([{"after": ep, "limit": n, "gateway": id, "org": msp}])`.
    pub(crate) fn list_devices(
        &self,
        ctx: &mut TxContext<'_>,
        filter: &ListDevicesArgs,
    ) -> Result<Vec<u8>, ContractError> {
        let limit = filter.limit.unwrap_or(1000).clamp(1, 1000) as usize;
        let start = match &filter.after {
            Some(after) => format!("dev/{after}\u{1}"),
            None => "dev/".to_owned(),
        };
        let rows = ctx.get_range(&start, "dev0", limit)?;
        let org = filter.org.as_deref();
        let gw = filter.gateway.as_deref();
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let d: Device = serde_json::from_slice(&v)
                .map_err(|e| ContractError::Internal(format!("state {k} is not valid: {e}")))?;
            if org.is_some_and(|o| o != d.gateway.org) || gw.is_some_and(|g| g != d.gateway.id) {
                continue;
            }
            out.push(d);
        }
        to_json(&out)
    }

    fn require_admin(&self, ctx: &TxContext<'_>) -> Result<(), ContractError> {
        if self.is_admin(ctx.caller()) {
            Ok(())
        } else {
            Err(ContractError::Forbidden("only admins (role admin or an admin MSP) change the policy".into()))
        }
    }

    fn write_policy(
        &self,
        ctx: &mut TxContext<'_>,
        mut p: Policy,
        old: &Policy,
    ) -> Result<Vec<u8>, ContractError> {
        if p.rules.len() > MAX_RULES {
            return Err(bad(format!("{} rules, at most {MAX_RULES}", p.rules.len())));
        }
        for (i, r) in p.rules.iter().enumerate() {
            Policy::check_rule(r).map_err(bad)?;
            if p.rules[..i].iter().any(|o| o.id == r.id) {
                return Err(bad(format!("rule id {:?} appears twice", r.id)));
            }
        }
        p.version = old.version + 1;
        store(ctx, POLICY_KEY, &p)?;
        emit(ctx, events::POLICY_CHANGED, &PolicyChangedEvent { to: Address::Onem2m, version: p.version })?;
        to_json(&p)
    }

    pub(crate) fn load_policy(ctx: &mut TxContext<'_>) -> Result<Policy, ContractError> {
        Ok(load(ctx, POLICY_KEY)?.unwrap_or_default())
    }

    pub(crate) fn set_policy(&self, ctx: &mut TxContext<'_>, p: Policy) -> Result<Vec<u8>, ContractError> {
        self.require_admin(ctx)?;
        let old = Self::load_policy(ctx)?;
        self.write_policy(ctx, p, &old)
    }

    pub(crate) fn grant(&self, ctx: &mut TxContext<'_>, rule: Rule) -> Result<Vec<u8>, ContractError> {
        self.require_admin(ctx)?;
        let old = Self::load_policy(ctx)?;
        let mut p = old.clone();
        match p.rules.iter_mut().find(|r| r.id == rule.id) {
            Some(r) => *r = rule,
            None => p.rules.push(rule),
        }
        self.write_policy(ctx, p, &old)
    }

    pub(crate) fn revoke(&self, ctx: &mut TxContext<'_>, id: &str) -> Result<Vec<u8>, ContractError> {
        self.require_admin(ctx)?;
        let old = Self::load_policy(ctx)?;
        let mut p = old.clone();
        let before = p.rules.len();
        p.rules.retain(|r| r.id != id);
        if p.rules.len() == before {
            return Err(ContractError::NotFound(format!("no rule {id:?}")));
        }
        self.write_policy(ctx, p, &old)
    }

    pub(crate) fn get_policy(&self, ctx: &mut TxContext<'_>) -> Result<Vec<u8>, ContractError> {
        to_json(&Self::load_policy(ctx)?)
    }
}
