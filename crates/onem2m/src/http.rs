//! The HTTP binding (TS-0009): request and response primitives to and from `http` types.
//!
//! ```text
//!  POST /cse-in?rcn=1        X-M2M-Origin: Cabc        -> CREATE  to=cse-in  fr=Cabc
//!  Content-Type: application/json;ty=2  X-M2M-RI: 1  X-M2M-RVI: 3
//!  GET  /~/id-in/cse-in/ae   -> RETRIEVE to=/id-in/cse-in/ae
//!  GET  /_/sp/id-in/ri       -> RETRIEVE to=//sp/id-in/ri
//!  POST without ty=          -> NOTIFY
//! ```

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::id::{Target, check_originator};
use crate::primitive::{
    DiscResType, FilterCriteria, FilterUsage, Operation, RequestPrimitive, ResponsePrimitive, ResultContent,
};
use crate::rsc::Rsc;

/// `X-M2M-Origin`.
pub const X_M2M_ORIGIN: HeaderName = HeaderName::from_static("x-m2m-origin");
/// `X-M2M-RI`.
pub const X_M2M_RI: HeaderName = HeaderName::from_static("x-m2m-ri");
/// `X-M2M-RVI`.
pub const X_M2M_RVI: HeaderName = HeaderName::from_static("x-m2m-rvi");
/// `X-M2M-RSC`.
pub const X_M2M_RSC: HeaderName = HeaderName::from_static("x-m2m-rsc");

/// Release versions this binding accepts in `X-M2M-RVI`.
pub const SUPPORTED_RVI: &[&str] = &["2a", "3", "4", "5"];

/// A request that the binding refused, with the code and message to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rsc}: {message}")]
pub struct BindingError {
    /// The status to answer with.
    pub rsc: Rsc,
    /// Why.
    pub message: String,
    /// The request identifier if it could be read.
    pub rqi: String,
}

fn header_str<'a>(h: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, String> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| format!("header {name} is not ASCII")),
    }
}

/// Decodes `%XX` escapes (the `percent-encoding` crate) and, in query strings, `+` as a space. `None` for a `%`
/// without two hex digits after it, or for bytes that are not UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    // The crate passes malformed escapes through as they are: here they are errors.
    let escapes_ok = s
        .split('%')
        .skip(1)
        .all(|t| t.as_bytes().get(..2).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if !escapes_ok {
        return None;
    }
    let s = if plus_is_space { Cow::Owned(s.replace('+', " ")) } else { Cow::Borrowed(s) };
    percent_encoding::percent_decode_str(&s).decode_utf8().ok().map(Cow::into_owned)
}

/// Maps an HTTP request path to a oneM2M `to` (`/~/` SP-relative, `/_/` absolute, else CSE-relative).
pub fn path_to_target(path: &str) -> Option<String> {
    let path = percent_decode(path, false)?;
    if let Some(rest) = path.strip_prefix("/~/") {
        Some(format!("/{rest}"))
    } else if let Some(rest) = path.strip_prefix("/_/") {
        Some(format!("//{rest}"))
    } else {
        path.strip_prefix('/').map(str::to_owned)
    }
}

/// Maps a oneM2M `to` to an HTTP request path.
pub fn target_to_path(to: &str) -> String {
    if let Some(rest) = to.strip_prefix("//") {
        format!("/_/{rest}")
    } else if let Some(rest) = to.strip_prefix('/') {
        format!("/~/{rest}")
    } else {
        format!("/{to}")
    }
}

/// Reads `ty` from a Content-Type such as `application/json;ty=4`. `Ok(None)`: no `ty`.
pub fn content_type_ty(ct: &str) -> Result<Option<u16>, String> {
    for part in ct.split(';').skip(1) {
        if let Some((k, v)) = part.split_once('=')
            && k.trim().eq_ignore_ascii_case("ty")
        {
            return v.trim().parse::<u16>().map(Some).map_err(|_| format!("bad ty in Content-Type: {v:?}"));
        }
    }
    Ok(None)
}

fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or_default().trim()
}

fn is_json_media(m: &str) -> bool {
    m.eq_ignore_ascii_case("application/json")
        || m.eq_ignore_ascii_case("application/vnd.onem2m-res+json")
        || m.eq_ignore_ascii_case("application/vnd.onem2m-ntfy+json")
}

/// Parses the query string into `rcn`, `drt` and filter criteria.
pub fn parse_query(q: &str) -> Result<(Option<ResultContent>, FilterCriteria, DiscResType), String> {
    let mut fc = FilterCriteria::new();
    let mut rcn = None;
    let mut drt = DiscResType::Structured;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v, true).ok_or_else(|| format!("bad escape in query parameter {k}"))?;
        let num = |v: &str| {
            v.trim().parse::<u64>().map_err(|_| format!("query parameter {k}: not a number: {v:?}"))
        };
        let ts = |v: &str| {
            crate::time::parse(v.trim())
                .map(|_| v.trim().to_owned())
                .ok_or_else(|| format!("query parameter {k}: not a timestamp: {v:?}"))
        };
        let usize_of = |n: u64| usize::try_from(n).map_err(|_| format!("query parameter {k}: too large"));
        match k {
            "rcn" => {
                let n = num(&v)?;
                rcn = Some(
                    u8::try_from(n)
                        .ok()
                        .and_then(ResultContent::from_code)
                        .ok_or_else(|| format!("unknown rcn {n}"))?,
                );
            }
            "fu" => {
                fc.fu = Some(match num(&v)? {
                    1 => FilterUsage::Discovery,
                    2 => FilterUsage::ConditionalRetrieval,
                    3 => FilterUsage::IpeOnDemandDiscovery,
                    n => return Err(format!("unknown fu {n}")),
                })
            }
            "ty" => {
                for t in v.split([' ', ',']).filter(|t| !t.is_empty()) {
                    let n = num(t)?;
                    fc.ty.push(u16::try_from(n).map_err(|_| format!("bad ty {n}"))?);
                }
            }
            "lbl" => fc.lbl.extend(v.split(' ').filter(|t| !t.is_empty()).map(str::to_owned)),
            "cra" => fc.cra = Some(ts(&v)?),
            "crb" => fc.crb = Some(ts(&v)?),
            "ms" => fc.ms = Some(ts(&v)?),
            "us" => fc.us = Some(ts(&v)?),
            "sts" => fc.sts = Some(num(&v)?),
            "stb" => fc.stb = Some(num(&v)?),
            "lim" => fc.lim = Some(usize_of(num(&v)?)?),
            "ofst" => fc.ofst = Some(usize_of(num(&v)?)?),
            "lvl" => fc.lvl = Some(usize_of(num(&v)?)?),
            "fo" => {
                fc.fo_and = match num(&v)? {
                    1 => true,
                    2 => false,
                    n => return Err(format!("unknown fo {n}")),
                }
            }
            "drt" => {
                drt = match num(&v)? {
                    1 => DiscResType::Structured,
                    2 => DiscResType::Unstructured,
                    n => return Err(format!("unknown drt {n}")),
                }
            }
            "rt" | "rp" | "rset" | "rqet" | "oet" | "rtu" | "da" => {} // accepted and not used
            other => return Err(format!("unknown query parameter {other:?}")),
        }
    }
    Ok((rcn, fc, drt))
}

