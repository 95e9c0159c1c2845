//! The oneM2M TS-0014 mapping as data: what resource tree a device gets on the oneM2M side, and which
//! contentInstances its values become. Pure functions, usable by the gateway directly as a library.
//!
//! ```text
//! <CSEBase>/
//!   Cimei-356938035643809            AE (rn = AE-ID, api = "Nlwm2m-ipe", lbl = endpoint, version, gateway, mode)
//!     cmd                            container: applications write requests here
//!     rsp                            container: the IPE writes answers here
//!     obj3303_0                      container per object instance            (full mapping)
//!       res5700                      container per readable resource          (full mapping)
//!     lwm2m                          one container, LWM2M-Object-Encapsulation (transparent mapping)
//! ```
//!
//! Names and JSON shapes are documented in `docs/bridge-mapping.md`.
//!
//! ```
//! use ipe::mapping::{self, MappingMode};
//! use ipe::model::{Device, GatewayRef};
//! use lwm2m::{Record, Registry, Value};
//!
//! let registry = Registry::builtin();
//! let device = Device {
//!     endpoint: "imei:1".into(),
//!     ae_id: mapping::ae_id_for("imei:1"),
//!     lwm2m_version: "1.1".into(),
//!     lifetime: 300,
//!     binding: "U".into(),
//!     queue_mode: false,
//!     objects: vec!["/3303/0".into()],
//!     formats: vec![],
//!     links: "</3303/0>".into(),
//!     mode: MappingMode::Full,
//!     gateway: GatewayRef { org: "Org1MSP".into(), id: "gw1".into() },
//!     registered_at: 0,
//!     updated_at: 0,
//! };
//! let tree = mapping::resource_tree(&device, &registry);
//! assert_eq!(tree.ae.rn, "Cimei-1");
//! assert_eq!(tree.containers[0].path, "Cimei-1/cmd");
//! assert!(tree.containers.iter().any(|c| c.path == "Cimei-1/obj3303_0/res5700"));
//!
//! let value = Record::new("/3303/0/5700".parse().unwrap(), Value::Float(21.5));
//! let base = "/3303/0".parse().unwrap();
//! let cins = mapping::cins_for_records(&(&device).into(), &registry, &base, &[value], None, 1_700_000_000).unwrap();
//! assert_eq!(cins[0].container, "Cimei-1/obj3303_0/res5700");
//! assert_eq!(cins[0].con, serde_json::json!({"v": 21.5, "type": "FLOAT", "unit": "Cel", "t": 1_700_000_000}));
//! ```

use lwm2m::{LwM2mPath, Record, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::model::Device;
use crate::translate::{self, TranslateError};

/// The `api` attribute of every mapped AE.
pub const AE_API: &str = "Nlwm2m-ipe";
/// The command container's name.
pub const CMD: &str = "cmd";
/// The response container's name.
pub const RSP: &str = "rsp";
/// The transparent-mode container's name.
pub const TRANSPARENT: &str = "lwm2m";
/// Longest AE-ID produced.
pub const MAX_AE_ID: usize = 64;

/// How a device's data is mapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingMode {
    /// A container per object instance and per resource, readable JSON values.
    #[default]
    Full,
    /// One container holding `LWM2M-Object-Encapsulation` contentInstances.
    Transparent,
}

/// The AE to create for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AeSpec {
    /// Resource name (the AE-ID).
    pub rn: String,
    /// App-ID.
    pub api: String,
    /// Request reachability (the IPE notifies through it).
    pub rr: bool,
    /// Labels: the original endpoint name and facts about the device.
    pub lbl: Vec<String>,
}

/// A container to create. `path` is relative to the CSEBase (`Cimei-1/obj3303_0/res5700`); its parent is
/// everything before the last `/` and comes earlier in [`ResourceTree::containers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Path relative to the CSEBase.
    pub path: String,
    /// Resource name.
    pub rn: String,
    /// Labels (`lwm2m-path:/3303/0/5700`, …).
    pub lbl: Vec<String>,
}

/// Everything to create on the oneM2M side for a device, parents first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTree {
    /// The AE.
    pub ae: AeSpec,
    /// Containers, parents before children.
    pub containers: Vec<ContainerSpec>,
}

