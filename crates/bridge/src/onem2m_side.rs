//! The gateway's oneM2M side: the same Mca requests go either in-process to the embedded CSE or over HTTP to a
//! remote CSE (ACME and others) where the gateway joined as an IPE AE.
//!
//! ```text
//!  device tree (AE, cmd, rsp, data containers, ACP, subscription on cmd) ──► Mca::send ──► embedded CSE
//!  cins (rn = request/report id: a replayed write is 4105, not a duplicate)              └► McaClient (remote)
//!  notifications of new cmd contentInstances ◄── local://<name> channel  /  NotificationListener ◄──┘
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ipe::mapping::{Cin, ResourceTree};
use onem2m::{Operation, RequestPrimitive, ResponsePrimitive, ResultContent, Rsc};
use serde_json::{Value, json};

use crate::mca::{Mca, Notified, Provenance};

/// Name of the ACP the gateway creates under each device AE for the AE and its containers except `cmd`:
/// everyone may retrieve, discover and subscribe (create subscriptions only, `acod`/`chty`); the device AE and
/// the IPE AE may do anything.
pub const DEVICE_ACP: &str = "acpIpe";
/// Name of the ACP of a device's `cmd` container: as [`DEVICE_ACP`], and everyone may also create
/// contentInstances (requests).
pub const CMD_ACP: &str = "acpIpeCmd";
/// Name of the subscription on each device's `cmd` container.
pub const CMD_SUB: &str = "subIpe";

/// The answers that mean a contentInstance is written: created now, or there already (a repeated write: 4105).
const CIN_WRITTEN: &[Rsc] = &[Rsc::Created, Rsc::Conflict];

/// A oneM2M request that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op:?} {target}: {rsc} {message}")]
pub struct Onem2mError {
    /// Operation.
    pub op: Operation,
    /// Target.
    pub target: String,
    /// Response status code (5000 for transport errors).
    pub rsc: Rsc,
    /// Debug message.
    pub message: String,
}

impl Onem2mError {
    /// A failure that may pass (the CSE unreachable, or failing on its side): the same request may succeed
    /// later.
    pub fn is_transient(&self) -> bool {
        self.rsc == Rsc::TargetNotReachable || self.rsc == Rsc::InternalServerError
    }
}

/// The oneM2M side of one gateway.
#[derive(Clone)]
pub struct Onem2mSide {
    /// Where requests go: the embedded CSE or a remote one.
    mca: Arc<dyn Mca>,
    /// CSEBase resource name (`cse-in`).
    base: String,
    /// The IPE AE's AE-ID (also its originator), e.g. `Cipechain-ipe`.
    ipe_ae: String,
    /// `nu` for the cmd subscriptions.
    notify_uri: String,
    rqi: Arc<std::sync::atomic::AtomicU64>,
    /// cmd container ri → device AE-ID (filled when the tree is made, or looked up).
    cmd_parents: Arc<Mutex<HashMap<String, String>>>,
    /// Device AEs whose ACPs and container `acpi` were brought up to date by this process (once per run:
    /// trees made by an earlier version get the current access control).
    acl_current: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// A request an application wrote into a device's `cmd` container.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdRequest {
    /// The device's AE-ID.
    pub ae_id: String,
    /// Who wrote it, as the CSE says (the originator of the contentInstance's CREATE); `None` when the CSE
    /// cannot say (a remote CSE where the application did not ask for `cr`). Never taken from the content.
    pub originator: Option<String>,
    /// The contentInstance's `con`.
    pub con: Value,
    /// The contentInstance's resource name.
    pub rn: Option<String>,
    /// The contentInstance's resource id (a request is taken from one contentInstance once).
    pub ri: Option<String>,
}

impl Onem2mSide {
    /// A side sending through `mca` to CSEBase `base`, as IPE AE `ipe_ae`, with cmd notifications sent
    /// to `notify_uri` (`local://<name>` for the embedded CSE, the listener's URL for a remote one).
    pub fn new(mca: Arc<dyn Mca>, base: &str, ipe_ae: &str, notify_uri: String) -> Self {
        Onem2mSide {
            mca,
            base: base.to_owned(),
            ipe_ae: ipe_ae.to_owned(),
            notify_uri,
            rqi: Arc::default(),
            cmd_parents: Arc::default(),
            acl_current: Arc::default(),
        }
    }

