//! The oneM2M side as the gateway reaches it: the Mca reference point ([`Mca`]), whichever CSE is behind it.
//!
//! Two implementations: a remote CSE (ACME and others) over HTTP(S), [`mca_client::McaClient`], here; and
//! the embedded CSE in-process, assembled by the `ipechain` binary (the bridge does not depend on the `cse`
//! crate). [`crate::Onem2mSide`] builds every request the gateway makes (device trees, subscriptions,
//! contentInstances, the `cmd` backlog) and sends it through one of them; notifications come in as
//! [`Notified`] on a channel the implementation fills.

use std::future::Future;
use std::pin::Pin;

use onem2m::{RequestPrimitive, ResponsePrimitive, Rsc};
use serde_json::Value;
use tokio::sync::mpsc;

/// The future an [`Mca`] answers with.
pub type McaFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a CSE tells the gateway who created a resource (the originator of a request written into `cmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// In-process (the embedded CSE): notifications carry the creator ([`Notified::creator`]), and
    /// [`Mca::creator_of`] answers for a resource id from the CSE's record of the CREATE.
    InProcess,
    /// Only in the CSE's answers: `cr`, when the application asked for it. Notifications reach an
    /// unauthenticated listener, so the gateway retrieves a notified contentInstance and trusts only that.
    Answers,
}

/// A CSE the gateway sends Mca requests to.
pub trait Mca: Send + Sync {
    /// Sends one request and returns the CSE's answer; a CSE that cannot be reached is an answer with
    /// [`Rsc::TargetNotReachable`].
    fn send(&self, req: RequestPrimitive) -> McaFuture<'_, ResponsePrimitive>;

    /// Sends requests in order, up to and including the first whose answer is not one of `ok`, and returns the
    /// answers (one per request sent). A CSE may perform them as one: the embedded CSE stores them in one durable
    /// batch. The default sends them one by one.
    fn send_in_order<'a>(
        &'a self,
        reqs: Vec<RequestPrimitive>,
        ok: &'a [Rsc],
    ) -> McaFuture<'a, Vec<ResponsePrimitive>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(reqs.len());
            for req in reqs {
                let rsp = self.send(req).await;
                let go = ok.contains(&rsp.rsc);
                out.push(rsp);
                if !go {
                    break;
                }
            }
            out
        })
    }

    /// How this CSE vouches for creators.
    fn provenance(&self) -> Provenance;

    /// The originator that created resource `ri`, for a CSE of [`Provenance::InProcess`]; `None` when it
    /// cannot say (or the resource is gone).
    fn creator_of(&self, ri: &str) -> Option<String> {
        let _ = ri;
        None
    }
}

impl Mca for mca_client::McaClient {
    fn send(&self, req: RequestPrimitive) -> McaFuture<'_, ResponsePrimitive> {
        Box::pin(async move {
            let rqi = req.rqi.clone();
            match mca_client::McaClient::send(self, &req).await {
                Ok(r) => r,
                Err(e) => ResponsePrimitive::error(Rsc::TargetNotReachable, rqi, e.to_string()),
            }
        })
    }

    fn provenance(&self) -> Provenance {
        Provenance::Answers
    }
}

/// A notification from the oneM2M side, whichever CSE sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notified {
    /// The content, `{"m2m:sgn": …}`.
    pub body: Value,
    /// For a new child resource: its creator, as the embedded CSE hands it over in-process. Always `None` from a
    /// remote CSE (its notifications reach an unauthenticated listener, so nothing in them is taken on trust).
    pub creator: Option<String>,
}

/// A remote CSE's notifications arriving at `listener` (no creator: see [`Notified::creator`]).
pub fn notifications_remote(
    mut listener: mca_client::NotificationListener,
) -> mpsc::UnboundedReceiver<Notified> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(n) = listener.recv().await {
            if tx.send(Notified { body: n.body, creator: None }).is_err() {
                break;
            }
        }
    });
    out
}