/// A contentInstance to write: into `container` (path relative to the CSEBase), content `con`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cin {
    /// Container path relative to the CSEBase.
    pub container: String,
    /// Content (JSON; a CSE that wants a string gets it serialised).
    pub con: Json,
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The AE-ID for an endpoint name: `C` + the name with every character a CSE does not accept in an id
/// (anything but `A-Z a-z 0-9 - . _ ~`) replaced by `-`; names that would be longer than [`MAX_AE_ID`] are
/// cut and get an 8-hex-digit hash of the full name. `imei:356938035643809` → `Cimei-356938035643809`.
pub fn ae_id_for(endpoint: &str) -> String {
    let mut id = String::with_capacity(endpoint.len() + 1);
    id.push('C');
    for c in endpoint.chars() {
        id.push(if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') { c } else { '-' });
    }
    if id.len() > MAX_AE_ID {
        id.truncate(MAX_AE_ID - 9);
        id = with_hash(&id, endpoint);
    }
    id
}

/// `base` + `-` + the 8-hex-digit hash of `endpoint`: the AE-ID used when [`ae_id_for`] collides with another
/// registered endpoint's.
pub fn with_hash(base: &str, endpoint: &str) -> String {
    let cut = (0..=base.len().min(MAX_AE_ID - 9)).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
    format!("{}-{:08x}", &base[..cut], fnv1a(endpoint))
}

/// The container name of an object instance: `obj3303_0`.
pub fn instance_rn(object: u16, instance: u16) -> String {
    format!("obj{object}_{instance}")
}

/// The container name of a resource: `res5700`.
pub fn resource_rn(resource: u16) -> String {
    format!("res{resource}")
}

/// The container (relative to the CSEBase) that holds values of `path` in full mode: the resource container
/// for a resource the registry knows, else the object-instance container.
pub fn container_for(registry: &Registry, ae_id: &str, path: &LwM2mPath) -> Option<String> {
    let (o, i) = (path.object()?, path.instance()?);
    let inst = format!("{ae_id}/{}", instance_rn(o, i));
    match path.resource() {
        Some(r) if registry.resource(o, r).is_some() => Some(format!("{inst}/{}", resource_rn(r))),
        _ => Some(inst),
    }
}

/// The resource tree for `device` (see the module docs).
pub fn resource_tree(device: &Device, registry: &Registry) -> ResourceTree {
    let ae = AeSpec {
        rn: device.ae_id.clone(),
        api: AE_API.into(),
        rr: true,
        lbl: vec![
            format!("lwm2m-ep:{}", device.endpoint),
            format!("lwm2m-ver:{}", device.lwm2m_version),
            format!("ipe-gw:{}/{}", device.gateway.org, device.gateway.id),
            format!("ipe-mode:{}", if device.mode == MappingMode::Full { "full" } else { "transparent" }),
        ],
    };
    let ae_id = &device.ae_id;
    let mut containers = vec![
        ContainerSpec { path: format!("{ae_id}/{CMD}"), rn: CMD.into(), lbl: vec!["ipe:commands".into()] },
        ContainerSpec { path: format!("{ae_id}/{RSP}"), rn: RSP.into(), lbl: vec!["ipe:responses".into()] },
    ];
    match device.mode {
        MappingMode::Transparent => containers.push(ContainerSpec {
            path: format!("{ae_id}/{TRANSPARENT}"),
            rn: TRANSPARENT.into(),
            lbl: vec!["ipe:LWM2M-Object-Encapsulation".into()],
        }),
        MappingMode::Full => {
            for p in device.instance_paths() {
                let (Some(o), Some(i)) = (p.object(), p.instance()) else { continue };
                if o == 0 {
                    continue; // Security: never exposed to a server.
                }
                let model = registry.object(o);
                let inst = format!("{ae_id}/{}", instance_rn(o, i));
                let mut lbl = vec![format!("lwm2m-path:{p}")];
                if let Some(m) = model {
                    lbl.push(format!("lwm2m-obj:{}", m.name));
                }
                containers.push(ContainerSpec { path: inst.clone(), rn: instance_rn(o, i), lbl });
                let Some(m) = model else { continue };
                let mut res: Vec<_> = m.resources.values().filter(|r| r.operations.readable()).collect();
                res.sort_by_key(|r| r.id);
                for r in res {
                    let rp = format!("{p}/{}", r.id);
                    let mut lbl = vec![
                        format!("lwm2m-path:{rp}"),
                        format!("lwm2m-name:{}", r.name),
                        format!("lwm2m-type:{}", r.ty.name()),
                    ];
                    if let Some(u) = p.child(r.id).ok().and_then(|rp| translate::unit_of(registry, &rp)) {
                        lbl.push(format!("unit:{u}"));
                    }
                    containers.push(ContainerSpec {
                        path: format!("{inst}/{}", resource_rn(r.id)),
                        rn: resource_rn(r.id),
                        lbl,
                    });
                }
            }
        }
    }
    ResourceTree { ae, containers }
}

/// Container paths of `old` that `new` no longer has (to delete after an Update).
pub fn removed_containers(old: &ResourceTree, new: &ResourceTree) -> Vec<String> {
    old.containers
        .iter()
        .filter(|c| !new.containers.iter().any(|n| n.path == c.path))
        .map(|c| c.path.clone())
        .collect()
}

/// What [`cins_for_records`] needs of a device: its names and mapping mode (kept in each request record, so an
/// answer does not depend on the device record, which a concurrent Update may change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedDevice {
    /// LwM2M endpoint name.
    pub endpoint: String,
    /// AE-ID.
    pub ae_id: String,
    /// Mapping mode.
    pub mode: MappingMode,
}

