//! One simulated device: its objects (3, 3303, 3304, 3311) and how it answers LwM2M requests.

use coap::lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};
use lwm2m::codec::{self, Record};
use lwm2m::{ContentFormat, LwM2mPath, Registry, Value};

/// The objects every simulated device has.
pub const OBJECT_LINKS: &str = "</1/0>,</3/0>,</3303/0>,</3304/0>,</3311/0>";

/// State of one device: kept small, the simulator holds many thousands.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) index: u32,
    pub(crate) location: Option<Box<str>>,
    pub(crate) temperature: f32,
    pub(crate) humidity: f32,
    pub(crate) light_on: bool,
    pub(crate) dimmer: u8,
    pub(crate) reboots: u16,
    pub(crate) observations: Vec<Observation>,
}

/// An observation the server set up on this device.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub(crate) token: Vec<u8>,
    pub(crate) path: LwM2mPath,
    pub(crate) format: ContentFormat,
    pub(crate) seq: u32,
}

fn rec(ids: &[u16], v: Value) -> Option<Record> {
    LwM2mPath::new(ids).ok().map(|p| Record::new(p, v))
}

impl Device {
    pub(crate) fn new(index: u32) -> Self {
        Device {
            index,
            location: None,
            temperature: 20.0 + (index % 10) as f32 / 2.0,
            humidity: 40.0 + (index % 20) as f32,
            light_on: false,
            dimmer: 50,
            reboots: 0,
            observations: Vec::new(),
        }
    }

    /// Every resource value.
    pub(crate) fn records(&self) -> Vec<Record> {
        [
            rec(&[3, 0, 0], Value::String("ipechain".into())),
            rec(&[3, 0, 1], Value::String("lwm2m-sim".into())),
            rec(&[3, 0, 2], Value::String(format!("SIM{:08}", self.index))),
            rec(&[3, 0, 3], Value::String("1.0".into())),
            rec(&[3, 0, 9], Value::Integer(100 - i64::from(self.reboots % 100))),
            rec(&[3, 0, 11, 0], Value::Integer(0)),
            rec(&[3, 0, 16], Value::String("U".into())),
            rec(&[3303, 0, 5700], Value::Float(f64::from(self.temperature))),
            rec(&[3303, 0, 5701], Value::String("Cel".into())),
            rec(&[3304, 0, 5700], Value::Float(f64::from(self.humidity))),
            rec(&[3304, 0, 5701], Value::String("%RH".into())),
            rec(&[3311, 0, 5850], Value::Boolean(self.light_on)),
            rec(&[3311, 0, 5851], Value::Integer(i64::from(self.dimmer))),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Moves the sensor values a little (deterministic in the step number).
    pub(crate) fn step(&mut self, step: u64) {
        let d = ((step.wrapping_mul(2654435761) >> 7) % 21) as f32 / 10.0 - 1.0;
        self.temperature = (self.temperature + d / 4.0).clamp(-20.0, 50.0);
        self.humidity = (self.humidity - d / 2.0).clamp(0.0, 100.0);
    }

    /// Encodes the values under `path` as `format`.
    pub(crate) fn encode(&self, path: &LwM2mPath, format: ContentFormat) -> Option<Vec<u8>> {
        let recs: Vec<Record> = self.records().into_iter().filter(|r| r.path.starts_with(path)).collect();
        if recs.is_empty() {
            return None;
        }
        codec::encode(format, &recs, path).ok()
    }

    fn default_format(path: &LwM2mPath) -> ContentFormat {
        if path.is_resource() { ContentFormat::TEXT } else { ContentFormat::SENML_CBOR }
    }

    /// Answers a request on `path` (below the device's root). `observe` is set when the request registers an
    /// observation; the caller records it with the returned format.
    pub(crate) fn handle(
        &mut self,
        req: &Packet,
        path: &LwM2mPath,
        registry: &Registry,
    ) -> (Packet, Option<ContentFormat>) {
        let method = match req.header.code {
            MessageClass::Request(m) => m,
            _ => return (coap::response(ResponseType::BadRequest, vec![]), None),
        };
        let accept = req
            .get_first_option(CoapOption::Accept)
            .map(|v| ContentFormat(v.iter().fold(0u16, |a, b| (a << 8) | u16::from(*b))));
        let cf = req
            .get_first_option(CoapOption::ContentFormat)
            .map(|v| ContentFormat(v.iter().fold(0u16, |a, b| (a << 8) | u16::from(*b))));
        let known = self.records().iter().any(|r| r.path.starts_with(path))
            || (path.object() == Some(3)
                && path.depth() == 3
                && matches!(path.resource(), Some(4) | Some(5)));
        if !known {
            return (coap::response(ResponseType::NotFound, vec![]), None);
        }
        let resp = |code: ResponseType| coap::response(code, vec![]);
        match method {
            RequestType::Get if accept == Some(ContentFormat::LINK) => {
                let links: Vec<String> = if path.depth() >= 3 {
                    vec![format!("<{path}>")]
                } else {
                    let mut v = vec![format!("<{path}>")];
                    let mut seen = Vec::new();
                    for r in self.records().iter().filter(|r| r.path.starts_with(path)) {
                        let res = LwM2mPath::new(&r.path.ids()[..3]).unwrap_or(r.path);
                        if !seen.contains(&res) {
                            seen.push(res);
                            v.push(format!("<{res}>"));
                        }
                    }
                    v
                };
                let mut p = coap::response(ResponseType::Content, links.join(",").into_bytes());
                p.set_content_format(coap::lite::ContentFormat::ApplicationLinkFormat);
                (p, None)
            }
            RequestType::Get => {
                let format = accept.unwrap_or_else(|| Device::default_format(path));
                let Some(body) = self.encode(path, format) else {
                    return (resp(ResponseType::NotAcceptable), None);
                };
                let mut p = coap::response(ResponseType::Content, body);
                p.add_option(CoapOption::ContentFormat, format.0.to_be_bytes().to_vec());
                let observe = matches!(req.get_observe_value(), Some(Ok(0)));
                (p, observe.then_some(format))
            }
            RequestType::Put if !req.get_option(CoapOption::UriQuery).is_none_or(|q| q.is_empty()) => {
                (resp(ResponseType::Changed), None) // Write-Attributes: accepted, not acted upon
            }
            RequestType::Post if path.is_resource() => {
                // Execute
                match (path.object(), path.resource()) {
                    (Some(3), Some(4)) => {
                        self.reboots = self.reboots.wrapping_add(1);
                        (resp(ResponseType::Changed), None)
                    }
                    (Some(3), Some(5)) => (resp(ResponseType::Changed), None),
                    _ => (resp(ResponseType::MethodNotAllowed), None),
                }
            }
            RequestType::Put | RequestType::Post => {
                let format = cf.unwrap_or(ContentFormat::TEXT);
                let Ok(recs) = codec::decode(format, &req.payload, path, registry) else {
                    return (resp(ResponseType::BadRequest), None);
                };
                for r in &recs {
                    match (r.path.object(), r.path.resource(), &r.value) {
                        (Some(3311), Some(5850), Value::Boolean(b)) => self.light_on = *b,
                        (Some(3311), Some(5851), Value::Integer(i)) if (0..=100).contains(i) => {
                            self.dimmer = *i as u8
                        }
                        _ => return (resp(ResponseType::MethodNotAllowed), None),
                    }
                }
                (resp(ResponseType::Changed), None)
            }
            RequestType::Delete => (resp(ResponseType::MethodNotAllowed), None),
            _ => (resp(ResponseType::MethodNotAllowed), None),
        }
    }
}
