//! Delivery of notifications: one ordered queue per target, retries with back-off, in-process channels.
//!
//! A notification counts as delivered when the receiver answers a 2xxx RSC (or HTTP 2xx without one). A 4xxx
//! answer (the receiver refuses it) is logged and not retried; a 5xxx answer, an HTTP error status, a timeout or
//! a connection failure is retried after 0.1, 0.5 and 2 s, then logged and dropped. A subscription with `bn`
//! (batchNotify) has its notifications collected per target and sent as one `m2m:agn` (see
//! [`Notifier::enqueue_batched`]). Queues live in memory: after a restart, notifications not yet delivered are
//! not sent again.
//!
//! ```text
//!  engine ──Note(batch id)──► per-target queue ──wait until batch committed──► POST (retry ×4) / local channel
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use onem2m::{Rsc, http as binding};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::engine::{BatchPolicy, NotifyTarget};

/// A notification handed to an in-process subscriber (an AE whose `poa` is `local://<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalNotification {
    /// The request identifier the CSE gave the notification.
    pub rqi: String,
    /// The content, `{"m2m:sgn": {...}}`.
    pub body: Value,
    /// For a notification of a new child resource (`net` 3): the originator that created it, as the CSE
    /// checked it (whether or not the resource shows `cr`). `None` for other notifications.
    pub creator: Option<String>,
}

struct Job {
    batch: u64,
    rqi: String,
    body: Value,
    creator: Option<String>,
}

/// Sends notifications.
#[derive(Clone)]
pub(crate) struct Notifier {
    inner: Arc<NotifierInner>,
}

/// Notifications of one subscription for one target, collected under its `bn` (batchNotify). The entry is
/// removed when they are sent.
struct Collected {
    /// The `m2m:sgn` contents, in order.
    sgns: Vec<Value>,
    /// The newest storage batch they depend on.
    batch: u64,
    /// Which collection this is (unique per notifier): the timer of an earlier one, sent by count, must not send
    /// this one early.
    id: u64,
}

/// Up to 5 retries of one delivery, waiting up to 0.2, 0.4, 0.8, 1.6 and 2 s (drawn: 2.5 s in all on average, as
/// the fixed 0.1, 0.5 and 2 s before).
const DELIVERY_RETRY: mca_client::Backoff =
    mca_client::Backoff::new(Duration::from_millis(200), Duration::from_secs(2)).with_max_retries(5);

struct NotifierInner {
    client: mca_client::tls::HttpsClient,
    queues: Mutex<HashMap<NotifyTarget, mpsc::UnboundedSender<Job>>>,
    /// Collections under `bn`, per (subscription, target).
    collected: Mutex<HashMap<(String, NotifyTarget), Collected>>,
    /// Numbers collections and the request ids of aggregated notifications.
    agn_counter: std::sync::atomic::AtomicU64,
    locals: Mutex<HashMap<String, mpsc::UnboundedSender<LocalNotification>>>,
    committed: watch::Receiver<u64>,
    origin: String,
    /// Waits between attempts of one delivery.
    retry: mca_client::Backoff,
}

impl Notifier {
    /// A notifier sending as `origin`; `tls` verifies `https://` targets (`None`: none can be reached).
    pub(crate) fn new(
        committed: watch::Receiver<u64>,
        origin: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let client = mca_client::tls::client(tls);
        Notifier {
            inner: Arc::new(NotifierInner {
                client,
                queues: Mutex::new(HashMap::new()),
                collected: Mutex::new(HashMap::new()),
                agn_counter: std::sync::atomic::AtomicU64::new(0),
                locals: Mutex::new(HashMap::new()),
                committed,
                origin,
                retry: DELIVERY_RETRY,
            }),
        }
    }