    fn req(&self, op: Operation, to: String, fr: &str) -> RequestPrimitive {
        let n = self.rqi.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RequestPrimitive::new(op, to, Some(fr.to_owned()), format!("ipe-{n}"))
    }

    async fn send(&self, req: RequestPrimitive, ok: &[Rsc]) -> Result<ResponsePrimitive, Onem2mError> {
        let (op, target) = (req.op, req.to.clone());
        let r = self.mca.send(req).await;
        if ok.contains(&r.rsc) {
            Ok(r)
        } else {
            let message = r.debug_message().unwrap_or_default().to_owned();
            Err(Onem2mError { op, target, rsc: r.rsc, message })
        }
    }

    async fn create(
        &self,
        parent: &str,
        fr: &str,
        ty: u16,
        pc: Value,
        ok: &[Rsc],
    ) -> Result<ResponsePrimitive, Onem2mError> {
        let mut req = self.req(Operation::Create, parent.to_owned(), fr);
        req.ty = Some(ty);
        req.pc = Some(pc);
        self.send(req, ok).await
    }

    /// Registers the IPE AE (or finds it registered) with the notification URI as its `poa`.
    pub async fn register_ipe(&self) -> Result<(), Onem2mError> {
        let ae = json!({"m2m:ae": {"rn": self.ipe_ae, "api": "Nipechain.ipe", "rr": true, "srv": ["3"],
            "poa": [self.notify_uri], "lbl": ["ipechain:ipe"]}});
        let r = self
            .create(
                &self.base,
                &self.ipe_ae,
                2,
                ae,
                &[Rsc::Created, Rsc::OriginatorHasAlreadyRegistered, Rsc::Conflict],
            )
            .await?;
        if r.rsc != Rsc::Created {
            // Registered before (a restart): point its poa at where we listen now.
            let mut req = self.req(Operation::Update, format!("{}/{}", self.base, self.ipe_ae), &self.ipe_ae);
            req.pc = Some(json!({"m2m:ae": {"poa": [self.notify_uri]}}));
            self.send(req, &[Rsc::Updated]).await?;
        }
        Ok(())
    }

    /// Creates a device's resource tree (AE, ACP, containers, the subscription on `cmd`); what exists already
    /// is kept, so this is safe to repeat.
    pub async fn ensure_tree(&self, tree: &ResourceTree) -> Result<(), Onem2mError> {
        let ae_id = &tree.ae.rn;
        let ae = json!({"m2m:ae": {"rn": ae_id, "api": tree.ae.api, "rr": tree.ae.rr, "srv": ["3"],
            "lbl": tree.ae.lbl}});
        self.create(
            &self.base,
            ae_id,
            2,
            ae,
            &[Rsc::Created, Rsc::OriginatorHasAlreadyRegistered, Rsc::Conflict],
        )
        .await?;
        let ae_path = format!("{}/{}", self.base, ae_id);
        // Applications may read and discover the device's tree, subscribe to any of its containers and write
        // requests into `cmd`, and nothing else: a contentInstance in `rsp` or a data container comes from the
        // gateway only. The device AE (the gateway speaking for it) and the IPE AE may do anything.
        let owners = json!([ae_id, self.ipe_ae]);
        let refresh = !self.acl_current.lock().is_ok_and(|s| s.contains(ae_id));
        let acp_ri = self.ensure_acp(&ae_path, ae_id, DEVICE_ACP, &owners, &[23], refresh).await?;
        let cmd_acp_ri = self.ensure_acp(&ae_path, ae_id, CMD_ACP, &owners, &[4, 23], refresh).await?;
        let mut up = self.req(Operation::Update, ae_path.clone(), ae_id);
        up.pc = Some(json!({"m2m:ae": {"acpi": [acp_ri.clone()]}}));
        self.send(up, &[Rsc::Updated]).await?;
        for c in &tree.containers {
            let (parent, _) = c.path.rsplit_once('/').unwrap_or((&c.path, ""));
            let is_cmd = c.rn == ipe::mapping::CMD && c.path == format!("{ae_id}/{}", ipe::mapping::CMD);
            let acpi = if is_cmd { &cmd_acp_ri } else { &acp_ri };
            let cnt = json!({"m2m:cnt": {"rn": c.rn, "lbl": c.lbl, "acpi": [acpi], "mni": 100}});
            let r = self
                .create(&format!("{}/{}", self.base, parent), ae_id, 3, cnt, &[Rsc::Created, Rsc::Conflict])
                .await?;
            if r.rsc == Rsc::Conflict && refresh {
                // A container made by an earlier version may name another ACP.
                let mut up = self.req(Operation::Update, format!("{}/{}", self.base, c.path), ae_id);
                up.pc = Some(json!({"m2m:cnt": {"acpi": [acpi]}}));
                self.send(up, &[Rsc::Updated]).await?;
            }
            if is_cmd {
                let ri = match (r.rsc, r.pc.as_ref().and_then(|p| p.pointer("/m2m:cnt/ri"))) {
                    (Rsc::Created, Some(Value::String(ri))) => ri.clone(),
                    _ => self.ri_of(&format!("{}/{}", self.base, c.path), ae_id).await?,
                };
                if let Ok(mut m) = self.cmd_parents.lock() {
                    m.insert(ri, ae_id.clone());
                }
                let sub = json!({"m2m:sub": {"rn": CMD_SUB, "nu": [self.notify_uri], "nct": 1,
                    "enc": {"net": [3]}}});
                self.create(
                    &format!("{}/{}", self.base, c.path),
                    ae_id,
                    23,
                    sub,
                    &[Rsc::Created, Rsc::Conflict],
                )
                .await?;
            }
        }
        if let Ok(mut set) = self.acl_current.lock() {
            set.insert(ae_id.clone());
        }
        Ok(())
    }

