//! The Leshan-style admin REST API (local, admin-only) and the one place where operation errors become
//! HTTP statuses.
//!
//! | request | operation |
//! |---|---|
//! | `GET /api/clients` | list registrations |
//! | `GET /api/clients/{ep}` | one registration |
//! | `GET /api/clients/{ep}/{o}[/{i}[/{r}[/{ri}]]]` | Read |
//! | `PUT …?replace=false` / `PUT …` | Write (partial update / replace); JSON body |
//! | `POST /api/clients/{ep}/{o}` | Create; JSON body `{"id": 1, "resources": [...]}` |
//! | `POST /api/clients/{ep}/{o}/{i}/{r}` | Execute; body = arguments as text |
//! | `DELETE /api/clients/{ep}/{o}/{i}` | Delete |
//! | `GET …/discover` | Discover |
//! | `PUT …/attributes?pmin=&pmax=&gt=&lt=&st=` | Write-Attributes |
//! | `POST …/observe`, `DELETE …/observe` | Observe, Cancel |
//! | `GET /api/event[?ep=]` | server-sent events: REGISTRATION, UPDATED, DEREGISTRATION, EXPIRED, NOTIFICATION, SEND |
//!
//! Query parameters: `format=` (`tlv`, `senml-json`, `senml-cbor`, `json`, `cbor`, `text`, `opaque` or a
//! number) and `timeout=` (seconds). A device answer is `200` with `{"status", "code", "success", "content",
//! "values"}` whatever its CoAP code; unknown client `404`, bad request `400`, no answer in time `504`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::Stream;
use lwm2m::ops::{Attributes, WriteMode};
use lwm2m::{ContentFormat, LwM2mPath, Registry};
use serde_json::{Value as Json, json};
use tokio::sync::broadcast;

use crate::handle::LwM2mServerHandle;
use crate::json;
use crate::types::{OpError, OpResponse};

#[derive(Clone)]
struct AppState {
    server: LwM2mServerHandle,
    registry: Arc<Registry>,
}

/// The REST router over `server`, for a shell that serves its own admin HTTP port (set
/// `ServerConfig::admin_addr` to `None` then, and merge this router into yours).
pub fn router(server: LwM2mServerHandle, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/api/clients", get(list_clients))
        .route("/api/clients/{ep}", get(get_client))
        .route("/api/clients/{ep}/{*rest}", any(client_op))
        .route("/api/event", get(events))
        .with_state(AppState { server, registry })
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": msg.into()}))).into_response()
}

/// The single mapping of operation errors to HTTP statuses.
fn op_error(e: OpError) -> Response {
    let status = match &e {
        OpError::UnknownEndpoint(_) => StatusCode::NOT_FOUND,
        OpError::Invalid(_) => StatusCode::BAD_REQUEST,
        OpError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        OpError::Reset | OpError::Decode(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

async fn list_clients(State(s): State<AppState>) -> Response {
    let mut clients = s.server.clients().await;
    clients.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    axum::Json(Json::Array(clients.iter().map(|c| json::client(c)).collect())).into_response()
}

async fn get_client(State(s): State<AppState>, Path(ep): Path<String>) -> Response {
    match s.server.client(&ep).await {
        Some(c) => axum::Json(json::client(&c)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no registered client {ep:?}")),
    }
}

async fn client_op(
    State(s): State<AppState>,
    method: Method,
    Path((ep, rest)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut segs: Vec<&str> = rest.split('/').filter(|x| !x.is_empty()).collect();
    let suffix = match segs.last() {
        Some(&x @ ("observe" | "discover" | "attributes")) => {
            segs.pop();
            Some(x)
        }
        _ => None,
    };
    let path = match LwM2mPath::from_segments(&segs) {
        Ok(p) if !p.is_root() => p,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "a path needs at least an object id"),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let timeout = match q.get("timeout").map(|t| t.parse::<f64>()) {
        None => None,
        Some(Ok(t)) if t > 0.0 && t <= 600.0 => Some(Duration::from_secs_f64(t)),
        Some(_) => return error(StatusCode::BAD_REQUEST, "timeout must be seconds in (0, 600]"),
    };
    let format = match q.get("format").map(|f| ContentFormat::from_name(f)) {
        None => None,
        Some(Some(f)) if f.is_supported() => Some(f),
        Some(_) => return error(StatusCode::BAD_REQUEST, "unknown format"),
    };
    let srv = &s.server;
    let body_records = || -> Result<Vec<lwm2m::Record>, String> {
        let body: Json = serde_json::from_slice(&body).map_err(|e| format!("body is not JSON: {e}"))?;
        json::to_records(&path, &body, &s.registry)
    };
    let result = match (method.clone(), suffix) {
        (Method::GET, None) => srv.read(&ep, path, format, timeout).await,
        (Method::GET, Some("discover")) => srv.discover(&ep, path, timeout).await,
        (Method::POST, Some("observe")) => srv.observe(&ep, path, format, timeout).await,
        (Method::DELETE, Some("observe")) => {
            if srv.client(&ep).await.is_none() {
                return op_error(OpError::UnknownEndpoint(ep));
            }
            let n = srv.cancel_observe(&ep, path).await;
            return axum::Json(json!({"cancelled": n})).into_response();
        }
        (Method::PUT, Some("attributes")) => {
            let pairs = q.iter().filter(|(k, _)| *k != "timeout").map(|(k, v)| (k.as_str(), v.as_str()));
            match Attributes::parse(pairs) {
                Ok(a) => srv.write_attributes(&ep, path, a, timeout).await,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        (Method::PUT, None) => {
            let records = match body_records() {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            let mode = if q.get("replace").is_some_and(|r| r == "false") {
                WriteMode::Update
            } else {
                WriteMode::Replace
            };
            srv.write(&ep, path, mode, records, format, timeout).await
        }
        (Method::POST, None) if path.depth() == 1 => {
            let records = match body_records() {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            srv.create(&ep, path, records, format, timeout).await
        }
        (Method::POST, None) if path.is_resource() => {
            let args = String::from_utf8_lossy(&body).trim().to_owned();
            srv.execute(&ep, path, &args, timeout).await
        }
        (Method::DELETE, None) => srv.delete(&ep, path, timeout).await,
        _ => return error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not an operation on {path}")),
    };
    match result {
        Ok(r) => answer(&path, &r, &s.registry),
        Err(e) => op_error(e),
    }
}

fn answer(path: &LwM2mPath, r: &OpResponse, reg: &Registry) -> Response {
    axum::Json(json::response(path, r, reg)).into_response()
}

async fn events(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.server.subscribe_events();
    let filter = q.get("ep").cloned();
    let registry = s.registry.clone();
    let stop = s.server.shutdown_token();
    let state = (rx, filter, registry, stop);
    let stream = futures::stream::unfold(state, |(mut rx, filter, registry, stop)| async move {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return None,
                n = rx.recv() => n,
            };
            match next {
                Ok(e) => {
                    if filter.as_deref().is_some_and(|f| f != json::event_endpoint(&e)) {
                        continue;
                    }
                    let (name, data) = json::event(&e, &registry);
                    let ev = Event::default().event(name).data(data.to_string());
                    return Some((Ok(ev), (rx, filter, registry, stop)));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let ev = Event::default().event("LAGGED").data(n.to_string());
                    return Some((Ok(ev), (rx, filter, registry, stop)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