    pub(crate) fn register_local(&self, name: &str) -> mpsc::UnboundedReceiver<LocalNotification> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut l) = self.inner.locals.lock() {
            l.insert(name.to_owned(), tx);
        }
        rx
    }

    /// Queues a notification that may go out once storage batch `batch` is committed.
    /// `creator`: see [`LocalNotification::creator`].
    pub(crate) fn enqueue(
        &self,
        target: NotifyTarget,
        batch: u64,
        rqi: String,
        body: Value,
        creator: Option<String>,
    ) {
        let Ok(mut queues) = self.inner.queues.lock() else { return };
        let tx = queues.entry(target.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let inner = self.inner.clone();
            tokio::spawn(run_queue(inner, target.clone(), rx));
            tx
        });
        let job = Job { batch, rqi, body, creator };
        if let Err(mpsc::error::SendError(job)) = tx.send(job) {
            // The queue's task ended (it does when idle): start a fresh one.
            let (ntx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_queue(self.inner.clone(), target, rx));
            let _ = ntx.send(job);
            *tx = ntx;
        }
    }

    /// Collects a notification (`{"m2m:sgn": ..}`) of subscription `sur` that has a `bn`: once `num` are
    /// collected, or `dur` after the first one, they go to `target` as one `{"m2m:agn": {"m2m:sgn": [..]}}` (with
    /// `ln`, only the latest of them), in the target's queue like any notification.
    pub(crate) fn enqueue_batched(
        &self,
        target: NotifyTarget,
        sur: &str,
        batch: u64,
        policy: BatchPolicy,
        body: &Value,
    ) {
        let sgn = body.get("m2m:sgn").cloned().unwrap_or(Value::Null);
        let key = (sur.to_owned(), target);
        let Ok(mut all) = self.inner.collected.lock() else { return };
        let c = all.entry(key.clone()).or_insert_with(|| Collected {
            sgns: Vec::new(),
            batch: 0,
            id: self.next_agn(),
        });
        c.sgns.push(sgn);
        c.batch = c.batch.max(batch);
        if policy.num.is_some_and(|n| c.sgns.len() >= n) {
            let ready = all.remove(&key);
            drop(all);
            self.send_collected(key.1, ready, policy.latest);
        } else if c.sgns.len() == 1 {
            let (me, id) = (self.clone(), c.id);
            tokio::spawn(async move {
                tokio::time::sleep(policy.dur).await;
                let ready = {
                    let Ok(mut all) = me.inner.collected.lock() else { return };
                    if all.get(&key).is_none_or(|c| c.id != id) {
                        return;
                    }
                    all.remove(&key)
                };
                me.send_collected(key.1, ready, policy.latest);
            });
        }
    }

    fn next_agn(&self) -> u64 {
        self.inner.agn_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn send_collected(&self, target: NotifyTarget, c: Option<Collected>, latest: bool) {
        let Some(Collected { mut sgns, batch, .. }) = c else { return };
        if latest && sgns.len() > 1 {
            sgns.drain(..sgns.len() - 1);
        }
        let rqi = format!("agn-{}", self.next_agn());
        self.enqueue(target, batch, rqi, json!({"m2m:agn": {"m2m:sgn": sgns}}), None);
    }

    /// Sends one request and waits for the answer (used for verification requests). Returns the RSC.
    pub(crate) async fn send_once(
        &self,
        target: &NotifyTarget,
        rqi: &str,
        body: &Value,
    ) -> Result<Rsc, String> {
        deliver(&self.inner, target, rqi, body, None).await
    }
}