    /// Creates (or, when it exists, brings up to date) the ACP `rn` under a device AE: everyone may retrieve
    /// and discover, and create children of the types `create` only; the owners may do anything. Its `ri`.
    async fn ensure_acp(
        &self,
        ae_path: &str,
        ae_id: &str,
        rn: &str,
        owners: &Value,
        create: &[u16],
        refresh: bool,
    ) -> Result<String, Onem2mError> {
        let pv = json!({"acr": [{"acor": ["all"], "acop": 34},
            {"acor": ["all"], "acop": 1, "acod": [{"chty": create}]},
            {"acor": owners, "acop": 63}]});
        let pvs = json!({"acr": [{"acor": owners, "acop": 63}]});
        let acp = json!({"m2m:acp": {"rn": rn, "pv": pv, "pvs": pvs}});
        let r = self.create(ae_path, ae_id, 1, acp, &[Rsc::Created, Rsc::Conflict]).await?;
        let path = format!("{ae_path}/{rn}");
        if r.rsc == Rsc::Conflict && refresh {
            let mut up = self.req(Operation::Update, path.clone(), ae_id);
            up.pc = Some(json!({"m2m:acp": {"pv": pv}}));
            self.send(up, &[Rsc::Updated]).await?;
        }
        match r.pc.as_ref().and_then(|p| p.pointer("/m2m:acp/ri")) {
            Some(Value::String(ri)) if r.rsc == Rsc::Created => Ok(ri.clone()),
            _ => self.ri_of(&path, ae_id).await,
        }
    }

    async fn ri_of(&self, target: &str, fr: &str) -> Result<String, Onem2mError> {
        let r = self.send(self.req(Operation::Retrieve, target.to_owned(), fr), &[Rsc::Ok]).await?;
        inner(r.pc.as_ref()).and_then(|v| v.get("ri")).and_then(Value::as_str).map(str::to_owned).ok_or_else(
            || Onem2mError {
                op: Operation::Retrieve,
                target: target.to_owned(),
                rsc: Rsc::InternalServerError,
                message: "no ri in the answer".into(),
            },
        )
    }

    /// Removes containers a new registration no longer declares.
    pub async fn remove(&self, ae_id: &str, paths: &[String]) -> Result<(), Onem2mError> {
        for p in paths {
            let req = self.req(Operation::Delete, format!("{}/{p}", self.base), ae_id);
            self.send(req, &[Rsc::Deleted, Rsc::NotFound]).await?;
        }
        Ok(())
    }

    /// Deletes a device's AE (its containers go with it).
    pub async fn delete_ae(&self, ae_id: &str) -> Result<(), Onem2mError> {
        let req = self.req(Operation::Delete, format!("{}/{ae_id}", self.base), ae_id);
        self.send(req, &[Rsc::Deleted, Rsc::NotFound]).await.map(|_| ())
    }

    /// Writes a contentInstance named `rn` (so writing it again is a harmless 4105) as the device AE `ae_id`.
    pub async fn write_cin(&self, ae_id: &str, cin: &Cin, rn: &str) -> Result<(), Onem2mError> {
        self.send(self.cin_request(ae_id, cin, rn), CIN_WRITTEN).await.map(|_| ())
    }