impl From<&Device> for MappedDevice {
    fn from(d: &Device) -> Self {
        MappedDevice { endpoint: d.endpoint.clone(), ae_id: d.ae_id.clone(), mode: d.mode }
    }
}

/// The contentInstances for values a device reported (or a read returned).
///
/// Full mode: one per record, a reading `{"v","type","unit"?,"t","ri"?}` in the record's container (unknown
/// resources go to the instance container with an added `"path"`). Transparent mode: one contentInstance in
/// the `lwm2m` container, `{"LWM2M-Object-Encapsulation": {"ep","path","ct","data","t"}}`, carrying the raw
/// payload when the gateway passed it (`raw = (content format, base64)`), else the records encoded as SenML
/// JSON (110).
pub fn cins_for_records(
    device: &MappedDevice,
    registry: &Registry,
    base: &LwM2mPath,
    records: &[Record],
    raw: Option<(u16, &str)>,
    time: i64,
) -> Result<Vec<Cin>, TranslateError> {
    match device.mode {
        MappingMode::Full => {
            let mut out = Vec::with_capacity(records.len());
            for r in records {
                let mut con = translate::reading(registry, r, time)?;
                let container = container_for(registry, &device.ae_id, &r.path)
                    .ok_or_else(|| TranslateError::Path(r.path.to_string()))?;
                let known = r.path.resource().and_then(|res| registry.resource(r.path.object()?, res));
                if let (None, Json::Object(o)) = (known, &mut con) {
                    o.insert("path".into(), Json::String(r.path.to_string()));
                }
                out.push(Cin { container, con });
            }
            Ok(out)
        }
        MappingMode::Transparent => {
            let (ct, data) = match raw {
                Some((ct, b64)) => (ct, b64.to_owned()),
                None => {
                    let bytes =
                        lwm2m::codec::encode(lwm2m::ContentFormat::SENML_JSON, records, &LwM2mPath::ROOT)
                            .map_err(|e| TranslateError::Codec(e.to_string()))?;
                    (lwm2m::ContentFormat::SENML_JSON.0, translate::base64_encode(&bytes))
                }
            };
            Ok(vec![Cin {
                container: format!("{}/{TRANSPARENT}", device.ae_id),
                con: json!({"LWM2M-Object-Encapsulation": {
                    "ep": device.endpoint, "path": base.to_string(), "ct": ct, "data": data, "t": time
                }}),
            }])
        }
    }
}

/// The `submit_request` argument for a contentInstance an application created in a device's `cmd` container:
/// `con` (a JSON object, or its serialisation as a string, as some CSEs store it) with `originator` set from
/// the contentInstance's creator (`X-M2M-Origin`) and `endpoint` from the AE the container belongs to. What
/// the application wrote in those two fields is overridden, so it cannot speak for another originator.
pub fn request_from_cmd(con: &Json, originator: &str, endpoint: &str) -> Result<Json, TranslateError> {
    let mut req = match con {
        Json::String(s) => serde_json::from_str::<Json>(s)
            .map_err(|e| TranslateError::Shape(format!("cmd content is not JSON: {e}")))?,
        other => other.clone(),
    };
    let Json::Object(o) = &mut req else {
        return Err(TranslateError::Shape("cmd content must be a JSON object".into()));
    };
    o.insert("originator".into(), Json::String(originator.to_owned()));
    o.insert("endpoint".into(), Json::String(endpoint.to_owned()));
    Ok(req)
}

/// The oneM2M response status code for a contract error status (what the endorser returned for a refused
/// `submit_request`): 400 → 4000 BAD_REQUEST, 403 → 4103 ORIGINATOR_HAS_NO_PRIVILEGE, 404 → 4004 NOT_FOUND,
/// 409 → 4105 CONFLICT, anything else → 5000 INTERNAL_SERVER_ERROR.
pub fn rsc_for_contract_status(status: i32) -> u16 {
    match status {
        400 => 4000,
        403 => 4103,
        404 => 4004,
        409 => 4105,
        _ => 5000,
    }
}

/// The `rsp` contentInstance for a request the contract refused (so an application that wrote into `cmd`
/// still gets an answer): same shape as an answered request's, `status: "rejected"`, no `code`.
pub fn rejection_cin(ae_id: &str, request_id: &str, originator: &str, status: i32, message: &str) -> Cin {
    Cin {
        container: format!("{ae_id}/{RSP}"),
        con: json!({
            "request_id": request_id, "originator": originator, "op": null, "path": null,
            "status": "rejected", "rsc": rsc_for_contract_status(status), "code": null, "content": {},
            "message": message,
        }),
    }
}