async fn run_queue(inner: Arc<NotifierInner>, target: NotifyTarget, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut committed = inner.committed.clone();
    while let Some(job) = rx.recv().await {
        if committed.wait_for(|c| *c >= job.batch).await.is_err() {
            return;
        }
        let mut retries = inner.retry.retries();
        loop {
            let e = match deliver(&inner, &target, &job.rqi, &job.body, job.creator.as_deref()).await {
                Ok(rsc) if rsc.is_success() => break,
                // The receiver understood and refused it: the same notification would be refused again.
                Ok(rsc) if (4000..5000).contains(&rsc.code()) => {
                    tracing::warn!(?target, %rsc, rqi = %job.rqi, "notification refused by its receiver, not retried");
                    break;
                }
                // 5xxx: the receiver failed on its side, maybe for a moment; like a transport error.
                Ok(rsc) => format!("receiver answered {rsc}"),
                Err(e) => e,
            };
            let Some(wait) = retries.next_delay(retry::os_random()) else {
                tracing::warn!(?target, error = %e, rqi = %job.rqi, "notification dropped after retries");
                break;
            };
            tracing::debug!(?target, error = %e, retry = retries.count(), ?wait, "notification failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Sends one notification; `creator` goes to in-process receivers only (HTTP receivers get the body).
async fn deliver(
    inner: &NotifierInner,
    target: &NotifyTarget,
    rqi: &str,
    body: &Value,
    creator: Option<&str>,
) -> Result<Rsc, String> {
    match target {
        NotifyTarget::Local(name) => {
            let tx = inner.locals.lock().ok().and_then(|l| l.get(name).cloned());
            match tx {
                Some(tx) => tx
                    .send(LocalNotification {
                        rqi: rqi.to_owned(),
                        body: body.clone(),
                        creator: creator.map(str::to_owned),
                    })
                    .map(|()| Rsc::Ok)
                    .map_err(|_| format!("local subscriber {name} is gone")),
                None => Err(format!("no local subscriber {name}")),
            }
        }
        NotifyTarget::Url(url) => {
            let uri: http::Uri = url.parse().map_err(|e| format!("bad notification URL {url:?}: {e}"))?;
            let data = serde_json::to_vec(body).map_err(|e| e.to_string())?;
            let req = http::Request::builder()
                .method(http::Method::POST)
                .uri(uri)
                .header(binding::X_M2M_ORIGIN, inner.origin.as_str())
                .header(binding::X_M2M_RI, rqi)
                .header(binding::X_M2M_RVI, "3")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(data)))
                .map_err(|e| e.to_string())?;
            let rsp = tokio::time::timeout(Duration::from_secs(5), inner.client.request(req))
                .await
                .map_err(|_| "notification timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            let status = rsp.status();
            let rsc = rsp
                .headers()
                .get(binding::X_M2M_RSC)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u16>().ok())
                .and_then(Rsc::from_code);
            let _ = rsp.into_body().collect().await;
            match rsc {
                Some(r) => Ok(r),
                None if status.is_success() => Ok(Rsc::Ok),
                None => Err(format!("receiver answered HTTP {status}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::Notifier;
    use crate::engine::{BatchPolicy, NotifyTarget};

    fn sgn(n: u64) -> Value {
        json!({"m2m:sgn": {"nev": {"net": 3, "rep": n}}})
    }

    fn reps(v: &Value) -> Vec<Value> {
        v.pointer("/m2m:agn/m2m:sgn")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.pointer("/nev/rep").cloned()).collect())
            .unwrap_or_default()
    }

    /// A collection sent by count leaves its timer behind; that timer must not send the next collection early.
    #[tokio::test(start_paused = true)]
    async fn batches_go_out_by_count_or_their_own_timer() {
        let (_committed, rx) = tokio::sync::watch::channel(u64::MAX);
        let n = Notifier::new(rx, "/id-in".into(), None);
        let mut got = n.register_local("x");
        let t = NotifyTarget::Local("x".into());
        let policy = BatchPolicy { num: Some(2), dur: Duration::from_secs(10), latest: false };
        n.enqueue_batched(t.clone(), "/id-in/sub", 1, policy, &sgn(1));
        n.enqueue_batched(t.clone(), "/id-in/sub", 2, policy, &sgn(2));
        let first = got.recv().await.unwrap();
        assert_eq!(reps(&first.body), [json!(1), json!(2)], "sent by count");
        tokio::time::sleep(Duration::from_secs(5)).await;
        n.enqueue_batched(t.clone(), "/id-in/sub", 3, policy, &sgn(3));
        // The first collection's timer fires at 10 s: the second collection (started at 5 s) waits for 15 s.
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert!(got.try_recv().is_err(), "the second collection went out with the first one's timer");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(reps(&got.recv().await.unwrap().body), [json!(3)]);
        // With ln, only the latest of a collection goes out.
        let latest = BatchPolicy { latest: true, ..policy };
        n.enqueue_batched(t.clone(), "/id-in/sub2", 4, latest, &sgn(4));
        n.enqueue_batched(t, "/id-in/sub2", 5, latest, &sgn(5));
        assert_eq!(reps(&got.recv().await.unwrap().body), [json!(5)]);
    }
}
