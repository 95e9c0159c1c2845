//! Requests and responses (oneM2M → LwM2M), reports and device requests (LwM2M → oneM2M), correlated by id.

use contract::{ContractError, TxContext};
use lwm2m::{ContentFormat, LwM2mPath, Record, Value};
use serde_json::{Map, Value as Json, json};

use crate::events::{DeviceAnswerEvent, DeviceRequestEvent, ReportEvent, RequestEvent, ResponseEvent};
use crate::mapping::{self, Cin, MappedDevice};
use crate::model::{
    Address, AnswerArgs, Device, DeviceAnswer, DeviceRequestArgs, DeviceRequestRecord, Downlink, Operation,
    Outcome, ReportArgs, RequestArgs, RequestRecord, ResponseArgs, Submitter,
};
use crate::policy::Permission;
use crate::registry::{caller_gateway, find_device, is_gateway};
use crate::translate::{self, TranslateError};
use crate::{IpeContract, bad, emit, events, load, store, to_json};

const DEFAULT_TIMEOUT: u32 = 60;
const MAX_TIMEOUT: u32 = 86_400;

fn check_id(id: &str, what: &str) -> Result<(), ContractError> {
    if id.is_empty()
        || id.len() > 128
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '~'))
    {
        return Err(bad(format!("{what} must be 1..=128 characters of A-Z a-z 0-9 - . _ : ~")));
    }
    Ok(())
}

fn check_originator(o: &str) -> Result<(), ContractError> {
    if o.is_empty() || o.len() > 256 || o.chars().any(|c| c.is_control() || c == '*') {
        return Err(bad("originator must be 1..=256 characters, no '*' or control characters"));
    }
    Ok(())
}

fn check_status(s: &str) -> Result<(), ContractError> {
    match s {
        "ok" | "error" | "timeout" => Ok(()),
        other => Err(bad(format!("status {other:?}: ok, error or timeout expected"))),
    }
}

fn timeout_of(t: Option<u32>) -> Result<i64, ContractError> {
    let t = t.unwrap_or(DEFAULT_TIMEOUT);
    if t == 0 || t > MAX_TIMEOUT {
        return Err(bad(format!("timeout must be 1..={MAX_TIMEOUT} s")));
    }
    Ok(i64::from(t))
}

fn submitter(ctx: &TxContext<'_>) -> Submitter {
    Submitter { msp: ctx.caller().msp_id.clone(), subject: ctx.caller().subject.clone() }
}

fn parse_path(p: &str) -> Result<LwM2mPath, ContractError> {
    p.parse().map_err(|_| bad(format!("invalid LwM2M path {p:?}")))
}

fn path_fits(op: Operation, p: &LwM2mPath) -> bool {
    match op {
        Operation::Read | Operation::Observe | Operation::CancelObserve | Operation::WriteAttributes => {
            !p.is_root()
        }
        Operation::Discover => !p.is_root() && !p.is_resource_instance(),
        Operation::Write => p.depth() >= 2,
        Operation::Execute => p.is_resource(),
        Operation::Create => p.depth() == 1,
        Operation::Delete => p.depth() == 2,
    }
}

/// The content format to write `records` to `device` in: what it advertised (SenML CBOR, SenML JSON, LwM2M
/// CBOR, TLV in that order of preference), else text for one plain resource value, else TLV.
fn write_format(device: &Device, base: &LwM2mPath, records: &[Record]) -> ContentFormat {
    for f in
        [ContentFormat::SENML_CBOR, ContentFormat::SENML_JSON, ContentFormat::LWM2M_CBOR, ContentFormat::TLV]
    {
        if device.formats.contains(&f.0) {
            return f;
        }
    }
    match records {
        [r] if r.path == *base && !matches!(r.value, Value::Opaque(_)) => ContentFormat::TEXT,
        _ => ContentFormat::TLV,
    }
}

