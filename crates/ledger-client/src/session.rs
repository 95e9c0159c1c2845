//! A client's long-lived `GatewaySession` stream to its peer (ipechain's extension, `ledger_rpc`): Fabric's
//! gateway `EndorseRequest` and `SubmitRequest` travel as messages of one HTTP/2 stream, each answered
//! under its id, instead of opening a new HTTP/2 stream (headers, trailers, routing on both sides) per
//! call. The peer handles each exactly as the unary call, and an error answer carries the unary call's
//! status and error details, so callers see the same outcomes either way. A peer that does not offer
//! sessions (any Fabric peer) answers `UNIMPLEMENTED`: the gateway then uses the unary calls for good.

use ledger_rpc::gateway_session_client::GatewaySessionClient;
use ledger_rpc::messages::{SessionRequest, SessionResponse};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::transport::Channel;

/// Requests one session has queued for the wire at most (more wait to be sent).
const QUEUE: usize = 4096;

type Waiter = oneshot::Sender<Result<SessionResponse, Status>>;

#[derive(Default)]
struct Waiters {
    map: HashMap<u64, Waiter>,
    /// Why the session ended, once it did: no new request is accepted then.
    closed: Option<Status>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One open session.
pub(crate) struct Session {
    tx: mpsc::Sender<SessionRequest>,
    waiters: Arc<Mutex<Waiters>>,
    next_id: AtomicU64,
}

impl Session {
    /// Opens a session; a task reads the answers until the peer ends the stream (it does when this
    /// session is dropped and its last request is answered).
    async fn open(client: &GatewaySessionClient<Channel>) -> Result<Session, Status> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut inbound = client.clone().session(ReceiverStream::new(rx)).await?.into_inner();
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        let w = waiters.clone();
        tokio::spawn(async move {
            let end = loop {
                match inbound.message().await {
                    Ok(Some(r)) => {
                        let waiter = lock(&w).map.remove(&r.id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(Ok(r));
                        }
                    }
                    Ok(None) => break Status::unavailable("the peer ended the gateway session"),
                    Err(s) => break s,
                }
            };
            let mut g = lock(&w);
            for (_, waiter) in g.map.drain() {
                let _ = waiter.send(Err(end.clone()));
            }
            g.closed = Some(end);
        });
        Ok(Session { tx, waiters, next_id: AtomicU64::new(0) })
    }

    /// Whether the stream has ended (a new session must be opened).
    fn is_closed(&self) -> bool {
        lock(&self.waiters).closed.is_some() || self.tx.is_closed()
    }

    /// Sends `req` (its id is assigned here) and waits for its answer; an error answer is the status the
    /// unary call would have returned, details included.
    pub(crate) async fn call(&self, mut req: SessionRequest) -> Result<SessionResponse, Status> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        req.id = id;
        let (waiter, rx) = oneshot::channel();
        {
            let mut g = lock(&self.waiters);
            if let Some(s) = &g.closed {
                return Err(s.clone());
            }
            g.map.insert(id, waiter);
        }
        if self.tx.send(req).await.is_err() {
            lock(&self.waiters).map.remove(&id);
            return Err(Status::unavailable("the gateway session ended"));
        }
        let r = rx.await.map_err(|_| Status::unavailable("the gateway session ended"))??;
        if r.code != 0 {
            return Err(Status::with_details(tonic::Code::from(r.code), r.message, r.details));
        }
        Ok(r)
    }
}

/// A gateway's session slot, shared by its clones.
#[derive(Default)]
pub(crate) enum Slot {
    /// None open yet (or the last one ended).
    #[default]
    Closed,
    /// Open.
    Open(Arc<Session>),
    /// The peer does not offer sessions, or the caller asked for Fabric's unary calls only.
    Unsupported,
}

/// The gateway's open session, opening one when there is none; `None` means: use the unary calls (the
/// peer does not offer sessions, or opening one failed this time).
pub(crate) async fn get(slot: &Mutex<Slot>, client: &GatewaySessionClient<Channel>) -> Option<Arc<Session>> {
    match &*lock(slot) {
        Slot::Open(s) if !s.is_closed() => return Some(s.clone()),
        Slot::Unsupported => return None,
        _ => {}
    }
    match Session::open(client).await {
        Ok(s) => {
            let mut g = lock(slot);
            if let Slot::Open(existing) = &*g
                && !existing.is_closed()
            {
                return Some(existing.clone());
            }
            let s = Arc::new(s);
            *g = Slot::Open(s.clone());
            Some(s)
        }
        Err(st) if st.code() == tonic::Code::Unimplemented => {
            tracing::debug!("the peer offers no gateway sessions; using Fabric's unary calls");
            *lock(slot) = Slot::Unsupported;
            None
        }
        Err(st) => {
            tracing::debug!(status = %st, "could not open a gateway session; using unary calls");
            None
        }
    }
}

/// Whether a session is open now.
pub(crate) fn is_open(slot: &Mutex<Slot>) -> bool {
    matches!(&*lock(slot), Slot::Open(s) if !s.is_closed())
}

/// Marks the slot so that the gateway never opens a session.
pub(crate) fn disable(slot: &Mutex<Slot>) {
    *lock(slot) = Slot::Unsupported;
}