    /// Writes contentInstances in order, each named `rn` in its container, as the device AE `ae_id`, through
    /// [`Mca::send_in_order`] (the embedded CSE stores them in one durable batch). Stops at the first that fails.
    /// Returns how many were written (or were there already: 4105) and the failure, if any.
    pub async fn write_cins(&self, ae_id: &str, cins: &[Cin], rn: &str) -> (usize, Result<(), Onem2mError>) {
        let reqs: Vec<_> = cins.iter().map(|c| self.cin_request(ae_id, c, rn)).collect();
        let targets: Vec<String> = reqs.iter().map(|r| r.to.clone()).collect();
        let rsps = self.mca.send_in_order(reqs, CIN_WRITTEN).await;
        let written = rsps.iter().take_while(|r| CIN_WRITTEN.contains(&r.rsc)).count();
        let failure = match (rsps.get(written), targets.get(written)) {
            (_, None) => return (written, Ok(())),
            (Some(r), Some(t)) => Onem2mError {
                op: Operation::Create,
                target: t.clone(),
                rsc: r.rsc,
                message: r.debug_message().unwrap_or_default().to_owned(),
            },
            (None, Some(t)) => Onem2mError {
                op: Operation::Create,
                target: t.clone(),
                rsc: Rsc::InternalServerError,
                message: format!("the CSE answered {} of {} requests", rsps.len(), targets.len()),
            },
        };
        (written, Err(failure))
    }

    /// The CREATE of a contentInstance named `rn` as the device AE `ae_id`, asking for no content in the answer
    /// (`rcn=0`: the gateway only needs the status).
    fn cin_request(&self, ae_id: &str, cin: &Cin, rn: &str) -> RequestPrimitive {
        let mut req = self.req(Operation::Create, format!("{}/{}", self.base, cin.container), ae_id);
        req.ty = Some(4);
        req.rcn = Some(ResultContent::Nothing);
        req.pc = Some(json!({"m2m:cin": {"rn": rn, "cnf": "application/json:0", "con": cin.con}}));
        req
    }