/// Records of a gateway message: typed `records`, or `payload` + `content_format` decoded for `base`.
fn incoming_records(
    ipe: &IpeContract,
    records: Option<&Json>,
    payload: Option<&str>,
    ct: Option<u16>,
    base: &LwM2mPath,
) -> Result<Vec<Record>, TranslateError> {
    match (records, payload) {
        (Some(r), _) => translate::records_from_json(&ipe.config.registry, r),
        (None, Some(p)) => {
            let ct = ct.ok_or_else(|| TranslateError::Shape("payload without content_format".into()))?;
            translate::decode_payload(&ipe.config.registry, ct, p, base)
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// `{"values": {path: reading}}`.
fn values_content(ipe: &IpeContract, records: &[Record], time: i64) -> Result<Json, TranslateError> {
    let mut values = Map::new();
    for r in records {
        values.insert(r.path.to_string(), translate::reading(&ipe.config.registry, r, time)?);
    }
    Ok(json!({ "values": values }))
}

fn links_content(links: &str) -> Result<Json, TranslateError> {
    let parsed = lwm2m::link::parse(links).map_err(|e| TranslateError::Shape(e.to_string()))?;
    let arr: Vec<Json> = parsed
        .iter()
        .map(|l| {
            let attrs: Map<String, Json> = l
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map_or(Json::Bool(true), |v| Json::String(v.clone()))))
                .collect();
            json!({"path": l.target, "attrs": attrs})
        })
        .collect();
    Ok(json!({ "links": arr }))
}

/// `{"attributes": {"pmin": 10, "gt": 25.5}}` → validated Uri-Query options, in the order LwM2M lists them.
fn attributes_of(content: Option<&Json>) -> Result<Option<Vec<String>>, ContractError> {
    let Some(attrs) = content.and_then(|c| c.get("attributes")) else { return Ok(None) };
    let Json::Object(o) = attrs else {
        return Err(bad("\"attributes\" must be an object such as {\"pmin\": 10}"));
    };
    let mut pairs = Vec::with_capacity(o.len());
    for (k, v) in o {
        let v = match v {
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.clone(),
            other => return Err(bad(format!("attribute {k}: {other} is not a number"))),
        };
        pairs.push((k.clone(), v));
    }
    let parsed =
        lwm2m::ops::Attributes::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(bad)?;
    Ok(Some(parsed.to_queries()))
}

fn default_rsc(op: Operation) -> u16 {
    match op {
        Operation::Write | Operation::Execute | Operation::WriteAttributes => 2004,
        Operation::Create => 2001,
        Operation::Delete => 2002,
        _ => 2000,
    }
}

/// What a request function returns: the request's id and status (and expiry when it is created), not the
/// whole stored record, which `get_request` / `get_device_request` return. Every byte of a result is in
/// the transaction on every node, and the record and the event are in it already.
fn receipt(id: &str, status: &str, tx_id: &str, expires_at: Option<i64>) -> Result<Vec<u8>, ContractError> {
    let mut r = json!({"request_id": id, "status": status, "tx_id": tx_id});
    if let Some(at) = expires_at {
        r["expires_at"] = json!(at);
    }
    to_json(&r)
}

impl IpeContract {
    pub(crate) fn submit_request(
        &self,
        ctx: &mut TxContext<'_>,
        a: RequestArgs,
    ) -> Result<Vec<u8>, ContractError> {
        check_id(&a.request_id, "request_id")?;
        check_originator(&a.originator)?;
        let path = parse_path(&a.path)?;
        if !path_fits(a.op, &path) {
            return Err(bad(format!("{:?} is not possible on {path}", a.op)));
        }
        let expires = timeout_of(a.timeout)?;
        let key = format!("req/{}", a.request_id);
        if ctx.get_state(&key)?.is_some() {
            return Err(ContractError::Conflict(request_id_used(&a.request_id)));
        }
        let device = find_device(ctx, &a.endpoint)?;
        let policy = Self::load_policy(ctx)?;
        let msp = ctx.caller().msp_id.clone();
        if !policy.allows(&a.originator, &msp, &device.endpoint, &device.ae_id, a.op.permission()) {
            return Err(ContractError::Forbidden(format!(
                "the access policy does not let {:?} {:?} on {:?}",
                a.originator,
                a.op.permission(),
                device.endpoint
            )));
        }
        let mut downlink = Downlink {
            op: a.op,
            path: path.to_string(),
            partial: a.partial,
            records: None,
            payload: None,
            content_format: None,
            args: None,
            observe_request_id: None,
            attributes: None,
        };
        match a.op {
            Operation::Write | Operation::Create => {
                let content = a.content.as_ref().ok_or_else(|| bad("write and create need content"))?;
                let records =
                    translate::records_from_content(&self.config.registry, &path, content).map_err(bad)?;
                if a.op == Operation::Create
                    && records.windows(2).any(|w| w[0].path.instance() != w[1].path.instance())
                {
                    return Err(bad("create: all values must belong to one new instance"));
                }
                let format = write_format(&device, &path, &records);
                let bytes = lwm2m::codec::encode(format, &records, &path).map_err(bad)?;
                downlink.records = Some(translate::records_to_json(&records).map_err(bad)?);
                downlink.payload = Some(translate::base64_encode(&bytes));
                downlink.content_format = Some(format.0);
            }
            Operation::Execute => {
                let known =
                    path.object().zip(path.resource()).and_then(|(o, r)| self.config.registry.resource(o, r));
                if known.is_some_and(|m| !m.operations.executable()) {
                    return Err(bad(format!("{path} is not an executable resource")));
                }
                let args = match a.content.as_ref().and_then(|c| c.get("args")) {
                    None | Some(Json::Null) => String::new(),
                    Some(Json::String(s)) => s.clone(),
                    Some(_) => return Err(bad("execute: \"args\" must be a string")),
                };
                if !lwm2m::ops::valid_execute_args(&args) {
                    return Err(bad(format!("execute arguments {args:?} do not follow the LwM2M grammar")));
                }
                downlink.args = Some(args);
            }
            Operation::WriteAttributes | Operation::Observe => {
                let attrs = attributes_of(a.content.as_ref())?;
                if a.op == Operation::WriteAttributes && attrs.is_none() {
                    return Err(bad("write-attributes needs content {\"attributes\": {…}}"));
                }
                downlink.attributes = attrs;
            }
            Operation::CancelObserve => {
                if let Some(id) = &a.observe_request_id {
                    let obs: RequestRecord = load(ctx, &format!("req/{id}"))?
                        .ok_or_else(|| ContractError::NotFound(format!("no observe request {id:?}")))?;
                    if obs.downlink.op != Operation::Observe || obs.endpoint != device.endpoint {
                        return Err(bad(format!("{id:?} is not an observation of {:?}", device.endpoint)));
                    }
                    if obs.originator != a.originator {
                        return Err(ContractError::Forbidden(format!(
                            "{id:?} belongs to another originator"
                        )));
                    }
                    downlink.observe_request_id = Some(id.clone());
                }
            }
            _ => {}
        }
        let now = ctx.timestamp();
        let rec = RequestRecord {
            request_id: a.request_id.clone(),
            originator: a.originator,
            submitter: submitter(ctx),
            endpoint: device.endpoint.clone(),
            ae_id: device.ae_id.clone(),
            mode: device.mode,
            gateway: device.gateway.clone(),
            downlink,
            status: "pending".into(),
            submitted_at: now,
            expires_at: now.saturating_add(expires),
            tx_id: ctx.tx_id().to_owned(),
            response: None,
        };
        store(ctx, &key, &rec)?;
        let ev = RequestEvent {
            to: Address::Gateway { org: rec.gateway.org.clone(), id: rec.gateway.id.clone() },
            request_id: rec.request_id.clone(),
            originator: rec.originator.clone(),
            endpoint: rec.endpoint.clone(),
            ae_id: rec.ae_id.clone(),
            downlink: rec.downlink.clone(),
            submitted_at: rec.submitted_at,
            expires_at: rec.expires_at,
        };
        emit(ctx, events::REQUEST, &ev)?;
        receipt(&rec.request_id, &rec.status, ctx.tx_id(), Some(rec.expires_at))
    }

    pub(crate) fn submit_response(
        &self,
        ctx: &mut TxContext<'_>,
        a: ResponseArgs,
    ) -> Result<Vec<u8>, ContractError> {
        check_id(&a.request_id, "request_id")?;
        check_status(&a.status)?;
        let key = format!("req/{}", a.request_id);
        let mut rec: RequestRecord = load(ctx, &key)?
            .ok_or_else(|| ContractError::NotFound(format!("no request {:?}", a.request_id)))?;
        if rec.response.is_some() {
            return Err(ContractError::Conflict(format!("request {:?} was already answered", a.request_id)));
        }
        let now = ctx.timestamp();
        let by = submitter(ctx);
        let late_timeout = a.status == "timeout" && now >= rec.expires_at && by == rec.submitter;
        if !is_gateway(ctx, &rec.gateway) && !late_timeout {
            return Err(ContractError::Forbidden(format!(
                "request {:?} is for gateway {}/{}",
                a.request_id, rec.gateway.org, rec.gateway.id
            )));
        }
        let op = rec.downlink.op;
        let path = parse_path(&rec.downlink.path)?;
        let mut data_records = Vec::new();
        let raw = match (&a.payload, a.content_format) {
            (Some(p), Some(ct)) if a.records.is_none() => Some((ct, p.as_str())),
            _ => None,
        };
        // A device error code is an error, whatever the gateway called it.
        let failed_code = a.code.as_deref().is_some_and(|c| !c.starts_with("2."));
        let claimed = if a.status == "ok" && failed_code { "error" } else { a.status.as_str() };
        let (status, rsc, content, message) = match claimed {
            "timeout" => {
                ("timeout", 4008, json!({}), a.message.or(Some("the device did not answer in time".into())))
            }
            "error" => {
                ("error", a.code.as_deref().map_or(5000, translate::rsc_for_code), json!({}), a.message)
            }
            _ => {
                let rsc = a.code.as_deref().map_or(default_rsc(op), translate::rsc_for_code);
                let translated = match op {
                    Operation::Read | Operation::Observe => incoming_records(
                        self,
                        a.records.as_ref(),
                        a.payload.as_deref(),
                        a.content_format,
                        &path,
                    )
                    .and_then(|r| {
                        let c = values_content(self, &r, now)?;
                        data_records = r;
                        Ok(c)
                    }),
                    Operation::Discover => links_content(a.links.as_deref().unwrap_or("")),
                    Operation::Create => Ok(match &a.location {
                        Some(l) => json!({ "location": l }),
                        None => json!({}),
                    }),
                    _ => Ok(json!({})),
                };
                match translated {
                    Ok(c) => ("ok", rsc, c, a.message),
                    Err(e) => ("error", 4102, json!({}), Some(format!("untranslatable answer: {e}"))),
                }
            }
        };
        let outcome = Outcome {
            status: status.into(),
            code: a.code,
            rsc,
            content,
            message,
            by,
            at: now,
            tx_id: ctx.tx_id().to_owned(),
        };
        rec.status = match (status, op) {
            ("ok", Operation::Observe) => "observing".into(),
            (s, _) => s.into(),
        };
        rec.response = Some(outcome.clone());
        store(ctx, &key, &rec)?;
        if let (Operation::CancelObserve, "ok", Some(obs_id)) = (op, status, &rec.downlink.observe_request_id)
        {
            let obs_key = format!("req/{obs_id}");
            if let Some(mut obs) = load::<RequestRecord>(ctx, &obs_key)? {
                obs.status = "cancelled".into();
                store(ctx, &obs_key, &obs)?;
            }
        }
        let mut cins = vec![Cin {
            container: format!("{}/{}", rec.ae_id, mapping::RSP),
            con: json!({
                "request_id": rec.request_id, "originator": rec.originator, "op": op, "path": rec.downlink.path,
                "status": outcome.status, "rsc": outcome.rsc, "code": outcome.code, "content": outcome.content,
                "message": outcome.message,
            }),
        }];
        // Values of a read or observe also go to the device's data containers (the rsp contentInstance carries
        // them in any case). The device record is not read: a concurrent Update must not invalidate the answer.
        let target =
            MappedDevice { endpoint: rec.endpoint.clone(), ae_id: rec.ae_id.clone(), mode: rec.mode };
        if !data_records.is_empty()
            && let Ok(data) =
                mapping::cins_for_records(&target, &self.config.registry, &path, &data_records, raw, now)
        {
            cins.extend(data);
        }
        let ev = ResponseEvent {
            to: Address::Originator { id: rec.originator.clone() },
            request_id: rec.request_id.clone(),
            endpoint: rec.endpoint.clone(),
            ae_id: rec.ae_id.clone(),
            op,
            path: rec.downlink.path.clone(),
            outcome,
            cins,
        };
        emit(ctx, events::RESPONSE, &ev)?;
        receipt(&rec.request_id, &rec.status, ctx.tx_id(), None)
    }

    pub(crate) fn get_request(&self, ctx: &mut TxContext<'_>, id: &str) -> Result<Vec<u8>, ContractError> {
        check_id(id, "request_id")?;
        let rec: RequestRecord = load(ctx, &format!("req/{id}"))?
            .ok_or_else(|| ContractError::NotFound(format!("no request {id:?}")))?;
        to_json(&rec)
    }

    fn served(&self, ctx: &mut TxContext<'_>, ep: &str) -> Result<Device, ContractError> {
        let device = find_device(ctx, ep)?;
        if !is_gateway(ctx, &device.gateway) {
            return Err(ContractError::Forbidden(format!(
                "{ep:?} is served by {}/{}",
                device.gateway.org, device.gateway.id
            )));
        }
        Ok(device)
    }

    pub(crate) fn report(&self, ctx: &mut TxContext<'_>, a: ReportArgs) -> Result<Vec<u8>, ContractError> {
        check_id(&a.report_id, "report_id")?;
        if a.kind != "notify" && a.kind != "send" {
            return Err(bad(format!("kind {:?}: notify or send expected", a.kind)));
        }
        let base = parse_path(a.path.as_deref().unwrap_or("/"))?;
        let key = format!("rpt/{}", a.report_id);
        if ctx.get_state(&key)?.is_some() {
            return Err(ContractError::Conflict(format!("report id {:?} was already used", a.report_id)));
        }
        let device = self.served(ctx, &a.endpoint)?;
        let mut originator = None;
        if let Some(id) = &a.observe_request_id {
            let obs: RequestRecord = load(ctx, &format!("req/{id}"))?
                .ok_or_else(|| ContractError::NotFound(format!("no observe request {id:?}")))?;
            if obs.downlink.op != Operation::Observe || obs.endpoint != device.endpoint {
                return Err(bad(format!("{id:?} is not an observation of {:?}", device.endpoint)));
            }
            originator = Some(obs.originator);
        }
        let records =
            incoming_records(self, a.records.as_ref(), a.payload.as_deref(), a.content_format, &base)
                .map_err(bad)?;
        let now = ctx.timestamp();
        let values = values_content(self, &records, now).map_err(bad)?;
        let raw = match (&a.payload, a.content_format) {
            (Some(p), Some(ct)) if a.records.is_none() => Some((ct, p.as_str())),
            _ => None,
        };
        let cins = mapping::cins_for_records(
            &MappedDevice::from(&device),
            &self.config.registry,
            &base,
            &records,
            raw,
            now,
        )
        .map_err(bad)?;
        // Only a marker stays in state (for the repeated-id check); the values are in the block and the event.
        store(ctx, &key, &json!({"endpoint": device.endpoint, "at": now, "tx_id": ctx.tx_id()}))?;
        let ev = ReportEvent {
            to: Address::Onem2m,
            report_id: a.report_id,
            endpoint: device.endpoint,
            ae_id: device.ae_id,
            kind: a.kind,
            observe_request_id: a.observe_request_id,
            originator,
            path: base.to_string(),
            content: values,
            at: now,
            tx_id: ctx.tx_id().to_owned(),
            cins,
        };
        emit(ctx, events::REPORT, &ev)?;
        to_json(&json!({"report_id": ev.report_id, "tx_id": ev.tx_id}))
    }

    pub(crate) fn device_request(
        &self,
        ctx: &mut TxContext<'_>,
        a: DeviceRequestArgs,
    ) -> Result<Vec<u8>, ContractError> {
        check_id(&a.request_id, "request_id")?;
        if let Some(t) = &a.target {
            check_originator(t)?;
        }
        if a.topic.is_empty() || a.topic.len() > 256 {
            return Err(bad("topic must be 1..=256 bytes"));
        }
        let expires = timeout_of(a.timeout)?;
        let key = format!("dreq/{}", a.request_id);
        if ctx.get_state(&key)?.is_some() {
            return Err(ContractError::Conflict(format!(
                "device request id {:?} was already used",
                a.request_id
            )));
        }
        let device = self.served(ctx, &a.endpoint)?;
        let records = incoming_records(
            self,
            a.records.as_ref(),
            a.payload.as_deref(),
            a.content_format,
            &LwM2mPath::ROOT,
        )
        .map_err(bad)?;
        let now = ctx.timestamp();
        let content = values_content(self, &records, now).map_err(bad)?;
        let rec = DeviceRequestRecord {
            request_id: a.request_id,
            endpoint: device.endpoint.clone(),
            ae_id: device.ae_id.clone(),
            gateway: caller_gateway(ctx),
            target: a.target,
            topic: a.topic,
            content,
            status: "pending".into(),
            submitted_at: now,
            expires_at: now.saturating_add(expires),
            tx_id: ctx.tx_id().to_owned(),
            answer: None,
        };
        store(ctx, &key, &rec)?;
        let to = match &rec.target {
            Some(t) => Address::Originator { id: t.clone() },
            None => Address::Onem2m,
        };
        let ev = DeviceRequestEvent {
            to,
            request_id: rec.request_id.clone(),
            endpoint: rec.endpoint.clone(),
            ae_id: rec.ae_id.clone(),
            topic: rec.topic.clone(),
            content: rec.content.clone(),
            submitted_at: rec.submitted_at,
            expires_at: rec.expires_at,
        };
        emit(ctx, events::DEVICE_REQUEST, &ev)?;
        receipt(&rec.request_id, &rec.status, ctx.tx_id(), Some(rec.expires_at))
    }

    pub(crate) fn answer_device_request(
        &self,
        ctx: &mut TxContext<'_>,
        a: AnswerArgs,
    ) -> Result<Vec<u8>, ContractError> {
        check_id(&a.request_id, "request_id")?;
        check_status(&a.status)?;
        let key = format!("dreq/{}", a.request_id);
        let mut rec: DeviceRequestRecord = load(ctx, &key)?
            .ok_or_else(|| ContractError::NotFound(format!("no device request {:?}", a.request_id)))?;
        if rec.answer.is_some() {
            return Err(ContractError::Conflict(format!(
                "device request {:?} was already answered",
                a.request_id
            )));
        }
        let gateway_timeout = a.status == "timeout" && is_gateway(ctx, &rec.gateway);
        if !gateway_timeout {
            let originator = a.originator.as_deref().ok_or_else(|| bad("answer needs the originator"))?;
            check_originator(originator)?;
            let allowed = match &rec.target {
                Some(t) => t == originator,
                None => {
                    let msp = ctx.caller().msp_id.clone();
                    Self::load_policy(ctx)?.allows(
                        originator,
                        &msp,
                        &rec.endpoint,
                        &rec.ae_id,
                        Permission::Answer,
                    )
                }
            };
            if !allowed {
                return Err(ContractError::Forbidden(format!(
                    "{originator:?} may not answer requests of {:?}",
                    rec.endpoint
                )));
            }
        }
        let content = a.content.unwrap_or(json!({}));
        let records = match content.get("v").or(content.get("values")) {
            Some(_) if a.status == "ok" => {
                let r = translate::records_from_content(&self.config.registry, &LwM2mPath::ROOT, &content)
                    .map_err(bad)?;
                Some(translate::records_to_json(&r).map_err(bad)?)
            }
            _ => None,
        };
        let answer = DeviceAnswer {
            status: a.status.clone(),
            originator: a.originator,
            content,
            records,
            message: a.message,
            by: submitter(ctx),
            at: ctx.timestamp(),
            tx_id: ctx.tx_id().to_owned(),
        };
        rec.status = a.status;
        rec.answer = Some(answer.clone());
        store(ctx, &key, &rec)?;
        let ev = DeviceAnswerEvent {
            to: Address::Gateway { org: rec.gateway.org.clone(), id: rec.gateway.id.clone() },
            request_id: rec.request_id.clone(),
            endpoint: rec.endpoint.clone(),
            answer,
        };
        emit(ctx, events::DEVICE_ANSWER, &ev)?;
        receipt(&rec.request_id, &rec.status, ctx.tx_id(), None)
    }

    pub(crate) fn get_device_request(
        &self,
        ctx: &mut TxContext<'_>,
        id: &str,
    ) -> Result<Vec<u8>, ContractError> {
        check_id(id, "request_id")?;
        let rec: DeviceRequestRecord = load(ctx, &format!("dreq/{id}"))?
            .ok_or_else(|| ContractError::NotFound(format!("no device request {id:?}")))?;
        to_json(&rec)
    }
}

/// The contract's message when `submit_request` names a request id used before (status 409): the gateway
/// writes the same rejection for a `cmd` request it finds to be such a second request after a restart.
pub fn request_id_used(request_id: &str) -> String {
    format!("request id {request_id:?} was already used")
}