/// Turns an HTTP request into a request primitive (server side). On error the CSE answers the error as is.
pub fn request_from_http(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RequestPrimitive, BindingError> {
    let fail = |rsc, message: String, rqi: &str| BindingError { rsc, message, rqi: rqi.to_owned() };
    let rqi = header_str(headers, &X_M2M_RI).map_err(|m| fail(Rsc::BadRequest, m, ""))?;
    let rqi = match rqi {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => return Err(fail(Rsc::BadRequest, "missing X-M2M-RI header".into(), "")),
    };
    let rvi = match header_str(headers, &X_M2M_RVI).map_err(|m| fail(Rsc::BadRequest, m, &rqi))? {
        Some(v) if SUPPORTED_RVI.contains(&v) => v.to_owned(),
        Some(v) => {
            return Err(fail(
                Rsc::ReleaseVersionNotSupported,
                format!("release version {v:?} not supported"),
                &rqi,
            ));
        }
        None => return Err(fail(Rsc::ReleaseVersionNotSupported, "missing X-M2M-RVI header".into(), &rqi)),
    };
    let fr = header_str(headers, &X_M2M_ORIGIN).map_err(|m| fail(Rsc::BadRequest, m, &rqi))?;
    let fr = match fr {
        None | Some("") => None,
        Some(f) => {
            check_originator(f).map_err(|e| fail(Rsc::BadRequest, format!("bad X-M2M-Origin: {e}"), &rqi))?;
            Some(f.to_owned())
        }
    };
    let to =
        path_to_target(uri.path()).ok_or_else(|| fail(Rsc::BadRequest, "bad escape in path".into(), &rqi))?;
    let to = to.strip_suffix('/').map(str::to_owned).unwrap_or(to);
    Target::parse(&to).map_err(|e| fail(Rsc::BadRequest, format!("bad target {to:?}: {e}"), &rqi))?;
    let (rcn, fc, drt) =
        parse_query(uri.query().unwrap_or("")).map_err(|m| fail(Rsc::BadRequest, m, &rqi))?;

    let ct = header_str(headers, &header::CONTENT_TYPE).map_err(|m| fail(Rsc::BadRequest, m, &rqi))?;
    let ty = match ct {
        Some(ct) => content_type_ty(ct).map_err(|m| fail(Rsc::BadRequest, m, &rqi))?,
        None => None,
    };
    let op = match *method {
        Method::POST if ty.is_some() => Operation::Create,
        Method::POST => Operation::Notify,
        Method::GET => Operation::Retrieve,
        Method::PUT => Operation::Update,
        Method::DELETE => Operation::Delete,
        _ => return Err(fail(Rsc::OperationNotAllowed, format!("method {method} not allowed"), &rqi)),
    };
    let pc = if body.is_empty() {
        None
    } else {
        if let Some(ct) = ct
            && !is_json_media(media_type(ct))
        {
            return Err(fail(Rsc::UnsupportedMediaType, format!("unsupported Content-Type {ct:?}"), &rqi));
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| fail(Rsc::BadRequest, format!("malformed JSON content: {e}"), &rqi))?;
        Some(v)
    };
    Ok(RequestPrimitive { op, to, fr, rqi, rvi, ty, pc, rcn, fc, drt })
}

/// Renders a response primitive as an HTTP response (server side).
pub fn response_to_http(rsp: &ResponsePrimitive) -> http::Response<Vec<u8>> {
    let body = rsp.pc.as_ref().map(|v| serde_json::to_vec(v).unwrap_or_default()).unwrap_or_default();
    let mut r = http::Response::new(body);
    *r.status_mut() = rsp.rsc.http_status();
    let h = r.headers_mut();
    h.insert(X_M2M_RSC, HeaderValue::from(rsp.rsc.code()));
    if let Ok(v) = HeaderValue::from_str(&rsp.rqi) {
        h.insert(X_M2M_RI, v);
    }
    if let Ok(v) = HeaderValue::from_str(&rsp.rvi) {
        h.insert(X_M2M_RVI, v);
    }
    if rsp.pc.is_some() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(loc) = &rsp.content_location
        && let Ok(v) = HeaderValue::from_str(loc)
    {
        h.insert(header::CONTENT_LOCATION, v);
    }
    r
}

fn query_of(req: &RequestPrimitive) -> String {
    let mut q: Vec<String> = Vec::new();
    if let Some(rcn) = req.rcn {
        q.push(format!("rcn={}", rcn.code()));
    }
    let fc = &req.fc;
    if let Some(fu) = fc.fu {
        let n = match fu {
            FilterUsage::Discovery => 1,
            FilterUsage::ConditionalRetrieval => 2,
            FilterUsage::IpeOnDemandDiscovery => 3,
        };
        q.push(format!("fu={n}"));
    }
    if !fc.ty.is_empty() {
        let t: Vec<String> = fc.ty.iter().map(u16::to_string).collect();
        q.push(format!("ty={}", t.join("+")));
    }
    for l in &fc.lbl {
        q.push(format!("lbl={}", encode_query(l)));
    }
    for (k, v) in [("cra", &fc.cra), ("crb", &fc.crb), ("ms", &fc.ms), ("us", &fc.us)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", encode_query(v)));
        }
    }
    for (k, v) in [("sts", fc.sts), ("stb", fc.stb)] {
        if let Some(v) = v {
            q.push(format!("{k}={v}"));
        }
    }
    for (k, v) in [("lim", fc.lim), ("ofst", fc.ofst), ("lvl", fc.lvl)] {
        if let Some(v) = v {
            q.push(format!("{k}={v}"));
        }
    }
    if !fc.fo_and {
        q.push("fo=2".to_owned());
    }
    if req.drt == DiscResType::Unstructured {
        q.push("drt=2".to_owned());
    }
    q.join("&")
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b',') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds the HTTP request for a request primitive (client side). `authority` is `host:port`.
pub fn request_to_http(
    req: &RequestPrimitive,
    authority: &str,
) -> Result<http::Request<Vec<u8>>, http::Error> {
    let method = match req.op {
        Operation::Create | Operation::Notify => Method::POST,
        Operation::Retrieve => Method::GET,
        Operation::Update => Method::PUT,
        Operation::Delete => Method::DELETE,
    };
    let q = query_of(req);
    let path = target_to_path(&req.to);
    let uri = if q.is_empty() {
        format!("http://{authority}{path}")
    } else {
        format!("http://{authority}{path}?{q}")
    };
    let ct = match req.ty {
        Some(ty) => format!("application/json;ty={ty}"),
        None => "application/json".to_owned(),
    };
    let body = req.pc.as_ref().map(|v| serde_json::to_vec(v).unwrap_or_default()).unwrap_or_default();
    let mut b = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(X_M2M_RI, req.rqi.as_str())
        .header(X_M2M_RVI, req.rvi.as_str())
        .header(header::ACCEPT, "application/json");
    if let Some(fr) = &req.fr {
        b = b.header(X_M2M_ORIGIN, fr.as_str());
    }
    if !body.is_empty() || req.ty.is_some() {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body)
}

/// Reads a response primitive from an HTTP response (client side). Header names are matched case-insensitively.
pub fn response_from_http(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ResponsePrimitive, String> {
    let rsc = match header_str(headers, &X_M2M_RSC)? {
        Some(s) => {
            let n: u16 = s.parse().map_err(|_| format!("bad X-M2M-RSC {s:?}"))?;
            Rsc::from_code(n).ok_or_else(|| format!("unknown X-M2M-RSC {n}"))?
        }
        None => return Err(format!("response without X-M2M-RSC (HTTP {status})")),
    };
    let rqi = header_str(headers, &X_M2M_RI)?.unwrap_or_default().to_owned();
    let rvi = header_str(headers, &X_M2M_RVI)?.unwrap_or("3").to_owned();
    let pc = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(serde_json::from_slice(body).map_err(|e| format!("malformed JSON in response: {e}"))?)
    };
    let content_location = header_str(headers, &header::CONTENT_LOCATION)?.map(str::to_owned);
    Ok(ResponsePrimitive { rsc, rqi, rvi, pc, content_location })
}
