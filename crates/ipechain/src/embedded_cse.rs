//! The embedded CSE as the bridge's oneM2M side: [`bridge::Mca`] in-process, and its local notifications
//! with the creators it hands over.

use bridge::{Mca, McaFuture, Notified, Provenance};
use onem2m::{RequestPrimitive, ResponsePrimitive, Rsc};
use tokio::sync::mpsc;

/// The embedded CSE, reached in-process.
pub(crate) struct EmbeddedCse(pub(crate) cse::Cse);

impl Mca for EmbeddedCse {
    fn send(&self, req: RequestPrimitive) -> McaFuture<'_, ResponsePrimitive> {
        Box::pin(self.0.handle(req))
    }

    fn send_in_order<'a>(
        &'a self,
        reqs: Vec<RequestPrimitive>,
        ok: &'a [Rsc],
    ) -> McaFuture<'a, Vec<ResponsePrimitive>> {
        Box::pin(self.0.handle_in_order(reqs, move |r| ok.contains(&r.rsc)))
    }

    fn provenance(&self) -> Provenance {
        Provenance::InProcess
    }

    fn creator_of(&self, ri: &str) -> Option<String> {
        self.0.creator_of(ri)
    }
}

/// Notifications of the embedded CSE to its local point of access `rx`, with the creators it hands over
/// in-process.
pub(crate) fn notifications(
    mut rx: mpsc::UnboundedReceiver<cse::LocalNotification>,
) -> mpsc::UnboundedReceiver<Notified> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            if tx.send(Notified { body: n.body, creator: n.creator }).is_err() {
                break;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests;