    /// Interprets a notification: a new contentInstance in some device's `cmd` container, or `None`
    /// (verification requests, deletion notices, anything else).
    ///
    /// The notification only says *which* contentInstance is new. Who created it comes from the CSE
    /// ([`Mca::provenance`]): in-process, handed over with the notification (or, failing that, from its record
    /// of the CREATE, [`Mca::creator_of`]); with a remote CSE the
    /// contentInstance is retrieved from the CSE (the listener's notifications are not authenticated) and its
    /// `cr` is taken from that answer. Nothing in the content names the originator.
    ///
    /// `Ok(None)`: not a new `cmd` contentInstance (or one gone from the CSE since). `Err`: the CSE failed to
    /// answer a read this needs; [`Onem2mError::is_transient`] says whether asking again may help.
    pub async fn cmd_request(&self, n: &Notified) -> Result<Option<CmdRequest>, Onem2mError> {
        let Some(sgn) = n.body.get("m2m:sgn") else { return Ok(None) };
        if sgn.get("vrq").is_some() || sgn.get("sud").is_some() {
            return Ok(None);
        }
        let Some(cin) = sgn.pointer("/nev/rep/m2m:cin") else { return Ok(None) };
        let Some(pi) = cin.get("pi").and_then(Value::as_str) else { return Ok(None) };
        let Some(ae_id) = self.cmd_owner(pi).await? else { return Ok(None) };
        match self.mca.provenance() {
            Provenance::InProcess => {
                let creator = n
                    .creator
                    .clone()
                    .or_else(|| cin.get("ri").and_then(Value::as_str).and_then(|ri| self.mca.creator_of(ri)));
                Ok(Some(Self::cmd_from_cin(ae_id, cin, creator)))
            }
            Provenance::Answers => {
                let Some(rn) = cin.get("rn").and_then(Value::as_str) else { return Ok(None) };
                let to = format!("{}/{ae_id}/{}/{rn}", self.base, ipe::mapping::CMD);
                let r = match self.send(self.req(Operation::Retrieve, to, &ae_id), &[Rsc::Ok]).await {
                    Ok(r) => r,
                    Err(e) if e.rsc == Rsc::NotFound => {
                        tracing::warn!(ae = %ae_id, rn, "a notified cmd contentInstance is not on the CSE");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                let Some(stored) = r.pc.as_ref().and_then(|p| p.get("m2m:cin")) else {
                    tracing::warn!(ae = %ae_id, rn, "the CSE answered a cmd contentInstance's read without it");
                    return Ok(None);
                };
                let creator = stored.get("cr").and_then(Value::as_str).map(str::to_owned);
                Ok(Some(Self::cmd_from_cin(ae_id, stored, creator)))
            }
        }
    }

    /// The requests waiting in a device's `cmd` container (read after a restart: a request written while the
    /// gateway was down had no one to notify).
    pub async fn cmd_backlog(&self, ae_id: &str) -> Result<Vec<CmdRequest>, Onem2mError> {
        let mut req =
            self.req(Operation::Retrieve, format!("{}/{ae_id}/{}", self.base, ipe::mapping::CMD), ae_id);
        req.rcn = Some(onem2m::ResultContent::AttributesAndChildResources);
        let r = self.send(req, &[Rsc::Ok]).await?;
        let cins = inner(r.pc.as_ref())
            .and_then(|c| c.get("m2m:cin"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(cins
            .iter()
            .map(|c| {
                let creator = match self.mca.provenance() {
                    Provenance::InProcess => {
                        c.get("ri").and_then(Value::as_str).and_then(|ri| self.mca.creator_of(ri))
                    }
                    // The CSE's own answer: its `cr`, if the application asked for one.
                    Provenance::Answers => c.get("cr").and_then(Value::as_str).map(str::to_owned),
                };
                Self::cmd_from_cin(ae_id.to_owned(), c, creator)
            })
            .collect())
    }

    /// Why a request has no originator ([`CmdRequest::originator`] is `None`), for the `rejected` answer.
    pub fn no_creator_reason(&self) -> &'static str {
        match self.mca.provenance() {
            Provenance::InProcess => {
                "the CSE no longer knows who created this request (its contentInstance is gone); write it again"
            }
            Provenance::Answers => {
                "the CSE did not record who created this request: create the request with cr (\"cr\": null in \
                 the contentInstance)"
            }
        }
    }

    fn cmd_from_cin(ae_id: String, cin: &Value, originator: Option<String>) -> CmdRequest {
        let con = match cin.get("con") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let rn = cin.get("rn").and_then(Value::as_str).map(str::to_owned);
        let ri = cin.get("ri").and_then(Value::as_str).map(str::to_owned);
        CmdRequest { ae_id, originator, con, rn, ri }
    }

    /// The device AE owning the cmd container `pi` (cached; looked up through the CSE after a restart):
    /// `Ok(None)` when `pi` is not such a container (or is gone).
    async fn cmd_owner(&self, pi: &str) -> Result<Option<String>, Onem2mError> {
        if let Some(a) = self.cmd_parents.lock().ok().and_then(|m| m.get(pi).cloned()) {
            return Ok(Some(a));
        }
        let key = pi.rsplit('/').next().unwrap_or(pi);
        let to = if pi.starts_with('/') { format!("~{pi}") } else { key.to_owned() };
        let read = |r: Result<ResponsePrimitive, Onem2mError>| match r {
            Ok(r) => Ok(inner(r.pc.as_ref()).cloned()),
            Err(e) if e.rsc == Rsc::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let Some(cnt) = read(self.send(self.req(Operation::Retrieve, to, &self.ipe_ae), &[Rsc::Ok]).await)?
        else {
            return Ok(None);
        };
        if cnt.get("rn").and_then(Value::as_str) != Some(ipe::mapping::CMD) {
            return Ok(None);
        }
        let Some(ae_ri) = cnt.get("pi").and_then(Value::as_str) else { return Ok(None) };
        let ae_key = ae_ri.rsplit('/').next().unwrap_or(ae_ri).to_owned();
        let Some(ae) =
            read(self.send(self.req(Operation::Retrieve, ae_key, &self.ipe_ae), &[Rsc::Ok]).await)?
        else {
            return Ok(None);
        };
        let Some(ae_id) = ae.get("rn").and_then(Value::as_str).map(str::to_owned) else { return Ok(None) };
        if let Ok(mut m) = self.cmd_parents.lock() {
            m.insert(pi.to_owned(), ae_id.clone());
        }
        Ok(Some(ae_id))
    }
}

fn inner(pc: Option<&Value>) -> Option<&Value> {
    pc?.as_object().filter(|o| o.len() == 1)?.values().next()
}
